"""PDF letters: text through pypdf, errors translated at this boundary."""

from __future__ import annotations

import io
import logging

from adapter.errors import PDFReadError

PDF_MAGIC = b"%PDF-"


def is_pdf(data: bytes) -> bool:
    return data.lstrip()[:5] == PDF_MAGIC


def pdf_text(data: bytes) -> str:
    """The text of every page, pages joined by a newline (the published letters are encrypted with an
    empty password, which pypdf opens when ``cryptography`` is installed)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")
        return "\n".join(page.extract_text() or "" for page in reader.pages)
    except (PyPdfError, ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError,
            NotImplementedError, OSError, AssertionError, ZeroDivisionError) as exc:  # fmt: skip
        raise PDFReadError(f"cannot read the PDF: {type(exc).__name__}: {exc}", location="pdf") from exc
