"""Structured logs: one JSON object per line, with the fields a request line carries. Messages name ids,
routes and codes, never clinical content or secrets (the callers' rule; this module only shapes lines)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

#: Attributes a log call may attach with ``extra=`` that end up as fields of the line.
FIELDS = ("method", "route", "status", "ms", "who", "target", "code")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = {name: getattr(record, name) for name in FIELDS if hasattr(record, name)}
    if record.exc_info and record.exc_info[0] is not None:
        fields["error"] = record.exc_info[0].__name__  # the class only: a message may quote content
    return fields


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_fields(record))
        return orjson.dumps(line).decode()


class TextFormatter(logging.Formatter):
    """Plain lines: time, level, logger, then a request's ``METHOD route status ms`` (or the message) and the
    other fields as ``name=value``."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        fields = _fields(record)
        if {"method", "route", "status", "ms"} <= fields.keys():
            what = f"{fields.pop('method')} {fields.pop('route')} {fields.pop('status')} {fields.pop('ms')} ms"
        else:
            what = record.getMessage()
        return " ".join([at, record.levelname, record.name, what, *(f"{k}={v}" for k, v in fields.items())])


def configure(fmt: str = "json", level: int = logging.INFO) -> None:
    """The adapter's log lines on stderr, as JSON objects or plain text."""
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("adapter")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
