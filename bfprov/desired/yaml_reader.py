"""Reading a profile's YAML safely: plain data, and where each value of it was written.

ruamel.yaml's safe loader in pure-Python mode, with a strict composer: anchors, aliases,
merge keys, tags other than the plain core ones, duplicate keys and a second document
are refused at their place, so expansion bombs and object construction cannot happen.
Every problem comes out as one `YamlProblem` line naming the file, line and column.

`Positions` maps each path of the data (`("accounts", 3, "key", "size")`) to the line and
column of its key and its value: problems and warnings are placed from it, and the data
is never walked again. The libyaml reader (`fast_yaml`) builds the same two things from
parser events; this module's reader serves whenever that one declines.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.constructor import DuplicateKeyError, SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, StreamEndEvent
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

if TYPE_CHECKING:
    from ruamel.yaml.nodes import Node

# Profiles are four levels deep; anything far deeper is hostile or broken.
MAX_DEPTH = 32
CORE = "tag:yaml.org,2002:"
# Explicit tags that only restate what a plain scalar or collection is anyway.
_PLAIN_TAGS = frozenset(CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq"))
MERGE = CORE + "merge"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Loc = tuple[str | int, ...]


class YamlProblem(Exception):
    """A complete problem line about a file that cannot be read any further."""


class Refused(Exception):
    """A YAML construct bfprov does not accept, at a known place."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


# Where one value was written: the mark (`.line`, `.column`, 0-based) of its key (of the
# value itself in a list or at the root), its own mark, and whether it is empty (an empty
# value's own mark is wherever the next token starts). A plain tuple of the parser's own
# marks: a profile of 10,000 accounts has 75,000 of them.
Place = tuple[Any, Any, bool]


class Positions:
    """The place of every value of one document, by its path."""

    def __init__(self, places: dict[Loc, Place]) -> None:
        self.places = places

    def locate(self, loc: Loc, *, key: bool = False) -> tuple[int, int, int]:
        """1-based line and column of `loc` (its key with `key`), and how many parts matched.

        A part that is not in the data (a missing key) stops at the enclosing value.
        """
        for matched in range(len(loc), -1, -1):
            place = self.places.get(loc[:matched])
            if place is not None:
                key_mark, mark, empty = place
                if matched == len(loc) and (key or empty):
                    mark = key_mark
                return mark.line + 1, mark.column + 1, matched
        return 1, 1, 0  # pragma: no cover - the root is always placed

    @classmethod
    def of_nodes(cls, root: Node) -> Positions:
        """The places of a composed node tree."""
        places: dict[Loc, Place] = {}
        places[()] = (root.start_mark, root.start_mark, False)
        todo: list[tuple[Loc, Node]] = [((), root)]
        while todo:
            loc, node = todo.pop()
            if isinstance(node, MappingNode):
                for key_node, value_node in node.value:
                    if isinstance(key_node, ScalarNode):
                        here = (*loc, _key(key_node))
                        empty = _is_empty(value_node)
                        places[here] = (key_node.start_mark, value_node.start_mark, empty)
                        todo.append((here, value_node))
            elif isinstance(node, SequenceNode):
                for index, item in enumerate(node.value):
                    places[(*loc, index)] = (item.start_mark, item.start_mark, False)
                    todo.append(((*loc, index), item))
        return cls(places)


def _key(node: ScalarNode) -> str:
    # Paths from pydantic name keys as strings; a key written `1` or `true` is placed
    # by its text, which is what a message shows anyway.
    return str(node.value)


