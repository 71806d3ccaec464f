"""Connection handling: keep-alive, pipelining, malformed HTTP, big headers,
header/idle timeouts, --max-connections."""

import socket
import threading
import time
import unittest

from counterd_harness import ServerTestCase, unique_name, wait_until


def req(method, path, host="t", headers=(), body=b""):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += list(headers)
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class KeepAliveAndParsingTest(ServerTestCase):

    def assertHealthy(self):
        with self.server.client() as c:
            self.assertEqual(c.get("/livez").status, 200, "server unhealthy after bad input")

    def test_many_requests_on_one_connection(self):
        name = unique_name("ka")
        for i in range(1, 101):
            self.assertCounter(self.c.post(f"/counters/{name}/increment"), name, i)
            self.assertCounter(self.c.get(f"/counters/{name}"), name, i)
        self.assertEqual(self.c.get("/livez").status, 200)
        self.assertEqual(self.c.connects, 1, "keep-alive not honoured")

    def test_pipelined_requests_answered_in_order(self):
        name = unique_name("pipe")
        with self.server.raw() as raw:
            raw.send(req("POST", f"/counters/{name}/increment") +
                     req("GET", f"/counters/{name}") +
                     req("POST", f"/counters/{name}/increment", headers=["Content-Type: "
                                                                         "application/json"],
                         body=b'{"by":10}') +
                     req("GET", "/nope") +
                     req("GET", f"/counters/{name}"))
            rs = [raw.read_response(timeout=10) for _ in range(5)]
        self.assertTrue(all(rs), rs)
        self.assertEqual([r.status for r in rs], [200, 200, 200, 404, 200], rs)
        self.assertEqual([rs[i].json()["value"] for i in (0, 1, 2, 4)], [1, 1, 11, 11])

    def test_chunked_request_body(self):
        name = unique_name("chunk")
        with self.server.raw() as raw:
            raw.send((f"POST /counters/{name}/increment HTTP/1.1\r\nHost: t\r\n"
                      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\n{\"b\r\n5\r\ny\":4}\r\n0\r\n\r\n").encode())
            r = raw.read_response()
            self.assertIsNotNone(r)
            self.assertCounter(r, name, 4, msg="chunked body")
            # Over the 64 KiB limit in chunks: 413, nothing changes.
            chunk = b" " * 8192
            raw2 = self.server.raw()
            self.addCleanup(raw2.close)
            raw2.send((f"POST /counters/{name}/increment HTTP/1.1\r\nHost: t\r\n"
                       "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "7\r\n{\"by\":1\r\n").encode() +
                      b"".join(b"2000\r\n" + chunk + b"\r\n" for _ in range(9)) +
                      b"1\r\n}\r\n0\r\n\r\n")
            try:
                r2 = raw2.read_response(timeout=10)
            except ConnectionError as e:
                r2 = e
            self.assertFalse(r2 is None or isinstance(r2, Exception),
                             f"over-limit chunked body: closed without a 413 ({r2!r})")
            self.assertProblem(r2, 413, "73 KiB chunked body")
        self.assertEqual(self.get_counter(name)["value"], 4)

    def test_percent_encoded_name_is_decoded(self):
        name = unique_name("abc")
        self.put_counter(name, 31)
        encoded = "".join(f"%{ord(ch):02X}" for ch in name[:3]) + name[3:]
        self.assertCounter(self.c.get(f"/counters/{encoded}"), name, 31)

    def test_connection_close_is_honoured(self):
        with self.server.raw() as raw:
            raw.send(req("GET", "/livez", headers=["Connection: close"]))
            r = raw.read_response()
            self.assertEqual(r.status, 200, repr(r))
            self.assertTrue(raw.wait_closed(5), "server kept a Connection: close connection")

    def test_http_10_closes_by_default(self):
        with self.server.raw() as raw:
            raw.send(b"GET /livez HTTP/1.0\r\n\r\n")
            r = raw.read_response()
            self.assertIsNotNone(r)
            self.assertEqual(r.status, 200, repr(r))
            self.assertTrue(raw.wait_closed(5), "HTTP/1.0 connection without keep-alive kept")

    def test_malformed_requests_get_400_and_close(self):
        cases = [
            b"GARBAGE\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET /livez HTTP/1.1 extra\r\nHost: t\r\n\r\n",
            b"GET /livez HTTX/1.1\r\nHost: t\r\n\r\n",
            b"GET /livez HTTP/1.1\r\nHost t\r\n\r\n",
            b"GET /livez HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
            b"GET /livez HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST /counter/increment HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) + b"\r\n\r\n",
            b"\x00" * 64 + b"\r\n\r\n",
            b"G\xc3\xa9T / HTTP/1.1\r\n\r\n",
        ]
        # The server answers each with a 400 problem, then closes: after the
        # answer it drains what the client sent (session.cc, Linger), so the
        # close cannot reset the answer away.
        before = self.c.get("/counter").json()
        for data in cases:
            with self.subTest(data=data[:40]):
                with self.server.raw() as raw:
                    raw.send(data)
                    r = raw.read_response(timeout=10)
                    self.assertIsNotNone(r, f"{data[:40]!r}: closed without an answer")
                    doc = self.assertProblem(r, 400, f"{data[:40]!r}")
                    self.assertEqual(doc["type"], "urn:counterd:problem:bad-request")
                    self.assertEqual(r.header("Connection"), "close", repr(r))
                    self.assertTrue(raw.wait_closed(5),
                                    "connection kept open after a malformed request")
                self.assertHealthy()
        self.assertEqual(self.c.get("/counter").json(), before)

    def test_unsupported_http_version_is_a_bad_request(self):
        # Beast's parser refuses any version but 1.0 and 1.1 as malformed.
        with self.server.raw() as raw:
            raw.send(b"GET /livez HTTP/9.9\r\nHost: t\r\n\r\n")
            r = raw.read_response(timeout=10)
            self.assertIsNotNone(r, "closed without an answer")
            doc = self.assertProblem(r, 400)
            self.assertEqual(doc["type"], "urn:counterd:problem:bad-request")
            self.assertTrue(raw.wait_closed(5))
        self.assertHealthy()

    def test_huge_header_gets_431_and_close(self):
        # 64 KiB in one header, and 2000 headers (220 KiB), against the
        # default 8 KiB limit: the server answers 431 as soon as the limit is
        # crossed and drains the rest (up to 1 MiB) before it closes.
        for hdrs in (["X-Big: " + "a" * (64 * 1024)],
                     [f"X-H{i}: {'b' * 100}" for i in range(2000)]):
            with self.subTest(n=len(hdrs)):
                with self.server.raw() as raw:
                    self.assertTrue(raw.send(req("GET", "/livez", headers=hdrs)),
                                    "the server reset the connection while we sent")
                    r = raw.read_response(timeout=10)
                    self.assertIsNotNone(r, "closed without an answer")
                    doc = self.assertProblem(r, 431)
                    self.assertEqual(doc["type"], "urn:counterd:problem:header-too-large")
                    self.assertTrue(raw.wait_closed(5))
                self.assertHealthy()

    def test_moderate_header_is_fine(self):
        r = self.c.get("/livez", headers={"X-Pad": "p" * 4000, "Cookie": "c" * 2000})
        self.assertEqual(r.status, 200, repr(r))


class TimeoutsTest(ServerTestCase):
    server_args = ["--header-timeout-ms", "1000", "--idle-timeout-ms", "1000"]

    def test_slow_header_client_is_cut_off_while_others_are_served(self):
        # ~40 s worth of headers at 0.1 s per byte: far beyond the 1 s limit.
        data = req("GET", "/livez", headers=[f"X-Slow: {'s' * 300}"])
        slow = []
        results = []

        def slowloris():
            with self.server.raw() as raw:
                slow.append(raw.send_slowly(data, interval=0.1, give_up_after=15))
                slow.append(raw.wait_closed(5))

        threads = [threading.Thread(target=slowloris, daemon=True) for _ in range(3)]
        for t in threads:
            t.start()
        # Meanwhile normal clients are served promptly.
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            with self.server.client(timeout=5) as c:
                results.append((c.get("/livez").status, time.monotonic() - t0))
            time.sleep(0.1)
        for t in threads:
            t.join(30)
        statuses = {s for s, _ in results}
        self.assertEqual(statuses, {200}, results)
        self.assertLess(max(d for _, d in results), 1.0, "normal clients were slowed down")
        for i in range(0, len(slow), 2):
            res, closed_after = slow[i], slow[i + 1]
            # The header timeout closes the connection without an answer
            # (session.cc: a timed-out read closes).
            self.assertTrue(res.closed, f"slow client not disconnected: {res}")
            self.assertTrue(closed_after, f"slow client not disconnected: {res}")
            self.assertEqual(res.received, b"", f"a slow client was answered: {res}")
            self.assertLess(res.sent, res.total, f"slow client sent everything: {res}")
            self.assertLess(res.elapsed, 6.0, f"cut off too late: {res}")
            self.assertGreater(res.elapsed, 0.5, f"cut off too early: {res}")

    def test_complete_request_in_one_go_not_affected(self):
        with self.server.raw() as raw:
            time.sleep(0.4)  # connection open but quiet, well under both limits
            raw.send(req("GET", "/livez"))
            r = raw.read_response()
            self.assertIsNotNone(r)
            self.assertEqual(r.status, 200)

    def test_idle_keep_alive_connection_is_closed(self):
        with self.server.raw() as raw:
            raw.send(req("GET", "/livez"))
            self.assertEqual(raw.read_response().status, 200)
            time.sleep(0.3)
            self.assertTrue(raw.is_open(), "closed long before the idle timeout")
            raw.send(req("GET", "/livez"))
            self.assertEqual(raw.read_response().status, 200, "keep-alive reuse failed")
            t0 = time.monotonic()
            self.assertTrue(raw.wait_closed(8), "idle connection not closed within 8 s "
                                                "(--idle-timeout-ms 1000)")
            elapsed = time.monotonic() - t0
            self.assertGreater(elapsed, 0.6, f"idle connection closed after {elapsed:.2f}s")

    def test_connected_but_silent_client_is_closed(self):
        with self.server.raw() as raw:
            t0 = time.monotonic()
            self.assertTrue(raw.wait_closed(8), "silent connection never closed")
            self.assertGreater(time.monotonic() - t0, 0.6)
        with self.server.client() as c:
            self.assertEqual(c.get("/livez").status, 200)


class MaxConnectionsTest(ServerTestCase):
    LIMIT = 4
    server_args = ["--max-connections", str(LIMIT)]

    def test_connections_over_the_limit_are_refused_existing_keep_working(self):
        held = []
        for i in range(self.LIMIT):
            c = self.server.client()
            self.addCleanup(c.close)
            # The harness's own /readyz probes may still be closing; poll.
            wait_until(lambda: self._try(c), 10, message=f"connection {i + 1} served")
            held.append(c)
        baseline = [c.connects for c in held]

        # Over the cap the server answers 503 at once, without reading the
        # request, then drains what the client sends before it closes.
        for attempt in range(3):
            with self.subTest(extra=attempt):
                with self.server.raw(timeout=10) as raw:
                    raw.send(req("GET", "/livez"))
                    r = raw.read_response(timeout=10)
                    self.assertIsNotNone(r, "closed without an answer")
                    doc = self.assertProblem(r, 503, "connection over the limit")
                    self.assertEqual(doc["type"], "urn:counterd:problem:too-many-connections")
                    self.assertTrue(raw.wait_closed(5), "503 but connection kept open")

        for c in held:
            self.assertEqual(c.get("/livez").status, 200, "existing connection broken")
        self.assertEqual([c.connects for c in held], baseline,
                         "held connections had to reconnect")

        held.pop().close()
        with self.server.client() as c:
            wait_until(lambda: self._try(c), 10, message="a slot freed after a close")

    @staticmethod
    def _try(c):
        try:
            return c.get("/livez").status == 200
        except (ConnectionError, socket.timeout, OSError):
            c.close()
            return False


if __name__ == "__main__":
    unittest.main()
