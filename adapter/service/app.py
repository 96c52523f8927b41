"""The adapter's HTTP service: a FHIR-style facade under ``/fhir``.

EHRs push ServiceRequests (``POST /fhir/ServiceRequest``) or Da Vinci PAS Bundles
(``POST /fhir/Claim/$submit``) and get the ClaimResponse at once; payers pull ClaimResponses
(``GET /fhir/ClaimResponse[/{id}]``). Every answer is recorded before it is sent and queued for the
payer server. Errors are OperationOutcomes with the right status; every exchange is audited (who,
what, when, outcome: ids only).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from adapter import __version__
from adapter.config import Settings
from adapter.errors import AdapterError
from adapter.service.forwarder import Forwarder
from adapter.service.pipeline import decide, record, warm_up
from adapter.service.state import Store

FHIR_JSON = "application/fhir+json"
ACCEPTED_TYPES = ("application/fhir+json", "application/json")
#: SMART v1 permission words as v2 letters, and the letter each action needs.
_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
_NEEDED = {"read": "r", "write": "c"}


class ServiceError(AdapterError):
    """An HTTP-level refusal with its status (401, 403, 404, 409, 412, 413, 415, 429, 400)."""

    code = "service"

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str,
        issue_type: str = "processing",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code  # type: ignore[misc]
        self.issue_type = issue_type  # type: ignore[misc]
        self.headers = headers or {}


def outcome(status: int, error: AdapterError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.to_operation_outcome(), status_code=status, media_type=FHIR_JSON, headers=headers)


@dataclass
class Principal:
    name: str
    scopes: list[str]

    def allows(self, rtype: str, action: str) -> bool:
        """SMART v1 (system/Claim.write) and v2 (system/Claim.cud) scopes."""
        for scope in self.scopes:
            context, _, rest = scope.partition("/")
            kind, _, perms = rest.partition(".")
            if (
                context in ("system", "user")
                and kind in ("*", rtype)
                and _NEEDED[action] in _PERMISSIONS.get(perms, perms)
            ):
                return True
        return False


class _Buckets:
    """A token bucket per client: ``rate`` requests per second, bursts of twice that."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.state: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when allowed, else the seconds to wait."""
        with self.lock:
            tokens, last = self.state.get(key, (self.rate * 2, time.monotonic()))
            now = time.monotonic()
            tokens = min(self.rate * 2, tokens + (now - last) * self.rate)
            if tokens < 1:
                self.state[key] = (tokens, now)
                return (1 - tokens) / self.rate
            self.state[key] = (tokens - 1, now)
            return 0.0


def _jwks_keys(settings: Settings) -> dict[str, Any]:
    if settings.service.jwks is None:
        return {}
    document = orjson.loads(settings.service.jwks.read_bytes())
    keys = {}
    for n, jwk in enumerate(document.get("keys", [])):
        keys[jwk.get("kid", str(n))] = jwt.PyJWK(jwk)
    return keys


