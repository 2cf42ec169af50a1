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
    yaml = strict_yaml()
    constructor = yaml.constructor
    resolve = yaml.resolver.resolve
    get_event = CParser(text).get_event
    tags: dict[tuple[Any, Any], Any] = {}
    places: dict[Loc, Place] = {}
    root: Any = None
    # Per open collection: the collection, its path and, in a mapping, the pending key
    # (_NO_KEY until read), its text and its mark.
    containers: list[Any] = []
    paths: list[Loc] = []
    keys: list[Any] = []
    key_texts: list[str] = []
    key_marks: list[Any] = []
    documents = 0
    try:
        while True:
            event = get_event()
            kind = type(event)
            value: Any
            if kind is ScalarEvent or kind is MappingStartEvent or kind is SequenceStartEvent:
                if event.anchor is not None or event.ctag is not None:
                    raise Unusual
                mark = event.start_mark
                in_mapping = bool(containers) and type(containers[-1]) is dict
                if kind is ScalarEvent:
                    # Profiles repeat the same keys thousands of times: resolve each once.
                    memo = (event.value, event.implicit)
                    tag = tags.get(memo)
                    if tag is None:
                        tag = tags[memo] = resolve(ScalarNode, event.value, event.implicit)
                    if tag == _STR:
                        value = event.value
                    elif tag == MERGE:
                        raise Unusual
                    else:
                        node = ScalarNode(tag, event.value, mark, event.end_mark)
                        value = constructor.construct_object(node)
                    if in_mapping and keys[-1] is _NO_KEY:
                        if value in containers[-1]:
                            raise Unusual  # a duplicate key: refused, at its place
                        keys[-1], key_texts[-1], key_marks[-1] = value, event.value, mark
                        continue
                elif in_mapping and keys[-1] is _NO_KEY:
                    raise Unusual  # a collection as a key
                elif len(containers) >= MAX_DEPTH // 2:  # stricter than the strict reader
                    raise Unusual
                # Where this value was written, by its path.
                if in_mapping:
                    loc: Loc = (*paths[-1], key_texts[-1])
                    empty = kind is ScalarEvent and event.value == "" and not event.style
                    places[loc] = (key_marks[-1], mark, empty)
                elif containers:
                    loc = (*paths[-1], len(containers[-1]))
                    places[loc] = (mark, mark, False)
                else:
                    loc = ()
                    places[loc] = (mark, mark, False)
                if kind is not ScalarEvent:
                    containers.append({} if kind is MappingStartEvent else [])
                    paths.append(loc)
                    keys.append(_NO_KEY)
                    key_texts.append("")
                    key_marks.append(None)
                    continue
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                paths.pop()
                keys.pop()
                key_texts.pop()
                key_marks.pop()
                value = containers.pop()
            elif kind is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise Unusual
                continue
            elif kind is StreamEndEvent:
                return root, (Positions(places) if places else None)
            elif kind is AliasEvent:
                raise Unusual
            else:
                continue  # stream start, document end
            if not containers:
                root = value
                continue
            top = containers[-1]
            if type(top) is list:
                top.append(value)
            else:
                top[keys[-1]] = value
                keys[-1] = _NO_KEY
    except (YAMLError, Refused, ValueError, TypeError):
        raise Unusual from None
