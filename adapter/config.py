"""Settings: defaults here, overridden by a config file, then by ``IMR_*`` environment variables, then by
command-line flags.

The config file is TOML (``imr-adapter.toml`` in the working folder, or the file named by
``IMR_CONFIG``); environment variables use the prefix ``IMR_`` and ``__`` for nesting, e.g.
``IMR_EHR_URL`` or ``IMR_SANDBOX__EHR_PORT``.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from adapter.errors import ConfigError

__all__ = [
    "DEFAULT_JURISDICTION",
    "DEFAULT_MAPPINGS",
    "DEFAULT_MAX_CLINICAL_TEXT",
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_TEXT",
    "DEFAULT_SANDBOX_DIR",
    "SEKMET_VERSION",
    "AuthSettings",
    "AuthType",
    "DeterminationSettings",
    "OIDCSettings",
    "RetrySettings",
    "ReviewSettings",
    "SandboxSettings",
    "ServiceSettings",
    "Settings",
    "config_file",
    "jurisdiction_path",
    "load_settings",
    "read_config_file",
    "state_url_problem",
    "url_problem",
]

#: The sandbox FHIR server, pinned: its own virtualenv, never the project's.
SEKMET_VERSION = "0.1.1"
DEFAULT_SANDBOX_DIR = Path(__file__).resolve().parent.parent / ".sandbox"
#: The tables shipped with the adapter (``adapter.tables`` reads them).
DEFAULT_MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"
#: The jurisdiction whose review policy applies unless ``review.jurisdiction`` names another.
DEFAULT_JURISDICTION = "california"
DEFAULT_CONFIG_FILE = "imr-adapter.toml"
SANDBOX_CLIENT_ID = "imr-adapter"
#: A server URL setting that names the local sandbox explicitly.
SANDBOX = "sandbox"
#: Bounds on one inbound request, the edge check's defaults too (``adapter.fhir.inbound.Limits``): Bundle
#: entries, the length of any one string, and all the clinical text one determination reads, in characters.
DEFAULT_MAX_ENTRIES = 1_000
DEFAULT_MAX_TEXT = 100_000
DEFAULT_MAX_CLINICAL_TEXT = 150_000


#: The ways to authenticate to a FHIR server; each has its flow in ``adapter.exchange.auth.FLOWS``.
AuthType = Literal["none", "bearer", "basic", "smart"]


class AuthSettings(BaseModel):
    """How to authenticate to one FHIR server. Secrets are ``SecretStr``: never printed or logged."""

    model_config = ConfigDict(extra="forbid")

    type: AuthType = "none"
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    #: SMART Backend Services: the registered client id and its private key (PEM), signing with RS384 or ES384.
    client_id: str | None = None
    private_key: Path | None = None
    alg: Literal["RS384", "ES384"] = "RS384"
    kid: str | None = None
    scope: str = "system/*.read system/*.write"
    #: Discovered from ``[base]/.well-known/smart-configuration`` when not set.
    token_url: str | None = None


class RetrySettings(BaseModel):
    """Retries of idempotent requests on 429, 5xx and connection errors: exponential backoff with full
    jitter, ``Retry-After`` honoured, capped in attempts and in total time."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=5, ge=1)
    backoff: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=20.0, ge=0)
    #: Seconds one request may take in all: every attempt, wait and byte of the answer (a server trickling
    #: its answer times out); an export file gets this and a second more per 16 KB it brings.
    total: float = Field(default=90.0, gt=0)
    #: The longest ``Retry-After`` waited on between two polls of an export's status (a longer one is cut).
    after_max: float = Field(default=30.0, gt=0)


def endpoint_allowed(endpoint: object, prefixes: list[str]) -> bool:
    """Whether a rest-hook endpoint may be called: it starts with one of ``prefixes`` (none: any https URL)."""
    if not isinstance(endpoint, str):
        return False
    return any(endpoint.startswith(p) for p in prefixes) if prefixes else endpoint.startswith("https://")