def capability_statement(base: str) -> dict[str, Any]:
    """What the service really does."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": datetime.now(UTC).date().isoformat(),
        "kind": "instance",
        "software": {"name": "imr-adapter", "version": __version__},
        "implementation": {"description": "IMR adapter: guideline determinations for service requests", "url": base},
        "fhirVersion": "4.0.1",
        "format": list(ACCEPTED_TYPES),
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "Bearer tokens: configured static tokens or SMART Backend Services JWTs; "
                    "scopes decide read and write.",
                },
                "resource": [
                    {"type": "ServiceRequest", "interaction": [{"code": "create"}]},
                    {
                        "type": "Claim",
                        "operation": [
                            {
                                "name": "submit",
                                "definition": "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-submit",
                            }
                        ],
                    },
                    {
                        "type": "ClaimResponse",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {"name": n, "type": t}
                            for n, t in (
                                ("patient", "reference"),
                                ("request", "reference"),
                                ("outcome", "token"),
                                ("_lastUpdated", "date"),
                                ("_count", "number"),
                            )
                        ],
                    },
                ],
            }
        ],
    }


def create_app(settings: Settings, store: Store, forwarder: Forwarder | None = None) -> FastAPI:
    """The ASGI app; starts the forwarder with it when one is given."""
    service = settings.service
    tokens = dict(service.tokens)
    jwks = _jwks_keys(settings)
    buckets = _Buckets(service.rate_limit)

    async def lifespan(_: FastAPI) -> Any:
        warm_up()
        if forwarder is not None:
            forwarder.start()
        yield
        if forwarder is not None:
            forwarder.stop()

    app = FastAPI(title="IMR adapter", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)

    def authenticate(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="imr-adapter"'}
        if scheme.lower() != "bearer" or not token:
            raise ServiceError(
                401, "a bearer token is required", code="auth-required", issue_type="login", headers=challenge
            )
        if token in tokens:
            return Principal(f"token:{hashlib.sha256(token.encode()).hexdigest()[:8]}", tokens[token].split())
        if jwks:
            try:
                kid = jwt.get_unverified_header(token).get("kid")
                key = jwks.get(kid) if kid else next(iter(jwks.values()))
                if key is None:
                    raise jwt.InvalidTokenError("unknown key id")
                claims = jwt.decode(
                    token,
                    key.key,
                    algorithms=["RS384", "ES384", "RS256", "ES256"],
                    audience=service.audience,
                    options={"require": ["exp"]},
                )
            except jwt.PyJWTError as exc:
                raise ServiceError(
                    401,
                    f"invalid access token: {type(exc).__name__}",
                    code="auth-invalid",
                    issue_type="login",
                    headers=challenge,
                ) from exc
            return Principal(
                f"smart:{claims.get('client_id') or claims.get('sub')}", str(claims.get("scope", "")).split()
            )
        raise ServiceError(401, "invalid access token", code="auth-invalid", issue_type="login", headers=challenge)

    def authorise(principal: Principal, rtype: str, action: str) -> None:
        if not principal.allows(rtype, action):
            raise ServiceError(
                403, f"the token's scopes do not allow {action} on {rtype}", code="auth-scope", issue_type="forbidden"
            )
        wait = buckets.take(principal.name)
        if wait:
            raise ServiceError(
                429,
                "too many requests",
                code="rate-limited",
                issue_type="throttled",
                headers={"Retry-After": str(max(1, round(wait)))},
            )

    def admit(request: Request, rtype: str, action: str) -> None:
        """Authenticate, remember who for the audit, check the scopes and the rate."""
        principal = authenticate(request)
        request.state.principal = principal.name
        authorise(principal, rtype, action)

    async def body(request: Request) -> Any:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ACCEPTED_TYPES:
            raise ServiceError(
                415,
                f"content type {content_type or 'none'!r}; send application/fhir+json",
                code="unsupported-media-type",
                issue_type="not-supported",
            )
        if request.headers.get("if-match"):
            raise ServiceError(
                412, "If-Match does not apply to a new request", code="precondition", issue_type="conflict"
            )
        too_large = ServiceError(
            413, f"the body is larger than {service.max_body} bytes", code="too-large", issue_type="too-costly"
        )
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > service.max_body:
            raise too_large
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > service.max_body:
                raise too_large
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ServiceError(
                400, f"the body is not JSON: {exc.msg}", code="malformed-json", issue_type="structure"
            ) from exc
        if not isinstance(data, dict) or "resourceType" not in data:
            raise ServiceError(400, "the body is not a FHIR resource", code="not-a-resource", issue_type="structure")
        return data

    def respond(payload: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
        return Response(orjson.dumps(payload), status_code=status, media_type=FHIR_JSON, headers=headers)

    def decide_and_record(data: dict[str, Any], raw_key: str) -> tuple[dict[str, Any], bool]:
        """(ClaimResponse, created?) — an identical request sent again gets the same answer, not a new one."""
        existing = store.processed(raw_key)
        if existing is not None:
            found = store.claim_response(existing)
            if found is not None:
                return found, False
        decided = decide(data)
        record(store, decided, forward=service.forward, key=raw_key)
        return decided.response, True

    def request_key(kind: str, data: dict[str, Any]) -> str:
        return f"{kind}:{hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()}"

    @app.middleware("http")
    async def errors_and_audit(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        who = "anonymous"
        try:
            response = await call_next(request)
        except ServiceError as exc:
            response = outcome(exc.status, exc, exc.headers)
        except AdapterError as exc:
            response = outcome(422, exc)
        except Exception as exc:  # noqa: BLE001 - anything else is still an OperationOutcome, never a stack trace
            response = outcome(500, AdapterError(f"internal error ({type(exc).__name__})"))
        who = getattr(request.state, "principal", who)
        if request.url.path != "/fhir/metadata":
            route = request.scope.get("route")
            action = f"{request.method} {getattr(route, 'path', request.url.path)}"
            store.audit(who, action, getattr(request.state, "target", None), str(response.status_code))
        return response

    @app.get("/fhir/metadata")
    async def metadata(request: Request) -> Response:
        return respond(capability_statement(str(request.base_url).rstrip("/") + "/fhir"), 200)

    @app.post("/fhir/ServiceRequest")
    async def post_service_request(request: Request) -> Response:
        admit(request, "ServiceRequest", "write")
        data = await body(request)
        if data.get("resourceType") not in ("ServiceRequest", "Bundle"):
            raise ServiceError(
                400,
                "post a ServiceRequest, or a Bundle with one and its context",
                code="wrong-type",
                issue_type="structure",
            )
        response, created = decide_and_record(data, request_key("service-request", data))
        request.state.target = f"ClaimResponse/{response['id']}"
        location = f"{str(request.base_url).rstrip('/')}/fhir/ClaimResponse/{response['id']}"
        return respond(response, 201 if created else 200, {"Location": location})

    @app.post("/fhir/Claim/$submit")
    async def submit(request: Request) -> Response:
        admit(request, "Claim", "write")
        data = await body(request)
        entries = data.get("entry") or []
        if (
            data.get("resourceType") != "Bundle"
            or not entries
            or entries[0].get("resource", {}).get("resourceType") != "Claim"
        ):
            raise ServiceError(
                400, "$submit takes a PAS Bundle whose first entry is the Claim", code="not-pas", issue_type="structure"
            )
        key = request_key("submit", data)
        claim_keys = [
            f"claim:{i.get('system')}|{i.get('value')}"
            for i in entries[0]["resource"].get("identifier", [])
            if i.get("value")
        ]
        if store.processed(key) is None and any(store.processed(k) is not None for k in claim_keys):
            raise ServiceError(
                409,
                "this Claim identifier was already submitted with other content; submit a new Claim",
                code="claim-conflict",
                issue_type="conflict",
            )
        response, created = decide_and_record(data, key)
        if created:
            for claim_key in claim_keys:
                store.mark_processed(claim_key, response["id"])
        request.state.target = f"ClaimResponse/{response['id']}"
        base = str(request.base_url).rstrip("/") + "/fhir"
        answer = {
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": response["meta"]["lastUpdated"],
            "entry": [{"fullUrl": f"{base}/ClaimResponse/{response['id']}", "resource": response}],
        }
        return respond(answer, 200)

    @app.get("/fhir/ClaimResponse/{rid}")
    async def read_claim_response(rid: str, request: Request) -> Response:
        admit(request, "ClaimResponse", "read")
        found = store.claim_response(rid)
        request.state.target = f"ClaimResponse/{rid}"
        if found is None:
            raise ServiceError(404, f"no ClaimResponse {rid}", code="not-found", issue_type="not-found")
        return respond(found, 200, {"ETag": f'W/"{found["meta"]["versionId"]}"'})

    @app.get("/fhir/ClaimResponse")
    async def search_claim_responses(request: Request) -> Response:
        admit(request, "ClaimResponse", "read")
        params = request.query_params
        unknown = set(params) - {"patient", "request", "outcome", "_lastUpdated", "_count", "_offset"}
        if unknown:
            raise ServiceError(
                400, f"unsupported search parameters {sorted(unknown)}", code="bad-search", issue_type="not-supported"
            )
        since = before = None
        for value in params.getlist("_lastUpdated"):
            prefix, date = (value[:2], value[2:]) if value[:2] in ("ge", "gt", "lt", "le", "eq") else ("eq", value)
            if prefix in ("ge", "gt", "eq"):
                since = date
            else:
                before = date
        try:
            count = min(100, max(1, int(params.get("_count", "20"))))
            offset = max(0, int(params.get("_offset", "0")))
        except ValueError as exc:
            raise ServiceError(400, "_count and _offset are numbers", code="bad-search", issue_type="value") from exc
        total, found = store.search(
            patient=params.get("patient"),
            request=params.get("request"),
            outcome=params.get("outcome"),
            since=since,
            before=before,
            offset=offset,
            count=count,
        )
        base = str(request.url.remove_query_params(["_offset"]))
        links = [{"relation": "self", "url": str(request.url)}]
        if offset + count < total:
            links.append({"relation": "next", "url": f"{base}{'&' if '?' in base else '?'}_offset={offset + count}"})
        root = str(request.base_url).rstrip("/")
        entries = [
            {"fullUrl": f"{root}/fhir/ClaimResponse/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in found
        ]
        bundle = {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links, "entry": entries}
        return respond(bundle, 200)

    return app
