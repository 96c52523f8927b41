"""The facts of a request read before, recalled instead of read again.

Reading a request's clinical texts (spaCy and ConText over every note: the evidence pass) is most of what a
determination costs, and the same texts come back: a patient's notes with each of the patient's requests, a
PAS Claim update or an attachment with the notes already sent, a client retrying under new ids. The evidence
pass's own memo is keyed by where a text came from, and the service stores every request's resources under
ids of its own (``adapter.fhir.local``), so a note sent again is a new source to it. Here the key is what
the facts are made of, never where: the request, its numbers and its context, each text by its content, and
the lexicon they were read with. A recalled result gets the new request's sources in place of the old ones
(the offsets into each text are the same, the texts being the same).

The memo is bounded (least recently used out first) and holds digests and facts (as JSON: pydantic-core reads
them back into new objects about three times faster than a deep copy makes one), not the texts.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import orjson

from adapter.determination.facts import Context, RequestFacts, build_facts
from adapter.lexicon import LEXICON, Lexicon
from adapter.tables import mappings

#: How many requests' facts are kept (a few kilobytes each).
MEMO_SIZE = 2048


@dataclass(frozen=True)
class _Read:
    lexicon: Lexicon
    #: The facts as JSON (only facts that read back equal to themselves are kept).
    facts: str
    sources: tuple[str, ...]


def _digest(request: str, context: Context, numbers: tuple[object, ...], codes: list[str] | None) -> bytes:
    """What the facts are made of, each text by its content (never its source)."""
    made_of = [
        request,
        codes,
        numbers,
        [text for _, text in context.texts],
        context.diagnoses,
        context.prior,
        context.medication_list,
        context.injury,
        context.as_of,
        context.age,
        context.alongside,
    ]
    return hashlib.blake2b(orjson.dumps(made_of, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


class FactsMemo:
    """``build_facts`` with a bounded memory of what it read (thread-safe: the service's threads share one)."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self._read: OrderedDict[bytes, _Read] = OrderedDict()
        self._lock = threading.Lock()

    def facts(
        self,
        request: str,
        context: Context,
        *,
        codes: list[str] | None = None,
        quantity: int | None = None,
        frequency: int | None = None,
        weeks: int | None = None,
        lexicon: Lexicon | None = None,
    ) -> RequestFacts:
        """``build_facts(request, context, ...)``, recalled when the same was read with the same lexicon."""
        lexicon = lexicon or mappings()[LEXICON]
        key = _digest(request, context, (quantity, frequency, weeks), codes)
        sources = tuple(source for source, _ in context.texts)
        with self._lock:
            known = self._read.get(key)
            if known is not None and known.lexicon is lexicon:
                self._read.move_to_end(key)
        if known is not None and known.lexicon is lexicon:
            return _resourced(known, sources)
        facts = build_facts(request, context, codes=codes, quantity=quantity, frequency=frequency, weeks=weeks,
                            lexicon=lexicon)  # fmt: skip
        kept = facts.model_dump_json()
        # each finding's source can be told apart, so it can be moved; and the facts read back as they are
        if len(set(sources)) == len(sources) and RequestFacts.model_validate_json(kept) == facts:
            with self._lock:
                self._read[key] = _Read(lexicon, kept, sources)
                while len(self._read) > self.size:
                    self._read.popitem(last=False)
        return facts

    def forget(self) -> None:
        """Drop everything kept (a measurement of the cold path starts from here)."""
        with self._lock:
            self._read.clear()


def _resourced(known: _Read, sources: tuple[str, ...]) -> RequestFacts:
    """The facts once read, made anew, each finding's source the new request's text at the same place."""
    moved = dict(zip(known.sources, sources, strict=True))
    facts = RequestFacts.model_validate_json(known.facts)
    facts.evidence = {
        fact: found.model_copy(update={"source": moved.get(found.source, found.source)}) if found.source else found
        for fact, found in facts.evidence.items()
    }
    return facts


#: The memo the readers of requests share.
FACTS = FactsMemo()
