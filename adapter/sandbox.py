"""Two local sandbox FHIR servers, "ehr" and "payer": sekmet-fhir, pinned, in its own virtualenv.

``up`` installs the server if needed (``.sandbox/venv``), starts each instance on 127.0.0.1 with its
workflow simulator off and fresh data (unless ``keep_data``), and waits until ``/metadata`` answers;
``down`` stops them by their process ids; ``status`` reports them. Everything lives under
``settings.sandbox.dir``.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from adapter.config import SANDBOX_CLIENT_ID, SEKMET_VERSION, SandboxSettings
from adapter.errors import SandboxError

NAMES = ("ehr", "payer")
SANDBOX_BASIC_USER = "imr-adapter"


@dataclass
class ServerStatus:
    name: str
    url: str
    pid: int | None
    running: bool
    answering: bool


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (for a server about to start)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start_service(env: dict[str, str], port: int, *, timeout: float = 120.0) -> subprocess.Popen[bytes]:
    """``imr-adapter serve`` in a process of its own on 127.0.0.1:``port``, once it answers /metadata; its
    log lines go to a file (a pipe nobody reads would fill and stall it), kept while this process runs and removed
    when it ends."""
    folder = tempfile.mkdtemp(prefix="imr-serve-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    log = Path(folder) / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "adapter.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    deadline = time.monotonic() + timeout
    while not _answering(f"http://127.0.0.1:{port}/fhir"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            reason = log.read_text(errors="replace")[-500:]
            raise SandboxError(f"the adapter service did not start on port {port}: {reason}")
        time.sleep(0.1)
    return process


def _venv(settings: SandboxSettings) -> Path:
    return settings.dir / "venv"


def _server_bin(settings: SandboxSettings) -> Path:
    return _venv(settings) / "bin" / "sekmet"


#: Seconds between two lines saying an install is still going.
PROGRESS_EVERY = 10.0


def _run_saying(command: list[str], say: Callable[[str], None], *, location: Path) -> None:
    """Run an install command with its output in a temporary file, saying every ``PROGRESS_EVERY`` seconds how
    long it has run and how many packages pip has collected; ``SandboxError`` with its last line if it fails."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                process.wait(timeout=PROGRESS_EVERY)
                break
            except subprocess.TimeoutExpired:
                out.seek(0)
                collected = out.read().count(b"Collecting ")
                say(f"    ... {time.monotonic() - started:.0f} s, {collected} packages collected so far")
        if process.returncode:
            out.seek(0)
            last = out.read().decode(errors="replace").strip().splitlines()[-1:] or [f"exit {process.returncode}"]
            raise SandboxError(f"could not install sekmet-fhir: {last[0]}", location=str(location))


def install(settings: SandboxSettings, *, log: bool = True) -> Path:
    """Install sekmet-fhir (pinned) into the sandbox's own virtualenv unless it is there already."""
    venv, marker = _venv(settings), _venv(settings) / f".sekmet-{SEKMET_VERSION}"
    if marker.exists() and _server_bin(settings).exists():
        return _server_bin(settings)
    settings.dir.mkdir(parents=True, exist_ok=True)

    def say(line: str) -> None:
        if log:
            print(line, file=sys.stderr)

    say(f"installing the sandbox FHIR server, sekmet-fhir=={SEKMET_VERSION}, into {venv} (first run only) ...")
    started = time.monotonic()
    _run_saying([sys.executable, "-m", "venv", str(venv)], say, location=venv)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
    _run_saying([*pip, f"sekmet-fhir=={SEKMET_VERSION}"], say, location=venv)
    say(f"installed sekmet-fhir in {time.monotonic() - started:.0f} s")
    marker.touch()
    return _server_bin(settings)


def _instance_dir(settings: SandboxSettings, name: str) -> Path:
    return settings.dir / name


def _pid_file(settings: SandboxSettings, name: str) -> Path:
    return _instance_dir(settings, name) / "server.pid"


#: SMART clients the payer sandbox registers: (client id, key file, scopes).
SMART_CLIENTS = (
    (SANDBOX_CLIENT_ID, "client-rs384", "system/*.*"),
    (f"{SANDBOX_CLIENT_ID}-es384", "client-es384", "system/*.*"),
    (f"{SANDBOX_CLIENT_ID}-reader", "client-reader-rs384", "system/*.read"),
)


