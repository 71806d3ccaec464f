"""Black-box test harness for the real ``counterd`` binary.

Python 3.11 standard library only. Used by the integration suite in this
directory and meant to be imported by other suites (crash torture, Kubernetes
lifecycle tests), so the names below are a stable interface:

Binary and processes
    find_binary()              path of counterd: $COUNTERD_BIN, else the
                               newest <repo>/build/<preset>/counterd or
                               <repo>/build*/counterd.
    CounterdServer             one server process on an ephemeral loopback
                               port with its own (temp) data dir: start(),
                               stop() (SIGTERM, returns exit code), kill()
                               (SIGKILL), terminate(), wait(), restart(),
                               client(), raw(), logs, json_logs, wait_for_log(),
                               metric(), wait_for_metric().
    run_counterd(args)         run the binary to completion (CLI tests:
                               --help, --version, bad options, healthcheck).
    free_port()                a loopback port nobody listens on (racy, but
                               good enough for "connection refused" tests).

HTTP
    HttpClient                 keep-alive client over http.client; counts TCP
                               connects (``connects``) so tests can prove reuse.
    Response                   status, headers (case-insensitive), body, json().
    RawConnection              raw socket: send arbitrary bytes, send slowly,
                               read one response (pipelining-safe), detect close.

Helpers
    wait_until(pred, timeout)  poll instead of sleeping.
    unique_name(prefix)        a fresh valid counter name.
    parse_prometheus(text)     [(name, labels, value)] from /metrics.
    metric_sum(samples, name, **labels)
    CounterdAssertions         unittest mixin: assertProblem, assertCounter...
    ServerTestCase             unittest.TestCase with one server per class.

Environment knobs
    COUNTERD_BIN               the binary (CTest sets it).
    COUNTERD_TEST_KEEP=1       keep temp data dirs after the tests.
    COUNTERD_TEST_SHOW_LOGS=1  echo server stderr to our stderr, live.
    COUNTERD_TEST_START_TIMEOUT seconds to wait for the listening line (20).
    COUNTERD_TEST_BACKEND      "file" (default) or "postgres": with postgres
                               every CounterdServer whose args do not choose
                               a backend runs --backend postgres on a fresh
                               database of one throwaway cluster per process
                               (tests/support/pg_cluster.py), one database per
                               data dir: restart() and a new server on the same
                               data dir find the same state. data_dir is still
                               passed (the backend ignores it).

Backends
    BACKEND                    the backend under test ("file" or "postgres").
    file_backend_only(reason)  decorator: skip under postgres, saying why.
    new_postgres_database()    URL of a fresh database on the process's
                               cluster (postgres only).
"""

from __future__ import annotations

import atexit
import errno
import glob
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid
from dataclasses import dataclass
from email.message import Message
from typing import Any, Callable, Iterable, Optional

__all__ = [
    "INT64_MAX", "INT64_MIN", "DEFAULT_START_TIMEOUT", "HARNESS_DIR", "REPO_ROOT",
    "ServerStartError", "find_binary", "free_port", "run_counterd", "wait_until",
    "unique_name", "Response", "HttpClient", "RawConnection", "CounterdServer",
    "parse_prometheus", "metric_sum", "CounterdAssertions", "ServerTestCase",
    "BACKEND", "file_backend_only", "new_postgres_database",
]

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

HARNESS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HARNESS_DIR, "..", ".."))
DEFAULT_START_TIMEOUT = float(os.environ.get("COUNTERD_TEST_START_TIMEOUT", "20"))
LOOPBACK = "127.0.0.1"

_SHOW_LOGS = os.environ.get("COUNTERD_TEST_SHOW_LOGS", "") not in ("", "0")
_KEEP_DIRS = os.environ.get("COUNTERD_TEST_KEEP", "") not in ("", "0")


BACKEND = os.environ.get("COUNTERD_TEST_BACKEND", "") or "file"
if BACKEND not in ("file", "postgres"):
    raise RuntimeError(f"COUNTERD_TEST_BACKEND={BACKEND!r}: want file or postgres")


def file_backend_only(reason: str):
    """Marks a test (or class) that is about the file backend itself (its
    data dir, journal, lock): skipped under postgres with |reason|."""
    return unittest.skipIf(BACKEND == "postgres", f"file backend only: {reason}")


