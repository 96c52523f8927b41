"""FHIR Bulk Data export (``$export``, https://hl7.org/fhir/uv/bulkdata/export.html), as a client.

Kick-off (``GET [base]/$export``, ``[base]/Patient/$export`` or ``[base]/Group/{id}/$export`` with
``Prefer: respond-async``) answers 202 with the status URL in ``Content-Location``; the status URL answers
202 while the export runs (``Retry-After`` and ``X-Progress`` honoured) and 200 with the manifest; each
output file is NDJSON, streamed a line at a time. Status and file URLs must stay on the server's own origin
(no token is sent anywhere else).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from adapter.errors import FHIRServerError, MalformedResponseError, PagingError
from adapter.exchange._base import retry_after
from adapter.exchange.client import FHIRClient
from adapter.exchange.deadline import Deadline, chunks

#: The longest NDJSON line read (one resource); longer is refused rather than held in memory.
MAX_LINE = 10_000_000
#: Bytes a second an export file must bring on average (beyond ``retry.total``) not to time out: a slow link
#: finishes a large file, a server trickling a byte every few seconds does not hold the worker.
FILE_RATE = 16_384
NDJSON = "application/fhir+ndjson"


@dataclass(frozen=True)
class Manifest:
    #: The server's time the export reflects: changes after it are for polling to find.
    transaction_time: str
    #: (resource type, file URL) of every output file.
    outputs: list[tuple[str, str]]


class BulkExport:
    """One Bulk Data export from a server, with the client's own authentication."""

    def __init__(self, client: FHIRClient, *, timeout: float = 3600.0, poll: float = 1.0) -> None:
        self.client = client
        self.timeout = timeout
        self.poll = poll

    def kick_off(self, types: Sequence[str], *, since: str | None = None, group: str | None = None,
                 patients: bool = False) -> str:  # fmt: skip
        """Start an export (system level, every Patient's, or one Group's); the status URL."""
        path = f"Group/{group}/$export" if group else "Patient/$export" if patients else "$export"
        params = {"_type": ",".join(types), **({"_since": since} if since else {})}
        request = self.client.build("GET", path, params=params, headers={"Prefer": "respond-async"})
        response = self.client.send(request)
        if response.status_code != 202:
            self.client.parse(response)  # the server's error, mapped
            raise MalformedResponseError(f"$export answered {response.status_code}, not 202 Accepted",
                                         method="GET", url=str(request.url))  # fmt: skip
        location = response.headers.get("content-location")
        if not location:
            raise MalformedResponseError("$export answered 202 without Content-Location", url=str(request.url))
        return self.client.check_next(location)

    def wait(self, status: str, progress: Callable[[str], None] | None = None) -> Manifest:
        """Poll the status URL until the export is done; its manifest."""
        deadline = time.monotonic() + self.timeout
        while True:
            response = self.client.send(self.client.req_next(status))
            if response.status_code == 202:
                if progress and response.headers.get("x-progress"):
                    progress(response.headers["x-progress"][:100])
                if time.monotonic() > deadline:
                    raise FHIRServerError(f"the export did not finish in {self.timeout:g} s", url=status)
                after = retry_after(response)
                time.sleep(min(self.client.retry.after_max, after) if after is not None else self.poll)
                continue
            body = self.client.parse(response) or {}
            files = body.get("output")
            if not isinstance(body.get("transactionTime"), str) or not isinstance(files, list | None):
                raise MalformedResponseError("the export manifest has no transactionTime or output list", url=status)
            outputs = [(str(o.get("type")), self.client.check_next(str(o.get("url")))) for o in files or []
                       if isinstance(o, dict)]  # fmt: skip
            return Manifest(body["transactionTime"], outputs)

    def lines(self, url: str) -> Iterator[dict[str, Any] | MalformedResponseError]:
        """The resources of one NDJSON output file, streamed (memory: one line at a time); a line that is not
        a JSON object comes as an error, in its place, and the file goes on."""
        request = self.client.build("GET", url=self.client.check_next(url), headers={"Accept": NDJSON})
        # the file within retry.total seconds, and a second more for every FILE_RATE bytes it brings
        limit = Deadline.after(self.client.retry.total, per_byte=1 / FILE_RATE)
        response = self.client.send_streaming(request, limit)
        try:
            if response.status_code != 200:
                for _ in chunks(response, limit):
                    pass
                self.client.parse(response)
                raise MalformedResponseError(f"an export file answered {response.status_code}", url=url)
            buffer = b""
            for chunk in chunks(response, limit):
                buffer += chunk
                if len(buffer) > MAX_LINE and b"\n" not in buffer:
                    raise PagingError(f"an export line longer than {MAX_LINE} bytes; refused", url=url)
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    if line.strip():
                        yield _resource(line, url)
            if buffer.strip():
                yield _resource(buffer, url)
        finally:
            response.close()


def _resource(line: bytes, url: str) -> dict[str, Any] | MalformedResponseError:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return MalformedResponseError(f"an export line is not JSON: {str(exc)[:80]}", url=url)
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return MalformedResponseError("an export line is not a FHIR resource", url=url)
    return value
