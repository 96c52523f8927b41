"""Shared test helpers: paths, request facts for the rules, and a small PDF writer for letters that must
arrive as PDF."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pypdf import PdfReader, PdfWriter

from adapter.determination import RULES as RULE_TABLE
from adapter.determination import RequestFacts
from adapter.tables import mappings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
LETTERS = FIXTURES / "letters"
CORPUS = ROOT.parent / "shared" / "corpus"
SEED_LETTER = ROOT.parent / "shared" / "letters" / "seed-letter-000.txt"
#: The guideline rules as shipped, and each by its id.
RULES = mappings()[RULE_TABLE]
BY_ID = {r.id: r for r in RULES.rules}
#: The content type of a FHIR JSON body.
FHIR = {"Content-Type": "application/fhir+json"}


def auth(token: str) -> dict[str, str]:
    """Headers for a FHIR JSON request with a bearer token."""
    return {**FHIR, "Authorization": f"Bearer {token}"}


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(text: str, *, lines_per_page: int = 50, encrypt: bool = False) -> bytes:
    """A real PDF with the text laid out line by line in Helvetica; ``encrypt`` mimics the published
    letters (AES, empty user password)."""
    lines = text.split("\n")
    pages = [lines[i : i + lines_per_page] for i in range(0, len(lines), lines_per_page)] or [[]]
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")
    pages_ref = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for page_lines in pages:
        ops = ["BT", "/F1 9 Tf", "11 TL", "40 760 Td"]
        ops += [f"({_escape(line)}) Tj T*" for line in page_lines]
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1", errors="replace")
        content = add(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (pages_ref, content, font)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_ref
    objects[pages_ref - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % o for o in offsets))
    out.write(b"trailer << /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    data = out.getvalue()
    if not encrypt:
        return data
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
    encrypted = io.BytesIO()
    writer.write(encrypted)
    return encrypted.getvalue()


def corpus_truth() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (CORPUS / "truth.jsonl").read_text().splitlines() if line.strip()]


needs_corpus = pytest.mark.skipif(
    not (CORPUS / "truth.jsonl").exists(), reason="../shared/corpus is not beside the project"
)
needs_seed_letter = pytest.mark.skipif(
    not SEED_LETTER.exists(), reason="../shared/letters/seed-letter-000.txt is not beside the project"
)


@pytest.fixture
def key(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, Path]:
    """A signing key for SMART access tokens (kid k1, RS384) and the JWKS file that publishes it."""
    private = rsa.generate_private_key(65537, 2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    public.update(kid="k1", alg="RS384", use="sig")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public]}))
    return private, jwks


@pytest.fixture
def mappings_copy(tmp_path: Path) -> Path:
    """A copy of mappings/ to break on purpose."""
    folder = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", folder)
    return folder


def facts(category: str, request: str = "a request", **values: Any) -> RequestFacts:
    """Facts with every documentation fact unknown unless given: what a rule needs is named in its case."""
    return RequestFacts(request=request, category=category, **{"surgery_related": False, **values})


def replace_once(path: Path, old: str, new: str) -> None:
    """Change one place of a table (that must be there)."""
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