def _is_empty(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.value == "" and not node.style


class _StrictComposer(Composer):
    """Composes one document, refusing anchors, aliases, tags and merge keys.

    Refusing anchors at the first one seen defeats "billion laughs" expansion at once.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent) or event.anchor is not None:
            raise Refused("YAML anchors and aliases are not allowed", event.start_mark)
        tag = event.ctag
        if tag is not None and str(tag) != "!" and str(tag) not in _PLAIN_TAGS:
            raise Refused(f"YAML tags are not allowed (found {str(tag)[:60]})", event.start_mark)
        node = super().compose_node(parent, index)
        if node.tag == MERGE:
            raise Refused("YAML merge keys (<<) are not allowed", node.start_mark)
        return node

    def get_single_node(self) -> Any:
        self.parser.get_event()  # stream start
        document = None
        if not self.parser.check_event(StreamEndEvent):
            document = self.compose_document()
        if not self.parser.check_event(StreamEndEvent):
            raise Refused(
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
            shown = f" {key!r}" if isinstance(key, str) and IDENTIFIER.match(key) else ""
            raise Refused(f"duplicate key{shown}", key_node.start_mark)
        return True

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError):
            # e.g. an impossible date or an integer too long to convert
            raise Refused("this value cannot be read", node.start_mark) from None


def strict_yaml() -> YAML:
    """ruamel's pure-Python safe loader with the strict composer and constructor."""
    yaml = YAML(typ="safe", pure=True)  # pure: the C parser would bypass _StrictComposer
    yaml.Composer = _StrictComposer
    yaml.Constructor = _StrictConstructor
    yaml.max_depth = MAX_DEPTH
    return yaml


def compose(label: str, text: str) -> tuple[Any, Positions | None]:
    """The document's data and places (None for an empty document).

    Every problem is raised as a placed `YamlProblem`.
    """
    yaml = strict_yaml()
    try:
        node = yaml.compose(text)
        if node is None:
            return None, None
        return yaml.constructor.construct_document(node), Positions.of_nodes(node)
    except Refused as exc:
        raise YamlProblem(at(label, exc.mark, exc.message)) from None
    except DuplicateKeyError as exc:  # not expected (see _StrictConstructor); never its text
        raise YamlProblem(at(label, exc.problem_mark, "duplicate key")) from None
    except MaxDepthExceededError as exc:
        raise YamlProblem(at(label, exc.problem_mark, "YAML nested too deeply")) from None
    except MarkedYAMLError as exc:
        what = str(exc.problem or exc.context or "cannot parse")
        context = exc.context_mark
        if exc.context and exc.problem and context is not None:
            what += f" ({exc.context} at {context.line + 1}:{context.column + 1})"
        mark = exc.problem_mark or context
        raise YamlProblem(at(label, mark, f"YAML syntax error: {what}")) from None
    except ReaderError as exc:
        line, col = _position(text, exc.position)
        char = exc.character if isinstance(exc.character, int) else 0
        raise YamlProblem(
            f"{label}:{line}:{col}: character U+{char:04X} is not allowed in YAML"
        ) from None
    except YAMLError as exc:
        raise YamlProblem(f"{label}: cannot read YAML ({type(exc).__name__})") from None


def decode(label: str, raw: bytes) -> str:
    """The profile's text; not UTF-8 is a placed `YamlProblem`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        col = len(raw[line_start : exc.start].decode("utf-8", "replace")) + 1
        raise YamlProblem(
            f"{label}:{line}:{col}: not valid UTF-8 (profiles are UTF-8 text)"
        ) from None
    return text.removeprefix("\ufeff")


def _position(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def at(label: str, mark: Any, message: str) -> str:
    """`file:line:col: message` for a ruamel mark (0-based), or `file: message`."""
    if mark is None:
        return f"{label}: {message}"
    return f"{label}:{mark.line + 1}:{mark.column + 1}: {message}"


# JSON (which is YAML) writes a character beyond the BMP, an emoji say, as an escaped
# surrogate pair; YAML parsers decode the two halves separately.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def join_surrogates(text: str, data: Any) -> Any:
    """`data` with escaped surrogate pairs made into the characters they stand for."""
    return _join(data) if _SURROGATE_ESCAPE.search(text) else data


def _join(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return value.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            return value  # a lone half: left for validation to refuse
    if isinstance(value, dict):
        return {_join(k): _join(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_join(v) for v in value]
    return value
