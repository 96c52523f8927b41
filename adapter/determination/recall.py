"""The facts of a request read before, recalled instead of read again.

Reading a request's clinical texts (spaCy and ConText over every note: the evidence pass) is most of what a
determination costs, and the same texts come back: a patient's notes with each of the patient's requests, a
PAS Claim update or an attachment with the notes already sent, a client retrying under new ids. The evidence
pass's own memo is keyed by where a text came from, and the service stores every request's resources under
ids of its own (``adapter.fhir.local``), so a note sent again is a new source to it. Here the key is what
the facts are made of, never where: the request, its numbers and its context, each text by its content, and
the lexicon they were read with. A recalled result gets the new request's sources in place of the old ones
(the offsets into each text are the same, the texts being the same).

The memo is bounded (least recently used out first) and holds digests and facts, not the texts. The facts it
holds are its own (read back from their JSON, so only facts that survive it are kept) and never handed out: each
recall is a copy with lists of its own (the findings themselves are frozen), about twice as quick as reading the
JSON again.

Processes that serve together (``serve --processes``) can share what they read (``FactsMemo.share``): a folder
that every one of them reads and writes (``diskcache``: SQLite under it, safe across processes and forks), so a
patient's notes are read once among them rather than once by each. Each process keeps its own memory in front
of it. What is shared is keyed by the lexicon's content too (processes do not share objects); it is kept for
the run only, so a newer reader never recalls an older one's facts. A folder that fails (disk full, locked too
long) is a miss, never a failed request.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import diskcache
import orjson

from adapter.determination.facts import Context, RequestFacts, build_facts
from adapter.lexicon import LEXICON, Lexicon
from adapter.tables import mappings

#: How many requests' facts are kept (a few kilobytes each).
MEMO_SIZE = 2048
#: The most a shared folder holds (about ten thousand requests' facts); the earliest stored leave first.
SHARED_BYTES = 64 * 2**20
#: Seconds a process waits for the shared folder's lock before it counts as a miss (it then reads the text).
SHARED_WAIT = 0.5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Read:
    lexicon: Lexicon
    #: The memo's own copy of the facts (only facts that read back from JSON equal to themselves are kept).
    facts: RequestFacts
    sources: tuple[str, ...]


#: The facts' fields that hold a list: a recall copies each (and the evidence).
_LISTS = tuple(name for name, field in RequestFacts.model_fields.items()
               if getattr(field.annotation, "__origin__", None) is list)  # fmt: skip


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
        self._shared: diskcache.Cache | None = None
        #: Each lexicon's content digest, by the object's id (the object kept, so the id stays its own).
        self._lexicons: dict[int, tuple[Lexicon, bytes]] = {}

    def share(self, folder: Path) -> None:
        """Share what is read with every process that shares ``folder`` (call before forking them)."""
        self._shared = diskcache.Cache(str(folder), size_limit=SHARED_BYTES, timeout=SHARED_WAIT)

    def unshare(self) -> None:
        """Read and remember in this process only (the shared folder closed; its files are the caller's)."""
        if self._shared is not None:
            self._shared.close()
            self._shared = None

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
        known = self._recalled(key, lexicon)
        if known is not None:
            return _resourced(known, sources)
        facts = build_facts(request, context, codes=codes, quantity=quantity, frequency=frequency, weeks=weeks,
                            lexicon=lexicon)  # fmt: skip
        dumped = facts.model_dump_json()
        kept = RequestFacts.model_validate_json(dumped)
        # each finding's source can be told apart, so it can be moved; and the facts read back as they are
        if len(set(sources)) == len(sources) and kept == facts:
            self._remember(key, _Read(lexicon, kept, sources))
            self._sharing(lambda shared: shared.set(self._shared_key(key, lexicon), orjson.dumps([dumped, sources])))
        return facts

    def _recalled(self, key: bytes, lexicon: Lexicon) -> _Read | None:
        """What this process, or else another sharing the folder, read under ``key`` with ``lexicon``."""
        with self._lock:
            known = self._read.get(key)
            if known is not None and known.lexicon is lexicon:
                self._read.move_to_end(key)
                return known
        raw = self._sharing(lambda shared: shared.get(self._shared_key(key, lexicon)))
        if not isinstance(raw, bytes):
            return None
        dumped, sources = orjson.loads(raw)
        read = _Read(lexicon, RequestFacts.model_validate_json(dumped), tuple(sources))
        self._remember(key, read)
        return read

    def _remember(self, key: bytes, read: _Read) -> None:
        with self._lock:
            self._read[key] = read
            while len(self._read) > self.size:
                self._read.popitem(last=False)

    def _shared_key(self, key: bytes, lexicon: Lexicon) -> bytes:
        """``key`` and the lexicon's content: the same key in every process that loaded the same tables."""
        with self._lock:
            if (known := self._lexicons.get(id(lexicon))) is None or known[0] is not lexicon:
                digest = hashlib.blake2b(lexicon.model_dump_json().encode(), digest_size=16).digest()
                known = self._lexicons[id(lexicon)] = (lexicon, digest)
        return key + known[1]

    def _sharing(self, use: Callable[[diskcache.Cache], object]) -> object:
        """``use(the shared folder)``; None when nothing is shared, or when it fails (the memo is a saving, never
        a reason to fail)."""
        shared = self._shared
        if shared is None:
            return None
        try:
            return use(shared)
        except (diskcache.Timeout, sqlite3.Error, OSError) as exc:
            log.warning("the shared memo of facts failed: %s", exc)
            return None

    def forget(self) -> None:
        """Drop everything kept, shared too (a measurement of the cold path starts from here)."""
        with self._lock:
            self._read.clear()
        self._sharing(lambda shared: shared.clear())


def _resourced(known: _Read, sources: tuple[str, ...]) -> RequestFacts:
    """The facts once read, copied, each finding's source the new request's text at the same place."""
    moved = {was: now for was, now in zip(known.sources, sources, strict=True) if was != now}
    copied: dict[str, object] = {name: list(getattr(known.facts, name)) for name in _LISTS}
    copied["evidence"] = {
        # a finding is frozen: one whose source stays (the same texts sent again) is shared, not copied
        fact: found.model_copy(update={"source": moved[found.source]}) if found.source in moved else found
        for fact, found in known.facts.evidence.items()
    }
    return known.facts.model_copy(update=copied)


#: The memo the readers of requests share.
FACTS = FactsMemo()