def ensure_keys(settings: SandboxSettings) -> None:
    """The client key pairs and the static bearer token the payer sandbox accepts (made once)."""
    settings.keys.mkdir(parents=True, exist_ok=True)
    for _, name, _ in SMART_CLIENTS:
        private = settings.keys / f"{name}.pem"
        if private.exists():
            continue
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
            ec.generate_private_key(ec.SECP384R1()) if "es384" in name else rsa.generate_private_key(65537, 2048)
        )
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        private.chmod(0o600)
        (settings.keys / f"{name}.pub.pem").write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    for secret in ("payer-token", "payer-password"):
        path = settings.keys / secret
        if not path.exists():
            path.write_text(os.urandom(24).hex())
            path.chmod(0o600)


def _server_config(settings: SandboxSettings, name: str) -> dict[str, object]:
    port = settings.ehr_port if name == "ehr" else settings.payer_port
    folder = _instance_dir(settings, name)
    if name == "ehr":  # an open EHR sandbox, as many are
        auth: dict[str, object] = {"types": ["none"]}
    else:  # the payer wants SMART Backend Services (or the static token, or basic auth)
        auth = {
            "types": ["smart", "bearer", "basic"],
            "tokens": [(settings.keys / "payer-token").read_text().strip()],
            "users": {SANDBOX_BASIC_USER: (settings.keys / "payer-password").read_text().strip()},
            "smart_clients": [
                {"client_id": cid, "public_key_path": str(settings.keys / f"{key}.pub.pem"), "scopes": scopes}
                for cid, key, scopes in SMART_CLIENTS
            ],
            "token_lifetime": 300,
        }
    return {
        "base_url": settings.url(name),
        "host": settings.host,
        "port": port,
        "data_dir": str(folder / "data"),
        "facility_name": f"IMR adapter sandbox ({name})",
        "simulator": {"enabled": False},
        "log_inbound": False,
        "server_auth": auth,
        "own_private_key_path": str(folder / "keys" / "server_private.pem"),
    }