_PG_LOCK = threading.Lock()
_PG_CLUSTER = None
_PG_DATABASES = 0
_PG_BY_DATA_DIR: "dict[str, str]" = {}


def new_postgres_database() -> str:
    """A libpq URL of a new, empty database on this process's throwaway
    cluster (made on first use, torn down at exit by pg_cluster's atexit
    hook). One cluster per process keeps the cost to one initdb; one
    database per server keeps the servers' states apart."""
    global _PG_CLUSTER, _PG_DATABASES
    with _PG_LOCK:
        if _PG_CLUSTER is None:
            sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "support"))
            import pg_cluster  # noqa: E402 (only the postgres runs need it)
            _PG_CLUSTER = pg_cluster.PgCluster("it")
        _PG_DATABASES += 1
        db = f"it_{_PG_DATABASES}"
        _PG_CLUSTER.create_database(db)
        return _PG_CLUSTER.url(db)


def _postgres_database_for(data_dir: str) -> str:
    """The database that stands for |data_dir| under postgres: a server
    started again on the same data dir (a restart, however the test spells
    it) finds the same state."""
    key = os.path.realpath(data_dir)
    with _PG_LOCK:
        url = _PG_BY_DATA_DIR.get(key)
    if url is None:
        url = new_postgres_database()
        with _PG_LOCK:
            url = _PG_BY_DATA_DIR.setdefault(key, url)
    return url


class ServerStartError(RuntimeError):
    """counterd did not come up (exited, or never printed the listening line)."""


# --------------------------------------------------------------------------
# Binary discovery and one-shot runs
# --------------------------------------------------------------------------

def find_binary() -> str:
    """Returns the absolute path of the counterd binary under test.

    $COUNTERD_BIN wins (relative paths are taken from the current directory,
    then from the repository root). Without it the newest executable
    <repo>/build/<preset>/counterd (or <repo>/build*/counterd, a build dir
    made by hand) is used. Raises RuntimeError when there is none.
    """
    env = os.environ.get("COUNTERD_BIN")
    if env:
        for cand in (os.path.abspath(env), os.path.join(REPO_ROOT, env)):
            if os.path.isfile(cand) and os.access(cand, os.X_OK):
                return cand
        raise RuntimeError(f"COUNTERD_BIN={env!r} is not an executable file")
    # build/<preset>/counterd (CMakePresets.json), or a hand-made build*/.
    patterns = [os.path.join(REPO_ROOT, "build", "*", "counterd"),
                os.path.join(REPO_ROOT, "build*", "counterd")]
    cands = [p for pattern in patterns for p in glob.glob(pattern)
             if os.path.isfile(p) and os.access(p, os.X_OK)]
    if not cands:
        raise RuntimeError(
            "counterd binary not found: set COUNTERD_BIN=/path/to/counterd "
            f"(looked for {' and '.join(patterns)})")
    return max(cands, key=os.path.getmtime)


