"""Real services for tests on 127.0.0.1 (recipes: shared/reference/test-services.md).

With CI=true a missing service fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing(what: str) -> None:
    """A service the test needs is not installed: fail under CI, skip on a laptop."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is not installed; CI must install it (.ci/run)")
    pytest.skip(f"{what} is not installed")


def _pg_bin() -> str | None:
    found = glob.glob("/usr/lib/postgresql/*/bin")
    if not found:
        return None
    return max(found, key=lambda p: int(p.split("/")[4]))


def _as_postgres(*cmd: object) -> None:
    sudo = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*sudo, *map(str, cmd)], check=True, stdout=subprocess.DEVNULL)


def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL cluster; yields a server URL without a database name."""
    pgbin = _pg_bin()
    if pgbin is None or not os.path.exists(f"{pgbin}/initdb"):
        missing("PostgreSQL (Debian package postgresql)")
        return
    tmp = Path(tempfile.mkdtemp(prefix="pg-"))  # not under /tmp/pytest-of-root: that is 0700
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    data, port = tmp / "data", free_port()
    _as_postgres(
        f"{pgbin}/initdb",
        "-D",
        data,
        "-U",
        "postgres",
        "--auth=trust",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
    )
    _as_postgres(
        f"{pgbin}/pg_ctl",
        "-D",
        data,
        "-l",
        tmp / "server.log",
        "-w",
        "-o",
        f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c max_connections=300 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
        "start",
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        _as_postgres(f"{pgbin}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(tmp, ignore_errors=True)


def create_database(server_url: str, name: str) -> None:
    host_port = server_url.rsplit("@", 1)[1]
    host, port = host_port.split(":")
    subprocess.run([f"{_pg_bin()}/createdb", "-h", host, "-p", port, "-U", "postgres", name], check=True)


def redis_server(tmp: Path) -> Iterator[str]:
    if shutil.which("redis-server") is None:
        missing("redis-server (Debian package redis-server)")
        return
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(tmp),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.PIPE,  # redis logs to stdout; its "Ready" line is the event we wait on
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if b"Ready to accept connections" in line:
            break
    else:
        raise RuntimeError(f"redis-server exited with {proc.wait()} before it was ready")
    # Keep reading its log so a full pipe never blocks the server.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
