"""Throwaway PostgreSQL 15 clusters for tests (Python 3 standard library only).

Creates clusters with Debian's /usr/lib/postgresql/15/bin tools in temp dirs,
listening on a unix socket dir of their own and on a loopback port, with the
durability settings counterd is meant to run with (fsync on,
synchronous_commit on). PostgreSQL refuses to run as root, so when the tests
run as root (CI does) the server runs as a system user ``counterd-pg``,
created on first use, and the temp dirs are handed to it.

    from pg_cluster import PgCluster, primary_with_standby

    with PgCluster() as pg:                   # initdb + start
        pg.create_database("counterd")
        url = pg.url("counterd")             # postgresql://127.0.0.1:PORT/counterd?...
        pg.psql("SELECT 1", db="counterd")   # -> "1"
        pg.stop("immediate"); pg.start()     # crash and restart

    primary, standby = primary_with_standby()  # streaming, synchronous
    primary.stop("immediate"); standby.promote()

Every cluster is torn down at exit (atexit) if a test forgot: ``pg_ctl stop
-m immediate``, then SIGKILL of the postmaster it started (by the pid in
postmaster.pid) and a wait for its children, so no process is left behind.
Knobs: COUNTERD_PG_BIN (default /usr/lib/postgresql/15/bin),
COUNTERD_PG_TMPDIR (default /tmp), COUNTERD_TEST_KEEP=1 keeps the temp dirs.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Optional

__all__ = ["PG_BIN", "PG_USER", "PgCluster", "PgError", "available",
           "primary_with_standby", "multi_host_url"]

PG_BIN = os.environ.get("COUNTERD_PG_BIN", "/usr/lib/postgresql/15/bin")
PG_USER = "counterd-pg"  # system user the server runs as when we are root
SUPERUSER = "postgres"   # the cluster's bootstrap role (initdb -U)
_LIVE: "set[PgCluster]" = set()


class PgError(RuntimeError):
    pass


def available() -> bool:
    """True if the PostgreSQL server binaries are installed."""
    return all(os.access(os.path.join(PG_BIN, t), os.X_OK)
               for t in ("initdb", "pg_ctl", "postgres", "pg_basebackup"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_root() -> bool:
    return os.geteuid() == 0


def _ensure_user() -> None:
    try:
        pwd.getpwnam(PG_USER)
        return
    except KeyError:
        pass
    r = subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir",
                        "/nonexistent", "--shell", "/usr/sbin/nologin", PG_USER],
                       capture_output=True, text=True)
    # Another test process may have created it meanwhile (exit 9: exists).
    if r.returncode not in (0, 9):
        raise PgError(f"useradd {PG_USER}: {r.stderr.strip()}")


def _server_cmd(argv: list[str]) -> list[str]:
    """argv as the server's user: through runuser when we are root."""
    if _as_root():
        return ["runuser", "-u", PG_USER, "--"] + argv
    return argv


