"""The one settings resolver of the command line: the config file, then the environment, then the flags."""

from __future__ import annotations

import argparse

from adapter.config import AuthSettings, Settings, load_settings, state_url_problem, url_problem
from adapter.errors import ConfigError


def resolve(args: argparse.Namespace) -> Settings:
    """The settings one command runs with: imr-adapter.toml (or the file IMR_CONFIG names), then IMR_*
    variables, then the command's own flags (--timeout, --concurrency, --ehr, --payer, --state, --adverse).
    Every command reads its settings here, once; a flag that is wrong is a ``ConfigError`` naming it."""
    settings = load_settings(
        timeout=getattr(args, "timeout", None),
        concurrency=getattr(args, "concurrency", None),
        ehr_url=getattr(args, "ehr", None),
        payer_url=getattr(args, "payer", None),
    )
    if state := getattr(args, "state", None):
        if problem := state_url_problem(state):
            raise ConfigError(f"--state: {problem}")
        settings = settings.model_copy(update={"service": settings.service.model_copy(update={"state_url": state})})
    if adverse := getattr(args, "adverse", None):
        determination = settings.determination.model_copy(update={"adverse": adverse})
        settings = settings.model_copy(update={"determination": determination})
    return settings


def server(args: argparse.Namespace, role: str) -> tuple[Settings, str, AuthSettings]:
    """The settings, and the server URL and auth of a command that talks to one FHIR server: --server and the
    auth flags over the settings' ``role`` server ("ehr" or "payer"), the sandbox's when none is set."""
    settings = resolve(args)
    if args.server and (problem := url_problem(args.server)):
        raise ConfigError(f"--server: {problem}")
    url = args.server or (settings.ehr if role == "ehr" else settings.payer)
    if args.auth is not None:
        fields = ("token", "username", "password", "client_id", "private_key", "alg", "scope", "token_url")
        values = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
        auth = AuthSettings.model_validate({"type": args.auth, **values})
    else:  # a known server (the EHR or the payer, as configured) brings its own auth
        known = {settings.ehr.rstrip("/"): "ehr", settings.payer.rstrip("/"): "payer"}
        match = known.get(url.rstrip("/"))
        auth = settings.auth(match) if match else AuthSettings()
    return settings, url, auth
