"""Restarts: persistence after SIGTERM and SIGKILL (values and idempotency
keys), acknowledged writes under load surviving SIGKILL, graceful drain."""

import http.client
import shutil
import tempfile
import threading
import time
import unittest
import uuid

from counterd_harness import CounterdAssertions, CounterdServer, Response, unique_name, \
    wait_until


class LifecycleTest(CounterdAssertions, unittest.TestCase):

    def new_server(self, **kw):
        d = tempfile.mkdtemp(prefix="counterd-life-")
        self.addCleanup(shutil.rmtree, d, True)
        srv = CounterdServer(data_dir=d, **kw)
        self.addCleanup(srv.cleanup)
        return srv.start()

    def restart(self, srv, **kw):
        new = srv.restart(**kw)
        self.addCleanup(new.cleanup)
        return new

    def snapshot(self, srv):
        with srv.client() as c:
            out, after = [], ""
            while True:
                r = c.get(f"/counters?limit=1000&after={after}" if after else
                          "/counters?limit=1000")
                self.assertEqual(r.status, 200, repr(r))
                doc = r.json()
                out += doc["counters"]
                if doc["next"] is None:
                    return out
                after = doc["next"]

    def populate(self, srv):
        """Makes a known state; returns (idempotent first responses by key)."""
        keyed = {}
        with srv.client() as c:
            self.assertEqual(c.put("/counters/a", json={"value": 5}).status, 201)
            self.assertEqual(c.put("/counters/a", json={"value": -77}).status, 200)
            for _ in range(3):
                self.assertEqual(c.post("/counters/b/increment", json={"by": 3}).status, 200)
            self.assertEqual(c.put("/counters/c", json={"value": 1}).status, 201)
            self.assertEqual(c.delete("/counters/c").status, 204)
            self.assertEqual(c.post("/counter/increment").status, 200)
            self.assertEqual(c.put("/counters/user:42:logins", json={"value": 2**62}).status, 201)
            for i, (path, body) in enumerate([("/counters/d/increment", {"by": 11}),
                                              ("/counters/d/decrement", {"by": 4}),
                                              ("/counter/increment", None)]):
                k = f"restart-{i}-{uuid.uuid4().hex}"
                kw = {} if body is None else {"json": body}
                r = c.post(path, headers={"Idempotency-Key": k}, **kw)
                self.assertEqual(r.status, 200, repr(r))
                keyed[k] = (path, body, r)
        return keyed

    def check_state_and_replays(self, srv, before, keyed):
        self.assertEqual(self.snapshot(srv), before, "state changed across the restart")
        with srv.client() as c:
            self.assertProblem(c.get("/counters/c"), 404, "deleted counter came back")
            self.assertEqual(c.get("/counters/a").json()["value"], -77)
            self.assertEqual(c.get("/counters/b").json()["value"], 9)
            self.assertEqual(c.get("/counters/d").json()["value"], 7)
            self.assertEqual(c.get("/counters/user:42:logins").json()["value"], 2**62)
            self.assertEqual(c.get("/counter").json()["value"], 2)
            for k, (path, body, first) in keyed.items():
                with self.subTest(key=k, path=path):
                    kw = {} if body is None else {"json": body}
                    again = c.post(path, headers={"Idempotency-Key": k}, **kw)
                    self.assertEqual(again.status, first.status, repr(again))
                    self.assertEqual(again.body, first.body, "replay after restart differs")
                    self.assertEqual(again.header("Idempotent-Replayed"), "true", repr(again))
                    # Same key, different request: still known, so 422.
                    self.assertProblem(c.post(path, headers={"Idempotency-Key": k},
                                              json={"by": 999}), 422,
                                       "reused key after restart")
        self.assertEqual(self.snapshot(srv), before, "replays after restart changed state")

    def test_persistence_after_sigterm(self):
        srv = self.new_server()
        keyed = self.populate(srv)
        before = self.snapshot(srv)
        self.assertEqual(srv.stop(), 0, "exit code after SIGTERM:\n" + srv.log_text(30))
        srv2 = self.restart(srv)
        self.check_state_and_replays(srv2, before, keyed)
        self.assertEqual(srv2.stop(), 0)

    def test_persistence_after_sigkill(self):
        srv = self.new_server()
        keyed = self.populate(srv)
        before = self.snapshot(srv)
        self.assertEqual(srv.kill(), -9)
        srv2 = self.restart(srv)
        self.check_state_and_replays(srv2, before, keyed)
        # And a second crash after more writes.
        with srv2.client() as c:
            self.assertEqual(c.post("/counters/b/increment").status, 200)
        before = self.snapshot(srv2)
        srv2.kill()
        srv3 = self.restart(srv2)
        self.assertEqual(self.snapshot(srv3), before)
        self.assertEqual(srv3.stop(), 0)

    def test_acknowledged_writes_survive_sigkill_under_load(self):
        srv = self.new_server()
        name = "load"
        acked, sent = [0] * 8, [0] * 8
        stop = threading.Event()
        unexpected = []

        def worker(i):
            with srv.client(timeout=10) as c:
                while not stop.is_set():
                    sent[i] += 1
                    try:
                        r = c.post(f"/counters/{name}/increment")
                    except (OSError, http.client.HTTPException):
                        return
                    if r.status != 200:
                        unexpected.append(repr(r))
                        return
                    acked[i] += 1

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(8)]
        for t in threads:
            t.start()
        wait_until(lambda: sum(acked) >= 200, 30, message="200 acknowledged increments")
        srv.kill()
        stop.set()
        for t in threads:
            t.join(15)
        self.assertEqual(unexpected, [])
        srv2 = self.restart(srv)
        with srv2.client() as c:
            value = c.get(f"/counters/{name}").json()["value"]
        total_acked, total_sent = sum(acked), sum(sent)
        self.assertGreaterEqual(value, total_acked, "an acknowledged increment was lost")
        self.assertLessEqual(value, total_sent, "more increments than were ever sent")
        self.assertEqual(srv2.stop(), 0)

    def test_sigterm_on_idle_server_exits_0_promptly(self):
        srv = self.new_server(args=["--drain-timeout-ms", "15000"])
        idle = srv.client()
        self.addCleanup(idle.close)
        self.assertEqual(idle.get("/livez").status, 200)   # an idle keep-alive connection
        t0 = time.monotonic()
        self.assertEqual(srv.stop(timeout=20), 0)
        self.assertLess(time.monotonic() - t0, 10,
                        "an idle keep-alive connection held up shutdown")

    def test_sigterm_drains_in_flight_request(self):
        srv = self.new_server(args=["--drain-timeout-ms", "15000"])
        name = unique_name("drain")
        with srv.client() as c:
            self.assertEqual(c.put(f"/counters/{name}", json={"value": 100}).status, 201)

        probe = srv.raw()
        self.addCleanup(probe.close)
        probe.send(b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertEqual(probe.read_response().status, 200)

        body = b'{"by":5}'
        inflight = srv.raw(timeout=20)
        self.addCleanup(inflight.close)
        inflight.send((f"POST /counters/{name}/increment HTTP/1.1\r\nHost: t\r\n"
                       f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                       ).encode() + body[:3])
        # A /readyz request whose head is still arriving when SIGTERM lands.
        late_probe = srv.raw(timeout=20)
        self.addCleanup(late_probe.close)
        late_probe.send(b"GET /readyz HTTP/1.1\r\nHost: t\r\n")
        # Both requests have reached the server: in flight are they and the
        # /metrics request that asks.
        srv.wait_for_metric("counterd_http_requests_in_flight", 3)
        srv.terminate()

        # The listener closes...
        wait_until(srv.connection_refused, 10, 0.1, "listener closed after SIGTERM")
        self.assertTrue(srv.running, "exited while a request was in flight")
        # ...an idle keep-alive connection is closed at once (it has no
        # request to finish), without an answer...
        answered = len(probe.received)
        self.assertTrue(probe.wait_closed(10), "idle connection kept open while draining")
        self.assertEqual(probe.received[answered:], b"", "the idle connection got bytes")
        # ...and readiness is withdrawn on connections still open: the
        # /readyz request that was in flight is answered 503.
        late_probe.send(b"\r\n")
        try:
            r = late_probe.read_response(timeout=10)
        except ConnectionError as e:
            r = e
        self.assertIsInstance(r, Response, "/readyz in flight at SIGTERM was not answered "
                                           f"(closed/reset: {r!r})")
        self.assertEqual(r.status, 503, f"/readyz in flight during drain: {r!r}")
        # ...and the request in flight completes.
        inflight.send(body[3:])
        r = inflight.read_response(timeout=15)
        self.assertIsNotNone(r, "in-flight request was cut off by SIGTERM")
        self.assertCounter(r, name, 105, msg="in-flight request during drain")
        self.assertEqual(srv.wait(20), 0, "exit code after drain:\n" + srv.log_text(30))

        srv2 = self.restart(srv)
        with srv2.client() as c:
            self.assertEqual(c.get(f"/counters/{name}").json()["value"], 105)
        self.assertEqual(srv2.stop(), 0)

    def test_sigterm_during_load_loses_no_acknowledged_write(self):
        srv = self.new_server(args=["--drain-timeout-ms", "15000"])
        name = "termload"
        acked, unanswered, statuses = [0] * 6, [0] * 6, []
        stop = threading.Event()

        def worker(i):
            with srv.client(timeout=20) as c:
                while not stop.is_set():
                    try:
                        r = c.post(f"/counters/{name}/increment")
                    except (OSError, http.client.HTTPException):
                        unanswered[i] += 1
                        return
                    statuses.append(r.status)
                    if r.status == 200:
                        acked[i] += 1
                    else:
                        return

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(6)]
        for t in threads:
            t.start()
        wait_until(lambda: sum(acked) >= 100, 30, message="100 acknowledged increments")
        srv.terminate()
        rc = srv.wait(30)
        stop.set()
        for t in threads:
            t.join(15)
        self.assertEqual(rc, 0, "exit code after SIGTERM under load:\n" + srv.log_text(30))
        self.assertTrue(set(statuses) <= {200, 503}, sorted(set(statuses)))
        srv2 = self.restart(srv)
        with srv2.client() as c:
            value = c.get(f"/counters/{name}").json()["value"]
        self.assertGreaterEqual(value, sum(acked), "acknowledged increment lost on SIGTERM")
        self.assertLessEqual(value, sum(acked) + sum(unanswered))
        self.assertEqual(srv2.stop(), 0)


if __name__ == "__main__":
    unittest.main()