def _chown_to_server(path: str) -> None:
    if _as_root():
        pw = pwd.getpwnam(PG_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


class PgCluster:
    """One PostgreSQL cluster in a temp dir. Not thread-safe."""

    def __init__(self, name: str = "pg", *, settings: Optional[dict] = None,
                 start: bool = True, _init: bool = True):
        if not available():
            raise PgError(f"PostgreSQL server binaries not found in {PG_BIN} "
                          "(scripts/install-deps test installs postgresql-15)")
        if _as_root():
            _ensure_user()
        self.name = name
        # The server's user must reach the dir: under /tmp (not a $TMPDIR
        # that may sit in root's home) unless COUNTERD_PG_TMPDIR says where.
        self.base = tempfile.mkdtemp(prefix=f"counterd-{name}-",
                                     dir=os.environ.get("COUNTERD_PG_TMPDIR", "/tmp"))
        os.chmod(self.base, 0o755)
        self.data_dir = os.path.join(self.base, "data")
        self.socket_dir = os.path.join(self.base, "sock")
        self.log_file = os.path.join(self.base, "server.log")
        os.mkdir(self.socket_dir, 0o755)
        _chown_to_server(self.base)
        _chown_to_server(self.socket_dir)
        self.port = _free_port()
        self.settings = dict(settings or {})
        self._pid: Optional[int] = None
        _LIVE.add(self)
        if _init:
            self._initdb()
            self._configure()
            if start:
                self.start()

    # -- setup ----------------------------------------------------------------
    def _run(self, argv: list[str], *, check: bool = True, timeout: float = 120,
             as_server: bool = True) -> subprocess.CompletedProcess:
        cmd = _server_cmd(argv) if as_server else argv
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           cwd=self.base, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise PgError(f"{' '.join(argv)} -> {r.returncode}\n{r.stdout}{r.stderr}"
                          f"{self._log_tail()}")
        return r

    def _initdb(self) -> None:
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data_dir, "-U", SUPERUSER,
                   "--auth=trust", "-E", "UTF8", "--locale=C", "--no-instructions",
                   # A throwaway cluster: skip syncing the initial files (the
                   # server itself runs with fsync on).
                   "--no-sync"])

    def _configure(self) -> None:
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            # The durability counterd promises rests on these two.
            "fsync": "on",
            "synchronous_commit": "on",
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "hot_standby": "on",
            "shared_buffers": "32MB",
            "max_connections": "100",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "log_line_prefix": "'%m [%p] '",
        }
        conf.update({k: str(v) for k, v in self.settings.items()})
        self.append_conf(conf)

    def append_conf(self, conf: dict) -> None:
        """Adds settings to postgresql.conf (later lines win); needs a
        reload or restart to take effect."""
        path = os.path.join(self.data_dir, "postgresql.conf")
        lines = "".join(f"{k} = {v}\n" for k, v in conf.items())
        # Written by root into the server's file: keep its owner.
        with open(path, "a") as f:
            f.write("\n# counterd tests\n" + lines)

    # -- lifecycle ------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        self._run([os.path.join(PG_BIN, "pg_ctl"), "start", "-w", "-t", str(int(timeout)),
                   "-D", self.data_dir, "-l", self.log_file], timeout=timeout + 10)
        self._pid = self._read_pid()

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop -m MODE: "fast" (clean) or "immediate" (a crash:
        no checkpoint, clients see their connections drop)."""
        if self._read_pid() is None:
            return
        self._run([os.path.join(PG_BIN, "pg_ctl"), "stop", "-w", "-m", mode,
                   "-D", self.data_dir], timeout=60)
        self._pid = None

    def restart(self) -> None:
        self.stop("fast")
        self.start()

    def reload(self) -> None:
        self._run([os.path.join(PG_BIN, "pg_ctl"), "reload", "-D", self.data_dir])

    def promote(self, timeout: float = 60) -> None:
        self._run([os.path.join(PG_BIN, "pg_ctl"), "promote", "-w", "-t", str(int(timeout)),
                   "-D", self.data_dir], timeout=timeout + 10)

    def running(self) -> bool:
        pid = self._read_pid()
        if pid is None:
            return False
        return _alive(pid)

    def _read_pid(self) -> Optional[int]:
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (FileNotFoundError, ValueError):
            return None

    def teardown(self) -> None:
        """Stops the server (immediately) and removes its files. Never
        leaves a process of this cluster running."""
        if self not in _LIVE:
            return
        _LIVE.discard(self)
        pid = self._read_pid() or self._pid
        if pid is not None:
            try:
                self._run([os.path.join(PG_BIN, "pg_ctl"), "stop", "-w", "-m", "immediate",
                           "-D", self.data_dir], check=False, timeout=30)
            except subprocess.TimeoutExpired:
                pass
            _kill_postmaster(pid)
        if os.environ.get("COUNTERD_TEST_KEEP") != "1":
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "PgCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()

    # -- clients --------------------------------------------------------------
    def url(self, db: str = "postgres", **params: str) -> str:
        """A libpq URI over loopback TCP."""
        q = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{db}" + (f"?{q}" if q else "")

    def socket_url(self, db: str = "postgres") -> str:
        """A libpq URI over the cluster's unix socket."""
        return (f"postgresql://{SUPERUSER}@/{db}?host={self.socket_dir}"
                f"&port={self.port}")

    def psql(self, sql: str, db: str = "postgres", check: bool = True,
             timeout: float = 60) -> str:
        """Runs |sql| with psql -At over the unix socket; returns stdout
        without the trailing newline."""
        r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1",
                            "-h", self.socket_dir, "-p", str(self.port), "-U", SUPERUSER,
                            "-d", db, "-c", sql],
                           capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise PgError(f"psql {sql!r}: {r.stderr.strip()}")
        return r.stdout.rstrip("\n")

    def create_database(self, db: str) -> None:
        self.psql(f'CREATE DATABASE "{db}"')

    def log(self) -> str:
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def _log_tail(self, n: int = 20) -> str:
        lines = self.log().splitlines()[-n:]
        return ("\n--- server log tail ---\n" + "\n".join(lines)) if lines else ""

    # -- replication ----------------------------------------------------------
    def make_standby(self, name: str = "standby1", synchronous: bool = True,
                     timeout: float = 60) -> "PgCluster":
        """A streaming standby of this (running) cluster from pg_basebackup -R,
        started. With |synchronous| this cluster waits for it on every commit
        (synchronous_standby_names), so a commit acknowledged here is on the
        standby's disk too."""
        sb = PgCluster(name, _init=False)
        sb._run([os.path.join(PG_BIN, "pg_basebackup"), "-h", self.socket_dir,
                 "-p", str(self.port), "-U", SUPERUSER, "-D", sb.data_dir, "-R",
                 "-X", "stream", "-c", "fast"], timeout=timeout)
        # pg_basebackup -R wrote a primary_conninfo; ours (later, wins) adds
        # the application_name that synchronous_standby_names names.
        with open(os.path.join(sb.data_dir, "postgresql.auto.conf"), "a") as f:
            f.write(f"primary_conninfo = 'host=127.0.0.1 port={self.port} "
                    f"user={SUPERUSER} application_name={name}'\n")
        sb.append_conf({"port": str(sb.port),
                        "unix_socket_directories": f"'{sb.socket_dir}'"})
        sb.start()
        if synchronous:
            self.append_conf({"synchronous_standby_names": f"'{name}'"})
            self.reload()
            deadline = time.monotonic() + timeout
            while self.psql("SELECT sync_state FROM pg_stat_replication "
                            f"WHERE application_name = '{name}'") != "sync":
                if time.monotonic() > deadline:
                    raise PgError(f"standby {name} did not become synchronous"
                                  f"{sb._log_tail()}")
                time.sleep(0.05)
        return sb

    def is_in_recovery(self) -> bool:
        return self.psql("SELECT pg_is_in_recovery()") == "t"


