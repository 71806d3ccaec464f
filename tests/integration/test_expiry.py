"""Expiring counters: "ttl_seconds" sets the expiry only when the request
creates the counter; PUT sets it (or clears it); "expires_at" in RFC 3339
UTC with milliseconds; from the expiry instant the counter does not exist
(GET 404, not listed, If-Match fails, the next increment starts at version
1) — across restarts too; expired counters are removed in the background
and counted in counterd_expired_total."""

import datetime
import unittest

from counterd_harness import (CounterdServer, CounterdAssertions, ServerTestCase,
                              metric_sum, parse_prometheus, unique_name, wait_until)


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


class ExpiryTest(ServerTestCase):

    def test_ttl_applies_only_when_the_request_creates_the_counter(self):
        name = unique_name("win")
        before = datetime.datetime.now(datetime.timezone.utc)
        first = self.assertCounter(self.c.post(f"/counters/{name}/increment",
                                               json={"ttl_seconds": 3600}),
                                   name, 1, expiring=True)
        expires = parse_time(first["expires_at"])
        self.assertGreaterEqual(expires, before + datetime.timedelta(seconds=3599))
        self.assertLessEqual(expires, datetime.datetime.now(datetime.timezone.utc)
                             + datetime.timedelta(seconds=3600, milliseconds=5))
        # A later ttl_seconds on the live counter is ignored: the window stays.
        second = self.assertCounter(self.c.post(f"/counters/{name}/increment",
                                                json={"ttl_seconds": 5}),
                                    name, 2, expiring=True)
        self.assertEqual(second["expires_at"], first["expires_at"])
        # So is the absence of one: increments keep the expiry.
        self.assertEqual(self.assertCounter(self.c.post(f"/counters/{name}/increment"),
                                            name, 3, expiring=True)["expires_at"],
                         first["expires_at"])

    def test_put_sets_and_clears_the_expiry(self):
        name = unique_name("put")
        r = self.c.put(f"/counters/{name}", json={"value": 7, "ttl_seconds": 60})
        self.assertCounter(r, name, 7, status=201, expiring=True)
        r = self.c.put(f"/counters/{name}", json={"value": 8})
        self.assertCounter(r, name, 8, expiring=False)
        self.assertNotIn("expires_at", self.get_counter(name))

    def test_an_expired_counter_does_not_exist(self):
        name = unique_name("gone")
        other = unique_name("stays")
        self.put_counter(other, 1)
        c = self.assertCounter(self.c.put(f"/counters/{name}",
                                          json={"value": 5, "ttl_seconds": 1}),
                               name, 5, status=201, expiring=True)
        names = [x["name"] for x in self.list_all()]
        self.assertIn(name, names)
        wait_until(lambda: self.get_counter(name) is None, timeout=10,
                   message="the counter to expire")
        self.assertNotIn(name, [x["name"] for x in self.list_all()])
        self.assertIn(other, [x["name"] for x in self.list_all()])
        # If-Match fails as for a missing counter.
        r = self.c.put(f"/counters/{name}", json={"value": 1},
                       headers={"If-Match": f'"{c["version"]}"'})
        self.assertProblem(r, 412)
        # DELETE: nothing to delete.
        self.assertProblem(self.c.delete(f"/counters/{name}"), 404)
        # The next increment creates it anew at version 1.
        fresh = self.assertCounter(self.c.post(f"/counters/{name}/increment"),
                                   name, 1)
        self.assertEqual(fresh["version"], 1)

    def test_expired_counters_are_removed_and_counted(self):
        def expired_total():
            return metric_sum(parse_prometheus(self.c.get("/metrics").text),
                              "counterd_expired_total")
        start = expired_total()
        for _ in range(3):
            self.c.post(f"/counters/{unique_name('sweep')}/increment",
                        json={"ttl_seconds": 1})
        wait_until(lambda: expired_total() >= start + 3, timeout=15,
                   message="counterd_expired_total to count three expiries")


class ExpiryAcrossRestartsTest(CounterdAssertions, unittest.TestCase):

    def test_expiry_survives_restart_and_recovery(self):
        with CounterdServer() as server:
            c = server.client()
            long_lived = unique_name("long")
            short = unique_name("short")
            kept = self.assertCounter(c.post(f"/counters/{long_lived}/increment",
                                             json={"ttl_seconds": 3600}),
                                      long_lived, 1, expiring=True)
            self.assertCounter(c.put(f"/counters/{short}",
                                     json={"value": 1, "ttl_seconds": 2}),
                               short, 1, status=201, expiring=True)
            c.close()
            # SIGKILL: recovery replays the journal, expiries included.
            server.kill()
            server.start()
            c = server.client()
            r = c.get(f"/counters/{long_lived}")
            self.assertEqual(self.assertCounter(r, long_lived, 1, expiring=True),
                             kept)
            # The short one expires whether or not the process was up.
            wait_until(lambda: c.get(f"/counters/{short}").status == 404, timeout=10)
            c.close()
            self.assertEqual(server.stop(), 0)
            server.start()
            c = server.client()
            self.assertEqual(c.get(f"/counters/{short}").status, 404)
            self.assertEqual(self.assertCounter(c.get(f"/counters/{long_lived}"),
                                                long_lived, 1, expiring=True), kept)
            c.close()


if __name__ == "__main__":
    unittest.main()
