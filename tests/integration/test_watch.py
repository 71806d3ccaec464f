"""Watch streams (Server-Sent Events) over real HTTP: GET
/counters/{name}/watch and GET /watch?prefix=p.

A Watch is a raw socket that reads the response header, then undoes the
chunked coding and splits the text into SSE blocks. Nothing here sleeps:
every read waits for the server's next bytes, with the socket timeout as a
safety limit only; "nothing is sent until X" is shown by making X happen
and seeing that the next block is X's event.
"""

from __future__ import annotations

import json
import signal
import socket
import unittest
import uuid
from email.message import Message

from counterd_harness import (BACKEND, CounterdServer, CounterdAssertions, Response,
                              ServerTestCase, metric_sum, parse_prometheus, unique_name,
                              wait_until)
import test_auth


def counter_event(id_, name, value, version):
    data = json.dumps({"name": name, "value": value, "version": version},
                      separators=(",", ":"))
    return f"id: {id_}\nevent: counter\ndata: {data}\n\n"


def deleted_event(id_, name):
    return f'id: {id_}\nevent: deleted\ndata: {{"name":"{name}"}}\n\n'


def reset_event(id_, prefix):
    return f'id: {id_}\nevent: reset\ndata: {{"prefix":"{prefix}"}}\n\n'


HEARTBEAT = ": heartbeat\n\n"


def block_id(block: str) -> int:
    first = block.split("\n", 1)[0]
    assert first.startswith("id: "), block
    return int(first[4:])


def strip_id(block: str) -> str:
    """The event without its id line (the state it carries)."""
    block_id(block)
    return block.split("\n", 1)[1]


class StreamEnded(Exception):
    pass