def _alive(p: int) -> bool:
    # A zombie (exited, not yet reaped by init) counts as gone.
    try:
        with open(f"/proc/{p}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _kill_postmaster(pid: int, timeout: float = 30) -> None:
    """SIGKILL |pid| if it still runs and wait until it and the processes
    it forked (which exit on postmaster death) are gone."""

    def children(p: int) -> list[int]:
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                return [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            return []

    kids = children(pid)
    if _alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for p in [pid] + kids:
        while _alive(p) and time.monotonic() < deadline:
            time.sleep(0.02)


def primary_with_standby(settings: Optional[dict] = None) -> "tuple[PgCluster, PgCluster]":
    """A primary and a synchronous streaming standby, both running."""
    primary = PgCluster("primary", settings=settings)
    try:
        standby = primary.make_standby("standby1", synchronous=True)
    except BaseException:
        primary.teardown()
        raise
    return primary, standby


def multi_host_url(clusters: "list[PgCluster]", db: str) -> str:
    """postgresql://h1:p1,h2:p2/db?target_session_attrs=read-write: libpq
    tries the hosts in order and keeps the first that accepts writes."""
    hosts = ",".join(f"127.0.0.1:{c.port}" for c in clusters)
    return f"postgresql://{SUPERUSER}@{hosts}/{db}?target_session_attrs=read-write"


@atexit.register
def _teardown_all() -> None:
    for c in list(_LIVE):
        c.teardown()


if __name__ == "__main__":
    # Smoke test: python3 tests/support/pg_cluster.py
    p, s = primary_with_standby()
    try:
        p.create_database("smoke")
        p.psql("CREATE TABLE t(x int); INSERT INTO t VALUES (1)", db="smoke")
        print("primary:", p.url("smoke"), "standby in recovery:", s.is_in_recovery())
        p.stop("immediate")
        s.promote()
        print("after promote: standby in recovery:", s.is_in_recovery(),
              "rows:", s.psql("SELECT count(*) FROM t", db="smoke"))
    finally:
        s.teardown()
        p.teardown()
    print("ok")