def _child_env(env: Optional[dict], hostname: Optional[str]) -> dict:
    """The environment for a counterd child: ours minus every COUNTERD_*
    variable (so COUNTERD_BIN and friends cannot leak in as options), plus
    |env|, plus HOSTNAME if given."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERD_")}
    if hostname is not None:
        base["HOSTNAME"] = hostname
    if env:
        base.update(env)
    return base


def run_counterd(args: Iterable[str], env: Optional[dict] = None,
                 timeout: float = 15.0, binary: Optional[str] = None,
                 hostname: Optional[str] = None) -> subprocess.CompletedProcess:
    """Runs counterd with |args| to completion, capturing text stdout/stderr.

    Raises subprocess.TimeoutExpired (after killing it) if it has not exited
    within |timeout| seconds.
    """
    return subprocess.run([binary or find_binary(), *args], env=_child_env(env, hostname),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=timeout)


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (nobody listens on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0,
               interval: float = 0.02, message: str = "condition") -> Any:
    """Polls |predicate| until it returns a truthy value and returns that
    value. Raises AssertionError after |timeout| seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def unique_name(prefix: str = "it") -> str:
    """A fresh, valid counter name: <prefix>-<12 hex digits>."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

@dataclass
class Response:
    """One HTTP response, fully read."""
    status: int
    reason: str
    headers: Message          # case-insensitive .get(); .get_all() for repeats
    body: bytes
    http_version: str = "HTTP/1.1"

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return self.headers.get(name, default)

    @property
    def content_type(self) -> str:
        """The media type, lower-case, without parameters ("" if absent)."""
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise AssertionError(
                f"response body is not JSON ({e}): status={self.status} "
                f"body={self.body[:500]!r}") from None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def __repr__(self) -> str:  # readable assertion messages
        hdrs = "; ".join(f"{k}: {v}" for k, v in self.headers.items())
        return f"<Response {self.status} [{hdrs}] {self.body[:300]!r}>"


class _CountingHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.connects = 0

    def connect(self):
        super().connect()
        self.connects += 1
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


_MISSING = object()
_STALE_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError,
                 BrokenPipeError, http.client.BadStatusLine)


class HttpClient:
    """A keep-alive HTTP/1.1 client for one server; not thread-safe (use one
    per thread). ``connects`` counts TCP connections opened so far.

    request() sends |json| (any JSON value, serialised, Content-Type
    application/json) or raw |body| bytes (with |content_type| if given).
    A GET/HEAD that fails because the server closed a reused keep-alive
    connection is retried once on a new connection; other methods are never
    retried (a retry could apply a mutation twice).
    """

    def __init__(self, host: str, port: int, timeout: float = 15.0):
        self.host, self.port, self.timeout = host, port, timeout
        self._conn = _CountingHTTPConnection(host, port, timeout=timeout)
        self._closed_connects = 0

    @property
    def connects(self) -> int:
        return self._closed_connects + self._conn.connects

    def request(self, method: str, path: str, *, json: Any = _MISSING,
                body: Optional[bytes] = None, headers: Optional[dict] = None,
                content_type: Optional[str] = None) -> Response:
        hdrs = dict(headers or {})
        if json is not _MISSING:
            if body is not None:
                raise ValueError("pass json or body, not both")
            body = _json_dumps(json)
            content_type = content_type or "application/json"
        if body is not None and content_type is not None:
            hdrs.setdefault("Content-Type", content_type)
        reused = self._conn.sock is not None
        try:
            return self._do(method, path, body, hdrs)
        except _STALE_ERRORS:
            self._reset()
            if not (reused and method in ("GET", "HEAD")):
                raise
        except Exception:
            self._reset()
            raise
        try:  # the one retry of a GET/HEAD on a stale keep-alive connection
            return self._do(method, path, body, hdrs)
        except Exception:
            self._reset()
            raise

    def _do(self, method, path, body, hdrs) -> Response:
        self._conn.request(method, path, body=body, headers=hdrs)
        r = self._conn.getresponse()
        data = r.read()
        ver = {10: "HTTP/1.0", 11: "HTTP/1.1"}.get(r.version, str(r.version))
        resp = Response(r.status, r.reason, r.msg, data, ver)
        if r.will_close:
            self._reset()
        return resp

    def _reset(self):
        self._closed_connects += self._conn.connects
        self._conn.close()
        self._conn = _CountingHTTPConnection(self.host, self.port, timeout=self.timeout)

    # Convenience wrappers.
    def get(self, path, **kw) -> Response:
        return self.request("GET", path, **kw)

    def head(self, path, **kw) -> Response:
        return self.request("HEAD", path, **kw)

    def post(self, path, **kw) -> Response:
        return self.request("POST", path, **kw)

    def put(self, path, **kw) -> Response:
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw) -> Response:
        return self.request("DELETE", path, **kw)

    def close(self):
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _json_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class ConnectionClosed(ConnectionError):
    """The peer closed (or reset) a RawConnection before a full response."""


class RawConnection:
    """A raw TCP connection for malformed / slow / pipelined HTTP.

    read_response() parses exactly one response (Content-Length, chunked, or
    until close) and keeps any following bytes for the next call, so
    pipelined responses can be read one by one.
    """

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self._buf = b""
        self.eof = False
        self.received = b""  # everything received, for diagnostics

    # -- sending ---------------------------------------------------------
    def send(self, data: bytes) -> bool:
        """Sends all of |data|; False if the peer has closed/reset."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            return False

    def send_slowly(self, data: bytes, interval: float, give_up_after: float = 30.0
                    ) -> "SlowSendResult":
        """Sends |data| one byte every |interval| seconds, stopping as soon
        as the server answers or closes. Returns what happened and when."""
        start = time.monotonic()
        sent = 0
        for i in range(len(data)):
            if self._peer_answered_or_closed():
                break
            if time.monotonic() - start > give_up_after:
                break
            if not self.send(data[i:i + 1]):
                self.eof = True
                break
            sent += 1
            time.sleep(interval)
        return SlowSendResult(sent, len(data), time.monotonic() - start,
                              self.eof, self._buf)

    def _peer_answered_or_closed(self) -> bool:
        r, _, _ = select.select([self.sock], [], [], 0)
        if not r:
            return False
        self._recv_some(time.monotonic() + 1.0)
        return True

    # -- receiving -------------------------------------------------------
    def _recv_some(self, deadline: float) -> bool:
        """Receives into the buffer; False at EOF/reset. Raises
        socket.timeout at |deadline|."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out waiting for data")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self._buf += chunk
        self.received += chunk
        return True

    def _read_until(self, marker: bytes, deadline: float) -> bytes:
        while marker not in self._buf:
            if not self._recv_some(deadline):
                raise ConnectionClosed(f"closed before {marker!r}; got {self._buf[:200]!r}")
        idx = self._buf.index(marker) + len(marker)
        out, self._buf = self._buf[:idx], self._buf[idx:]
        return out

    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            if not self._recv_some(deadline):
                raise ConnectionClosed(f"closed with {len(self._buf)}/{n} body bytes")
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def read_response(self, timeout: Optional[float] = None, head: bool = False
                      ) -> Optional[Response]:
        """Reads one response. Returns None if the server closed the
        connection before sending any byte of it; raises ConnectionClosed if
        it closed in the middle; socket.timeout if nothing came in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        if not self._buf and not self._recv_some(deadline):
            return None
        head_bytes = self._read_until(b"\r\n\r\n", deadline)
        lines = head_bytes.decode("latin-1").split("\r\n")
        m = re.match(r"(HTTP/\d\.\d) (\d{3}) ?(.*)", lines[0])
        if not m:
            raise AssertionError(f"bad status line {lines[0]!r}")
        msg = Message()
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                msg[k.strip()] = v.strip()
        status = int(m.group(2))
        body = b""
        if head or status in (204, 304) or 100 <= status < 200:
            pass
        elif "chunked" in (msg.get("Transfer-Encoding") or "").lower():
            while True:
                size_line = self._read_until(b"\r\n", deadline)
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self._read_until(b"\r\n", deadline) != b"\r\n":
                        pass
                    break
                body += self._read_exact(size, deadline)
                self._read_exact(2, deadline)
        elif msg.get("Content-Length") is not None:
            body = self._read_exact(int(msg["Content-Length"]), deadline)
        else:
            while self._recv_some(deadline):
                pass
            body, self._buf = self._buf, b""
        return Response(status, m.group(3), msg, body, m.group(1))

    def wait_closed(self, timeout: float = 10.0) -> bool:
        """Reads (and keeps in .received) until the server closes; True if
        it closed within |timeout| seconds."""
        deadline = time.monotonic() + timeout
        try:
            while self._recv_some(deadline):
                pass
            return True
        except (socket.timeout, TimeoutError):
            return False

    def is_open(self) -> bool:
        """False once the server has closed/reset the connection (any bytes
        it sent are kept for read_response()); does not block."""
        if self.eof:
            return False
        r, _, _ = select.select([self.sock], [], [], 0)
        if not r:
            return True
        return self._recv_some(time.monotonic() + 1.0)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class SlowSendResult:
    sent: int             # bytes sent before stopping
    total: int            # bytes we wanted to send
    elapsed: float        # seconds from first byte to stop
    closed: bool          # the server closed/reset the connection
    received: bytes       # whatever the server sent (e.g. a 408)


