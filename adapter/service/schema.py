"""The service's state tables (SQLAlchemy Core), as the newest migration leaves them.

The migrations under ``migrations/versions`` are the history that builds these tables; this module is what
the code reads and writes. A change to a table here comes with a migration.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()
#: An auto-incrementing key: 64-bit on PostgreSQL.
_SERIAL = Integer().with_variant(BigInteger, "postgresql")

claim_responses = Table(
    "claim_responses",
    metadata,
    Column("id", Text, primary_key=True),
    Column("patient", Text),
    Column("request", Text),
    Column("outcome", Text),
    Column("last_updated", Text, nullable=False),
    #: ``last_updated`` as microseconds since the epoch (UTC), for date searches that compare instants.
    Column("updated_us", BigInteger),
    Column("resource", Text, nullable=False),
    Index("claim_responses_updated_us", "updated_us", "id"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("seq", _SERIAL, primary_key=True, autoincrement=True),
    Column("claim_response_id", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt", Float, nullable=False, server_default="0"),
    Column("lease_until", Float, nullable=False, server_default="0"),
    Column("delivered_at", Text),
    Column("last_error", Text),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("item_key", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Text),
    Column("created", Text, nullable=False),
    Column("replayed_at", Text),
)

cursors = Table(
    "cursors",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

worker_pages = Table(
    "worker_pages",
    metadata,
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    #: The cursor the page was read under (``ehr:ServiceRequest``, ...).
    Column("source", Text, nullable=False),
    #: The page as read: ``{"requests": [...], "included": [...]}`` (the search's matches and includes).
    Column("page", Text, nullable=False),
    #: Until when (epoch seconds) a worker holds the page; 0: free for any worker to take.
    Column("lease_until", Float, nullable=False, server_default="0"),
    Column("holder", Text),
    Column("created", Text, nullable=False),
)

processed = Table(
    "processed",
    metadata,
    Column("item_key", Text, primary_key=True),
    Column("claim_response_id", Text),
    Column("created", Text, nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    Column("at", Text, nullable=False),
    Column("who", String(80), nullable=False),
    Column("action", String(80), nullable=False),
    Column("target", String(160)),
    Column("outcome", String(80), nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Text, primary_key=True),
    Column("status", Text, nullable=False),
    #: The reviewer's identifier as ``system|value`` once decided.
    Column("owner", Text),
    #: ``ClaimResponse/{id}``.
    Column("focus", Text, nullable=False),
    Column("patient", Text),
    #: ``restriction.period.end`` as microseconds since the epoch: the review queue's order.
    Column("due_us", BigInteger, nullable=False),
    Column("last_updated", Text, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("resource", Text, nullable=False),
    #: The clinical texts ([source, text] pairs) the Task's evidence offsets point into; not part of the Task.
    Column("documents", Text, nullable=False),
    #: The ClaimResponse the Task decides (its ``claim-response`` output): a case's items are its Tasks.
    Column("claim_response", Text),
    Index("tasks_status_due", "status", "due_us", "id"),
    Index("tasks_focus", "focus"),
    Index("tasks_claim_response", "claim_response"),
)

inquiry_keys = Table(
    "inquiry_keys",
    metadata,
    #: The patient's member id as ``system|value`` (identifier type MB), as the submission gave it.
    Column("member", Text, primary_key=True),
    #: An NPI of a provider the submission named (the requestor, care team, ordering or rendering provider).
    Column("provider", Text, primary_key=True),
    Column("claim_response_id", Text, primary_key=True),
)

resources = Table(
    "resources",
    metadata,
    Column("type", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    #: The answer to the request that held it.
    Column("claim_response_id", Text, nullable=False),
    Column("resource", Text, nullable=False),
)

claim_response_versions = Table(
    "claim_response_versions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("resource", Text, nullable=False),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Text, primary_key=True),
    #: The client that made it (only it may read, change or delete it).
    Column("owner", Text, nullable=False),
    #: The sending system it is for (its orgIdentifier filter).
    Column("org", Text, nullable=False),
    Column("status", Text, nullable=False),
    #: Events since the subscription started (the last event number given).
    Column("events", Integer, nullable=False, server_default="0"),
    Column("resource", Text, nullable=False),
    Index("subscriptions_org", "org", "status"),
)

notifications = Table(
    "notifications",
    metadata,
    Column("seq", _SERIAL, primary_key=True, autoincrement=True),
    Column("subscription_id", Text, nullable=False),
    #: 0 for a handshake; events count from 1.
    Column("event_number", Integer, nullable=False),
    #: handshake | event-notification
    Column("kind", Text, nullable=False),
    Column("claim_response_id", Text),
    Column("version", Integer),
    Column("created", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt", Float, nullable=False, server_default="0"),
    Column("lease_until", Float, nullable=False, server_default="0"),
    Column("delivered_at", Text),
    Column("last_error", Text),
    Index("notifications_subscription", "subscription_id", "seq"),
)

reviewers = Table(
    "reviewers",
    metadata,
    Column("id", Text, primary_key=True),
    #: The reviewer's NPI (check digit right): what every decision they make names.
    Column("npi", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("email", Text, unique=True),
    #: The argon2 hash of the reviewer-table password (none: signs in only through OpenID Connect).
    Column("password", Text),
    #: The OpenID Connect subject (``sub``) this reviewer signs in as.
    Column("subject", Text, unique=True),
    Column("created", Text, nullable=False),
    #: When the reviewer was disabled (none: active): a disabled reviewer cannot sign in, their sessions end.
    Column("disabled", Text),
)

response_orgs = Table(
    "response_orgs",
    metadata,
    Column("claim_response_id", Text, primary_key=True),
    #: A sending system (TransmissionIdentifiers applicationSenderCode) whose request this answer is.
    Column("org", Text, primary_key=True),
)

senders = Table(
    "senders",
    metadata,
    Column("org", Text, primary_key=True),
    #: A client that submitted a request for that sending system (so it may subscribe for it).
    Column("client", Text, primary_key=True),
)

attachment_requests = Table(
    "attachment_requests",
    metadata,
    #: The CDex tracking id the Task carries and a ``$submit-attachment`` echoes: an item's pend reference number.
    Column("tracking", Text, primary_key=True),
    Column("claim_response_id", Text, nullable=False),
    #: The item sequence asked for.
    Column("line", Integer, nullable=False),
    #: The EHR's request (``ServiceRequest/{id}``) whose context is read again with the attachments.
    Column("request", Text, nullable=False),
    #: owed (kept, not yet on the EHR) | requested | in-progress | answered | failed | rejected | cancelled
    Column("status", Text, nullable=False),
    #: The Task's id on the EHR, once written.
    Column("ehr_id", Text),
    Column("due", Text, nullable=False),
    Column("updated", Text, nullable=False),
    #: The CDex Task as built (what is written to the EHR; its contained Patient and PractitionerRole are what
    #: a submission's member and provider are checked against).
    Column("task", Text, nullable=False),
    Index("attachment_requests_status", "status"),
)

attachments = Table(
    "attachments",
    metadata,
    #: The submission's idempotency key (the same content, the same key).
    Column("key", Text, primary_key=True),
    #: The tracking id as ``system|value``.
    Column("tracking", Text, nullable=False),
    Column("received", Text, nullable=False),
    #: held (kept until its request is known and answered) | answered | refused
    Column("status", Text, nullable=False),
    Column("claim_response_id", Text),
    #: Why a held attachment was refused once its request was known (its member or provider differ).
    Column("reason", Text),
    #: The CDex ``$submit-attachment`` Parameters as received.
    Column("payload", Text, nullable=False),
    Index("attachments_status", "status", "received"),
)

review_cases = Table(
    "review_cases",
    metadata,
    #: The ClaimResponse that answers the request.
    Column("id", Text, primary_key=True),
    #: The patient as requests are matched across channels (``adapter.review.cases.CaseContext.patient_key``).
    Column("patient", Text),
    #: When the request was received, as microseconds since the epoch (UTC): earlier requests, duplicates.
    Column("received_us", BigInteger, nullable=False),
    #: The case as read when it was decided (``CaseContext`` JSON): the patient, the history, the items.
    Column("context", Text, nullable=False),
    Index("review_cases_patient", "patient", "received_us"),
)
