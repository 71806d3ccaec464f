"""Bounded increments (quotas) and fixed-window rate limits: "min"/"max" on
increment and decrement (409 limit-exceeded, nothing changes, not even the
version), Retry-After on a counter with an expiry, the IETF RateLimit
fields when both "max" and "ttl_seconds" are sent, idempotent replay of a
refusal, and min > max refused as 400."""

import re
import unittest

from counterd_harness import INT64_MAX, ServerTestCase, unique_name, wait_until

RATELIMIT = re.compile(r'^"counter";r=(\d+)(?:;t=(\d+))?$')


class BoundedIncrementTest(ServerTestCase):

    def test_max_refuses_without_consuming(self):
        name = unique_name("quota")
        for i in range(1, 4):
            r = self.c.post(f"/counters/{name}/increment", json={"by": 1, "max": 3})
            self.assertCounter(r, name, i)
        before = self.get_counter(name)
        r = self.c.post(f"/counters/{name}/increment", json={"by": 1, "max": 3})
        doc = self.assertProblem(r, 409)
        self.assertEqual(doc["type"], "urn:counterd:problem:limit-exceeded")
        self.assertIn("(value 3)", doc["detail"])
        self.assertIn("maximum 3", doc["detail"])
        self.assertIsNone(r.header("Retry-After"), "no expiry, no Retry-After")
        self.assertEqual(self.get_counter(name), before, "not even the version moved")

    def test_min_on_decrement_and_on_a_missing_counter(self):
        name = unique_name("credits")
        self.put_counter(name, 2)
        self.assertCounter(self.c.post(f"/counters/{name}/decrement",
                                       json={"by": 2, "min": 0}), name, 0)
        doc = self.assertProblem(self.c.post(f"/counters/{name}/decrement",
                                             json={"min": 0}), 409)
        self.assertIn("minimum 0", doc["detail"])
        # A missing counter counts as 0: refused without being created.
        ghost = unique_name("ghost")
        self.assertProblem(self.c.post(f"/counters/{ghost}/decrement",
                                       json={"by": 1, "min": 0}), 409)
        self.assertIsNone(self.get_counter(ghost))

    def test_the_result_must_be_within_both_bounds(self):
        name = unique_name("range")
        self.put_counter(name, 150)
        # Even a step towards the range is refused while it ends outside.
        self.assertProblem(self.c.post(f"/counters/{name}/decrement",
                                       json={"by": 1, "min": 0, "max": 100}), 409)
        self.assertCounter(self.c.post(f"/counters/{name}/decrement",
                                       json={"by": 50, "min": 0, "max": 100}), name, 100)

    def test_min_greater_than_max_is_400_and_changes_nothing(self):
        name = unique_name("bad")
        r = self.c.post(f"/counters/{name}/increment", json={"min": 5, "max": 4})
        doc = self.assertProblem(r, 400)
        self.assertEqual(doc["type"], "urn:counterd:problem:invalid-field")
        self.assertIsNone(self.get_counter(name))
        for body in ({"max": "3"}, {"min": 1.5}, {"max": None}, {"ttl_seconds": 0},
                     {"ttl_seconds": 31536001}, {"by": 1, "limit": 3}):
            self.assertProblem(self.c.post(f"/counters/{name}/increment", json=body),
                               400, repr(body))
        self.assertIsNone(self.get_counter(name))

    def test_overflow_is_still_overflow(self):
        name = unique_name("edge")
        self.put_counter(name, INT64_MAX)
        doc = self.assertProblem(self.c.post(f"/counters/{name}/increment",
                                             json={"max": INT64_MAX}), 409)
        self.assertEqual(doc["type"], "urn:counterd:problem:overflow")

    def test_a_refusal_replays_with_its_idempotency_key(self):
        name = unique_name("idem")
        self.put_counter(name, 10)
        key = {"Idempotency-Key": unique_name("k")}
        first = self.c.post(f"/counters/{name}/increment", json={"max": 10}, headers=key)
        self.assertProblem(first, 409)
        # Room is made; the same key still answers what it answered first.
        self.put_counter(name, 0)
        again = self.c.post(f"/counters/{name}/increment", json={"max": 10}, headers=key)
        self.assertProblem(again, 409)
        self.assertEqual(again.body, first.body)
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        self.assertEqual(self.get_counter(name)["value"], 0)


class RateLimitTest(ServerTestCase):
    """One call is a fixed-window rate limiter:
    POST .../increment {"by":1,"max":N,"ttl_seconds":W}."""

    def hit(self, name, quota=3, window=2):
        return self.c.post(f"/counters/{name}/increment",
                           json={"by": 1, "max": quota, "ttl_seconds": window})

    def test_window_allows_quota_then_refuses_then_opens_anew(self):
        name = "rl:" + unique_name("user")
        first = self.hit(name)
        c = self.assertCounter(first, name, 1, expiring=True)
        self.assertEqual(first.header("RateLimit-Policy"), '"counter";q=3;w=2')
        m = RATELIMIT.match(first.header("RateLimit") or "")
        self.assertIsNotNone(m, repr(first))
        self.assertEqual(int(m.group(1)), 2)
        self.assertIn(int(m.group(2)), (1, 2))
        self.assertCounter(self.hit(name), name, 2, expiring=True)
        third = self.assertCounter(self.hit(name), name, 3, expiring=True)
        self.assertEqual(third["expires_at"], c["expires_at"], "the window is fixed")

        refused = self.hit(name)
        self.assertProblem(refused, 409)
        self.assertIn(int(refused.header("Retry-After")), (1, 2))
        self.assertEqual(refused.header("RateLimit-Policy"), '"counter";q=3;w=2')
        self.assertTrue(RATELIMIT.match(refused.header("RateLimit")), repr(refused))
        self.assertTrue(refused.header("RateLimit").startswith('"counter";r=0'))

        # After the expiry instant the counter is gone: a fresh window.
        wait_until(lambda: self.get_counter(name) is None, timeout=10)
        fresh = self.assertCounter(self.hit(name), name, 1, expiring=True)
        self.assertEqual(fresh["version"], 1)
        self.assertGreater(fresh["expires_at"], c["expires_at"])

    def test_no_ratelimit_fields_without_both_max_and_ttl(self):
        name = unique_name("plain")
        r = self.c.post(f"/counters/{name}/increment", json={"by": 1, "max": 5})
        self.assertIsNone(r.header("RateLimit"))
        self.assertIsNone(r.header("RateLimit-Policy"))
        r = self.c.post(f"/counters/{name}/increment", json={"by": 1})
        self.assertIsNone(r.header("RateLimit"))


if __name__ == "__main__":
    unittest.main()