def _pid(settings: SandboxSettings, name: str) -> int | None:
    try:
        return int(_pid_file(settings, name).read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answering(url: str) -> bool:
    try:
        return httpx.get(f"{url}/metadata", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def status(settings: SandboxSettings) -> list[ServerStatus]:
    out = []
    for name in NAMES:
        pid = _pid(settings, name)
        url = settings.url(name)
        out.append(ServerStatus(name, url, pid, _alive(pid), _answering(url)))
    return out


def up(settings: SandboxSettings, *, keep_data: bool = False, names: tuple[str, ...] = NAMES) -> list[ServerStatus]:
    """Start the servers (fresh data unless ``keep_data``) and wait until they answer."""
    server = install(settings)
    ensure_keys(settings)
    started = []
    for name in names:
        url = settings.url(name)
        if _alive(_pid(settings, name)):
            if keep_data and _answering(url):
                continue
            _stop(settings, name)
        if _answering(url):
            raise SandboxError(f"another server already answers at {url}", location=name)
        folder = _instance_dir(settings, name)
        data = folder / "data"
        if not keep_data and data.exists():
            shutil.rmtree(data)
        (folder / "keys").mkdir(parents=True, exist_ok=True)
        config = folder / "settings.yaml"
        config.write_text(yaml.safe_dump(_server_config(settings, name), sort_keys=False))
        with (folder / "server.log").open("ab") as log:
            process = subprocess.Popen(
                [
                    str(server),
                    "serve",
                    "-c",
                    str(config),
                    "--host",
                    settings.host,
                    "--port",
                    str(settings.ehr_port if name == "ehr" else settings.payer_port),
                ],
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _pid_file(settings, name).write_text(str(process.pid))
        started.append((name, url, process))
    began = time.monotonic()
    deadline, said = began + settings.start_timeout, began
    for name, url, process in started:
        while not _answering(url):
            if time.monotonic() - said >= PROGRESS_EVERY:  # a first start can take a while: say so
                said = time.monotonic()
                print(f"    ... waiting for the {name} server to answer ({said - began:.0f} s)", file=sys.stderr)
            if process.poll() is not None:
                raise SandboxError(
                    f"the {name} server exited with code {process.returncode}; see its log",
                    location=str(_instance_dir(settings, name) / "server.log"),
                )
            if time.monotonic() > deadline:
                raise SandboxError(f"the {name} server did not answer {url}/metadata in time", location=name)
            time.sleep(0.2)
    return status(settings)


def _stop(settings: SandboxSettings, name: str) -> bool:
    pid = _pid(settings, name)
    stopped = False
    if _alive(pid):
        assert pid is not None
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
        stopped = True
    _pid_file(settings, name).unlink(missing_ok=True)
    return stopped


def down(settings: SandboxSettings, names: tuple[str, ...] = NAMES, *, postgres: bool = True) -> list[str]:
    """Stop the servers (and the PostgreSQL, unless told not to) by their process ids; those that ran."""
    stopped = [name for name in names if _stop(settings, name)]
    if postgres and postgres_down(settings):
        stopped.append("postgres")
    return stopped


# --- PostgreSQL, for the state of several service replicas ------------------------------------------------


#: Where Debian keeps ``runuser`` (util-linux), whatever the PATH says.
_SBIN_RUNUSER = (Path("/usr/sbin/runuser"), Path("/sbin/runuser"))


def _pg_bin(tool: str) -> str | None:
    found = shutil.which(tool)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return str(versions[0] / tool) if versions and (versions[0] / tool).exists() else None


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL will not run as root: as root, run it as the system's postgres user (``runuser`` found in the
    system's sbin folders too, which a PATH such as cron's leaves out)."""
    if os.geteuid() != 0:
        return command
    found = shutil.which("runuser") or next((str(p) for p in _SBIN_RUNUSER if p.exists()), "runuser")
    return [found, "-u", "postgres", "--", *command]


def _postgres_dir(settings: SandboxSettings) -> Path:
    """Under the sandbox folder; as root, under the system's temp folder instead, because the postgres
    user must be able to reach it (a checkout under /root is closed to it)."""
    if os.geteuid() == 0:
        tag = hashlib.sha1(str(settings.dir.resolve()).encode()).hexdigest()[:8]  # one per sandbox folder
        return Path(tempfile.gettempdir()) / f"imr-adapter-postgres-{tag}-{settings.postgres_port}"
    return settings.dir / "postgres"


def postgres_up(settings: SandboxSettings, *, fresh: bool = True) -> str | None:
    """A PostgreSQL on 127.0.0.1 for the tests (``fresh``: with new, empty data; else the data it had when
    it was stopped); its URL, or None when PostgreSQL is not installed."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        return None
    folder = _postgres_dir(settings)
    data = folder / "data"
    postgres_down(settings)
    try:
        if fresh or not data.exists():
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            if os.geteuid() == 0:
                shutil.chown(folder, "postgres", "postgres")
            subprocess.run(
                _as_postgres_user([initdb, "-D", str(data), "-A", "trust", "-U", "postgres"]),
                check=True,
                capture_output=True,
                text=True,
            )
        subprocess.run(
            _as_postgres_user(
                [
                    pg_ctl,
                    "-D",
                    str(data),
                    "-l",
                    str(folder / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-p {settings.postgres_port} -k {folder} -c listen_addresses={settings.host}",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        raise SandboxError(
            f"PostgreSQL would not start: {(exc.stderr or '').strip()[-300:]}", location=str(folder)
        ) from exc
    return settings.postgres_url


def postgres_down(settings: SandboxSettings) -> bool:
    data = _postgres_dir(settings) / "data"
    pg_ctl = _pg_bin("pg_ctl")
    if pg_ctl is None or not (data / "postmaster.pid").exists():
        return False
    subprocess.run(_as_postgres_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True)
    return True


@contextmanager
def scratch_database(settings: SandboxSettings) -> Iterator[str]:
    """A database of its own on the sandbox PostgreSQL (for a test or a benchmark that must not share one),
    dropped after, connections and all; its URL."""
    from sqlalchemy import create_engine, text  # only here: the rest of the sandbox runs without it

    admin = create_engine(settings.postgres_url, isolation_level="AUTOCOMMIT")
    name = f"imr_scratch_{os.urandom(4).hex()}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{settings.postgres_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