class Watch:
    """One watch request on its own connection."""

    def __init__(self, server: CounterdServer, path: str, headers=None,
                 version: str = "HTTP/1.1", timeout: float = 10.0):
        self.sock = socket.create_connection((server.host, server.port), timeout=timeout)
        lines = [f"GET {path} {version}", f"Host: {server.host}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""       # bytes received, not yet decoded
        self.text = ""       # decoded stream text, not yet split into blocks
        self.eof = False
        self.last_chunk = False  # the terminating 0-size chunk arrived
        head = self._read_until(b"\r\n\r\n")
        status_line, *fields = head.decode("latin-1").split("\r\n")
        self.version, status, self.reason = status_line.split(" ", 2)
        self.status = int(status)
        self.headers = {}
        for f in fields:
            k, v = f.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = self.headers.get("transfer-encoding") == "chunked"

    def header(self, name):
        return self.headers.get(name.lower())

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            raise StreamEnded("connection closed")
        self.raw += data

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.raw:
            self._recv()
        head, self.raw = self.raw.split(marker, 1)
        return head

    def response(self) -> Response:
        """A non-streaming answer (a problem): its body by Content-Length."""
        n = int(self.headers.get("content-length", "0"))
        while len(self.raw) < n:
            self._recv()
        headers = Message()
        for k, v in self.headers.items():
            headers[k] = v
        return Response(self.status, self.reason, headers, self.raw[:n], self.version)

    def _decode(self):
        """Moves complete chunks from raw into text."""
        if not self.chunked:
            self.text += self.raw.decode()
            self.raw = b""
            return
        while not self.last_chunk:
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                return
            size = int(self.raw[:line_end], 16)
            if len(self.raw) < line_end + 2 + size + 2:
                return
            body = self.raw[line_end + 2:line_end + 2 + size]
            assert self.raw[line_end + 2 + size:line_end + 4 + size] == b"\r\n"
            self.raw = self.raw[line_end + 4 + size:]
            if size == 0:
                self.last_chunk = True
            self.text += body.decode()

    def next_block(self) -> str:
        """The next SSE block (an event or a comment), with its blank line."""
        while True:
            self._decode()
            end = self.text.find("\n\n")
            if end >= 0:
                block, self.text = self.text[:end + 2], self.text[end + 2:]
                return block
            if self.last_chunk:
                raise StreamEnded("last chunk")
            self._recv()

    def next_event(self) -> str:
        """The next event, skipping heartbeat comments."""
        while True:
            block = self.next_block()
            if not block.startswith(":"):
                return block

    def events(self, n):
        return [self.next_event() for _ in range(n)]

    def read_to_end(self) -> str:
        """Everything up to the last chunk (or close): the rest of the text."""
        try:
            while True:
                self._decode()
                if self.last_chunk:
                    break
                self._recv()
        except StreamEnded:
            pass
        rest, self.text = self.text, ""
        return rest

    def wait_closed(self) -> bool:
        """True once the server closed the connection (EOF)."""
        try:
            while True:
                self._recv()
        except StreamEnded:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def prefix_name(tag="w"):
    return f"{tag}{uuid.uuid4().hex[:10]}:"


class WatchCase(ServerTestCase):
    def watch(self, path, **kw) -> Watch:
        w = Watch(self.server, path, **kw)
        self.addCleanup(w.close)
        return w

    def metrics(self):
        r = self.c.get("/metrics")
        self.assertEqual(r.status, 200, repr(r))
        return parse_prometheus(r.text)

    def assertStreamHeader(self, w: Watch, chunked=True):
        self.assertEqual(w.status, 200)
        self.assertEqual(w.header("Content-Type"), "text/event-stream")
        self.assertEqual(w.header("Cache-Control"), "no-cache")
        self.assertEqual(w.header("Transfer-Encoding"), "chunked" if chunked else None)
        self.assertIsNone(w.header("Content-Length"))


class NameWatchTest(WatchCase):
    def test_current_state_then_each_change_then_delete(self):
        name = unique_name("nw")
        self.put_counter(name, 5)
        w = self.watch(f"/counters/{name}/watch")
        self.assertStreamHeader(w)
        self.assertEqual(w.next_event(), counter_event(1, name, 5, 1))
        r = self.c.post(f"/counters/{name}/increment", json={"by": 2})
        self.assertCounter(r, name, 7)
        self.assertEqual(w.next_event(), counter_event(2, name, 7, 2))
        self.assertEqual(self.c.delete(f"/counters/{name}").status, 204)
        self.assertEqual(w.next_event(), deleted_event(0, name))
        self.assertCounter(self.c.post(f"/counters/{name}/increment", json={"by": 1}),
                           name, 1)
        self.assertEqual(w.next_event(), counter_event(1, name, 1, 1))

    def test_a_missing_counter_starts_as_deleted(self):
        name = unique_name("nw")
        w = self.watch(f"/counters/{name}/watch")
        self.assertEqual(w.next_event(), deleted_event(0, name))
        self.put_counter(name, 3)
        self.assertEqual(w.next_event(), counter_event(1, name, 3, 1))

    def test_last_event_id_of_the_current_version_sends_nothing_until_a_change(self):
        name = unique_name("nw")
        self.put_counter(name, 1)
        self.put_counter(name, 2)  # version 2
        w = self.watch(f"/counters/{name}/watch", headers={"Last-Event-ID": "2"})
        self.assertStreamHeader(w)
        self.c.post(f"/counters/{name}/increment", json={"by": 10})
        self.assertEqual(w.next_event(), counter_event(3, name, 12, 3))

    def test_a_stale_last_event_id_gets_the_current_state(self):
        name = unique_name("nw")
        self.put_counter(name, 1)
        self.put_counter(name, 4)
        w = self.watch(f"/counters/{name}/watch", headers={"Last-Event-ID": "1"})
        self.assertEqual(w.next_event(), counter_event(2, name, 4, 2))

    def test_http_1_0_gets_the_stream_unchunked(self):
        name = unique_name("nw")
        self.put_counter(name, 9)
        w = self.watch(f"/counters/{name}/watch", version="HTTP/1.0")
        self.assertEqual(w.version, "HTTP/1.0")
        self.assertStreamHeader(w, chunked=False)
        self.assertEqual(w.next_event(), counter_event(1, name, 9, 1))

    def test_requests_are_refused_as_on_other_counter_routes(self):
        for method in ("POST", "PUT", "DELETE", "HEAD"):
            for path in ("/counters/x/watch", "/watch?prefix=x"):
                r = self.c.request(method, path)
                if method == "HEAD":  # the problem's header, no body
                    self.assertEqual(r.status, 405, path)
                else:
                    self.assertEqual(self.assertProblem(r, 405, path)["type"],
                                     "urn:counterd:problem:method-not-allowed")
                self.assertEqual(r.header("Allow"), "GET", f"{method} {path}")
        bad = self.c.get("/counters/bad%20name/watch")
        self.assertEqual(self.assertProblem(bad, 400)["type"], "urn:counterd:problem:invalid-name")
        self.assertEqual(bad.json()["detail"],
                         self.assertProblem(self.c.get("/counters/bad%20name"), 400)["detail"])
        for value in ("abc", "-1", "+1", "1.5", "18446744073709551616", "1 2"):
            r = self.c.get("/counters/x/watch", headers={"Last-Event-ID": value})
            doc = self.assertProblem(r, 400, value)
            self.assertEqual(doc["type"], "urn:counterd:problem:bad-request")
            self.assertIn("Last-Event-ID", doc["detail"])
        r = self.c.get("/watch?prefix=a%20b")
        self.assertEqual(self.assertProblem(r, 400)["type"], "urn:counterd:problem:invalid-query")


class PrefixWatchTest(WatchCase):
    def test_dump_then_only_changes_under_the_prefix_with_commit_sequence_ids(self):
        p = prefix_name()
        a, b, other = p + "a", p + "b", prefix_name("o") + "c"
        self.put_counter(a, 1)
        self.put_counter(b, 2)
        self.put_counter(other, 3)
        w = self.watch(f"/watch?prefix={p}")
        self.assertStreamHeader(w)
        dump = w.events(2)
        seq = block_id(dump[0])
        self.assertEqual(dump, [counter_event(seq, a, 1, 1), counter_event(seq, b, 2, 1)])
        self.c.post(f"/counters/{a}/increment", json={"by": 1})
        first = w.next_event()
        if BACKEND == "postgres":
            # A NOTIFY for a commit the dump already showed may reach the
            # replica after the dump's read (docs/postgres.md, section 7):
            # it repeats a dumped state exactly, and only that is skipped.
            dumped = {strip_id(e) for e in dump}
            while strip_id(first) in dumped and strip_id(first) != strip_id(
                    counter_event(0, a, 2, 2)):
                dumped.discard(strip_id(first))
                first = w.next_event()
        x = block_id(first)
        self.assertGreater(x, seq)
        self.assertEqual(first, counter_event(x, a, 2, 2))
        self.c.post(f"/counters/{other}/increment", json={"by": 1})  # not under p
        self.assertEqual(self.c.delete(f"/counters/{b}").status, 204)
        second = w.next_event()
        y = block_id(second)
        self.assertEqual(second, deleted_event(y, b))
        if BACKEND == "file":
            # One journal record per commit: the other counter's came between.
            self.assertEqual(y, x + 2)
        else:
            self.assertGreater(y, x)
        w.close()

        # Resuming after x: exactly what this prefix missed since, then live.
        r = self.watch(f"/watch?prefix={p}", headers={"Last-Event-ID": str(x)})
        self.assertEqual(r.next_event(), deleted_event(y, b))
        self.c.post(f"/counters/{a}/increment", json={"by": 5})
        live = r.next_event()
        self.assertEqual(live, counter_event(block_id(live), a, 7, 3))
        self.assertGreater(block_id(live), y)

        # Resuming at the last id: nothing until the next change.
        z = self.watch(f"/watch?prefix={p}", headers={"Last-Event-ID": str(block_id(live))})
        self.c.post(f"/counters/{a}/increment", json={"by": 1})
        nxt = z.next_event()
        self.assertEqual(nxt, counter_event(block_id(nxt), a, 8, 4))

    def test_empty_prefix_watches_every_counter(self):
        w = self.watch("/watch?prefix=")
        name = unique_name("all")
        # The dump of whatever exists ends before the put below is seen:
        # read events until this counter's appears.
        self.put_counter(name, 42)
        while True:
            block = w.next_event()
            if f'"name":"{name}"' in block:
                break
        self.assertEqual(block, counter_event(block_id(block), name, 42, 1))


class ResetTest(CounterdAssertions, unittest.TestCase):
    def test_an_unknown_last_event_id_resets_then_streams(self):
        srv = CounterdServer().start()
        self.addCleanup(srv.cleanup)
        p = prefix_name("r")
        with srv.client() as c:
            for i in range(3):
                self.assertEqual(c.put(f"/counters/{p}{i}", json={"value": i}).status, 201)
            c.post(f"/counters/{p}0/increment", json={"by": 1})
        self.assertEqual(srv.stop(), 0)
        # The new process does not know the changes before it started.
        srv2 = srv.restart()
        self.addCleanup(srv2.cleanup)
        w = Watch(srv2, f"/watch?prefix={p}", headers={"Last-Event-ID": "1"})
        self.addCleanup(w.close)
        first = w.next_event()
        seq = block_id(first)
        self.assertEqual(first, reset_event(seq, p))
        self.assertEqual(w.events(3), [counter_event(seq, p + "0", 1, 2),
                                       counter_event(seq, p + "1", 1, 1),
                                       counter_event(seq, p + "2", 2, 1)])
        with srv2.client() as c:
            c.post(f"/counters/{p}2/increment", json={"by": 1})
            live = w.next_event()
            self.assertEqual(live, counter_event(block_id(live), p + "2", 3, 2))
            samples = parse_prometheus(c.get("/metrics").text)
            self.assertEqual(metric_sum(samples, "counterd_watch_resets_total"), 1)
        w.close()
        self.assertEqual(srv2.stop(), 0)


class HeartbeatTest(WatchCase):
    server_args = ["--watch-heartbeat-ms", "200"]

    def test_a_quiet_stream_gets_heartbeat_comments(self):
        name = unique_name("hb")
        w = self.watch(f"/counters/{name}/watch")
        self.assertEqual(w.next_block(), deleted_event(0, name))
        self.assertEqual(w.next_block(), HEARTBEAT)
        self.assertEqual(w.next_block(), HEARTBEAT)
        self.put_counter(name, 1)
        # Events still come between heartbeats.
        self.assertEqual(w.next_event(), counter_event(1, name, 1, 1))


class MaxWatchersTest(WatchCase):
    server_args = ["--max-watchers", "1"]

    def test_the_watch_beyond_the_cap_gets_503_until_one_closes(self):
        name = unique_name("mw")
        first = self.watch(f"/counters/{name}/watch")
        self.assertEqual(first.next_event(), deleted_event(0, name))
        second = self.watch(f"/watch?prefix=")
        r = second.response()
        doc = self.assertProblem(r, 503)
        self.assertEqual(doc["type"], "urn:counterd:problem:too-many-watchers")
        self.assertEqual(r.header("Retry-After"), "1")
        # Other requests are served meanwhile.
        self.assertEqual(self.c.get("/livez").status, 200)
        first.close()
        wait_until(lambda: metric_sum(self.metrics(), "counterd_watchers") == 0,
                   message="the closed watch to free its slot")
        third = self.watch(f"/counters/{name}/watch")
        self.assertEqual(third.next_event(), deleted_event(0, name))


class MetricsTest(WatchCase):
    def test_watchers_events_and_the_request_once_it_ended(self):
        name = unique_name("mt")
        self.put_counter(name, 1)
        w = self.watch(f"/counters/{name}/watch")
        self.assertEqual(w.next_event(), counter_event(1, name, 1, 1))
        self.c.post(f"/counters/{name}/increment", json={"by": 1})
        self.assertEqual(w.next_event(), counter_event(2, name, 2, 2))
        m = self.metrics()
        self.assertEqual(metric_sum(m, "counterd_watchers"), 1)
        self.assertEqual(metric_sum(m, "counterd_watch_events_total"), 2)
        self.assertEqual(metric_sum(m, "counterd_watch_resets_total"), 0)
        route = {"route": "/counters/{name}/watch", "method": "GET", "code": "200"}
        self.assertEqual(metric_sum(m, "counterd_http_requests_total", **route), 0)
        w.close()
        m = wait_until(lambda: (lambda s: s if metric_sum(s, "counterd_watchers") == 0
                                else None)(self.metrics()),
                       message="the watch to end")
        self.assertEqual(metric_sum(m, "counterd_http_requests_total", **route), 1)
        self.assertEqual(metric_sum(m, "counterd_watch_events_total"), 2)


class DrainTest(CounterdAssertions, unittest.TestCase):
    def test_sigterm_ends_open_streams_cleanly_and_promptly(self):
        # A drain that waited for the watch would take a minute.
        srv = CounterdServer(args=["--drain-timeout-ms", "60000"]).start()
        self.addCleanup(srv.cleanup)
        name = unique_name("dr")
        w = Watch(srv, f"/counters/{name}/watch")
        self.addCleanup(w.close)
        p = Watch(srv, "/watch?prefix=")
        self.addCleanup(p.close)
        self.assertEqual(w.next_event(), deleted_event(0, name))
        srv.signal(signal.SIGTERM)
        self.assertEqual(w.read_to_end(), "")
        self.assertTrue(w.last_chunk, "the stream ended with the last chunk")
        self.assertTrue(w.wait_closed())
        p.read_to_end()
        self.assertTrue(p.last_chunk)
        self.assertEqual(srv.wait(timeout=20), 0)
        self.assertIn("shutdown: requests drained", srv.log_text())


class WatchAuthTest(test_auth.AuthServerCase, WatchCase):
    @classmethod
    def entries(cls):
        return [("ops", ["read", "write", "metrics"], None),
                ("a-reader", ["read"], ["a:"]),
                ("writer", ["write"], None)]

    def test_a_prefix_limited_token_watches_only_its_counters(self):
        tag = uuid.uuid4().hex[:8]
        mine, theirs = f"a:{tag}", f"b:{tag}"
        for n in (mine, theirs):
            r = self.c.put(f"/counters/{n}", json={"value": 1}, headers=self.auth("ops"))
            self.assertEqual(r.status, 201, repr(r))
        w = self.watch("/watch?prefix=", headers=self.auth("a-reader"))
        self.assertStreamHeader(w)
        # The dump: a: counters only (this class's tests make no others).
        blocks = []
        while True:
            block = w.next_event()
            self.assertIn('"name":"a:', block)
            blocks.append(block)
            if f'"name":"{mine}"' in block:
                break
        self.c.post(f"/counters/{theirs}/increment", json={"by": 1}, headers=self.auth("ops"))
        self.c.post(f"/counters/{mine}/increment", json={"by": 1}, headers=self.auth("ops"))
        live = w.next_event()
        self.assertEqual(live, counter_event(block_id(live), mine, 2, 2))

    def test_a_name_watch_outside_the_prefixes_is_403(self):
        r = self.c.get("/counters/b:x/watch", headers=self.auth("a-reader"))
        self.assertEqual(self.assertProblem(r, 403)["type"], "urn:counterd:problem:forbidden")
        r = self.c.get("/watch?prefix=b:", headers=self.auth("a-reader"))
        self.assertProblem(r, 403)
        r = self.c.get("/counters/a:x/watch", headers=self.auth("writer"))
        self.assertProblem(r, 403)
        self.assertEqual(self.c.get("/counters/a:x/watch").status, 401)
        w = self.watch("/counters/a:x/watch", headers=self.auth("a-reader"))
        self.assertEqual(w.next_event(), deleted_event(0, "a:x"))


if __name__ == "__main__":
    unittest.main()
