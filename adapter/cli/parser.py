"""The ``imr-adapter`` argument parser: each command, its flags and the function that runs it."""

from __future__ import annotations

import argparse
from typing import Any, get_args

from adapter.cli.demo import cmd_demo
from adapter.cli.letters import cmd_convert, cmd_determine, cmd_facts, cmd_parse, cmd_to_case
from adapter.cli.servers import cmd_check, cmd_pull, cmd_push, cmd_sandbox
from adapter.cli.service import cmd_db, cmd_replay, cmd_reviewer, cmd_serve, cmd_sync
from adapter.config import AuthType
from adapter.version import __version__


def _server_flags(parser: argparse.ArgumentParser, role: str) -> None:
    """The flags naming a FHIR server and its auth; ``role`` ("ehr" or "payer") is the server by default, whose
    settings and ``IMR_<ROLE>_*`` variables the flags override."""
    group = parser.add_argument_group("server (flags override imr-adapter.toml and IMR_* variables)")
    prefix = f"IMR_{role.upper()}"
    group.add_argument(
        "--server", metavar="URL", help=f"FHIR base URL (default: {role}_url from the settings, else the sandbox's)"
    )
    group.add_argument("--auth", choices=get_args(AuthType), help="how to authenticate")
    group.add_argument("--token", help=f"bearer token (prefer {prefix}_AUTH__TOKEN: flags show in ps)")
    group.add_argument("--username", help="basic auth user")
    group.add_argument("--password", help=f"basic auth password (prefer {prefix}_AUTH__PASSWORD)")
    group.add_argument("--client-id", help="SMART Backend Services client id")
    group.add_argument("--private-key", metavar="PEM", help="SMART client private key (PEM file)")
    group.add_argument("--alg", choices=("RS384", "ES384"), help="SMART assertion signing algorithm")
    group.add_argument("--scope", help="SMART scopes to ask for")
    group.add_argument("--token-url", help="SMART token endpoint (default: discovered)")
    group.add_argument("--timeout", type=float, help="seconds per request (default 30)")


_STATE_HELP = (
    "state database, sqlite:///PATH or postgresql://... (default: service.state_url, else "
    "sqlite:///.state/imr-adapter.db)"
)

_EHR_HELP = "the EHR FHIR server (default: ehr_url from the settings, else the sandbox's)"

_PAYER_HELP = (
    "the payer FHIR server to forward answers to, or 'sandbox' "
    "(default: payer_url from the settings; none: answers are kept, not forwarded)"
)


def _port(text: str) -> int:
    """A TCP port on the command line: 1 to 65535, else a usage error naming it."""
    port = int(text) if text.isdigit() else 0
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (a number from 1 to 65535)")
    return port


def _processes(text: str) -> int:
    """How many processes serve: 1 to 64 (as ``service.processes``), else a usage error naming it."""
    count = int(text) if text.isdigit() else 0
    if not 0 < count <= 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (1 to 64)")
    return count


def _address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` on the command line, as (host, port); the host is 127.0.0.1 when not given."""
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", _port(port)


def _command(commands: Any, name: str, summary: str) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` starts with the summary the command list shows."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=summary[:1].upper() + summary[1:] + "."
    )
    return parser


