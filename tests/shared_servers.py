"""Real Redis and PostgreSQL servers for the scale-out tests, started as plain processes.

Each runs on a free loopback port with its data in a fresh temporary directory, and is
stopped at the end of the session. Without the binaries the tests skip, except in CI
(``THRIFTY_CI`` set), where a missing server is a failure: ``.ci/run`` installs them.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from thrifty.cli.processes import free_port


def _missing(what: str) -> None:
    message = f"{what} is not installed (apt-get install redis-server postgresql)"
    if os.environ.get("THRIFTY_CI"):
        pytest.fail(message + "; THRIFTY_CI is set, so this is an error")
    pytest.skip(message)


class RedisServer:
    """``redis-server`` without persistence; ``restart`` keeps the port, loses the data."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no",
        ]  # fmt: skip
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on {self.port}") from None
                time.sleep(0.02)
        client.close()
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PostgresServer:
    """A throwaway cluster (``initdb`` + ``pg_ctl``), run as user ``postgres`` under root."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="thrifty-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.root, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresServer:
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self._start()
        return self

    def _start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-w",
            "-l", str(self.root / "postgres.log"), "start",
        )  # fmt: skip

    def restart(self) -> None:
        """Stop (dropping every connection) and start again on the same port and data."""
        self.halt()
        self.resume()

    def halt(self) -> None:
        """Stop the server, dropping every connection; data and port are kept."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start again after :meth:`halt`."""
        self._start()  # (``pg_ctl restart`` would log to our pipe and never let it close)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its DSN."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.dsn(name)

    def stop(self) -> None:
        subprocess.run(
            [*self._as, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("redis-server")
    return str(binary)


@pytest.fixture(scope="session")
def redis_server(
    redis_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    pytest.importorskip("redis", reason="pip install 'thrifty[redis]'")
    server = RedisServer(redis_binary, tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(redis_binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, for tests that stop or restart it."""
    pytest.importorskip("redis", reason="pip install 'thrifty[redis]'")
    server = RedisServer(redis_binary, tmp_path).start()
    yield server
    server.stop()


def _running_postgres() -> Iterator[PostgresServer]:
    pytest.importorskip("psycopg", reason="pip install 'thrifty[postgres]'")
    initdb = pg_bin("initdb")
    if initdb is None:
        _missing("PostgreSQL (initdb)")
    server = PostgresServer(Path(str(initdb)).parent).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    yield from _running_postgres()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of the test's own, for tests that stop it (``halt``/``resume``)."""
    yield from _running_postgres()


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> str:
    return postgres_server.new_database()


@pytest.fixture
def redis_prefix() -> str:
    """Keys of one test, apart from every other test's in the shared server."""
    return f"t{uuid.uuid4().hex[:8]}:"