# --------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------

def _die_with_parent_preexec():
    """A preexec_fn that makes the child get SIGKILL when the thread that
    started it dies (Linux prctl PR_SET_PDEATHSIG), so a test runner killed
    by a CTest timeout leaves no orphan counterd behind. None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig, sigkill = 1, int(signal.SIGKILL)

    def preexec():
        prctl(pr_set_pdeathsig, sigkill, 0, 0, 0)
    return preexec


_LIVE_SERVERS: "set[CounterdServer]" = set()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _kill_leftovers():
    with _LIVE_LOCK:
        servers = list(_LIVE_SERVERS)
    for s in servers:
        try:
            s.kill()
        except Exception:
            pass


_LISTEN_RE = re.compile(r"listening on (\S+)")


def _split_hostport(addr: str) -> "tuple[str, int]":
    addr = addr.strip().strip('"')
    if addr.startswith("["):
        host, _, port = addr[1:].partition("]:")
    else:
        host, _, port = addr.rpartition(":")
    return host, int(port)


class CounterdServer:
    """One counterd process.

    >>> with CounterdServer(args=["--idle-timeout-ms", "1000"]) as srv:
    ...     c = srv.client(); c.get("/livez").status
    200

    data_dir: None creates a temp dir owned (and removed) by this object.
    args:     extra command-line options.
    env:      extra environment (COUNTERD_* from our own env is never passed).
    hostname: sets HOSTNAME in the child's environment.
    listen:   the --listen value; None passes no --listen (use env instead).
    log_format: "json" (default; the listening line is parsed as JSON) or None.
    postgres_url: the database of a postgres server; None under
              COUNTERD_TEST_BACKEND=postgres uses the database that stands
              for data_dir (a fresh one for a fresh dir), unless args or env
              choose the backend themselves. Ignored for file.

    The process runs in its own session (terminal signals do not reach it);
    when started from the main thread it is SIGKILLed if the test process
    dies, and an atexit hook kills any server still running at exit.

    start() waits for the listening line on stderr, then for GET /readyz 200.
    stop() sends SIGTERM and returns the exit code. kill() sends SIGKILL.
    restart() starts a new server on the same data dir with the same options.
    """

    def __init__(self, data_dir: Optional[str] = None, args: Iterable[str] = (),
                 env: Optional[dict] = None, hostname: Optional[str] = None,
                 listen: Optional[str] = f"{LOOPBACK}:0", log_format: Optional[str] = "json",
                 binary: Optional[str] = None, postgres_url: Optional[str] = None):
        self.binary = binary or find_binary()
        self._owns_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="counterd-it-")
        self.args = list(args)
        self.env = dict(env or {})
        # The backend switch: only for servers whose caller left the backend
        # to us (tests/postgres passes --backend itself).
        self.postgres_url: Optional[str] = None
        if (BACKEND == "postgres" and "--backend" not in self.args
                and "COUNTERD_BACKEND" not in self.env):
            self.postgres_url = postgres_url or _postgres_database_for(self.data_dir)
        self.hostname = hostname
        self.listen = listen
        self.log_format = log_format
        self.proc: Optional[subprocess.Popen] = None
        self.host: Optional[str] = None
        self.port: Optional[int] = None
        self.lines: "list[str]" = []        # stderr lines, as they arrive
        self.stdout_lines: "list[str]" = []
        self._cond = threading.Condition()
        self._threads: "list[threading.Thread]" = []
        self.start_time: Optional[float] = None

    # -- command line ----------------------------------------------------
    def command(self) -> "list[str]":
        cmd = [self.binary]
        if self.listen is not None:
            cmd += ["--listen", self.listen]
        if self.data_dir is not None and "COUNTERD_DATA_DIR" not in self.env:
            cmd += ["--data-dir", self.data_dir]
        if self.log_format:
            cmd += ["--log-format", self.log_format]
        if self.postgres_url is not None:
            cmd += ["--backend", "postgres", "--postgres-url", self.postgres_url]
        return cmd + self.args

    # -- lifecycle -------------------------------------------------------
    def start(self, timeout: float = DEFAULT_START_TIMEOUT, wait_ready: bool = True
              ) -> "CounterdServer":
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("already running")
        self.lines, self.stdout_lines = [], []
        self.host = self.port = None
        self.start_time = time.monotonic()
        # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so it is
        # only used for servers started on the main thread.
        preexec = (_die_with_parent_preexec()
                   if threading.current_thread() is threading.main_thread() else None)
        self.proc = subprocess.Popen(
            self.command(), env=_child_env(self.env, self.hostname),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, preexec_fn=preexec)
        with _LIVE_LOCK:
            _LIVE_SERVERS.add(self)
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.lines, True),
                             daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout_lines,
                                                      False), daemon=True),
        ]
        for t in self._threads:
            t.start()
        try:
            addr = self._wait_listening(timeout)
            self.host, self.port = _split_hostport(addr)
            if wait_ready:
                self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def _pump(self, stream, sink: list, is_stderr: bool):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if _SHOW_LOGS:
                sys.stderr.write(f"[counterd:{self.port or '?'}{'' if is_stderr else ':out'}] "
                                 f"{line}\n")
            with self._cond:
                sink.append(line)
                self._cond.notify_all()
        stream.close()
        with self._cond:
            self._cond.notify_all()

    @staticmethod
    def _listen_address(line: str) -> Optional[str]:
        s = line.strip()
        if s.startswith("{"):
            try:
                obj = json.loads(s)
            except json.JSONDecodeError:
                obj = None
            if isinstance(obj, dict) and obj.get("msg") == "listening" and obj.get("listen"):
                return str(obj["listen"])
        m = _LISTEN_RE.search(s)
        return m.group(1).rstrip(",") if m else None

    def _wait_listening(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        seen_err = seen_out = 0
        with self._cond:
            while True:
                fresh = self.lines[seen_err:] + self.stdout_lines[seen_out:]
                seen_err, seen_out = len(self.lines), len(self.stdout_lines)
                for line in fresh:
                    addr = self._listen_address(line)
                    if addr:
                        return addr
                if self.proc.poll() is not None and not any(t.is_alive() for t in self._threads):
                    raise ServerStartError(
                        f"counterd exited with {self.proc.returncode} before listening:\n"
                        + self.log_text())
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ServerStartError(
                        f"no listening line within {timeout}s:\n" + self.log_text())
                self._cond.wait(min(remaining, 0.2))

    def wait_ready(self, timeout: float = DEFAULT_START_TIMEOUT):
        """Polls GET /readyz (new connection each time) until 200."""
        last = None

        def ready():
            nonlocal last
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"counterd exited with {self.proc.returncode}:\n" + self.log_text())
            try:
                with HttpClient(self.host, self.port, timeout=5) as c:
                    last = c.get("/readyz").status
                    return last == 200
            except OSError as e:
                last = e
                return False
        try:
            wait_until(ready, timeout, 0.05, "GET /readyz == 200")
        except AssertionError:
            raise ServerStartError(f"/readyz not 200 within {timeout}s (last: {last!r}):\n"
                                   + self.log_text()) from None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def signal(self, sig: int):
        if self.running:
            self.proc.send_signal(sig)

    def terminate(self):
        """Sends SIGTERM without waiting."""
        self.signal(signal.SIGTERM)

    def wait(self, timeout: float = 20.0) -> int:
        """Waits for exit; returns the exit code (negative: killed by that
        signal). Raises subprocess.TimeoutExpired if still running."""
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(5)
        with _LIVE_LOCK:
            _LIVE_SERVERS.discard(self)
        return rc

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then waits up to |timeout|; returns the exit code. If it
        does not exit, SIGKILLs it and raises AssertionError."""
        if self.proc is None:
            return 0
        self.terminate()
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"counterd did not exit within {timeout}s of SIGTERM:\n"
                                 + self.log_text(40)) from None

    def kill(self) -> Optional[int]:
        """SIGKILL (if running) and reap; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        return self.wait(20)

    def restart(self, **overrides) -> "CounterdServer":
        """A new started server on the same data dir (and database) with the
        same options (overridable by keyword). The new server does not own
        the dir; this one still removes it at cleanup()."""
        kw = dict(data_dir=self.data_dir, args=self.args, env=self.env,
                  hostname=self.hostname, listen=self.listen, log_format=self.log_format,
                  binary=self.binary, postgres_url=self.postgres_url)
        kw.update(overrides)
        return CounterdServer(**kw).start()

    def cleanup(self):
        """Kills the process if still running and removes an owned data dir."""
        if self.running:
            self.kill()
        if self._owns_dir and not _KEEP_DIRS:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # -- clients ---------------------------------------------------------
    def client(self, timeout: float = 15.0) -> HttpClient:
        return HttpClient(self.host, self.port, timeout=timeout)

    def raw(self, timeout: float = 10.0) -> RawConnection:
        return RawConnection(self.host, self.port, timeout=timeout)

    # -- logs --------------------------------------------------------------
    def log_text(self, last: Optional[int] = None) -> str:
        with self._cond:
            lines = list(self.lines)
            out = list(self.stdout_lines)
        if last:
            lines = lines[-last:]
        text = "\n".join(f"  stderr| {l}" for l in lines)
        if out:
            text += "\n" + "\n".join(f"  stdout| {l}" for l in out[-20:])
        return text

    @property
    def json_logs(self) -> "list[dict]":
        """The stderr lines that parse as JSON objects."""
        out = []
        with self._cond:
            lines = list(self.lines)
        for line in lines:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> str:
        """Waits for a stderr line matching regex |pattern|; returns it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if rx.search(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no log line matching {pattern!r} in {timeout}s:\n"
                                         + self.log_text(40))
                self._cond.wait(min(remaining, 0.2))

    def metric(self, name: str, **labels) -> float:
        """The sum of |name|'s samples with |labels| on GET /metrics, asked
        on a new connection. That request is itself in flight, on an open
        connection, while the page is made: counterd_http_requests_in_flight
        and counterd_http_connections include it."""
        with HttpClient(self.host, self.port, timeout=5) as c:
            r = c.get("/metrics")
        if r.status != 200:
            raise AssertionError(f"GET /metrics answered {r!r}")
        return metric_sum(parse_prometheus(r.text), name, **labels)

    def wait_for_metric(self, name: str, value: float, timeout: float = 10.0,
                        **labels) -> float:
        """Polls metric(|name|, **labels) until it equals |value| (server
        state to wait on instead of a sleep); returns it. Raises
        AssertionError after |timeout| seconds with the last value seen."""
        seen = []

        def reached():
            seen.append(self.metric(name, **labels))
            return seen[-1] == value
        try:
            wait_until(reached, timeout, 0.02, f"{name}{labels or ''} == {value}")
        except AssertionError as e:
            raise AssertionError(f"{e} (last value {seen[-1] if seen else None})") from None
        return value

    def connection_refused(self) -> bool:
        """True if a new TCP connection to the server's port is refused."""
        try:
            with socket.create_connection((self.host, self.port), timeout=2):
                return False
        except ConnectionRefusedError:
            return True
        except OSError as e:
            return e.errno in (errno.ECONNREFUSED,)


