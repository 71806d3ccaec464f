"""Hostile clients against the real binary.

  - slowloris: clients that send their headers a byte at a time (and ones
    that connect and send nothing) are cut off by the header timeout while
    normal clients keep being served promptly;
  - connections beyond --max-connections are refused (503
    too-many-connections, then closed) without starving the connections
    already open, and capacity comes back when those close;
  - pipelined requests on one connection are answered in order;
  - 10,000 bad requests in a row leave the server healthy (/livez, /readyz,
    writes) with its memory back near its baseline and no descriptors
    leaked.

Python 3 standard library only; uses tests/integration/counterd_harness.py.

    COUNTERD_BIN=build/dev/counterd python3 -m unittest -v hostile_test   # in tests/torture
"""
from __future__ import annotations

import os
import random
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from counterd_harness import (  # noqa: E402
    CounterdAssertions, CounterdServer, RawConnection, wait_until)

HEADER_TIMEOUT_S = 1.0


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def sanitized(binary: str) -> bool:
    """True for an ASan/TSan build: its allocator keeps freed memory in a
    quarantine, so RSS says nothing about leaks (its leak check at exit
    does, and tearDown requires exit code 0)."""
    with open(binary, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


class HostileTestBase(CounterdAssertions, unittest.TestCase):
    server_args: list[str] = []

    def setUp(self):
        self.server = CounterdServer(args=self.server_args)
        self.addCleanup(self.server.cleanup)
        self.server.start()

    def tearDown(self):
        rc = self.server.stop()
        self.assertEqual(rc, 0, "counterd did not shut down cleanly:\n"
                         + self.server.log_text(30))


class SlowlorisTest(HostileTestBase):
    server_args = ["--header-timeout-ms", str(int(HEADER_TIMEOUT_S * 1000))]

    def test_trickled_headers_are_cut_off_while_others_are_served(self):
        head = (b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Padding: "
                + b"a" * 400 + b"\r\n\r\n")
        results = []

        def slow(i):
            conn = self.server.raw(timeout=30)
            try:
                results.append(conn.send_slowly(head, interval=0.05, give_up_after=15))
            finally:
                conn.close()

        # Connections that send nothing at all are cut by the same timeout.
        silent = [self.server.raw(timeout=30) for _ in range(5)]
        started = time.monotonic()
        threads = [threading.Thread(target=slow, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()

        latencies = []
        served = 0
        c = self.server.client(timeout=5)
        while any(t.is_alive() for t in threads):
            t0 = time.monotonic()
            r = c.post("/counters/normal/increment", json={"by": 1})
            latencies.append(time.monotonic() - t0)
            self.assertEqual(r.status, 200, repr(r))
            served += 1
            with self.server.client(timeout=5) as fresh:  # a new connection
                r = fresh.get("/readyz")
            self.assertEqual(r.status, 200)
        for t in threads:
            t.join()
        c.close()

        self.assertEqual(len(results), 8)
        for res in results:
            # Cut off without an answer: a timed-out read closes (session.cc).
            self.assertTrue(res.closed, f"slowloris client not cut off: {res}")
            self.assertEqual(res.received, b"", f"a slowloris client was answered: {res}")
            self.assertLess(res.sent, res.total, f"whole header accepted: {res}")
            # Cut by the header timeout: not before it, not much after it.
            self.assertGreaterEqual(res.elapsed, HEADER_TIMEOUT_S * 0.8, res)
            self.assertLess(res.elapsed, HEADER_TIMEOUT_S + 2.0, res)
        for conn in silent:
            remaining = HEADER_TIMEOUT_S + 3.0 - (time.monotonic() - started)
            self.assertTrue(conn.wait_closed(max(remaining, 0.1)),
                            "an idle connection outlived the header timeout")
            conn.close()
        self.assertGreater(served, 5)
        self.assertLess(max(latencies), 0.5,
                        f"normal clients were held up: max latency {max(latencies):.3f}s")
        print(f"\nslowloris: 8 trickling + 5 silent connections cut after "
              f"{min(r.elapsed for r in results):.2f}-{max(r.elapsed for r in results):.2f}s; "
              f"{served} normal requests served meanwhile, max latency "
              f"{max(latencies) * 1000:.1f} ms", file=sys.stderr)


class ConnectionCapTest(HostileTestBase):
    CAP = 8
    server_args = ["--max-connections", str(CAP)]

    def test_connections_beyond_the_cap_are_refused_without_starving_the_rest(self):
        clients = [self.server.client(timeout=5) for _ in range(self.CAP)]
        self.addCleanup(lambda: [c.close() for c in clients])
        for i, c in enumerate(clients):
            self.assertEqual(c.get("/livez").status, 200)
        refused = 0
        for _ in range(3 * self.CAP):
            with self.server.raw(timeout=5) as conn:
                # The server answers 503 without reading the request, then
                # drains what was sent before it closes: the answer is never
                # lost to a reset.
                conn.send(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
                r = conn.read_response(timeout=5)
                self.assertIsNotNone(r, "over the cap: closed without an answer")
                self.assertProblem(r, 503, "over the connection cap")
                self.assertEqual(r.json()["type"], "urn:counterd:problem:too-many-connections")
                self.assertTrue(conn.wait_closed(5), "a refused connection stayed open")
                refused += 1
        self.assertEqual(refused, 3 * self.CAP)
        # The connections inside the cap were not starved.
        for c in clients:
            r = c.post("/counters/capped/increment", json={"by": 1})
            self.assertEqual(r.status, 200, repr(r))
            self.assertEqual(c.connects, 1, "a capped client had to reconnect")
        # Capacity comes back when connections close.
        for c in clients[: self.CAP // 2]:
            c.close()

        def new_connection_served():
            with self.server.raw(timeout=5) as conn:
                conn.send(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
                r = conn.read_response(timeout=5)
                return r is not None and r.status == 200
        wait_until(new_connection_served, timeout=10, message="capacity to come back")
        print(f"\nconnection cap {self.CAP}: {refused} connections over the cap refused "
              f"with 503; the {self.CAP} inside it kept working", file=sys.stderr)


class PipeliningTest(HostileTestBase):

    def test_pipelined_requests_are_answered_in_order(self):
        def req(method, target, body=None):
            lines = [f"{method} {target} HTTP/1.1", "Host: x"]
            payload = b""
            if body is not None:
                payload = body.encode()
                lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
            return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload

        expected = []  # (status, value or None)
        wire = b""
        wire += req("PUT", "/counters/piped", '{"value":0}')
        expected.append((201, 0))  # created
        value = 0
        rng = random.Random(7)
        for i in range(40):
            kind = rng.choice(["inc", "inc", "get", "missing", "badjson"])
            if kind == "inc":
                by = rng.randint(1, 5)
                value += by
                wire += req("POST", "/counters/piped/increment", f'{{"by":{by}}}')
                expected.append((200, value))
            elif kind == "get":
                wire += req("GET", "/counters/piped")
                expected.append((200, value))
            elif kind == "missing":
                wire += req("GET", f"/counters/missing-{i}")
                expected.append((404, None))
            else:
                wire += req("POST", "/counters/piped/increment", '{"by":')
                expected.append((400, None))
        wire += req("GET", "/counters/piped")
        expected.append((200, value))

        with self.server.raw(timeout=10) as conn:
            self.assertTrue(conn.send(wire))
            for n, (status, val) in enumerate(expected):
                r = conn.read_response(timeout=10)
                self.assertIsNotNone(r, f"connection closed before response {n}")
                self.assertEqual(r.status, status, f"response {n}: {r!r}")
                if val is not None:
                    self.assertEqual(r.json()["value"], val, f"response {n} out of order: {r!r}")
        print(f"\npipelining: {len(expected)} requests in one write answered in order",
              file=sys.stderr)


class BadRequestFloodTest(HostileTestBase):
    TOTAL = 10_000

    # Answered on a kept-alive connection (the handler refuses them), with
    # the problem each gets.
    KEEPALIVE_BAD = [
        ("POST", "/counters/bad%20name/increment", '{"by":1}', 400, "invalid-name"),
        ("POST", "/counters/%C0%AF/increment", '{"by":1}', 400, "invalid-name"),
        ("POST", "/counters/ok/increment", '{"by":', 400, "invalid-json"),
        ("POST", "/counters/ok/increment", '{"by":"x"}', 400, "invalid-field"),
        ("POST", "/counters/ok/increment", '{"by":1,"extra":true}', 400, "invalid-field"),
        ("POST", "/counters/ok/increment", '[1,2,3]', 400, "invalid-json"),
        ("PUT", "/counters/ok", '{"value":1e999}', 400, "invalid-json"),
        ("GET", "/counters?limit=0", None, 400, "invalid-query"),
        ("GET", "/nope/" + "x" * 100, None, 404, "route-not-found"),
        ("DELETE", "/readyz", None, 405, "method-not-allowed"),
        ("GET", "/counters/" + "n" * 300, None, 400, "invalid-name"),
        ("POST", "/counters/ok/increment", '{"by":9223372036854775808}', 400,
         "invalid-field"),
    ]
    # Each on a connection of its own, with the answer the server gives
    # (the parser refuses them; the server answers and closes, after
    # draining what was sent, so the answer is never lost to a reset).
    CONNECTION_BAD = [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/9.9\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"h" * 20000 + b"\r\n\r\n", 431),
        (b"POST /counters/a/increment HTTP/1.1\r\nHost: x\r\n"
         b"Content-Type: application/json\r\nContent-Length: 999999\r\n\r\n{", 413),
        (b"POST /counters/a/increment HTTP/1.1\r\nHost: x\r\n"
         b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"\x00\x01\x02\x03\xff\xfe" * 50, 400),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    ]

    def _keepalive_burst(self, n, seed, counts):
        rng = random.Random(seed)
        c = self.server.client(timeout=10)
        try:
            for _ in range(n):
                method, path, body, status, problem = rng.choice(self.KEEPALIVE_BAD)
                if body is None:
                    r = c.request(method, path)
                else:
                    r = c.request(method, path, body=body.encode(),
                                  content_type="application/json")
                self.assertEqual(r.status, status, f"{method} {path[:40]} {body}: {r!r}")
                self.assertEqual(r.json()["type"], "urn:counterd:problem:" + problem, repr(r))
                counts[r.status] = counts.get(r.status, 0) + 1
        finally:
            c.close()

    def _connection_burst(self, n, seed, counts):
        rng = random.Random(seed)
        for _ in range(n):
            data, status = rng.choice(self.CONNECTION_BAD)
            try:
                with self.server.raw(timeout=10) as conn:
                    conn.send(data)
                    r = conn.read_response(timeout=10)
                    self.assertIsNotNone(r, f"closed without an answer to {data[:40]!r}")
                    self.assertEqual(r.status, status, f"{data[:40]!r}: {r!r}")
                    self.assertTrue(conn.wait_closed(10), f"kept open after {data[:40]!r}")
                    counts[r.status] = counts.get(r.status, 0) + 1
            except ConnectionRefusedError:
                self.fail("the server refused a connection during the flood")

    def _flood(self, total):
        """|total| bad requests from four threads: two on kept-alive
        connections, two with a connection each. Returns status counts."""
        per_thread_counts: list[dict] = [{}, {}, {}, {}]
        errors: list = []
        per_thread = total // 4
        jobs = [(self._keepalive_burst, per_thread, 1, per_thread_counts[0]),
                (self._keepalive_burst, per_thread, 2, per_thread_counts[1]),
                (self._connection_burst, per_thread, 3, per_thread_counts[2]),
                (self._connection_burst, total - 3 * per_thread, 4, per_thread_counts[3])]

        def run(fn, n, seed, counts):
            try:
                fn(n, seed, counts)
            except BaseException as e:  # noqa: BLE001 - re-raised below
                errors.append(e)
        threads = [threading.Thread(target=run, args=job) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        counts: dict = {}
        for part in per_thread_counts:
            for k, v in part.items():
                counts[k] = counts.get(k, 0) + v
        return counts

    def test_ten_thousand_bad_requests_leave_the_server_healthy(self):
        pid = self.server.pid
        # Warm up: allocator arenas, thread stacks, connection buffers.
        self._flood(800)
        c = self.server.client()
        for _ in range(200):
            self.assertEqual(c.post("/counters/flood/increment", json={"by": 1}).status, 200)
        c.close()
        base_rss = rss_kib(pid)
        base_fds = open_fds(pid)

        t0 = time.monotonic()
        counts = self._flood(self.TOTAL)
        took = time.monotonic() - t0
        peak_rss = rss_kib(pid)

        c = self.server.client()
        self.assertEqual(c.get("/livez").status, 200)
        self.assertEqual(c.get("/readyz").status, 200)
        r = c.post("/counters/flood/increment", json={"by": 1})
        self.assertCounter(r, "flood", 201)
        c.close()

        # Connections the server is still lingering on close within a few
        # seconds; descriptors and memory come back.
        wait_until(lambda: open_fds(pid) <= base_fds + 2, timeout=15,
                   message=f"descriptors back near {base_fds} (now {open_fds(pid)})")
        slack_kib = max(8 * 1024, base_rss // 4)
        if not sanitized(self.server.binary):
            wait_until(lambda: rss_kib(pid) <= base_rss + slack_kib, timeout=15,
                       message=f"RSS back within {slack_kib} KiB of {base_rss} KiB "
                               f"(now {rss_kib(pid)} KiB)")
        end_rss = rss_kib(pid)
        warn_lines = sum(1 for l in self.server.lines if '"warn' in l or "[warn" in l)
        print(f"\nbad-request flood: {sum(counts.values())} bad requests in {took:.1f}s "
              f"({dict(sorted(counts.items()))}); RSS {base_rss} KiB before, "
              f"{peak_rss} KiB right after, {end_rss} KiB settled; fds {base_fds} -> "
              f"{open_fds(pid)}; {warn_lines} warning log lines", file=sys.stderr)
        self.assertEqual(sum(counts.values()), self.TOTAL)


if __name__ == "__main__":
    unittest.main()
