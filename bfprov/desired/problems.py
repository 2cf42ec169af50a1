"""Validation errors as the lines a user reads: `dotted.path: message`.

pydantic's error types become sentences that quote the offending value
(`outputs[2]: 'pfxx' is not one of key, crt, pem, p12, csr, cnf`), except under a
secret's field (`password`, `app_key`, `p12.password`, any token): there the message says
what is wrong without the value, since a literal secret written by mistake must never be
echoed. Placing the line (file, line, column) is the caller's part.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

from pydantic import BaseModel

from bfprov.desired.document import ProfileDocument
from bfprov.desired.fields import quote
from bfprov.desired.yaml_reader import IDENTIFIER, Loc

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

_SECRET_FIELDS = frozenset({"password", "app_key", "token", "secret"})
_KEY_PART = "[key]"  # pydantic's label for an error about a mapping's key
_NOTHING = object()


def is_secret(loc: Loc) -> bool:
    """Whether `loc` lies under a field that holds (a reference to) a secret."""
    return any(
        isinstance(part, str)
        and (part in _SECRET_FIELDS or part.endswith(("_password", "_token", "_secret")))
        for part in loc
    )


def explain(loc: Loc, error: ErrorDetails, data: Any) -> tuple[Loc, str, bool]:
    """The path to show, the message, and whether the line points at the key itself."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return loc, _unknown_key(loc), True
    if kind == "missing":
        hint = "; start the profile with `version: 1`" if loc == ("version",) else ""
        return loc, f"required key is missing{hint}", False
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return loc, f"expected a mapping, found {kind_of(value_at(data, loc))}", False
    if kind == "list_type":
        return loc, f"expected a list, found {kind_of(value_at(data, loc))}", False
    on_key = bool(loc) and loc[-1] == _KEY_PART
    shown = loc[:-1] if on_key else loc
    return shown, message(error, secret=is_secret(loc)), on_key


def message(error: ErrorDetails, *, secret: bool) -> str:
    """One error's sentence; the value quoted unless `secret`."""
    kind = error["type"]
    text = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        text = text.removeprefix(prefix)
    value = error.get("input", _NOTHING)
    if kind in ("value_error", "assertion_error") or secret or value is _NOTHING:
        return text  # bfprov's own messages quote what they may, and only that
    shown = quote(value)
    sentence = _SENTENCES.get(kind)
    said = sentence(shown, value, error.get("ctx") or {}, kind) if sentence else None
    return said if said is not None else f"{text} (found {shown})"


# One error type's sentence from (the quoted value, the value, pydantic's context, the
# type); None leaves the error to the general `msg (found value)`.
_Sentence = Callable[[str, Any, dict[str, Any], str], str | None]


def _not_one_of(shown: str, value: Any, ctx: dict[str, Any], kind: str) -> str:
    expected = str(ctx.get("expected", ""))
    options = re.findall(r"'([^']*)'", expected) or [expected]
    if len(options) == 1:
        return f"{shown} is not accepted: only {options[0]}"
    return f"{shown} is not one of {', '.join(options)}"


def _pattern(shown: str, value: Any, ctx: dict[str, Any], kind: str) -> str:
    return f"{shown} does not match the pattern {ctx.get('pattern')}"


def _too_long(shown: str, value: Any, ctx: dict[str, Any], kind: str) -> str | None:
    if not isinstance(value, str):
        return None
    limit = ctx.get("max_length")
    return f"{shown} is {len(value)} characters long; at most {limit} are allowed"


def _too_short(shown: str, value: Any, ctx: dict[str, Any], kind: str) -> str:
    limit = ctx.get("min_length")
    return f"{shown} is too short: at least {limit} character{'s' if limit != 1 else ''}"


def _too_small(shown: str, value: Any, ctx: dict[str, Any], kind: str) -> str:
    bound = ctx.get("ge", ctx.get("gt"))
    return f"{shown} is too small: {'at least' if kind.endswith('equal') else 'over'} {bound}"


def _too_large(shown: str, value: Any, ctx: dict[str, Any], kind: str) -> str:
    bound = ctx.get("le", ctx.get("lt"))
    return f"{shown} is too large: {'at most' if kind.endswith('equal') else 'under'} {bound}"


def _not_whole(shown: str, value: Any, ctx: dict[str, Any], kind: str) -> str:
    return f"{shown} is not a whole number"


def _not_string(shown: str, value: Any, ctx: dict[str, Any], kind: str) -> str:
    return f"expected a string, found {shown}"


def _not_boolean(shown: str, value: Any, ctx: dict[str, Any], kind: str) -> str:
    return f"{shown} is not true or false"


_SENTENCES: dict[str, _Sentence] = {
    "enum": _not_one_of,
    "literal_error": _not_one_of,
    "string_pattern_mismatch": _pattern,
    "string_too_long": _too_long,
    "string_too_short": _too_short,
    "greater_than_equal": _too_small,
    "greater_than": _too_small,
    "less_than_equal": _too_large,
    "less_than": _too_large,
    "int_parsing": _not_whole,
    "int_type": _not_whole,
    "int_from_float": _not_whole,
    "string_type": _not_string,
    "bool_parsing": _not_boolean,
    "bool_type": _not_boolean,
}


def dotted(loc: Loc) -> str:
    """`accounts[3].subject.common_name`: a path as the user wrote it."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif IDENTIFIER.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{quote(part)}]"
    return text or "(document)"


def shown_loc(loc: Loc, matched: int) -> Loc:
    """`loc` cut of pydantic's internal labels past the part found in the data."""
    # Parts past the data are field names (a missing key) or pydantic's internal labels.
    return loc[:matched] + tuple(
        p for p in loc[matched:] if isinstance(p, int) or IDENTIFIER.match(p)
    )


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


def value_at(data: Any, loc: Loc) -> Any:
    """The value at `loc` of the document's data, or a marker that `kind_of` calls a value."""
    try:
        for part in loc:
            data = data[part]
    except (KeyError, IndexError, TypeError):
        return _NOTHING
    return data


def kind_of(value: Any) -> str:
    """`a mapping`, `a list`, `a string`...: what a value is, never what it says."""
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (dict, "a mapping"),
        (list, "a list"),
        (str, "a string"),
        (bool, "a boolean"),
        ((int, float), "a number"),
        (type(None), "null"),
    ]
    return next((name for kind, name in kinds if isinstance(value, kind)), "a value")