# --------------------------------------------------------------------------
# Prometheus text format
# --------------------------------------------------------------------------

_SAMPLE_RE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?\s*$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_prometheus(text: str) -> "list[tuple[str, dict, float]]":
    """Parses Prometheus text exposition into (name, labels, value) samples.
    Raises AssertionError on a line that is neither a comment nor a sample."""
    samples = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise AssertionError(f"/metrics line {n} is not a sample: {line!r}")
        labels = {}
        if m.group(2):
            rest = m.group(2)
            pos = 0
            while pos < len(rest):
                lm = _LABEL_RE.match(rest, pos)
                if not lm:
                    raise AssertionError(f"/metrics line {n}: bad labels {rest!r}")
                labels[lm.group(1)] = bytes(lm.group(2), "utf-8").decode("unicode_escape")
                pos = lm.end()
        value = float(m.group(3))  # handles +Inf, NaN
        samples.append((m.group(1), labels, value))
    return samples


def metric_sum(samples, name: str, **labels) -> float:
    """Sum of the values of samples called |name| whose labels include
    |labels| (a subset match)."""
    return sum(v for n, l, v in samples
               if n == name and all(l.get(k) == str(val) for k, val in labels.items()))


# --------------------------------------------------------------------------
# unittest support
# --------------------------------------------------------------------------

