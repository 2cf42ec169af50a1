"""Jinja templates: the per-account openssl.cnf that makes Betfair's procedure work as is."""

from __future__ import annotations

import functools
import re
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from bfprov.errors import BfprovError

if TYPE_CHECKING:
    from bfprov.desired.models import Account

OPENSSL_CNF_TEMPLATE = "openssl.cnf.j2"


def _bundled_templates() -> Path:
    installed = Path(str(files("bfprov") / "templates"))
    if installed.is_dir():  # an installed wheel: force-included as bfprov/templates
        return installed
    return Path(__file__).resolve().parents[2] / "templates"  # source tree / editable


BUNDLED_TEMPLATES: Path = _bundled_templates()

# Characters OpenSSL's config parser gives a meaning inside a value: escape character,
# variable expansion, comment, and its three quote characters (the backtick is one:
# an unescaped one silently disappears from the value).
_CNF_SPECIAL = re.compile(r"""([\\$#"'`])""")


def cnf_escape(value: object) -> str:
    """`value` written so that OpenSSL's config parser reads it back unchanged.

    Backslash-escapes `\\`, `$`, `#`, `"`, `'` and the backtick. Refuses control characters and
    leading or trailing white space, which a config value cannot carry.
    """
    text = str(value)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise BfprovError("a value for openssl.cnf contains a control character")
    if text != text.strip():
        raise BfprovError("a value for openssl.cnf starts or ends with white space")
    return _CNF_SPECIAL.sub(r"\\\1", text)


def template_dirs(custom: Path | None) -> tuple[Path, ...]:
    """Where templates are looked up: a custom directory first (it overrides), then bundled."""
    if custom is None or custom == BUNDLED_TEMPLATES:
        return (BUNDLED_TEMPLATES,)
    return (custom, BUNDLED_TEMPLATES)


def render_openssl_cnf(account: Account, template_dirs: tuple[Path, ...]) -> str:
    """The account's openssl.cnf, rendered from the first `openssl.cnf.j2` in `template_dirs`.

    Deterministic: the same account and template always give the same text. Raises
    BfprovError (one line, naming the template) for a missing template, a syntax error
    or an undefined variable.
    """
    template = _template(template_dirs, OPENSSL_CNF_TEMPLATE)
    try:
        return template.render(
            account=account,
            subject=account.subject,
            stem=account.stem,
            bits=account.key.size,
            days=account.validity.days,
        )
    except (jinja2.TemplateError, BfprovError) as exc:
        where = template.filename or template.name
        message = _one_line(exc) if isinstance(exc, jinja2.TemplateError) else str(exc)
        raise BfprovError(f"template {where}, account {account.name}: {message}") from exc


@functools.lru_cache(maxsize=32)
def _environment(dirs: tuple[Path, ...]) -> jinja2.Environment:
    for directory in dirs:
        if not directory.is_dir():
            raise BfprovError(f"template directory {directory} does not exist")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
        undefined=jinja2.StrictUndefined,
        # OpenSSL config, not HTML: values go through the `cnf` filter instead.
        autoescape=False,  # noqa: S701
        # Templates do not change while bfprov runs; skip the stat on every lookup.
        auto_reload=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cnf"] = cnf_escape
    return env


@functools.lru_cache(maxsize=64)
def _template(dirs: tuple[Path, ...], name: str) -> jinja2.Template:
    try:
        return _environment(dirs).get_template(name)
    except jinja2.TemplateNotFound as exc:
        searched = ", ".join(str(d) for d in dirs)
        raise BfprovError(f"template {name} not found in {searched}") from exc
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or name
        raise BfprovError(f"template {where}, line {exc.lineno}: {_one_line(exc)}") from exc


def _one_line(exc: jinja2.TemplateError) -> str:
    return " ".join((exc.message or type(exc).__name__).split())
