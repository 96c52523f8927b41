"""What a PAS request held, served where the answer names it: ``GET /fhir/{type}/{id}`` for the Claim, its
Patient, Coverage, insurer and requestor, the requests and their supporting resources (stored with the
answer, ``adapter.fhir.local``); reading needs ``r`` on that type."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, Request, Response

from adapter.service.admission import Principal
from adapter.service.http import FHIR_ID, ServiceError, fhir_response
from adapter.service.routes import Capability, context, requires

router = APIRouter(prefix="/fhir")
#: Not in the CapabilityStatement yet: it has one entry per type, and these reads share types with others'.
CAPABILITY = Capability()
#: The resource types a PAS request Bundle may hold that the service serves (its own types aside).
STORED_TYPES = ("Claim", "Patient", "Coverage", "Organization", "Practitioner", "PractitionerRole", "ServiceRequest",
                "MedicationRequest", "DeviceRequest", "Condition", "Procedure", "DocumentReference", "Observation",
                "MedicationStatement", "Encounter", "Location")  # fmt: skip


def _reader(rtype: str) -> Callable[..., Response]:
    # a default, not an Annotated[...] string: annotations are read in the module's namespace, without rtype
    admitted = Depends(requires(rtype, "r"))

    def read(rid: str, request: Request, _: Principal = admitted) -> Response:
        request.state.target = f"{rtype}/{rid}"[:160]
        found = context(request).store.resource(rtype, rid) if FHIR_ID.fullmatch(rid) else None
        if found is None:
            raise ServiceError(404, f"no such {rtype}", code="not-found", issue_type="not-found")
        return fhir_response(found)

    read.__name__ = f"read_{rtype.lower()}"
    return read


for _type in STORED_TYPES:
    router.add_api_route(f"/{_type}/{{rid}}", _reader(_type), methods=["GET"], summary=f"Read a stored {_type}")
