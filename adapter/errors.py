"""Every error a user of the adapter can meet.

One root, a stable slug ``code`` on every class, and a FHIR ``OperationOutcome`` rendering so that the
service and the CLI can show any of them the same way::

    AdapterError                       code="adapter-error"
    ├── LetterParseError               code="letter-parse"      (unreadable or unknown letter)
    │   ├── EmptyLetterError           code="letter-empty"
    │   ├── UnknownLayoutError         code="letter-layout"
    │   ├── PDFReadError               code="letter-pdf"
    │   └── MissingSectionError        code="letter-section"
    ├── MappingError                   code="mapping"           (FHIR that cannot be read as an IMR case)
    │   ├── ConformanceError           code="pas-conformance"   (a PAS Bundle breaking a PAS rule)
    │   ├── InputLimitError            code="input-limit"       (input over a size, depth or count limit)
    │   ├── AttachmentError            code="attachment-invalid" (adapter.fhir.attachments)
    │   ├── QuestionnaireUnknownError  code="questionnaire-unknown" (adapter.fhir.questionnaires)
    │   ├── QuestionnaireAnswerError   code="questionnaire-answer-invalid" (adapter.fhir.questionnaires)
    │   ├── AttachmentMismatchError    code="attachment-mismatch" (adapter.service.attachments)
    │   ├── NotPendedError             code="attachment-not-pended" (adapter.service.attachments)
    │   ├── UnknownClaimError          code="claim-update-unknown" (adapter.service.updates)
    │   └── SubscriptionError          code="subscription"      (adapter.service.subscriptions)
    ├── MappingTableError              code="mapping-table"     (a broken table under mappings/: file:line)
    ├── RequestConflictError           code="claim-conflict"    (a Claim identifier reused for other content)
    ├── ReviewDecisionError            code="review-decision"   (a reviewer's decision that cannot be applied)
    ├── ReviewClosedError              code="review-closed"     (a decision on a review already closed)
    ├── UnknownTrackingError           code="attachment-unknown" (adapter.service.attachments)
    ├── ServiceError                   code="service"           (adapter.service.http)
    ├── InputError                     code="input"             (a file that cannot be read at all)
    ├── SandboxError                   code="sandbox"           (the local sandbox servers would not start)
    ├── StateError                     code="state-unavailable" (the service's state database failed)
    ├── ConfigError                    code="config"            (settings that cannot work together)
    ├── AuthConfigError                code="auth-config"       (auth settings that cannot work: no key, ...)
    ├── ReviewerError                  code="reviewer"          (a reviewer record or sign-in that cannot be)
    ├── TransportError                 code="transport"         (no HTTP answer: connect, timeout, dropped)
    └── FHIRServerError                code="server"            (an HTTP answer that is an error)
        ├── InvalidRequestError        code="server-invalid"    400, 422 (the server's OperationOutcome kept)
        ├── AuthError                  code="server-auth"       401, 403; token endpoint refusals
        ├── NotFoundError              code="server-not-found"  404, 410
        ├── ConflictError              code="server-conflict"   409, 412
        ├── RetryableError             code="server-unavailable" 429, 5xx once retries are spent
        ├── MalformedResponseError     code="server-malformed"  a body that is not the FHIR JSON it should be
        └── PagingError                code="server-paging"     a next link off the server's base URL

Third-party errors (pypdf, OS errors) are translated at the boundary where they happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = [
    "AdapterError",
    "AuthConfigError",
    "AuthError",
    "ConfigError",
    "ConflictError",
    "EmptyLetterError",
    "FHIRServerError",
    "InputError",
    "InputLimitError",
    "InvalidRequestError",
    "LetterParseError",
    "MappingError",
    "MappingTableError",
    "MalformedResponseError",
    "MissingSectionError",
    "NotFoundError",
    "PDFReadError",
    "PagingError",
    "RequestConflictError",
    "RetryableError",
    "ReviewerError",
    "SandboxError",
    "StateError",
    "TransportError",
    "UnknownLayoutError",
]

#: The code system of ``OperationOutcome.issue.details``: an error's stable ``code``. Written here rather than
#: in mappings/fhir.yaml because an error must render when the tables themselves do not load.
ERROR_SYSTEM = "urn:imr-adapter:error"


class AdapterError(Exception):
    """Root of every error the adapter raises on purpose."""

    code: ClassVar[str] = "adapter-error"
    #: FHIR issue-type code (http://hl7.org/fhir/issue-type) used in the OperationOutcome.
    issue_type: ClassVar[str] = "processing"

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        where = f" (at {self.location})" if self.location else ""
        return f"[{self.code}] {self.message}{where}"

    def to_operation_outcome(self) -> dict[str, Any]:
        """Render as a FHIR R4 OperationOutcome resource (a plain JSON dict)."""
        issue: dict[str, Any] = {
            "severity": "error",
            "code": self.issue_type,
            "details": {
                "coding": [{"system": ERROR_SYSTEM, "code": self.code}],
                "text": self.message,
            },
        }
        if self.location:
            issue["expression"] = [self.location]
        return {"resourceType": "OperationOutcome", "issue": [issue]}


class InputError(AdapterError):
    """An input file or folder that cannot be read at all."""

    code = "input"
    issue_type = "not-found"


class LetterParseError(AdapterError):
    """A letter that cannot be turned into a case; ``location`` says where reading stopped."""

    code = "letter-parse"
    issue_type = "invalid"


class EmptyLetterError(LetterParseError):
    """The input holds no text."""

    code = "letter-empty"


class UnknownLayoutError(LetterParseError):
    """The text is not an IMR determination letter in any known layout."""

    code = "letter-layout"


class PDFReadError(LetterParseError):
    """The bytes are not a PDF that can be opened and read."""

    code = "letter-pdf"


class MissingSectionError(LetterParseError):
    """A section the layout cannot do without (for example the disputed items) is missing or empty."""

    code = "letter-section"


class MappingError(AdapterError):
    """FHIR content that cannot be read back as an IMR case; ``location`` is a FHIRPath-like path."""

    code = "mapping"
    issue_type = "invalid"


class ConformanceError(MappingError):
    """A Bundle that is not what the profile it is sent as requires (a PAS request Bundle to ``$submit``):
    every broken rule is listed, one OperationOutcome issue each, with the rule and where it was broken."""

    code = "pas-conformance"
    issue_type = "structure"

    def __init__(
        self, message: str, *, location: str | None = None, faults: Sequence[tuple[str, str, str]] = ()
    ) -> None:
        super().__init__(message, location=location or (faults[0][0] if faults else None))
        #: (location, rule, message) of each broken rule.
        self.faults = list(faults)

    def to_operation_outcome(self) -> dict[str, Any]:
        issues = [
            {
                "severity": "error",
                "code": self.issue_type,
                "details": {"coding": [{"system": ERROR_SYSTEM, "code": self.code}], "text": message},
                "diagnostics": rule,
                "expression": [location],
            }
            for location, rule, message in self.faults
        ]
        return {"resourceType": "OperationOutcome", "issue": issues or super().to_operation_outcome()["issue"]}


class InputLimitError(MappingError):
    """Input over one of the limits that keep work bounded (size, depth, entries, text length)."""

    code = "input-limit"
    issue_type = "too-costly"


class MappingTableError(AdapterError):
    """A table under ``mappings/`` that does not load; ``location`` is ``file:line``."""

    code = "mapping-table"
    issue_type = "exception"


class RequestConflictError(AdapterError):
    """A business identifier (a Claim's) that was already used for a request with other content."""

    code = "claim-conflict"
    issue_type = "conflict"

    def __init__(self, message: str = "this Claim identifier was already submitted with other content; "
                 "submit a new Claim", *, location: str | None = None) -> None:  # fmt: skip
        super().__init__(message, location=location)


class ReviewDecisionError(AdapterError):
    """A physician's decision on a review Task that cannot be applied (not A1/A3/A6, no rationale, ...)."""

    code = "review-decision"
    issue_type = "invalid"


class ReviewClosedError(AdapterError):
    """A decision on a review Task that is already completed: the first decision stands."""

    code = "review-closed"
    issue_type = "conflict"


class ReviewerError(AdapterError):
    """A physician reviewer who cannot be recorded or signed in: an NPI failing its check digit, an NPI or
    sign-in subject already recorded, no such reviewer, or an OpenID Connect sign-in the service refuses."""

    code = "reviewer"
    issue_type = "invalid"


class SandboxError(AdapterError):
    """The local sandbox FHIR servers could not be installed, started or stopped."""

    code = "sandbox"
    issue_type = "exception"


class StateError(AdapterError):
    """The service's state database could not be opened, read or written (the driver's error, translated)."""

    code = "state-unavailable"
    issue_type = "transient"


class ConfigError(AdapterError):
    """Settings that cannot work (a feature switched on without what it needs); never shows a secret."""

    code = "config"
    issue_type = "exception"


class AuthConfigError(AdapterError):
    """Auth settings that cannot work (no key file, an unknown algorithm, ...); never shows a secret."""

    code = "auth-config"
    issue_type = "security"


class TransportError(AdapterError):
    """No HTTP answer: the connection failed, timed out or was dropped (httpx errors, translated)."""

    code = "transport"
    issue_type = "transient"


class FHIRServerError(AdapterError):
    """A FHIR server answered with an error; ``status`` and the server's ``outcome`` are kept."""

    code = "server"
    issue_type = "exception"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        outcome: dict[str, Any] | None = None,
        method: str | None = None,
        url: str | None = None,
        location: str | None = None,
    ) -> None:
        super().__init__(message, location=location or (f"{method} {url}" if method and url else url))
        self.status = status
        self.outcome = outcome
        self.method = method
        self.url = url

    def to_operation_outcome(self) -> dict[str, Any]:
        """The server's own OperationOutcome when it sent one, else this error's."""
        if self.outcome is not None and self.outcome.get("resourceType") == "OperationOutcome":
            return self.outcome
        return super().to_operation_outcome()


class InvalidRequestError(FHIRServerError):
    code = "server-invalid"
    issue_type = "invalid"


class AuthError(FHIRServerError):
    code = "server-auth"
    issue_type = "security"


class NotFoundError(FHIRServerError):
    code = "server-not-found"
    issue_type = "not-found"


class ConflictError(FHIRServerError):
    code = "server-conflict"
    issue_type = "conflict"


class RetryableError(FHIRServerError):
    code = "server-unavailable"
    issue_type = "transient"


class MalformedResponseError(FHIRServerError):
    code = "server-malformed"
    issue_type = "structure"


class PagingError(FHIRServerError):
    code = "server-paging"
    issue_type = "security"
