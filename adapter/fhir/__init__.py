"""IMRCase <-> FHIR (R4 4.0.1 on the wire; R5 on request). The only place that imports fhir.resources."""

from __future__ import annotations

from adapter.fhir.build import case_to_bundle
from adapter.fhir.r5 import r4_to_r5, r5_to_r4
from adapter.fhir.read import bundle_to_case
from adapter.fhir.validate import validate_bundle

__all__ = ["bundle_to_case", "case_to_bundle", "r4_to_r5", "r5_to_r4", "validate_bundle"]
