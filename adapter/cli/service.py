"""The commands of the service: serve, db, sync and replay."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import signal
import sys
import tempfile
import time
from concurrent.futures import BrokenExecutor
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from adapter.cli.console import (
    stderr,
    stdout,
)
from adapter.cli.settings import resolve
from adapter.errors import AdapterError, ConfigError, FHIRServerError, InputError, StateError, TransportError
from adapter.service import Wiring, wire
from adapter.service.hooks import HookListener, subscribe, unsubscribe
from adapter.service.server import cannot_listen


def cmd_serve(args: argparse.Namespace) -> int:
    from adapter.determination.recall import FACTS
    from adapter.service import logs, metrics, server
    from adapter.service.pipeline import warm_up

    settings = resolve(args)
    update = {"processes": args.processes} if args.processes is not None else {}
    if "base_url" not in settings.service.model_fields_set:
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        update["base_url"] = f"http://{host}:{args.port}/fhir"
    settings = settings.model_copy(update={"service": settings.service.model_copy(update=update)})
    processes = settings.service.processes
    logs.configure(settings.service.log_format)
    sock = server.listen(args.host, args.port)  # a port in use stops here, before any state is opened
    with contextlib.ExitStack() as stack:
        stack.callback(sock.close)
        if processes > 1:  # counted together before the app's metrics are made (forked processes count apart)
            metrics.count_across_processes(stack.enter_context(tempfile.TemporaryDirectory(prefix="imr-metrics-")))
            # a patient's notes read once among the processes, not once by each
            FACTS.share(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="imr-facts-"))))
            stack.callback(FACTS.unshare)
        wiring = wire(settings)
        app = wiring.app()  # the tokens and the JWKS are read here
        warm_up()  # the tables and rules: a broken one is one line here, not a traceback from the app's start
        wiring.store.close()  # no database connection crosses a fork (the app opens its own as it needs them)
        where = settings.payer if settings.forwarding else "nowhere (no payer named: --payer URL or --payer sandbox)"
        line = f"serving {settings.service.base_url} (API page: /docs); answers forwarded to {where}"
        if processes > 1:
            line += f", from {processes} processes"
        started = server.run(app, sock, ready=lambda: logging.getLogger("adapter.service").info(line),
                             processes=processes)  # fmt: skip
    return 0 if started else 1


def cmd_db(args: argparse.Namespace) -> int:
    from adapter.service.state import Store

    store = Store(resolve(args).service.state_url, migrate=args.action == "upgrade")
    revision, head = store.revision(), store.head()
    stdout.print(f"state schema: {revision or 'empty'} (newest: {head})")
    return 0 if revision == head else 1


def _password(args: argparse.Namespace) -> str | None:
    """The new reviewer's password: from --password-file ('-': stdin's first line), asked twice at a terminal,
    else stdin's first line; none with --no-password (OpenID Connect only)."""
    if args.no_password:
        return None
    source = args.password_file
    if source is None and sys.stdin.isatty():
        first, again = getpass.getpass("password: "), getpass.getpass("again: ")
        if first != again:
            raise InputError("the two passwords differ")
        return first
    try:
        text = sys.stdin.readline() if source in (None, "-") else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--password-file {source}: cannot be read ({exc})") from exc
    return text.splitlines()[0] if text.strip() else ""


