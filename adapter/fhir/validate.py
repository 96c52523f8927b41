"""Validating FHIR JSON with the fhir.resources models (R4B for R4 4.0.1 content, the root package for R5);
pydantic's errors become one ``MappingError`` with a dotted path."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError

from adapter.errors import MappingError


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def invalid(exc: ValidationError, what: str, where: str = "") -> MappingError:
    """A pydantic ValidationError as one ``MappingError``: the first problem, its dotted path under ``where``."""
    errors = exc.errors()
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    location = ".".join(p for p in (where, _path(tuple(first["loc"]))) if p)
    return MappingError(f"not valid {what}: {first['msg']}{more}", location=location or None)


def validate_bundle(bundle: dict[str, Any], version: Literal["R4", "R5"] = "R4") -> None:
    """Raise ``MappingError`` (location = the dotted path of the first problem) unless the Bundle validates."""
    if version == "R4":
        from fhir.resources.R4B.bundle import Bundle as R4Bundle

        model: Any = R4Bundle
    else:
        from fhir.resources.bundle import Bundle as R5Bundle

        model = R5Bundle
    try:
        model.model_validate(bundle)
    except ValidationError as exc:
        raise invalid(exc, f"FHIR {version}") from exc
