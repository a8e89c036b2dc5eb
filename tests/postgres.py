"""A throwaway PostgreSQL server for the tests, started from the machine's own binaries."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(name: str) -> str | None:
    """On PATH, or where Debian's postgresql package puts the server programs."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return str(candidates[0]) if candidates else None


def _as_postgres(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root, so drop to the postgres user there.
    args = [_binary(args[0]) or args[0], *args[1:]]
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class TemporaryPostgres:
    def __init__(self):
        if not _binary("initdb") or not _binary("pg_ctl"):
            raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed.")
        self.dir = Path(tempfile.mkdtemp(prefix="medal-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.dir.chmod(0o777)

    def start(self) -> "TemporaryPostgres":
        def run(args: list[str]) -> None:
            subprocess.run(_as_postgres(args), check=True, capture_output=True, text=True)

        try:
            run(["initdb", "-D", str(self.data), "-A", "trust", "-U", "medal", "--no-sync"])
            run(
                [
                    "pg_ctl",
                    "-D",
                    str(self.data),
                    "-w",
                    "-l",
                    str(self.dir / "log"),
                    "-o",
                    f"-p {self.port} -k {self.dir} -c listen_addresses='' -c fsync=off",
                    "start",
                ]
            )
        except subprocess.CalledProcessError as error:
            raise PostgresUnavailable(f"PostgreSQL did not start: {error.stderr.strip()}") from None
        return self

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://medal@/{database}?host={self.dir}&port={self.port}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host={self.dir} port={self.port} user=medal dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(_as_postgres(["pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
