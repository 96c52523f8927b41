"""IMR Final Determination Letters (text or PDF) -> ``IMRCase``.

``parse_letter`` normalises the text, picks the layout by its opening structure and hands over to that
layout's module; each module reads structure (headings, labels, sentence shapes), not particular wording.

The layouts are a registry: each module of this package declares the layouts it reads in ``LAYOUTS``
(``_common.LetterLayout``: detect, parse, summary), and a letter is tried against them in ``Layout``'s order.
A new layout is its module here and its name in ``adapter.model.Layout``.
"""

from __future__ import annotations

import importlib
import pkgutil
from datetime import date

from adapter.errors import EmptyLetterError, UnknownLayoutError
from adapter.letters import _text
from adapter.letters._common import LetterLayout
from adapter.letters.pdf import is_pdf, pdf_text
from adapter.model import IMRCase, Layout, LetterSource

__all__ = ["detect_layout", "parse_letter", "requested_on", "summary_text"]


def _declared() -> dict[Layout, LetterLayout]:
    """The layouts the modules of this package declare, in ``Layout``'s order (a ``Layout`` no module reads
    fails here, at import)."""
    modules = [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]
    declared = {entry.layout: entry for module in modules for entry in getattr(module, "LAYOUTS", [])}
    return {layout: declared[layout] for layout in Layout}


_LAYOUTS = _declared()


def detect_layout(text: str) -> Layout:
    """The layout of a letter's (normalised) text; ``UnknownLayoutError`` when none fits."""
    for layout, entry in _LAYOUTS.items():
        if entry.detect(text):
            return layout
    raise UnknownLayoutError("not an IMR determination letter in any known layout", location="line 1")


def parse_letter(letter: str | bytes) -> IMRCase:
    """Parse one letter, given as text or as the bytes of a PDF or UTF-8 text file.

    Raises ``LetterParseError`` (or a subclass) for input that is not a readable letter; a field that
    cannot be read is left empty and named in ``case.warnings``.
    """
    pdf: bytes | None = None
    if isinstance(letter, bytes):
        if is_pdf(letter):
            pdf, raw = letter, pdf_text(letter)
        else:
            raw = letter.decode("utf-8", errors="replace")
    else:
        raw = letter.encode("utf-8", errors="replace").decode("utf-8")  # no lone surrogates: not text
    text = _text.normalise(raw)
    if not text.strip():
        raise EmptyLetterError("the letter holds no text", location="line 1")
    case = _LAYOUTS[detect_layout(text.lstrip())].parse(text.lstrip())
    case.source = LetterSource(media_type="application/pdf" if pdf else "text/plain", text=raw, pdf=pdf)
    return case


def summary_text(raw: str, layout: Layout) -> str:
    """The clinical case summary of a letter's text: the request side, without decisions or rationales."""
    return _LAYOUTS[layout].summary(_text.normalise(raw).lstrip())


def requested_on(case: IMRCase, summary: str | None = None) -> date | None:
    """When the request was made: the request for authorization (or the visit at issue) the summary names,
    when it falls between the injury and the UR decision; else the UR decision, the application or the
    assignment. Time since injury runs to it, for the letter and for the Claim built from it."""
    if summary is None and case.source is not None:
        summary = summary_text(case.source.text, case.layout)
    dates = case.dates
    decided = dates.ur_denial or dates.application_received or dates.assigned
    requested = _text.request_date(summary) if summary else None
    if requested and (not dates.injury or requested >= dates.injury) and (not decided or requested <= decided):
        return requested
    return decided