class SenderSettings(BaseModel):
    """A PAS sending system (the ``applicationSenderCode`` its Claims carry in TransmissionIdentifiers) known
    here in advance: the clients that speak for it, and where its notifications go."""

    model_config = ConfigDict(extra="forbid")

    #: The clients that may subscribe for it before (or without) submitting for it, and read its configured
    #: Subscription: a static token of ``service.tokens``, or a SMART client as ``smart:<client_id>``.
    clients: list[str] = Field(default_factory=list)
    #: A rest-hook endpoint its notifications are pushed to without a Subscription of its own: the service
    #: keeps one for it, made from this setting (its clients read it and its ``$status`` and ``$events``;
    #: it changes only here).
    endpoint: str | None = None


class OIDCSettings(BaseModel):
    """Reviewers sign in to the review page through an OpenID Connect provider (authorization code with PKCE);
    each signs in as a reviewer of the reviewer table, found by the subject (``sub``) recorded for them or,
    with ``npi_claim``, by the NPI the provider asserts (recorded on first sign-in)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The provider's issuer; its discovery document is ``{issuer}/.well-known/openid-configuration``.
    issuer: str
    #: The client registered with the provider; its redirect URI is ``{service origin}/review/login/oidc/callback``.
    client_id: str
    #: The client's secret (none: a public client, PKCE alone).
    client_secret: SecretStr | None = None
    scope: str = "openid profile email"
    #: The ID token claim holding the reviewer's NPI (none: a reviewer is found by subject only, recorded with
    #: ``imr-adapter reviewer add --subject``).
    npi_claim: str | None = None
    #: The ID token claim holding the reviewer's name (for a reviewer first recorded at sign-in).
    name_claim: str = "name"
    #: The words of the sign-in button.
    label: str = "Sign in with your organisation"
    #: Seconds for each call to the provider (discovery, keys, the code exchange).
    timeout: float = Field(default=10.0, gt=0)

    @field_validator("issuer")
    @classmethod
    def _secure(cls, issuer: str) -> str:
        parts = urlsplit(issuer)
        loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
        if not parts.hostname or not (parts.scheme == "https" or loopback):
            raise ValueError("an https URL such as https://login.example.org/realms/imr (http only on loopback)")
        return issuer.rstrip("/")


class ServiceSettings(BaseModel):
    """The adapter's HTTP service and sync worker."""

    model_config = ConfigDict(extra="forbid")

    #: Static bearer tokens and the scopes each grants ("system/*.read system/ServiceRequest.write").
    tokens: dict[str, str] = Field(default_factory=dict)
    #: A JWKS (file) whose keys sign SMART Backend Services access tokens the service accepts.
    jwks: Path | None = None
    #: The audience those tokens must carry (the service's FHIR base URL); required with ``jwks``.
    audience: str | None = None
    #: The issuer (or issuers) those tokens must name in ``iss``; required with ``jwks``.
    issuer: str | list[str] | None = None
    #: The longest a token may live (``exp - iat``, seconds); longer-lived tokens are refused.
    max_token_lifetime: int = Field(default=3600, gt=0)
    #: Seconds of clock difference allowed when checking ``exp`` and ``iat``.
    clock_skew: int = Field(default=60, ge=0)
    #: The service's public FHIR base URL, used in Location headers, fullUrls and next links (never the
    #: client's Host header). ``serve`` sets it from --host and --port when it is not configured.
    base_url: str = "http://127.0.0.1:8080/fhir"
    max_body: int = Field(default=5_000_000, ge=1024)
    #: Bounds on one request's content: Bundle entries, and the length of any one string.
    max_entries: int = Field(default=DEFAULT_MAX_ENTRIES, ge=1)
    max_text: int = Field(default=DEFAULT_MAX_TEXT, ge=1_000)
    #: All the clinical text one determination may read (the work grows with it), in characters: 150,000
    #: (about 40 pages) keeps one determination, NLP included, under about 2 seconds on one core.
    max_clinical_text: int = Field(default=DEFAULT_MAX_CLINICAL_TEXT, ge=10_000)
    #: Requests per second per client before 429 (a token bucket of twice that size).
    rate_limit: float = Field(default=200.0, gt=0)
    #: Failed authentications per second per client address before 429 (and no more audit rows).
    auth_failure_rate: float = Field(default=5.0, gt=0)
    #: Addresses of reverse proxies whose ``X-Forwarded-For`` names the client (none: the header is ignored).
    trusted_proxies: list[str] = Field(default_factory=list)
    #: Threads for blocking work (determination, state); each request holds one while it is decided. The
    #: work is mostly CPU under one interpreter lock: more threads than about twice the cores only queue
    #: (measured: p99 45 ms with 4, 100 ms with 16, at 51 requests/s on 2 cores).
    workers: int = Field(default=4, ge=1, le=256)
    #: Processes serving the one port (``serve`` forks them once the tables and models are loaded); each uses
    #: one core at most, so one per core. Each is a replica on the state (SQLite in WAL mode, or PostgreSQL).
    processes: int = Field(default=1, ge=1, le=64)
    #: sqlite:///path (default) or postgresql://user:pass@host/db
    state_url: str = "sqlite:///.state/imr-adapter.db"
    #: Bring the state database to the newest schema at start (else refuse to start on an old one and
    #: leave it to ``imr-adapter db upgrade``).
    auto_migrate: bool = True
    #: Write every ClaimResponse to the payer server (through the durable outbox). Forwarding needs a payer:
    #: ``payer_url`` set, or ``payer_url = "sandbox"`` to name the local sandbox explicitly.
    forward: bool = True
    #: Serve Prometheus metrics at /metrics.
    metrics: bool = True
    #: Signs the review page's session cookies; the same on every replica. When unset, each process makes
    #: its own at start (sessions then end with the process and do not cross replicas).
    session_secret: SecretStr | None = None
    #: How long a reviewer stays signed in to the review page.
    session_minutes: int = Field(default=480, ge=1, le=24 * 60)
    #: Reviewers sign in through this OpenID Connect provider (besides the reviewer table's passwords).
    oidc: OIDCSettings | None = None
    #: An OTLP/HTTP endpoint for OpenTelemetry traces (needs the ``otel`` extra); none: no tracing.
    otlp_endpoint: str | None = None
    #: Log lines as JSON objects (one per line) or plain text.
    log_format: Literal["json", "text"] = "json"
    #: The worker also writes a Task back to the EHR server for each request it decides (status and answer).
    ehr_task: bool = False
    #: The worker asks the EHR for the documentation a pended request lacks with Da Vinci CDex attachment-request
    #: Tasks (answered at ``{base_url}/$submit-attachment`` or by completing the Task), and decides again.
    ehr_attachment_requests: bool = False
    #: The URL prefixes a PAS Subscription's rest-hook endpoint may start with; empty: any https URL (list a
    #: loopback http prefix to allow one).
    subscription_endpoints: list[str] = Field(default_factory=list)
    #: Sending systems configured here, by their identifier (see ``SenderSettings``).
    senders: dict[str, SenderSettings] = Field(default_factory=dict)
    #: Deliver PAS subscription notifications from this process (a thread beside the service).
    notify: bool = True
    #: Seconds before a notification its endpoint refused is sent again, doubling with each failure up to
    #: ``notify_backoff_max``: a subscriber that is down gets what it missed, in order, once it is back.
    notify_backoff: float = Field(default=2.0, gt=0)
    notify_backoff_max: float = Field(default=300.0, gt=0)
    #: Processes the sync worker determines on (the evidence NLP is the costly part): 0 = one per core,
    #: 1 = in the worker's own process.
    worker_processes: int = Field(default=0, ge=0, le=64)
    #: Requests per page the worker reads from the EHR (the context of a page is read at once).
    worker_page_size: int = Field(default=100, ge=1, le=1000)
    #: The longest wait between two attempts to deliver the outbox's head to the payer.
    outbox_max_delay: float = Field(default=30.0, gt=0)
    #: The most answers the forwarder sends the payer in one transaction Bundle (1: one request each).
    outbox_batch: int = Field(default=50, ge=1, le=500)
    #: Seconds a forwarder holds the answers it is sending; a forwarder that dies holding them (kill -9)
    #: leaves them to the next one after that long.
    outbox_lease: float = Field(default=60.0, gt=0)
    #: Seconds a sync worker holds a request type's cursor (renewed every page read) or a page it took from the
    #: state's queue: several workers on one state share the pages, and one killed leaves what it held to the
    #: others after that long.
    worker_lease: float = Field(default=120.0, gt=0)
    poll_seconds: float = Field(default=5.0, gt=0)

    @field_validator("base_url", "audience", "otlp_endpoint")
    @classmethod
    def _http_url(cls, url: str | None, info: ValidationInfo) -> str | None:
        what = _URLS.get(info.field_name or "", _URLS["base_url"])
        if url is not None and (problem := url_problem(url, what)):
            raise ValueError(problem)
        return url

    @model_validator(mode="after")
    def _senders_known(self) -> ServiceSettings:
        for org, sender in self.senders.items():
            unknown = [n for n, c in enumerate(sender.clients) if c not in self.tokens and not c.startswith("smart:")]
            if unknown:  # the value is not repeated: it may be a token mistyped
                raise ValueError(f"senders.{org}.clients[{unknown[0]}] is neither a token of service.tokens nor a "
                                 "SMART client written smart:<client_id>")  # fmt: skip
            if sender.endpoint is not None and not endpoint_allowed(sender.endpoint, self.subscription_endpoints):
                allowed = ", ".join(self.subscription_endpoints) or "https://"
                raise ValueError(f"senders.{org}.endpoint must start with {allowed} (service.subscription_endpoints)")
        return self

    @field_validator("state_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        problem = state_url_problem(url)
        if problem:
            raise ValueError(problem)
        return url


#: The database URLs the state store opens (anything else with a scheme is a mistake, not a file name).
_STATE_SCHEMES = ("sqlite://", "postgresql://", "postgres://")


def state_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the service's state database, or None."""
    if "://" in url and not url.startswith(_STATE_SCHEMES):
        return f"expected sqlite:///PATH or postgresql://user:password@host/db (got {url.split('://')[0]}://...)"
    return None


#: What an http(s) URL setting of the service should look like.
_URLS = {
    "base_url": "this service's FHIR base URL such as https://adapter.example/fhir",
    "audience": "this service's FHIR base URL such as https://adapter.example/fhir",
    "otlp_endpoint": "an OTLP/HTTP endpoint such as http://collector:4318/v1/traces",
}


def url_problem(url: str, what: str = "a FHIR base URL such as https://ehr.example/fhir") -> str | None:
    """Why ``url`` cannot be an http(s) URL of ``what``, or None (the URL is not repeated when it holds a
    password)."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.hostname:
        return None
    return f"expected {what}" + ("" if "@" in url else f" (got {url!r})")


class DeterminationSettings(BaseModel):
    """How recommendations become actions on the wire."""

    model_config = ConfigDict(extra="forbid")

    #: "pend": an adverse recommendation (A3 not certified, A6 modified) goes out as A4 pended for a physician
    #: reviewer, in the words of the jurisdiction's table (``review.jurisdiction``), as its law requires (in
    #: California, Labor Code 4610: only a licensed physician may deny or modify a request for medical
    #: necessity); "decide": adverse recommendations go out as they are, where that is lawful.
    adverse: Literal["pend", "decide"] = "pend"


def jurisdiction_path(value: str) -> Path | None:
    """The table file a ``review.jurisdiction`` value names by path (it holds a slash or ends in .yaml or .yml),
    or None for the name of a jurisdiction shipped under ``mappings/jurisdictions/``."""
    if "/" in value or "\\" in value or value.endswith((".yaml", ".yml")):
        return Path(value).expanduser()
    return None


class ReviewSettings(BaseModel):
    """The jurisdiction whose rules physician review follows."""

    model_config = ConfigDict(extra="forbid")

    #: Its deadlines (clocks, holidays, time zone) and wording: the name of a table shipped under
    #: ``mappings/jurisdictions/`` ("california"), or the path of a YAML table of the same shape.
    jurisdiction: str = DEFAULT_JURISDICTION

    @field_validator("jurisdiction")
    @classmethod
    def _known(cls, value: str) -> str:
        path = jurisdiction_path(value)
        shipped = sorted(p.stem for p in (DEFAULT_MAPPINGS / "jurisdictions").glob("*.yaml"))
        if path is None and value not in shipped:
            raise ValueError(f"expected one of {shipped} or the path of a deadlines table (.yaml) (got {value!r})")
        if path is not None and not path.is_file():
            raise ValueError(f"no such file: {path} (a deadlines table, as mappings/jurisdictions/california.yaml)")
        return value


class SandboxSettings(BaseModel):
    """The two local sandbox FHIR servers (sekmet-fhir) that ``imr-adapter sandbox`` runs."""

    model_config = ConfigDict(extra="forbid")

    dir: Path = DEFAULT_SANDBOX_DIR
    host: str = "127.0.0.1"
    ehr_port: int = 8181
    payer_port: int = 8182
    postgres_port: int = 54329
    start_timeout: float = 90.0

    @property
    def postgres_url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.postgres_port}/postgres"

    def url(self, name: str) -> str:
        port = self.ehr_port if name == "ehr" else self.payer_port
        return f"http://{self.host}:{port}/fhir"

    @property
    def keys(self) -> Path:
        return self.dir / "keys"

    def client_auth(self, name: str) -> AuthSettings:
        """How the adapter authenticates to a sandbox server: the EHR is open, the payer needs SMART Backend
        Services (the sandbox registers the adapter's key when it starts)."""
        if name == "ehr":
            return AuthSettings()
        return AuthSettings(type="smart", client_id=SANDBOX_CLIENT_ID, private_key=self.keys / "client-rs384.pem")


class Settings(BaseSettings):
    """Everything the adapter can be configured with."""

    model_config = SettingsConfigDict(env_prefix="IMR_", env_nested_delimiter="__", extra="forbid")

    #: FHIR base URLs of the EHR and payer servers; by default (or "sandbox") the local sandbox servers.
    ehr_url: str | None = None
    payer_url: str | None = None
    ehr_auth: AuthSettings = Field(default_factory=AuthSettings)
    payer_auth: AuthSettings = Field(default_factory=AuthSettings)
    #: Seconds for each request (connect, read, write, pool).
    timeout: float = Field(default=30.0, gt=0)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    #: Requests in flight at once when pushing many Bundles.
    concurrency: int = Field(default=8, ge=1, le=256)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    determination: DeterminationSettings = Field(default_factory=DeterminationSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)

    @field_validator("ehr_url", "payer_url")
    @classmethod
    def _server_url(cls, url: str | None) -> str | None:
        problem = None if url in (None, SANDBOX) else url_problem(url)
        if problem:
            raise ValueError(f'{problem}, or "sandbox"')
        return url

    @property
    def ehr(self) -> str:
        return self.ehr_url or self.sandbox.url("ehr")

    @property
    def payer(self) -> str:
        if self.payer_url in (None, SANDBOX):
            return self.sandbox.url("payer")
        return self.payer_url

    @property
    def forwarding(self) -> bool:
        """Whether answers go to a payer server: only when forwarding is on and a payer is named (a URL, or
        the sandbox explicitly), never to the sandbox by surprise."""
        return self.service.forward and self.payer_url is not None

    def auth(self, name: str) -> AuthSettings:
        """The auth for "ehr" or "payer": as configured, or the sandbox's when that server is the sandbox."""
        url, auth = (self.ehr_url, self.ehr_auth) if name == "ehr" else (self.payer_url, self.payer_auth)
        if url in (None, SANDBOX) and auth.type == "none":
            return self.sandbox.client_auth(name)
        return auth

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, InitSettingsSource(settings_cls, read_config_file(*config_file()))


def config_file() -> tuple[Path, bool]:
    """The config file to read, and whether it must exist: the one ``IMR_CONFIG`` names (it must), else
    ``imr-adapter.toml`` in the working folder (when there is one)."""
    named = os.environ.get("IMR_CONFIG")
    return (Path(named), True) if named else (Path(DEFAULT_CONFIG_FILE), False)


def read_config_file(path: Path, required: bool = False) -> dict[str, Any]:
    """The TOML config file as a dict; ``ConfigError`` naming the file (and the line) when it cannot be read."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError as exc:
        if not required:
            return {}
        raise ConfigError(f"{path}: no such file (named by IMR_CONFIG; unset it or name an existing file)") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (a TOML config file is expected)") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


#: What a setting should be, for the type errors where pydantic's own words would not help.
_EXPECTED = {
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "string_type": "expected a string (in quotes)",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list",
    "path_type": "expected a file path (a string)",
}
#: Settings whose shape is worth spelling out whenever their value is wrong.
_SHAPES = {
    "service.tokens": 'expected a table of token = "scopes"',
    "service.issuer": 'expected an issuer URL or a list of them ("https://..." or ["https://...", ...])',
}
#: The command-line flags that set a top-level setting under another name.
_FLAGS = {"ehr_url": "--ehr", "payer_url": "--payer"}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _setting(loc: tuple[int | str, ...]) -> tuple[str, type[BaseModel] | None, bool]:
    """The dotted name of the setting an error is about, stopping at the first value that is not a section (so
    union tags and token values are never named); the last section reached; whether the setting is a secret."""
    model: type[BaseModel] | None = Settings
    names: list[str] = []
    secret = False
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            break
        names.append(part)
        annotation = model.model_fields[part].annotation
        secret = "SecretStr" in str(annotation)
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return ".".join(names), model, secret


def _what_is_wrong(error: ErrorDetails, name: str, section: type[BaseModel] | None, secret: bool) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    got = "" if secret or isinstance(error["input"], dict | list) else f" (got {error['input']!r})"
    if kind == "extra_forbidden":
        keys = sorted(section.model_fields) if section is not None else []
        close = difflib.get_close_matches(str(error["loc"][-1]), keys, n=1)
        prefix = f"{name}." if name else ""
        hint = f"did you mean {prefix}{close[0]}?" if close else "the keys here are " + ", ".join(keys)
        return f"unknown setting; {hint}"
    if name in _SHAPES:
        return _SHAPES[name] + got
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}{got}"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()), "")
        return f"expected a number {_BOUNDS[kind]} {bound}{got}"
    message = error["msg"].removeprefix("Value error, ")
    return _EXPECTED.get(kind, message[:1].lower() + message[1:]) + ("" if kind == "value_error" else got)


def _config_error(exc: ValidationError, overrides: dict[str, object]) -> ConfigError:
    """One line for the first wrong setting: where it was set (the file, the variable or the flag), which
    setting, and what it should be."""
    error = exc.errors()[0]
    if env_field := re.search(r'field "(\w+)" from source "EnvSettingsSource"', error["msg"]):
        prefix = f"IMR_{env_field[1].upper()}"
        named = sorted(k for k in os.environ if k.upper() == prefix or k.upper().startswith(prefix + "__"))
        return ConfigError(
            f"{named[0] if named else prefix}: not valid JSON; a table or a list in an IMR_ variable is written as "
            """JSON, e.g. IMR_SERVICE__TOKENS='{"token": "system/*.read"}'"""
        )
    name, section, secret = _setting(error["loc"])
    path, required = config_file()
    variable = "IMR_" + name.replace(".", "__").upper()
    wrong = _what_is_wrong(error, name, section, secret)
    if error["type"] == "extra_forbidden":
        source, name = str(path), ".".join(str(p) for p in error["loc"])
    elif name.split(".")[0] in overrides:  # a command-line flag: its name says which setting
        top = name.split(".")[0]
        return ConfigError(f"{_FLAGS.get(top, '--' + top.replace('_', '-'))}: {wrong}")
    elif variable in {k.upper() for k in os.environ}:
        source = variable  # the environment is read over the file
    else:
        source = str(path)
    return ConfigError(f"{source}: {name or 'settings'}: {wrong}")


def load_settings(**overrides: object) -> Settings:
    """Settings from the config file and environment, with explicit overrides (command-line flags) on top;
    ``ConfigError`` naming the file (or variable or flag), the setting and what it should be."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings.model_validate(given)
    except ValidationError as exc:
        raise _config_error(exc, given) from None
