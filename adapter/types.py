"""Types every layer shares."""

from __future__ import annotations

from typing import Any

#: A JSON object as parsed: a FHIR resource, a Bundle, Parameters, a table row. FHIR stays JSON from the edge
#: to the wire (fhir.resources validates it, it is not carried as models), so one alias names it everywhere.
JSON = dict[str, Any]

#: The JSON values that hold others (a tuple: ``isinstance`` answers a tuple faster than a union, and tree walks
#: ask it of every value).
CONTAINERS = (dict, list)