def _batch(parser: argparse.ArgumentParser, files_help: str, json_help: str) -> None:
    """The flags of a command that reads a batch of files and writes a line of JSON for each: the files, --json
    and --no-progress."""
    parser.add_argument("inputs", nargs="+", metavar="FILE", help=files_help)
    parser.add_argument("--json", action="store_true", help=json_help)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imr-adapter",
        description="Read California IMR letters, map them to FHIR, determine requests and serve the answers.",
        epilog="Settings: imr-adapter.toml in this folder (or the file IMR_CONFIG names), then IMR_* variables, "
        "then flags. Exit codes: 0 done, 1 some inputs or the command failed (one line each on stderr), 2 usage. "
        "'imr-adapter COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"imr-adapter {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    parse = _command(commands, "parse", "parse IMR letters (text or PDF) into cases")
    _batch(parse, "letter files or folders of letters", "one JSON object per letter per line")
    parse.set_defaults(run=cmd_parse)

    convert = _command(commands, "convert", "convert letters to FHIR transaction Bundles or NDJSON")
    convert.add_argument("inputs", nargs="+", metavar="FILE", help="letter files or folders of letters")
    convert.add_argument("--out", default="out", metavar="DIR", help="output folder (default: out)")
    convert.add_argument("--ndjson", action="store_true", help="NDJSON per resource type, for Bulk Data $import")
    convert.add_argument("--pas", action="store_true", help="Da Vinci PAS request Bundles (<case>.pas.json), checked")
    convert.add_argument("--fhir-version", choices=("R4", "R5"), default="R4", help="FHIR version (default: R4)")
    convert.add_argument("--validate", action="store_true", help="validate each Bundle with fhir.resources")
    convert.add_argument("--no-progress", action="store_true", help="no progress bar")
    convert.set_defaults(run=cmd_convert)

    to_case = _command(commands, "to-case", "read a FHIR Bundle (R4 or R5) back as a case (JSON)")
    to_case.add_argument("bundle", metavar="BUNDLE", help="a Bundle JSON file")
    to_case.set_defaults(run=cmd_to_case)

    box = _command(commands, "sandbox", "the local sandbox FHIR servers (EHR and payer)")
    box.add_argument("action", choices=("up", "down", "status"))
    box.add_argument("--keep-data", action="store_true", help="up: keep the servers' data from the last run")
    box.add_argument("--postgres", action="store_true", help="up: also start a PostgreSQL (for the service state)")
    box.set_defaults(run=cmd_sandbox)

    push = _command(commands, "push", "convert letters and post their transaction Bundles to a FHIR server")
    push.add_argument("inputs", nargs="+", metavar="FILE", help="letter files or folders of letters")
    push.add_argument("--concurrency", type=int, help="transactions in flight at once (default 8)")
    push.add_argument("--failed-list", metavar="FILE", help="write the paths of failed letters here")
    push.add_argument("--no-progress", action="store_true", help="no progress bar")
    _server_flags(push, "ehr")
    push.set_defaults(run=cmd_push)

    facts = _command(commands, "facts", "print every fact the determination reads, with its status, quote and source")
    _batch(facts, "letters, FHIR requests or Bundles, or folders of them", "one JSON object per input per line")
    facts.set_defaults(run=cmd_facts)

    pull = _command(commands, "pull", "fetch the adapter's ClaimResponses back from a server as cases")
    pull.add_argument("--since", metavar="DATE", help="only those changed since (ISO date or date-time)")
    pull.add_argument("--json", action="store_true", help="one case JSON per line")
    _server_flags(pull, "payer")
    pull.set_defaults(run=cmd_pull)

    judge = _command(commands, "determine", "guideline determinations for letters, ServiceRequests or Bundles")
    _batch(
        judge, "letters (.txt, .pdf), FHIR JSON files (.json) or folders of them", "one JSON object per input per line"
    )
    judge.add_argument(
        "--adverse",
        choices=["pend", "decide"],
        help="adverse recommendations: pend for a physician, in the words of the review.jurisdiction setting's table "
        "(default), or send as they are",
    )
    judge.set_defaults(run=cmd_determine)

    check = _command(commands, "check", "a conformance smoke test of a FHIR server")
    _server_flags(check, "ehr")
    check.set_defaults(run=cmd_check)

    serve = _command(commands, "serve", "run the adapter's HTTP service (EHR push, payer pull)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0: all)")
    serve.add_argument("--port", type=_port, default=8080, help="port to listen on (default: 8080)")
    serve.add_argument("--state", metavar="URL", help=_STATE_HELP)
    serve.add_argument("--payer", metavar="URL", help=_PAYER_HELP)
    serve.add_argument("--processes", type=_processes, metavar="N",
                       help="processes serving the port, one per core (default: service.processes, 1)")  # fmt: skip
    serve.set_defaults(run=cmd_serve)

    db = _command(commands, "db", "the service's state database: bring it to the newest schema, or show it")
    db.add_argument("action", choices=["upgrade", "current"])
    db.add_argument("--state", metavar="URL", help=_STATE_HELP)
    db.set_defaults(run=cmd_db)

    reviewer = _command(commands, "reviewer", "the physician reviewers who sign in to the review page and decide")
    actions = reviewer.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="record a reviewer (the password is asked for, or read from a file or stdin)")
    add.add_argument("--npi", required=True, help="the reviewer's NPI (10 digits, its check digit right)")
    add.add_argument("--name", required=True, help="the name their decisions carry")
    add.add_argument("--email", help="an email they may sign in with instead of the NPI")
    add.add_argument("--password-file", metavar="FILE", help="the password is this file's first line ('-': stdin)")
    add.add_argument("--subject", help="the OpenID Connect subject (sub) they sign in as")
    add.add_argument("--no-password", action="store_true", help="no password: signs in through OpenID Connect only")
    disable = actions.add_parser("disable", help="a reviewer may no longer sign in; their sessions end")
    disable.add_argument("--npi", required=True, help="the reviewer's NPI")
    listing = actions.add_parser("list", help="every reviewer, with how they sign in and whether they are active")
    for action in (add, disable, listing):
        action.add_argument("--state", metavar="URL", help=_STATE_HELP)
    reviewer.set_defaults(run=cmd_reviewer)

    sync = _command(commands, "sync", "keep the EHR and payer servers in step")
    sync.add_argument("--ehr", metavar="URL", help=_EHR_HELP)
    sync.add_argument("--payer", metavar="URL", help=_PAYER_HELP)
    sync.add_argument("--once", action="store_true", help="one pass, then exit")
    sync.add_argument(
        "--listen",
        metavar="[HOST:]PORT",
        type=_address,
        help="take rest-hook notifications here (a Subscription on the EHR; host default: 127.0.0.1)",
    )
    sync.add_argument("--state", metavar="URL", help=_STATE_HELP)
    sync.add_argument("--backfill", action="store_true",
                      help="first determine everything the EHR holds, from a Bulk Data $export; then poll")  # fmt: skip
    sync.add_argument("--since", metavar="INSTANT", help="backfill: only what changed since (the export's _since)")
    sync.add_argument("--group", metavar="ID", help="backfill: export one Group's patients (Group/ID/$export)")
    sync.add_argument("--patients", action="store_true", help="backfill: a Patient-level export (Patient/$export)")
    sync.set_defaults(run=cmd_sync)

    replay = _command(commands, "replay", "determine the dead letters again")
    replay.add_argument("--ehr", metavar="URL", help=_EHR_HELP)
    replay.add_argument("--payer", metavar="URL", help=_PAYER_HELP)
    replay.add_argument("--state", metavar="URL", help=_STATE_HELP)
    replay.set_defaults(run=cmd_replay)

    demo = _command(commands, "demo", "the main job: sandbox servers, service, worker, report")
    demo.add_argument("--out", default="out", help="where the HTML report goes (default: out)")
    demo.set_defaults(run=cmd_demo)
    return parser
