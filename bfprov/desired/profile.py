"""Profiles: YAML files -> the validated desired state.

Every problem is reported, not just the first, each on one line that names the file, the
line and column (1-based) and the dotted field path. Secrets are references only and are
never read here; messages come from pydantic's `msg` and `loc` (never the input), so a
literal secret written by mistake is never echoed.

YAML is read with ruamel.yaml's safe loader in pure-Python mode. Anchors, aliases, merge
keys and tags are refused, so expansion bombs and object construction cannot happen. Two
readers share that parser: a fast one builds plain data straight from parser events and
keeps no positions; when it meets anything unusual, or once there is a problem or warning
to place, a strict composer reads the file again into a node tree whose marks give line
and column. A profile with no problem pays for positions nowhere.
"""

from __future__ import annotations

import difflib
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.constructor import DuplicateKeyError, SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from bfprov.errors import BfprovError

try:  # libyaml's parser, for the fast path only (see _event_source)
    from _ruamel_yaml import CParser as _CParser
except ImportError:  # pragma: no cover - the extension is a dependency, but optional
    _CParser = None
from bfprov.desired.models import (
    Account,
    AccountDefaults,
    AccountEntry,
    Desired,
    ProfileDocument,
    Target,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pydantic_core import ErrorDetails
    from ruamel.yaml.nodes import Node

    from bfprov.settings import Settings

MAX_PROFILE_BYTES = 10 * 1024 * 1024
SUPPORTED_VERSION = 1

# Profiles are four levels deep; anything far deeper is hostile or broken.
_MAX_DEPTH = 32
_CORE = "tag:yaml.org,2002:"
# Explicit tags that only restate what a plain scalar or collection is anyway.
_PLAIN_TAGS = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq"))
_STR = _CORE + "str"
_MERGE = _CORE + "merge"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Loc = tuple[str | int, ...]


class ProfileError(BfprovError):
    """The profiles are invalid; the message holds one line per problem found."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = (problems,) if isinstance(problems, str) else tuple(problems)
        super().__init__("\n".join(self.problems))


def load_profiles(path: Path, settings: Settings) -> Desired:
    """Read one profile file, or every `*.yaml`/`*.yml` of a directory, into a `Desired`.

    Raises `ProfileError` listing every problem of every file.
    """
    try:
        return _load(path, settings)
    except _Problem as exc:  # only if the two YAML readers disagreed about a file
        raise ProfileError([str(exc)]) from None


def _load(path: Path, settings: Settings) -> Desired:
    problems: list[str] = []
    files: list[_File] = []
    seen: dict[str, tuple[_File, int]] = {}
    for file in _profile_files(path):
        f = _File.read(file, problems)
        if f is None:
            continue
        files.append(f)
        f.validate(settings)
        for index, name in f.names:
            first = seen.setdefault(name, (f, index))
            if first != (f, index):
                other, other_index = first
                f.report(
                    ("accounts", index, "name"),
                    f"duplicate account name {name!r}; first defined at "
                    f"{other.where(('accounts', other_index, 'name'))}",
                )
        problems.extend(f.sorted_problems())
    if problems:
        raise ProfileError(problems)

    targets: list[Target] = []
    output_dirs: dict[Path, None] = {}
    warnings: list[str] = []
    for f in files:
        assert f.output_dir is not None
        output_dirs.setdefault(f.output_dir, None)
        source = f.path.resolve()
        for index, account in f.accounts:
            targets.append(Target(account, f.output_dir, f.templates, source, f.archive_keep))
            if account.key.size == 1024:
                warnings.append(f.weak_key_warning(index))
    return Desired(targets=tuple(targets), output_dirs=tuple(output_dirs), warnings=tuple(warnings))


def _profile_files(path: Path) -> list[Path]:
    try:
        if path.is_dir():
            files = sorted(
                (
                    p
                    for p in path.iterdir()
                    if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file()
                ),
                key=lambda p: p.name,
            )
            if not files:
                raise ProfileError([f"{path}: no *.yaml or *.yml profile in this directory"])
            return files
        if path.exists():
            return [path]
    except OSError as exc:
        raise ProfileError([f"{path}: cannot read profiles: {exc.strerror}"]) from None
    raise ProfileError([f"{path}: no such profile file or directory"])


# --- reading YAML -------------------------------------------------------------------------


class _Refused(Exception):
    """A YAML construct bfprov does not accept, at a known place."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class _StrictComposer(Composer):
    """Composes one document, refusing anchors, aliases, tags and merge keys.

    Refusing anchors at the first one seen defeats "billion laughs" expansion at once.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent) or event.anchor is not None:
            raise _Refused("YAML anchors and aliases are not allowed", event.start_mark)
        tag = event.ctag
        if tag is not None and str(tag) != "!" and str(tag) not in _PLAIN_TAGS:
            raise _Refused(f"YAML tags are not allowed (found {str(tag)[:60]})", event.start_mark)
        node = super().compose_node(parent, index)
        if node.tag == _MERGE:
            raise _Refused("YAML merge keys (<<) are not allowed", node.start_mark)
        return node

    def get_single_node(self) -> Any:
        self.parser.get_event()  # stream start
        document = None
        if not self.parser.check_event(StreamEndEvent):
            document = self.compose_document()
        if not self.parser.check_event(StreamEndEvent):
            raise _Refused(
                "a profile holds a single YAML document; another one starts here",
                self.parser.peek_event().start_mark,
            )
        self.parser.get_event()
        return document


class _StrictConstructor(SafeConstructor):
    def check_mapping_key(
        self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any
    ) -> bool:
        # ruamel's own message quotes both values, which may be secrets: name the key only.
        if key in mapping:
            shown = f" {key!r}" if isinstance(key, str) and _IDENTIFIER.match(key) else ""
            raise _Refused(f"duplicate key{shown}", key_node.start_mark)
        return True

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError):
            # e.g. an impossible date or an integer too long to convert
            raise _Refused("this value cannot be read", node.start_mark) from None


def _yaml() -> YAML:
    yaml = YAML(typ="safe", pure=True)  # pure: the C parser would bypass _StrictComposer
    yaml.Composer = _StrictComposer
    yaml.Constructor = _StrictConstructor
    yaml.max_depth = _MAX_DEPTH
    return yaml


class _Unusual(Exception):
    """The fast reader met something that only the node reader judges and places."""


_NO_KEY = object()


# JSON (which is YAML) writes a character beyond the BMP, an emoji say, as an escaped
# surrogate pair; YAML parsers decode the two halves separately.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _join_surrogates(value: Any) -> Any:
    """Strings with their escaped surrogate pairs made into the characters they stand for."""
    if isinstance(value, str):
        try:
            return value.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            return value  # a lone half: left for validation to refuse
    if isinstance(value, dict):
        return {_join_surrogates(k): _join_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_surrogates(v) for v in value]
    return value


def _event_source(yaml: YAML, text: str) -> tuple[Any, Callable[[], Any]]:
    """A constructor for typed scalars, and where parser events come from.

    libyaml's parser (ruamel.yaml.clib) is about fifteen times faster than the pure one
    and gives the same event classes, anchors and tags included, so the checks below
    hold either way. Without the C extension, the pure parser serves.
    """
    if _CParser is not None:
        return yaml.constructor, _CParser(text).get_event
    constructor, parser = yaml.get_constructor_parser(text)
    return constructor, parser.get_event


def _load_fast(text: str) -> Any:
    """The document's plain data built straight from parser events, or `_Unusual`.

    No node tree, no positions: most profiles are fine, and positions are only needed to
    report a problem, when `_compose` reads the text again. Anything out of the ordinary
    (anchors, tags, duplicate keys, several documents, a YAML error) is left to `_compose`.
    """
    yaml = _yaml()
    try:
        constructor, get_event = _event_source(yaml, text)
        resolve = yaml.resolver.resolve
        tags: dict[tuple[Any, Any], Any] = {}
        root: Any = None
        containers: list[Any] = []
        keys: list[Any] = []  # per open collection: a mapping's pending key, or _NO_KEY
        documents = 0
        while True:
            event = get_event()
            kind = type(event)
            value: Any
            if kind is ScalarEvent:
                if event.anchor is not None or event.ctag is not None:
                    raise _Unusual
                # Profiles repeat the same keys thousands of times: resolve each once.
                memo = (event.value, event.implicit)
                tag = tags.get(memo)
                if tag is None:
                    tag = tags[memo] = resolve(ScalarNode, event.value, event.implicit)
                if tag == _STR:
                    value = event.value
                elif tag == _MERGE:
                    raise _Unusual
                else:
                    node = ScalarNode(tag, event.value, event.start_mark, event.end_mark)
                    value = constructor.construct_object(node)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                if event.anchor is not None or event.ctag is not None:
                    raise _Unusual
                if len(containers) >= _MAX_DEPTH // 2:  # stricter than _compose
                    raise _Unusual
                containers.append({} if kind is MappingStartEvent else [])
                keys.append(_NO_KEY)
                continue
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                keys.pop()
                value = containers.pop()
            elif kind is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _Unusual
                continue
            elif kind is StreamEndEvent:
                return root
            elif kind is AliasEvent:
                raise _Unusual
            else:
                continue  # stream start, document end
            if not containers:
                root = value
                continue
            top = containers[-1]
            if type(top) is list:
                top.append(value)
            elif keys[-1] is _NO_KEY:
                if isinstance(value, dict | list) or value in top:
                    raise _Unusual
                keys[-1] = value
            else:
                top[keys[-1]] = value
                keys[-1] = _NO_KEY
    except (YAMLError, _Refused, ValueError, TypeError):
        raise _Unusual from None


def _compose(label: str, text: str) -> tuple[Node | None, Any]:
    """The document's node tree and its data; every problem raised as a placed `_Problem`."""
    yaml = _yaml()
    try:
        node = yaml.compose(text)
        data = None if node is None else yaml.constructor.construct_document(node)
    except _Refused as exc:
        raise _Problem(_at(label, exc.mark, exc.message)) from None
    except DuplicateKeyError as exc:  # not expected (see _StrictConstructor); never its text
        raise _Problem(_at(label, exc.problem_mark, "duplicate key")) from None
    except MaxDepthExceededError as exc:
        raise _Problem(_at(label, exc.problem_mark, "YAML nested too deeply")) from None
    except MarkedYAMLError as exc:
        what = str(exc.problem or exc.context or "cannot parse")
        context = exc.context_mark
        if exc.context and exc.problem and context is not None:
            what += f" ({exc.context} at {context.line + 1}:{context.column + 1})"
        mark = exc.problem_mark or context
        raise _Problem(_at(label, mark, f"YAML syntax error: {what}")) from None
    except ReaderError as exc:
        line, col = _position(text, exc.position)
        char = exc.character if isinstance(exc.character, int) else 0
        raise _Problem(
            f"{label}:{line}:{col}: character U+{char:04X} is not allowed in YAML"
        ) from None
    except YAMLError as exc:
        raise _Problem(f"{label}: cannot read YAML ({type(exc).__name__})") from None
    return node, data


def _decode(label: str, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        col = len(raw[line_start : exc.start].decode("utf-8", "replace")) + 1
        raise _Problem(f"{label}:{line}:{col}: not valid UTF-8 (profiles are UTF-8 text)") from None
    return text.removeprefix("\ufeff")


def _position(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _at(label: str, mark: Any, message: str) -> str:
    if mark is None:
        return f"{label}: {message}"
    return f"{label}:{mark.line + 1}:{mark.column + 1}: {message}"


class _Problem(Exception):
    """A complete problem line about a file that cannot be read any further."""


# --- validating ---------------------------------------------------------------------------


@dataclass(eq=False)
class _File:
    """One profile file: its data, its node tree (for positions) and what it resolves to."""

    path: Path
    text: str
    data: dict[Any, Any]
    composed: Node | None = None
    entries: list[tuple[int, AccountEntry]] = field(default_factory=list)
    names: list[tuple[int, str]] = field(default_factory=list)
    accounts: list[tuple[int, Account]] = field(default_factory=list)
    output_dir: Path | None = None
    templates: Path | None = None
    archive_keep: int = 3
    problems: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return str(self.path)

    @property
    def root(self) -> Node:
        """The node tree, composed on first use: only problems and warnings need it."""
        if self.composed is None:
            self.composed, _ = _compose(self.label, self.text)
            assert self.composed is not None
        return self.composed

    @classmethod
    def read(cls, path: Path, problems: list[str]) -> _File | None:
        """The parsed file, or None after adding its problem to `problems`."""
        label = str(path)
        try:
            if path.stat().st_size > MAX_PROFILE_BYTES:
                problems.append(f"{label}: larger than 10 MiB; refusing to read it")
                return None
            with path.open("rb") as fh:
                raw = fh.read(MAX_PROFILE_BYTES + 1)
        except OSError as exc:
            problems.append(f"{label}: cannot read: {exc.strerror}")
            return None
        if len(raw) > MAX_PROFILE_BYTES:
            problems.append(f"{label}: larger than 10 MiB; refusing to read it")
            return None
        root: Node | None = None
        try:
            text = _decode(label, raw)
            try:
                data = _load_fast(text)
            except _Unusual:
                root, data = _compose(label, text)  # raises the placed problem, if any
            if not isinstance(data, dict) and root is None:
                root, data = _compose(label, text)
            if _SURROGATE_ESCAPE.search(text):
                data = _join_surrogates(data)
        except _Problem as exc:
            problems.append(str(exc))
            return None
        if root is None and not isinstance(data, dict):
            problems.append(f"{label}: the profile is empty; it needs at least `version: 1`")
            return None
        if not isinstance(data, dict):
            assert root is not None
            message = (
                "the profile must be a mapping (version, output_dir, defaults, accounts), "
                f"not {_kind_of(data)}"
            )
            problems.append(_at(label, root.start_mark, message))
            return None
        return cls(path, text, data, root)

    # positions, computed only for problems and warnings

    def where(self, loc: Loc, *, key: bool = False) -> str:
        node, _ = _locate(self.root, loc, key=key)
        return f"{self.label}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"

    def report(
        self, loc: Loc, message: str, *, key: bool = False, node_of: Loc | None = None
    ) -> None:
        """Record a problem about `loc`; the position is that of `node_of` when given."""
        node, matched = _locate(self.root, loc if node_of is None else node_of, key=key)
        shown = loc if node_of is not None else _shown_loc(loc, matched)
        mark = node.start_mark
        self.problems.append(
            (
                mark.line,
                mark.column,
                f"{self.label}:{mark.line + 1}:{mark.column + 1}: {_dotted(shown)}: {message}",
            )
        )

    def sorted_problems(self) -> list[str]:
        return [text for _, _, text in sorted(self.problems, key=lambda p: (p[0], p[1]))]

    def weak_key_warning(self, index: int) -> str:
        loc: Loc = ("accounts", index, "key", "size")
        node, matched = _locate(self.root, loc)
        suffix = ""
        if matched < len(loc):
            node, matched = _locate(self.root, ("defaults", "key", "size"))
            suffix = " (inherited from defaults)"
        mark = node.start_mark
        return (
            f"{self.label}:{mark.line + 1}:{mark.column + 1}: accounts[{index}].key.size: "
            f"1024-bit keys are accepted by Betfair but weak; prefer 2048{suffix}"
        )

    # validation

    def validate(self, settings: Settings) -> None:
        """Validate the document and resolve its accounts, recording every problem."""
        version = self.data.get("version")
        if "version" in self.data and (type(version) is not int or version != SUPPORTED_VERSION):
            if isinstance(version, str):
                shown = repr(version[:20])
            elif isinstance(version, int | float):
                shown = str(version)[:20]
            else:
                shown = _kind_of(version)
            self.report(
                ("version",),
                f"unsupported profile version {shown}; "
                f"this bfprov reads version {SUPPORTED_VERSION}",
            )
            return  # the rest of a document of another version cannot be judged
        try:
            doc = ProfileDocument.model_validate(self.data)
        except ValidationError as exc:
            self._salvage(exc.errors(include_url=False, include_input=False))
        else:
            self.entries = list(enumerate(doc.accounts))
            self.names = [(index, entry.name) for index, entry in self.entries]
            self._merge(doc.defaults)
        self._directories(settings)

    def _salvage(self, errors: list[ErrorDetails]) -> None:
        """Report document errors, then check what still can be: names and merges."""
        bad_accounts: set[Any] = set()
        bad_names: set[Any] = set()
        defaults_ok = accounts_ok = True
        for error in errors:
            loc = tuple(error["loc"])
            self._report_error(loc, error)
            if loc[:1] == ("defaults",):
                defaults_ok = False
            elif loc == ("accounts",):
                accounts_ok = False
            elif loc[:1] == ("accounts",):
                bad_accounts.add(loc[1])
                if loc[2:] in ((), ("name",)):
                    bad_names.add(loc[1])
        raw_accounts = (self.data.get("accounts") or []) if accounts_ok else []
        for index, raw in enumerate(raw_accounts):
            if index not in bad_accounts:
                self.entries.append((index, AccountEntry.model_validate(raw)))
            if index not in bad_names:
                # a name is worth checking for duplicates even beside other problems
                self.names.append((index, raw["name"]))
        if defaults_ok:
            self._merge(AccountDefaults.model_validate(self.data.get("defaults") or {}))

    def _merge(self, defaults: AccountDefaults) -> None:
        inherited = ""
        if defaults.model_fields_set:
            inherited = "; the value may be inherited from defaults"
        for index, entry in self.entries:
            try:
                account = Account.merge(defaults, entry)
            except ValidationError as exc:
                for error in exc.errors(include_url=False, include_input=False):
                    loc: Loc = ("accounts", index, *error["loc"])
                    if error["type"] == "missing":
                        message = "required; set it on the account or in defaults"
                    else:
                        message = _message(error) + inherited
                    self.report(loc, message, node_of=("accounts", index))
            else:
                self.accounts.append((index, account))

    def _report_error(self, loc: Loc, error: ErrorDetails) -> None:
        kind = error["type"]
        if kind == "extra_forbidden":
            self.report(loc, _unknown_key(loc), key=True)
        elif kind == "missing":
            hint = "; start the profile with `version: 1`" if loc == ("version",) else ""
            self.report(loc, f"required key is missing{hint}")
        elif kind in ("model_type", "dict_type", "model_attributes_type"):
            self.report(loc, f"expected a mapping, found {_kind_of(_value_at(self.data, loc))}")
        elif kind == "list_type":
            self.report(loc, f"expected a list, found {_kind_of(_value_at(self.data, loc))}")
        else:
            self.report(loc, _message(error))

    def _directories(self, settings: Settings) -> None:
        keep = self.data.get("archive_keep")
        if isinstance(keep, int) and not isinstance(keep, bool):
            self.archive_keep = keep  # validated by ProfileDocument
        base = self.path.parent
        output_dir = self.data.get("output_dir")
        templates = self.data.get("templates")
        try:
            if settings.output_dir is not None:
                self.output_dir = settings.output_dir.expanduser().resolve()
            elif isinstance(output_dir, str) and output_dir:
                self.output_dir = (base / Path(output_dir).expanduser()).resolve()
            else:
                self.problems.append(
                    (
                        -1,
                        -1,
                        f"{self.label}: output_dir is not set "
                        "(set it in the profile or BFPROV_OUTPUT_DIR)",
                    )
                )
        except (OSError, RuntimeError, ValueError):
            self.report(("output_dir",), "cannot resolve this path")
        if isinstance(templates, str) and templates:
            try:
                resolved = (base / Path(templates).expanduser()).resolve()
                ok = resolved.is_dir()
            except (OSError, RuntimeError, ValueError):
                ok = False
            if ok:
                self.templates = resolved
            else:
                self.report(
                    ("templates",),
                    f"{templates[:200]!r} is not a directory (relative to the profile file)",
                )


def _locate(root: Node, loc: Loc, *, key: bool = False) -> tuple[Node, int]:
    """The node `loc` points at (its key node with `key`), and how many parts matched.

    A part that is not in the data (a missing key) stops the walk at the enclosing node.
    """
    node = root
    for depth, part in enumerate(loc):
        if isinstance(node, MappingNode) and isinstance(part, str):
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode) and key_node.value == part:
                    last = depth == len(loc) - 1
                    if last and (key or _is_empty(value_node)):
                        # an empty value's mark is wherever the next token starts
                        return key_node, depth + 1
                    node = value_node
                    break
            else:
                return node, depth
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node, depth
    return node, len(loc)


def _is_empty(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.value == "" and node.style is None


def _shown_loc(loc: Loc, matched: int) -> Loc:
    # Parts past the data are field names (a missing key) or pydantic's internal labels.
    return loc[:matched] + tuple(
        p for p in loc[matched:] if isinstance(p, int) or _IDENTIFIER.match(p)
    )


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text or "(document)"


def _message(error: ErrorDetails) -> str:
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _unknown_key(loc: Loc) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return "unknown key"
    known = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key; expected one of: {', '.join(known)}"


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at `loc` of a profile."""
    annotation: Any = ProfileDocument
    for part in loc:
        if isinstance(part, int):
            continue  # an item of a list: the list's annotation names the model
        model = _find_model(annotation)
        info = model.model_fields.get(part) if model is not None else None
        if info is None:
            return None
        annotation = info.annotation
    return _find_model(annotation)


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, tuple, Union, types.UnionType):
        for arg in get_args(annotation):
            found = _find_model(arg)
            if found is not None:
                return found
    return None


def _value_at(data: Any, loc: Loc) -> Any:
    try:
        for part in loc:
            data = data[part]
    except (KeyError, IndexError, TypeError):
        return _NO_KEY  # "a value"
    return data


def _kind_of(value: Any) -> str:
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (dict, "a mapping"),
        (list, "a list"),
        (str, "a string"),
        (bool, "a boolean"),
        ((int, float), "a number"),
        (type(None), "null"),
    ]
    return next((name for kind, name in kinds if isinstance(value, kind)), "a value")