class CounterdAssertions:
    """Mixin for unittest.TestCase with counterd-specific assertions."""

    def assertProblem(self, resp: Response, status: int, msg: str = "") -> dict:
        """An RFC 9457 problem answer with this status: Content-Type
        application/problem+json and type/title/status/detail present
        (type a urn:counterd:problem: URN, status equal to the HTTP status)."""
        ctx = f"{msg} {resp!r}".strip()
        self.assertEqual(resp.status, status, f"wrong status: {ctx}")
        self.assertEqual(resp.content_type, "application/problem+json",
                         f"wrong Content-Type: {ctx}")
        doc = resp.json()
        self.assertIsInstance(doc, dict, ctx)
        for key in ("type", "title", "status", "detail"):
            self.assertIn(key, doc, f"problem lacks {key!r}: {ctx}")
        self.assertEqual(doc["status"], status, f"problem status != HTTP status: {ctx}")
        self.assertIsInstance(doc["title"], str, ctx)
        self.assertIsInstance(doc["detail"], str, ctx)
        self.assertRegex(doc["type"], r"^urn:counterd:problem:[a-z0-9][a-z0-9-]*$", ctx)
        return doc

    def assertCounter(self, resp: Response, name: str, value: Optional[int] = None,
                      status: int = 200, msg: str = "", expiring: bool = False) -> dict:
        """A JSON counter answer {name, value, version} (plus "expires_at"
        exactly when |expiring|) with a matching strong ETag "<version>";
        returns the counter."""
        ctx = f"{msg} {resp!r}".strip()
        self.assertEqual(resp.status, status, f"wrong status: {ctx}")
        self.assertEqual(resp.content_type, "application/json", f"wrong Content-Type: {ctx}")
        doc = resp.json()
        self.assertIsInstance(doc, dict, ctx)
        fields = {"name", "value", "version"} | ({"expires_at"} if expiring else set())
        self.assertEqual(set(doc), fields, f"counter fields: {ctx}")
        if expiring:
            self.assertRegex(doc["expires_at"],
                             r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", ctx)
        self.assertEqual(doc["name"], name, ctx)
        self.assertIs(type(doc["value"]), int, ctx)
        self.assertIs(type(doc["version"]), int, ctx)
        self.assertGreaterEqual(doc["version"], 0, ctx)
        if value is not None:
            self.assertEqual(doc["value"], value, f"wrong value: {ctx}")
        self.assertEqual(resp.header("ETag"), f'"{doc["version"]}"', f"ETag: {ctx}")
        return doc


class ServerTestCase(CounterdAssertions, unittest.TestCase):
    """One counterd per test class, started in setUpClass and stopped with
    SIGTERM in tearDownClass (which fails if the exit code is not 0).

    Class attributes: server_args (list), server_env (dict), server_hostname.
    self.c is a keep-alive HttpClient per test.
    """
    server_args: "list[str]" = []
    server_env: dict = {}
    server_hostname: Optional[str] = None
    server: CounterdServer

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = CounterdServer(args=cls.server_args, env=cls.server_env,
                                    hostname=cls.server_hostname)
        try:
            cls.server.start()
        except BaseException:
            cls.server.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.server.stop()
            if rc != 0:
                raise AssertionError(f"counterd exited with {rc} after SIGTERM:\n"
                                     + cls.server.log_text(40))
        finally:
            cls.server.cleanup()
            super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.c = self.server.client()
        self.addCleanup(self.c.close)

    # Small conveniences used all over the suite.
    def get_counter(self, name: str) -> Optional[dict]:
        """The counter via GET, or None on 404 (anything else fails)."""
        r = self.c.get(f"/counters/{name}")
        if r.status == 404:
            return None
        return self.assertCounter(r, name, expiring="expires_at" in (r.json() or {}))

    def list_all(self, prefix: str = "", limit: int = 1000) -> "list[dict]":
        """Every counter (with |prefix|), following ``next`` page by page."""
        out, after = [], None
        for _ in range(100000):
            q = f"/counters?prefix={prefix}&limit={limit}"
            if after is not None:
                q += f"&after={after}"
            r = self.c.get(q)
            self.assertEqual(r.status, 200, repr(r))
            doc = r.json()
            out += doc["counters"]
            after = doc["next"]
            if after is None:
                return out
        raise AssertionError("list never ended")

    def put_counter(self, name: str, value: int) -> dict:
        r = self.c.put(f"/counters/{name}", json={"value": value})
        self.assertIn(r.status, (200, 201), repr(r))
        return self.assertCounter(r, name, value, status=r.status)
