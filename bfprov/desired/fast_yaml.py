"""The fast profile reader: libyaml's parser events straight to plain data and places.

Measured with `bench/profile_reader.py` (issue #13): `bfprov validate` of a generated
10,000-account profile spends a median 1.73 s of CPU with this reader against 13.9 s
with the strict composer of `yaml_reader` alone, 8.05x (7 alternating rounds on 2
loaded cores); ruamel.yaml's pure-Python scanner is the difference. So this reader is
kept, isolated here. It records the place of every value as it goes (the parser's own
marks, 75,000 for that profile): 1.12x the CPU of the earlier reader that kept none and
composed the whole file again, 8x slower, as soon as one warning needed a place.

It accepts only the ordinary: plain scalars, mappings and lists, one document. Anything
else (anchors, aliases, tags, merge keys, duplicate keys, several documents, deep
nesting, a YAML error) raises `Unusual`, and `yaml_reader.compose` reads the text again
to refuse it at its place. Whenever both readers accept a text, they give the same data
and the same places (tests/test_profile.py checks it on generated documents).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ruamel.yaml.error import YAMLError
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
from ruamel.yaml.nodes import ScalarNode

from bfprov.desired.yaml_reader import (
    CORE,
    MAX_DEPTH,
    MERGE,
    Loc,
    Place,
    Positions,
    Refused,
    strict_yaml,
)

try:  # libyaml's parser; without the C extension, every profile takes the strict reader
    from _ruamel_yaml import CParser
except ImportError:  # pragma: no cover - ruamel.yaml.clib is a dependency
    CParser = None

_STR = CORE + "str"


class Unusual(Exception):
    """The fast reader met something that only the strict reader judges and places."""


_NO_KEY = object()


def load_fast(text: str) -> tuple[Any, Positions | None]:
    """The document's plain data and places (None, None when empty), or `Unusual`."""
    if CParser is None:  # pragma: no cover
        raise Unusual
    reader = _Reader()
    get_event = CParser(text).get_event
    try:
        return reader.read(get_event)
    except (YAMLError, Refused, ValueError, TypeError):
        raise Unusual from None


class _Reader:
    """One document's parser events, turned into its data and the places of its values.

    One handler per kind of event (`_handlers`); the kinds it does not name (stream
    start, document end) carry nothing.
    """

    def __init__(self) -> None:
        yaml = strict_yaml()
        self._construct = yaml.constructor.construct_object
        self._resolve = yaml.resolver.resolve
        self._tags: dict[tuple[Any, Any], Any] = {}
        self._places: dict[Loc, Place] = {}
        self._root: Any = None
        self._documents = 0
        # Per open collection: the collection, its path and, in a mapping, the pending
        # key (_NO_KEY until read), its text and its mark.
        self._containers: list[Any] = []
        self._paths: list[Loc] = []
        self._keys: list[Any] = []
        self._key_texts: list[str] = []
        self._key_marks: list[Any] = []
        self._handlers: dict[type, Callable[[Any], None]] = {
            ScalarEvent: self._scalar,
            MappingStartEvent: self._start,
            SequenceStartEvent: self._start,
            MappingEndEvent: self._end,
            SequenceEndEvent: self._end,
            DocumentStartEvent: self._document,
            AliasEvent: _refuse,
        }

    def read(self, get_event: Callable[[], Any]) -> tuple[Any, Positions | None]:
        """Every event of the stream handled; the root value and the places."""
        handlers = self._handlers
        while True:
            event = get_event()
            kind = type(event)
            if kind is StreamEndEvent:
                return self._root, (Positions(self._places) if self._places else None)
            handler = handlers.get(kind)
            if handler is not None:
                handler(event)

    def _in_mapping(self) -> bool:
        return bool(self._containers) and type(self._containers[-1]) is dict

    def _scalar(self, event: Any) -> None:
        """A scalar: the pending key of its mapping, or a value placed and added."""
        _refuse_decorated(event)
        value = self._scalar_value(event)
        if self._in_mapping() and self._keys[-1] is _NO_KEY:
            if value in self._containers[-1]:
                raise Unusual  # a duplicate key: refused, at its place
            self._keys[-1] = value
            self._key_texts[-1] = event.value
            self._key_marks[-1] = event.start_mark
            return
        self._place(event.start_mark, event.value == "" and not event.style)
        self._add(value)

    def _scalar_value(self, event: Any) -> Any:
        """What a scalar means; profiles repeat the same keys thousands of times, so
        each (text, implicit) pair is resolved once."""
        memo = (event.value, event.implicit)
        tag = self._tags.get(memo)
        if tag is None:
            tag = self._tags[memo] = self._resolve(ScalarNode, event.value, event.implicit)
        if tag == _STR:
            return event.value
        if tag == MERGE:
            raise Unusual
        return self._construct(ScalarNode(tag, event.value, event.start_mark, event.end_mark))

    def _start(self, event: Any) -> None:
        """A mapping or a list opens: placed, then the collection it builds."""
        _refuse_decorated(event)
        if self._in_mapping() and self._keys[-1] is _NO_KEY:
            raise Unusual  # a collection as a key
        if len(self._containers) >= MAX_DEPTH // 2:  # stricter than the strict reader
            raise Unusual
        loc = self._place(event.start_mark, False)
        self._containers.append({} if type(event) is MappingStartEvent else [])
        self._paths.append(loc)
        self._keys.append(_NO_KEY)
        self._key_texts.append("")
        self._key_marks.append(None)

    def _end(self, event: Any) -> None:
        """A mapping or a list closes: the finished collection is a value of its parent."""
        self._paths.pop()
        self._keys.pop()
        self._key_texts.pop()
        self._key_marks.pop()
        self._add(self._containers.pop())

    def _document(self, event: Any) -> None:
        self._documents += 1
        if self._documents > 1:
            raise Unusual

    def _place(self, mark: Any, empty: bool) -> Loc:
        """Where the value that starts at `mark` was written, recorded by its path.

        `empty` (a plain empty scalar) is kept for a mapping's values only."""
        containers = self._containers
        if not containers:
            loc: Loc = ()
            self._places[loc] = (mark, mark, False)
        elif type(containers[-1]) is dict:
            loc = (*self._paths[-1], self._key_texts[-1])
            self._places[loc] = (self._key_marks[-1], mark, empty)
        else:
            loc = (*self._paths[-1], len(containers[-1]))
            self._places[loc] = (mark, mark, False)
        return loc

    def _add(self, value: Any) -> None:
        """A finished value goes to its list, under its pending key, or becomes the root."""
        if not self._containers:
            self._root = value
            return
        top = self._containers[-1]
        if type(top) is list:
            top.append(value)
        else:
            top[self._keys[-1]] = value
            self._keys[-1] = _NO_KEY


def _refuse_decorated(event: Any) -> None:
    """Anchors and tags are for the strict reader to judge."""
    if event.anchor is not None or event.ctag is not None:
        raise Unusual


def _refuse(event: Any) -> None:
    """An alias is for the strict reader to judge."""
    raise Unusual
