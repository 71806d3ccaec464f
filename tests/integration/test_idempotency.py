"""Idempotency-Key on the POST endpoints. (Replays after a restart are in
test_lifecycle.)"""

import threading
import unittest
import uuid

from counterd_harness import INT64_MAX, ServerTestCase, unique_name


def key():
    return "k-" + uuid.uuid4().hex


class IdempotencyTest(ServerTestCase):

    def assertReplay(self, first, again, msg=""):
        """|again| repeats |first|: same status, same body, flagged."""
        self.assertEqual(again.status, first.status, f"{msg} {again!r}")
        self.assertEqual(again.body, first.body, f"{msg} replay body differs")
        self.assertEqual(again.header("Idempotent-Replayed"), "true", f"{msg} {again!r}")

    def assertNotReplayed(self, resp):
        # The header is sent only on a replay ("true"), never as "false".
        self.assertIsNone(resp.header("Idempotent-Replayed"), repr(resp))

    def test_replay_returns_first_response_and_changes_nothing(self):
        for op, body, expect in (("increment", {"by": 5}, 15), ("decrement", None, 9),
                                 ("increment", None, 11)):
            with self.subTest(op=op, body=body):
                name = unique_name("idem")
                self.put_counter(name, 10)
                k = key()
                kw = {} if body is None else {"json": body}
                first = self.c.post(f"/counters/{name}/{op}", headers={"Idempotency-Key": k}, **kw)
                doc = self.assertCounter(first, name, expect)
                self.assertNotReplayed(first)
                for _ in range(3):
                    again = self.c.post(f"/counters/{name}/{op}",
                                        headers={"Idempotency-Key": k}, **kw)
                    self.assertReplay(first, again)
                    self.assertEqual(again.header("ETag"), first.header("ETag"))
                self.assertEqual(self.get_counter(name), doc, "a replay changed the counter")

    def test_replay_on_default_counter(self):
        k = key()
        before = self.assertCounter(self.c.get("/counter"), "default")
        first = self.c.post("/counter/increment", json={"by": 2}, headers={"Idempotency-Key": k})
        self.assertCounter(first, "default", before["value"] + 2)
        again = self.c.post("/counter/increment", json={"by": 2}, headers={"Idempotency-Key": k})
        self.assertReplay(first, again)
        self.assertEqual(self.c.get("/counter").json()["value"], before["value"] + 2)

    def test_replay_is_the_stored_response_not_current_state(self):
        name = unique_name("stored")
        k = key()
        first = self.c.post(f"/counters/{name}/increment", headers={"Idempotency-Key": k})
        self.assertCounter(first, name, 1)
        self.put_counter(name, 500)
        again = self.c.post(f"/counters/{name}/increment", headers={"Idempotency-Key": k})
        self.assertReplay(first, again)
        self.assertEqual(again.json()["value"], 1)
        self.assertEqual(self.get_counter(name)["value"], 500)

    def test_semantically_equal_body_replays(self):
        name = unique_name("sem")
        k = key()
        first = self.c.post(f"/counters/{name}/increment", body=b'{"by":3}',
                            content_type="application/json", headers={"Idempotency-Key": k})
        self.assertCounter(first, name, 3)
        again = self.c.post(f"/counters/{name}/increment", body=b'{ "by" : 3 }\n',
                            content_type="application/json", headers={"Idempotency-Key": k})
        self.assertReplay(first, again, "same JSON, different whitespace")
        self.assertEqual(self.get_counter(name)["value"], 3)

    def test_same_key_different_request_is_422(self):
        name, other = unique_name("k422"), unique_name("k422o")
        k = key()
        first = self.c.post(f"/counters/{name}/increment", json={"by": 1},
                            headers={"Idempotency-Key": k})
        doc = self.assertCounter(first, name, 1)
        variants = [
            ("different body", f"/counters/{name}/increment", {"by": 2}),
            ("different path (decrement)", f"/counters/{name}/decrement", {"by": 1}),
            ("different counter", f"/counters/{other}/increment", {"by": 1}),
            ("different path (/counter)", "/counter/increment", {"by": 1}),
        ]
        default_before = self.c.get("/counter").json()
        for what, path, body in variants:
            with self.subTest(what=what):
                kw = {} if body is None else {"json": body}
                r = self.c.post(path, headers={"Idempotency-Key": k}, **kw)
                self.assertProblem(r, 422, what)
        self.assertEqual(self.get_counter(name), doc)
        self.assertIsNone(self.get_counter(other))
        self.assertEqual(self.c.get("/counter").json(), default_before)
        # The key still replays the original.
        self.assertReplay(first, self.c.post(f"/counters/{name}/increment", json={"by": 1},
                                             headers={"Idempotency-Key": k}))

    def test_invalid_keys_are_400(self):
        name = unique_name("badkey")
        self.put_counter(name, 0)
        before = self.get_counter(name)
        for bad in ("", "a" * 256, "a b", "tab\there"):
            with self.subTest(key=bad[:20]):
                r = self.c.post(f"/counters/{name}/increment", headers={"Idempotency-Key": bad})
                self.assertProblem(r, 400, f"Idempotency-Key {bad[:20]!r} (len {len(bad)})")
        # Bytes http.client would not send: raw socket. Non-ASCII is legal
        # obs-text in HTTP, so the key check must refuse it with a problem;
        # control characters may already be refused by the HTTP parser
        # (400, or the connection closed).
        for bad, may_close in ((b"caf\xc3\xa9", False), (b"del\x7f", True),
                               (b"nul\x01x", True)):
            with self.subTest(key=bad):
                with self.server.raw() as raw:
                    raw.send(b"POST /counters/" + name.encode() + b"/increment HTTP/1.1\r\n"
                             b"Host: x\r\nContent-Length: 0\r\nIdempotency-Key: " + bad +
                             b"\r\n\r\n")
                    r = raw.read_response()
                if r is None and may_close:
                    continue
                self.assertIsNotNone(r, "closed without an answer")
                if may_close:
                    self.assertEqual(r.status, 400, repr(r))
                else:
                    self.assertProblem(r, 400, f"Idempotency-Key {bad!r}")
        self.assertEqual(self.get_counter(name), before, "a bad key changed the counter")

    def test_longest_and_odd_valid_keys(self):
        name = unique_name("okkey")
        for i, k in enumerate(("a" * 255, "!", "~", "x!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")):
            with self.subTest(key=k[:20]):
                first = self.c.post(f"/counters/{name}/increment", headers={"Idempotency-Key": k})
                self.assertCounter(first, name, i + 1)
                self.assertReplay(first, self.c.post(f"/counters/{name}/increment",
                                                     headers={"Idempotency-Key": k}))

    def test_failed_request_is_replayed_too(self):
        # The first response was a 409; the key keeps answering 409 even
        # after the same request would now succeed.
        name = unique_name("ovfkey")
        self.put_counter(name, INT64_MAX)
        k = key()
        first = self.c.post(f"/counters/{name}/increment", headers={"Idempotency-Key": k})
        self.assertProblem(first, 409)
        self.put_counter(name, 0)
        after = self.get_counter(name)
        again = self.c.post(f"/counters/{name}/increment", headers={"Idempotency-Key": k})
        self.assertReplay(first, again, "replay of a 409")
        self.assertEqual(self.get_counter(name), after)

    def test_concurrent_same_key_moves_counter_exactly_once(self):
        name = unique_name("race")
        self.put_counter(name, 0)
        n = 24
        k = key()
        clients = [self.server.client() for _ in range(n)]
        for c in clients:
            self.addCleanup(c.close)
            self.assertEqual(c.get("/livez").status, 200)   # connect before the race
        barrier = threading.Barrier(n)
        results = [None] * n
        errors = []

        def worker(i):
            try:
                barrier.wait(30)
                results[i] = clients[i].post(f"/counters/{name}/increment", json={"by": 7},
                                             headers={"Idempotency-Key": k})
            except Exception as e:  # surfaced below
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        statuses = sorted(r.status for r in results)
        self.assertTrue(all(s in (200, 409) for s in statuses), statuses)
        originals = [r for r in results
                     if r.status == 200 and r.header("Idempotent-Replayed") != "true"]
        self.assertEqual(len(originals), 1, f"exactly one request may run; statuses {statuses}")
        first = originals[0]
        self.assertCounter(first, name, 7)
        for r in results:
            if r is first:
                continue
            if r.status == 200:
                self.assertReplay(first, r)
            else:
                self.assertProblem(r, 409, "concurrent repeat while in flight")
        self.assertEqual(self.get_counter(name)["value"], 7, "the counter moved more than once")
        self.assertReplay(first, self.c.post(f"/counters/{name}/increment", json={"by": 7},
                                             headers={"Idempotency-Key": k}))

    def test_keys_are_independent(self):
        name = unique_name("indep")
        for i in range(5):
            r = self.c.post(f"/counters/{name}/increment", headers={"Idempotency-Key": key()})
            self.assertCounter(r, name, i + 1)
            self.assertNotReplayed(r)


if __name__ == "__main__":
    unittest.main()
