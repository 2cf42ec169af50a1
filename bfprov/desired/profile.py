"""Profiles: YAML files -> the validated desired state.

Every problem is reported, not just the first, each on one line that names the file, the
line and column (1-based) and the dotted field path. Each file is read once, into its
data and the place of every value (`fast_yaml`, or `yaml_reader` when that one declines);
`document` validates it, `problems` words the errors, and this module merges `defaults`
into each account, finds duplicate names across files and gives the warnings: a warning
about a value of `defaults` once, with the number of accounts it applies to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from bfprov.desired.document import AccountDefaults, AccountEntry, ProfileDocument
from bfprov.desired.fast_yaml import Unusual, load_fast
from bfprov.desired.fields import Subject, quote
from bfprov.desired.models import Account, Desired, Target
from bfprov.desired.pass_env import refused as refused_pass_env
from bfprov.desired.pass_env import secret_readers
from bfprov.desired.problems import dotted, explain, kind_of, message, shown_loc
from bfprov.desired.yaml_reader import Loc, Positions, YamlProblem, compose, decode
from bfprov.desired.yaml_reader import join_surrogates as _join_surrogates
from bfprov.errors import BfprovError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic_core import ErrorDetails

    from bfprov.settings import Settings

MAX_PROFILE_BYTES = 10 * 1024 * 1024
SUPPORTED_VERSION = 1
WEAK_KEY = "1024-bit keys are accepted by Betfair but weak; prefer 2048"


class ProfileError(BfprovError):
    """The profiles are invalid; the message holds one line per problem found."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = (problems,) if isinstance(problems, str) else tuple(problems)
        super().__init__("\n".join(self.problems))


def load_profiles(path: Path, settings: Settings) -> Desired:
    """Read one profile file, or every `*.yaml`/`*.yml` of a directory, into a `Desired`.

    Raises `ProfileError` listing every problem of every file.
    """
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
                    f"duplicate account name {quote(name)}; first defined at "
                    f"{other.where(('accounts', other_index, 'name'))}",
                )
        problems.extend(f.sorted_problems())
    readers = secret_readers(account for f in files for _, _, account in f.accounts)
    for f in files:
        problems.extend(f.line(loc, text)[2] for loc, text in refused_pass_env(f.data, readers))
    if problems:
        raise ProfileError(problems)

    targets: list[Target] = []
    output_dirs: dict[Path, None] = {}
    warnings: list[str] = []
    for f in files:
        assert f.output_dir is not None
        output_dirs.setdefault(f.output_dir, None)
        source = f.path.resolve()
        targets.extend(
            Target(
                account,
                f.output_dir,
                f.templates,
                source,
                f.archive_keep,
                publish_at=f.publish_places(index, entry, account),
            )
            for index, entry, account in f.accounts
        )
        warnings.extend(f.warnings())
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


_SECTIONS = frozenset({"key", "subject", "validity", "p12", "hooks"})


def resolve(defaults: AccountDefaults, entry: AccountEntry) -> Account:
    """An entry merged over its file's defaults: sections and labels key by key."""
    data: dict[str, Any] = {"name": entry.name, "username": entry.username}
    for name in AccountDefaults.model_fields:
        base, mine = getattr(defaults, name), getattr(entry, name)
        value: Any
        if name in _SECTIONS:
            value = _merge_section(base, mine)
        elif name == "labels":
            value = {**(base or {}), **(mine or {})}
        else:
            value = mine if mine is not None else base
        if value is not None:
            data[name] = value
    if "subject" not in data:
        data["subject"] = Subject()
    for name in ("outputs", "publish", "notify"):
        if name in data:
            data[name] = tuple(data[name])
    return Account.model_validate(data)


def _merge_section(base: BaseModel | None, override: BaseModel | None) -> BaseModel | None:
    if base is None or override is None:
        return override if override is not None else base
    return base.model_copy(update={k: getattr(override, k) for k in override.model_fields_set})