def cmd_reviewer(args: argparse.Namespace) -> int:
    from adapter.service.reviewers import Reviewers
    from adapter.service.state import Store

    service = resolve(args).service
    store = Store(service.state_url, migrate=service.auto_migrate)
    if not service.auto_migrate:
        store.require_current()
    table = Reviewers(store)
    if args.action == "add":
        if args.no_password and not args.subject:
            raise ConfigError("--no-password needs --subject: the reviewer signs in only through OpenID Connect")
        added = table.add(
            npi=args.npi, name=args.name, email=args.email, subject=args.subject, password=_password(args)
        )
        stdout.print(f"reviewer added: {added.name}, NPI {added.npi}", markup=False)
    elif args.action == "disable":
        disabled = table.disable(args.npi)
        stdout.print(f"reviewer disabled: {disabled.name}, NPI {disabled.npi} (their sessions end)", markup=False)
    else:
        rows = Table("NPI", "name", "email", "signs in with", "status")
        for r in table.all():
            ways = ", ".join(w for w, on in (("password", r.has_password), (f"OIDC {r.subject}", r.subject)) if on)
            status = f"disabled {r.disabled[:10]}" if r.disabled else "active"
            rows.add_row(r.npi, escape(r.name), escape(r.email or ""), escape(ways or "nothing"), status)
        stdout.print(rows)
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    # Ctrl-C ends the loop in order (the EHR Subscription removed, the processes stopped) even when the command
    # was started with SIGINT ignored, as a shell does for a background job
    signal.signal(signal.SIGINT, signal.default_int_handler)
    wiring = wire(resolve(args))
    worker = wiring.worker()
    worker.pool()  # the determination processes forked before the hook listener's thread exists
    listener, subscription = None, None
    if args.listen and not args.once:
        host, port = args.listen
        try:
            listener = HookListener(host, port)
        except OSError as exc:
            worker.close()
            raise cannot_listen(host, port, exc, flag="--listen port") from exc
        listener.start()
        subscription = subscribe(worker.ehr, listener)
        where = f"Subscription/{subscription}" if subscription else "none: the EHR server has no Subscriptions; polling"
        stdout.print(f"sync: listening for EHR notifications on {listener.url} ({where})")
    try:
        if args.backfill:
            _backfill(args, worker)
        return _sync_loop(args, wiring, worker, listener)
    finally:
        worker.close()
        if listener is not None:
            unsubscribe(worker.ehr, subscription)
            listener.stop()


def _backfill(args: argparse.Namespace, worker: Any) -> None:
    """Everything the EHR holds, from a Bulk Data export, with a progress bar; then polling takes over."""
    from adapter.service.backfill import backfill

    bar = Progress(TextColumn("backfill"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=stderr, disable=not stderr.is_terminal, transient=True)  # fmt: skip
    with bar:
        task = bar.add_task("backfill", total=None)
        report = backfill(worker, since=args.since, group=args.group, patients=args.patients,
                          progress=lambda done, total: bar.update(task, completed=done, total=total))  # fmt: skip
    stdout.print(
        f"backfill: {report.exported} resources exported; {report.seen} requests, {report.decided} decided, "
        f"{report.skipped} already done, {report.dead} to dead letters, {report.delivered} delivered to the payer; "
        f"polling continues from {report.transaction_time}"
    )


#: The longest wait between two passes while the EHR or the state database keeps failing.
MAX_SYNC_BACKOFF = 300.0


def _sync_loop(args: argparse.Namespace, wiring: Wiring, worker: Any, listener: HookListener | None) -> int:
    failures = 0
    while True:
        try:
            report = worker.run_once()
        except (TransportError, FHIRServerError, StateError, BrokenExecutor) as exc:
            if args.once:
                raise
            # the pass stopped with its cursor where it was (the EHR unreachable or refusing us, a next link off
            # its base, the state down): nothing is lost, the next pass takes it up
            failures += 1
            wait = min(MAX_SYNC_BACKOFF, wiring.settings.service.poll_seconds * 2 ** min(failures, 8))
            reason = str(exc) if isinstance(exc, AdapterError) else f"the determination processes stopped ({exc})"
            stderr.print(f"sync: {reason}; next pass in {wait:.0f} s", markup=False)
            if isinstance(exc, BrokenExecutor):
                worker.close()  # new processes at the next pass
            time.sleep(wait)
            continue
        failures = 0
        stdout.print(
            f"sync: {report.seen} seen, {report.decided} decided, {report.skipped} already done, "
            f"{report.dead} to dead letters, {report.delivered} delivered to the payer; "
            f"{wiring.store.outbox_pending()} waiting for the payer"
        )
        if args.once:
            return 0
        if listener is not None:  # a notification starts the next pass at once; polling goes on beside it
            listener.notified.wait(wiring.settings.service.poll_seconds)
            listener.notified.clear()
        else:
            time.sleep(wiring.settings.service.poll_seconds)


def cmd_replay(args: argparse.Namespace) -> int:
    wiring = wire(resolve(args))
    with wiring.worker() as worker:
        report = worker.replay()
    for error in report.errors:
        stderr.print(f"error: {error}", markup=False)
    stdout.print(f"replay: {report.decided} dead letters determined again, {report.delivered} delivered")
    return 1 if report.errors else 0
