"""Talking to FHIR servers: a REST client on httpx (sync and async), auth, retries, paging."""

from __future__ import annotations

from adapter.exchange._base import WriteResult
from adapter.exchange.auth import BearerAuth, SMARTBackendAuth, auth_from_settings
from adapter.exchange.client import AsyncFHIRClient, FHIRClient

__all__ = ["AsyncFHIRClient", "BearerAuth", "FHIRClient", "SMARTBackendAuth", "WriteResult", "auth_from_settings"]