@dataclass(eq=False)
class _File:
    """One profile file: its data, where each value was written, what it resolves to."""

    path: Path
    data: dict[Any, Any]
    positions: Positions
    entries: list[tuple[int, AccountEntry]] = field(default_factory=list)
    names: list[tuple[int, str]] = field(default_factory=list)
    accounts: list[tuple[int, AccountEntry, Account]] = field(default_factory=list)
    output_dir: Path | None = None
    templates: Path | None = None
    archive_keep: int = 3
    problems: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return str(self.path)

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
        try:
            text = decode(label, raw)
            try:
                data, positions = load_fast(text)
            except Unusual:
                data, positions = compose(label, text)  # raises the placed problem, if any
        except YamlProblem as exc:
            problems.append(str(exc))
            return None
        if positions is None:
            problems.append(f"{label}: the profile is empty; it needs at least `version: 1`")
            return None
        if not isinstance(data, dict):
            line, column, _ = positions.locate(())
            problems.append(
                f"{label}:{line}:{column}: the profile must be a mapping (version, output_dir, "
                f"defaults, accounts), not {kind_of(data)}"
            )
            return None
        return cls(path, _join_surrogates(text, data), positions)

    # placing problems and warnings

    def where(self, loc: Loc, *, key: bool = False) -> str:
        line, column, _ = self.positions.locate(loc, key=key)
        return f"{self.label}:{line}:{column}"

    def line(self, loc: Loc, message: str, *, key: bool = False) -> tuple[int, int, str]:
        """`file:line:col: path: message` about `loc`, with its line and column."""
        line, column, matched = self.positions.locate(loc, key=key)
        shown = dotted(shown_loc(loc, matched))
        return line, column, f"{self.label}:{line}:{column}: {shown}: {message}"

    def report(
        self, loc: Loc, message: str, *, key: bool = False, node_of: Loc | None = None
    ) -> None:
        """Record a problem about `loc`; the position is that of `node_of` when given."""
        if node_of is None:
            self.problems.append(self.line(loc, message, key=key))
        else:
            line, column, _ = self.positions.locate(node_of)
            where = f"{self.label}:{line}:{column}"
            self.problems.append((line, column, f"{where}: {dotted(loc)}: {message}"))

    def publish_places(self, index: int, entry: AccountEntry, account: Account) -> tuple[str, ...]:
        """Where each publishing target of an account is written (`file:line:col: path`):
        its own list, or the one it inherits from defaults."""
        own = entry.publish is not None
        base: Loc = ("accounts", index, "publish") if own else ("defaults", "publish")
        places = []
        for i in range(len(account.publish)):
            loc = (*base, i)
            places.append(f"{self.where(loc)}: {dotted(loc)}")
        return tuple(places)

    def sorted_problems(self) -> list[str]:
        return [text for _, _, text in sorted(self.problems, key=lambda p: (p[0], p[1]))]

    def warnings(self) -> list[str]:
        """The file's warnings: one per account for its own fields, one for `defaults`."""
        own: list[str] = []
        inherited = 0
        for index, entry, account in self.accounts:
            if account.key.size != 1024:
                continue
            if entry.key is not None and "size" in entry.key.model_fields_set:
                own.append(self.line(("accounts", index, "key", "size"), WEAK_KEY)[2])
            else:
                inherited += 1
        if not inherited:
            return own
        applies = f"(applies to {inherited} account{'s' if inherited != 1 else ''})"
        return [self.line(("defaults", "key", "size"), f"{WEAK_KEY} {applies}")[2], *own]

    # validation

    def validate(self, settings: Settings) -> None:
        """Validate the document and resolve its accounts, recording every problem."""
        version = self.data.get("version")
        if "version" in self.data and (type(version) is not int or version != SUPPORTED_VERSION):
            shown = quote(version, 20) if isinstance(version, str | int | float) else None
            self.report(
                ("version",),
                f"unsupported profile version {shown or kind_of(version)}; "
                f"this bfprov reads version {SUPPORTED_VERSION}",
            )
            return  # the rest of a document of another version cannot be judged
        try:
            doc = ProfileDocument.model_validate(self.data)
        except ValidationError as exc:
            self._salvage(exc.errors(include_url=False))
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
            shown, text, key = explain(loc, error, self.data)
            self.report(shown, text, key=key)
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
                account = resolve(defaults, entry)
            except ValidationError as exc:
                for error in exc.errors(include_url=False, include_input=False):
                    loc: Loc = ("accounts", index, *error["loc"])
                    if error["type"] == "missing":
                        text = "required; set it on the account or in defaults"
                    else:
                        text = message(error, secret=True) + inherited
                    self.report(loc, text, node_of=("accounts", index))
            else:
                self.accounts.append((index, entry, account))

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
                    f"{quote(templates, 200)} is not a directory (relative to the profile file)",
                )
