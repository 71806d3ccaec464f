"""The counter endpoints: /counter, /counters/{name} (GET/HEAD/PUT/DELETE),
increment/decrement, ETags and preconditions, int64 overflow, names."""

import unittest

from counterd_harness import INT64_MAX, INT64_MIN, ServerTestCase, unique_name


class DefaultCounterTest(ServerTestCase):
    """/counter and /counter/increment on a fresh data dir."""

    def test_default_counter_lifecycle(self):
        r = self.c.get("/counter")
        first = self.assertCounter(r, "default", 0, msg="GET /counter never written")

        r = self.c.head("/counter")
        self.assertEqual(r.status, 200, repr(r))
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("ETag"), f'"{first["version"]}"', repr(r))

        r = self.c.post("/counter/increment")
        one = self.assertCounter(r, "default", 1, msg="POST /counter/increment")
        self.assertGreater(one["version"], first["version"])

        r = self.c.post("/counter/increment", json={"by": 5})
        six = self.assertCounter(r, "default", 6, msg='POST /counter/increment {"by":5}')
        self.assertEqual(six["version"], one["version"] + 1)

        r = self.c.post("/counter/increment", json={"by": -10})
        self.assertCounter(r, "default", -4)

        self.assertCounter(self.c.get("/counter"), "default", -4)
        # /counter is the counter named "default".
        self.assertCounter(self.c.get("/counters/default"), "default", -4)
        self.put_counter("default", 41)
        self.assertCounter(self.c.post("/counter/increment"), "default", 42)
        self.assertCounter(self.c.get("/counter"), "default", 42)


class CountersApiTest(ServerTestCase):

    # -- GET / HEAD -------------------------------------------------------
    def test_get_missing_is_404_problem(self):
        name = unique_name("missing")
        self.assertProblem(self.c.get(f"/counters/{name}"), 404)

    def test_head_like_get(self):
        name = unique_name("head")
        r = self.c.head(f"/counters/{name}")
        self.assertEqual(r.status, 404, repr(r))
        self.assertEqual(r.body, b"")
        doc = self.put_counter(name, 12345)
        g = self.c.get(f"/counters/{name}")
        h = self.c.head(f"/counters/{name}")
        self.assertEqual(h.status, 200, repr(h))
        self.assertEqual(h.body, b"", "HEAD must not send a body")
        self.assertEqual(h.header("ETag"), f'"{doc["version"]}"')
        self.assertEqual(h.content_type, "application/json", repr(h))
        if h.header("Content-Length") is not None:
            self.assertEqual(int(h.header("Content-Length")), len(g.body), repr(h))

    def test_if_none_match_current_etag_is_304(self):
        name = unique_name("inm")
        doc = self.put_counter(name, 7)
        etag = f'"{doc["version"]}"'
        r = self.c.get(f"/counters/{name}", headers={"If-None-Match": etag})
        self.assertEqual(r.status, 304, repr(r))
        self.assertEqual(r.body, b"", "304 must not have a body")
        self.assertEqual(r.header("ETag"), etag, "304 must repeat the ETag")
        # If-None-Match uses weak comparison (RFC 9110 13.1.2).
        r = self.c.get(f"/counters/{name}", headers={"If-None-Match": f"W/{etag}"})
        self.assertEqual(r.status, 304, f"W/ tag in If-None-Match: {r!r}")
        r = self.c.get(f"/counters/{name}", headers={"If-None-Match": f'"999999", {etag}'})
        self.assertEqual(r.status, 304, f"tag list in If-None-Match: {r!r}")
        # A stale tag gets the full answer.
        r = self.c.get(f"/counters/{name}",
                       headers={"If-None-Match": f'"{doc["version"] + 1000}"'})
        self.assertCounter(r, name, 7)
        # After a change the old tag no longer matches.
        self.assertCounter(self.c.post(f"/counters/{name}/increment"), name, 8)
        r = self.c.get(f"/counters/{name}", headers={"If-None-Match": etag})
        self.assertCounter(r, name, 8)

    # -- PUT --------------------------------------------------------------
    def test_put_creates_201_with_location_then_replaces_200(self):
        name = unique_name("put")
        r = self.c.put(f"/counters/{name}", json={"value": 17})
        created = self.assertCounter(r, name, 17, status=201, msg="PUT new counter")
        self.assertGreaterEqual(created["version"], 1)
        loc = r.header("Location")
        self.assertIsNotNone(loc, f"201 without Location: {r!r}")
        self.assertTrue(loc.endswith(f"/counters/{name}"), f"Location {loc!r}")

        got = self.assertCounter(self.c.get(f"/counters/{name}"), name, 17)
        self.assertEqual(got, created)

        r = self.c.put(f"/counters/{name}", json={"value": -3})
        replaced = self.assertCounter(r, name, -3, status=200, msg="PUT existing counter")
        self.assertEqual(replaced["version"], created["version"] + 1,
                         "each change increments the version by one")
        self.assertCounter(self.c.get(f"/counters/{name}"), name, -3)

    def test_put_if_match(self):
        name = unique_name("ifm")
        v1 = self.put_counter(name, 1)["version"]
        r = self.c.put(f"/counters/{name}", json={"value": 2},
                       headers={"If-Match": f'"{v1 + 1}"'})
        self.assertProblem(r, 412, "PUT with a stale If-Match")
        self.assertEqual(self.get_counter(name), {"name": name, "value": 1, "version": v1})

        r = self.c.put(f"/counters/{name}", json={"value": 2}, headers={"If-Match": f'"{v1}"'})
        self.assertCounter(r, name, 2)
        # If-Match uses strong comparison: a weak tag never matches.
        r = self.c.put(f"/counters/{name}", json={"value": 2},
                       headers={"If-Match": f'W/"{v1 + 1}"'})
        self.assertProblem(r, 412, "PUT with a weak If-Match tag")
        self.assertEqual(self.get_counter(name)["value"], 2)
        # A list of tags matches if any does.
        v2 = v1 + 1
        r = self.c.put(f"/counters/{name}", json={"value": 3},
                       headers={"If-Match": f'"{v2 + 50}", "{v2}"'})
        self.assertCounter(r, name, 3)
        # If-Match: * on an existing counter holds.
        r = self.c.put(f"/counters/{name}", json={"value": 4}, headers={"If-Match": "*"})
        self.assertCounter(r, name, 4)

    def test_put_if_none_match_star(self):
        name = unique_name("inms")
        r = self.c.put(f"/counters/{name}", json={"value": 5}, headers={"If-None-Match": "*"})
        doc = self.assertCounter(r, name, 5, status=201, msg="If-None-Match: * on absent")
        r = self.c.put(f"/counters/{name}", json={"value": 6}, headers={"If-None-Match": "*"})
        self.assertProblem(r, 412, "If-None-Match: * on an existing counter")
        self.assertEqual(self.get_counter(name), doc)

    def test_if_match_star_on_missing_is_412_and_creates_nothing(self):
        name = unique_name("ifmstar")
        cases = [("PUT", f"/counters/{name}", {"value": 1}),
                 ("POST", f"/counters/{name}/increment", None),
                 ("POST", f"/counters/{name}/decrement", {"by": 2}),
                 ("DELETE", f"/counters/{name}", None)]
        for method, path, body in cases:
            with self.subTest(method=method, path=path):
                kw = {"json": body} if body is not None else {}
                r = self.c.request(method, path, headers={"If-Match": "*"}, **kw)
                self.assertProblem(r, 412, f"{method} {path} If-Match: * on missing")
                self.assertIsNone(self.get_counter(name), "the counter must not be created")

    # -- increment / decrement ---------------------------------------------
    def test_increment_and_decrement_create_missing_at_zero(self):
        a, b = unique_name("incnew"), unique_name("decnew")
        self.assertCounter(self.c.post(f"/counters/{a}/increment"), a, 1)
        self.assertCounter(self.c.post(f"/counters/{b}/decrement"), b, -1)
        self.assertEqual(self.get_counter(a)["value"], 1)
        self.assertEqual(self.get_counter(b)["value"], -1)

    def test_increment_decrement_by(self):
        name = unique_name("by")
        self.put_counter(name, 100)
        steps = [("increment", None, 101), ("increment", 9, 110), ("decrement", None, 109),
                 ("decrement", 10, 99), ("increment", -100, -1), ("decrement", -5, 4),
                 ("increment", 0, 4), ("decrement", 0, 4)]
        last_version = self.get_counter(name)["version"]
        for op, by, expect in steps:
            with self.subTest(op=op, by=by):
                kw = {} if by is None else {"json": {"by": by}}
                r = self.c.post(f"/counters/{name}/{op}", **kw)
                doc = self.assertCounter(r, name, expect, msg=f"{op} by {by}")
                self.assertGreaterEqual(doc["version"], last_version)
                last_version = doc["version"]
        self.assertEqual(self.get_counter(name)["value"], 4)

    def test_increment_versions_grow_by_one(self):
        name = unique_name("ver")
        v = self.put_counter(name, 0)["version"]
        for i in range(1, 6):
            doc = self.assertCounter(self.c.post(f"/counters/{name}/increment"), name, i)
            self.assertEqual(doc["version"], v + i)

    def test_increment_if_match(self):
        name = unique_name("incifm")
        v = self.put_counter(name, 10)["version"]
        for op in ("increment", "decrement"):
            with self.subTest(op=op):
                r = self.c.post(f"/counters/{name}/{op}", headers={"If-Match": f'"{v + 7}"'})
                self.assertProblem(r, 412, f"{op} with stale If-Match")
                self.assertEqual(self.get_counter(name)["value"], 10)
                self.assertEqual(self.get_counter(name)["version"], v)
        r = self.c.post(f"/counters/{name}/increment", json={"by": 5},
                        headers={"If-Match": f'"{v}"'})
        doc = self.assertCounter(r, name, 15)
        r = self.c.post(f"/counters/{name}/decrement", headers={"If-Match": f'"{doc["version"]}"'})
        self.assertCounter(r, name, 14)

    def test_int64_extremes_are_exact(self):
        for value in (INT64_MAX, INT64_MIN, 2**53 + 1, -(2**53) - 3, 0, -1):
            with self.subTest(value=value):
                name = unique_name("big")
                self.put_counter(name, value)
                self.assertEqual(self.get_counter(name)["value"], value)
        name = unique_name("bigby")
        self.assertCounter(self.c.post(f"/counters/{name}/increment", json={"by": INT64_MAX}),
                           name, INT64_MAX)
        self.assertCounter(self.c.post(f"/counters/{name}/decrement", json={"by": INT64_MAX}),
                           name, 0)
        self.assertCounter(self.c.post(f"/counters/{name}/increment", json={"by": INT64_MIN}),
                           name, INT64_MIN)
        self.put_counter(name, -1)
        # -1 - INT64_MIN == INT64_MAX: representable, must be computed exactly.
        self.assertCounter(self.c.post(f"/counters/{name}/decrement", json={"by": INT64_MIN}),
                           name, INT64_MAX)

    def test_overflow_is_409_and_changes_nothing(self):
        cases = [
            (INT64_MAX, "increment", None),
            (INT64_MAX, "increment", INT64_MAX),
            (INT64_MAX, "decrement", -1),
            (INT64_MIN, "decrement", None),
            (INT64_MIN, "increment", -1),
            (INT64_MIN, "increment", INT64_MIN),
            (0, "decrement", INT64_MIN),      # 0 - INT64_MIN = 2^63
            (1, "increment", INT64_MAX),
            (-2, "decrement", INT64_MAX),
        ]
        for start, op, by in cases:
            with self.subTest(start=start, op=op, by=by):
                name = unique_name("ovf")
                before = self.put_counter(name, start)
                kw = {} if by is None else {"json": {"by": by}}
                r = self.c.post(f"/counters/{name}/{op}", **kw)
                self.assertProblem(r, 409, f"{start} {op} {by}")
                self.assertEqual(self.get_counter(name), before, "overflow changed the counter")

    def test_overflow_on_missing_counter_creates_nothing(self):
        name = unique_name("ovfnew")
        r = self.c.post(f"/counters/{name}/decrement", json={"by": INT64_MIN})
        self.assertProblem(r, 409, "0 - INT64_MIN on a missing counter")
        self.assertIsNone(self.get_counter(name))

    # -- DELETE -------------------------------------------------------------
    def test_delete(self):
        name = unique_name("del")
        self.put_counter(name, 3)
        r = self.c.delete(f"/counters/{name}")
        self.assertEqual(r.status, 204, repr(r))
        self.assertEqual(r.body, b"")
        self.assertProblem(self.c.get(f"/counters/{name}"), 404, "GET after DELETE")
        self.assertProblem(self.c.delete(f"/counters/{name}"), 404, "DELETE twice")
        # It can be created again and starts from scratch.
        self.assertCounter(self.c.post(f"/counters/{name}/increment"), name, 1)

    def test_delete_if_match(self):
        name = unique_name("delifm")
        doc = self.put_counter(name, 3)
        r = self.c.delete(f"/counters/{name}", headers={"If-Match": f'"{doc["version"] + 1}"'})
        self.assertProblem(r, 412, "DELETE with stale If-Match")
        self.assertEqual(self.get_counter(name), doc)
        r = self.c.delete(f"/counters/{name}", headers={"If-Match": f'"{doc["version"]}"'})
        self.assertEqual(r.status, 204, repr(r))
        self.assertIsNone(self.get_counter(name))

    def test_delete_missing_is_404(self):
        self.assertProblem(self.c.delete(f"/counters/{unique_name('nodel')}"), 404)

    # -- names ---------------------------------------------------------------
    def test_valid_names(self):
        names = ["user:42:logins", "A", "z", "0", "...", ".a", "a..b", "-_-:.:",
                 "Mixed.Case_name-1:2",
                 ("abcXYZ019._-:" * 10)[:128]]
        for name in names:
            with self.subTest(name=name):
                r = self.c.put(f"/counters/{name}", json={"value": 9})
                self.assertCounter(r, name, 9, status=201)  # created
                self.assertCounter(self.c.get(f"/counters/{name}"), name, 9)
                self.assertCounter(self.c.post(f"/counters/{name}/increment"), name, 10)
                self.assertEqual(self.c.delete(f"/counters/{name}").status, 204)

    def test_invalid_names_are_400_and_change_nothing(self):
        bad = ["%2e%2e", "%2E%2E", "%2e", "a" * 129, ("x:" * 65)[:129], "a%20b", "a%2Fb",
               "caf%C3%A9", "a*b", "a%00b", "a+b", "%2e%2e%2f%2e%2e%2fetc"]
        before = self.list_all()
        for seg in bad:
            for method, suffix, body in (("GET", "", None), ("PUT", "", {"value": 1}),
                                         ("DELETE", "", None),
                                         ("POST", "/increment", None),
                                         ("POST", "/decrement", {"by": 1})):
                with self.subTest(name=seg[:40], method=method, suffix=suffix):
                    kw = {"json": body} if body is not None else {}
                    r = self.c.request(method, f"/counters/{seg}{suffix}", **kw)
                    self.assertProblem(r, 400, f"{method} /counters/{seg[:40]}{suffix}")
        self.assertEqual(self.list_all(), before, "a request with a bad name changed state")

    def test_128_char_name_ok_129_rejected(self):
        n128 = "n" * 128
        r = self.c.put(f"/counters/{n128}", json={"value": 1})
        self.assertCounter(r, n128, 1, status=201)
        self.assertCounter(self.c.get(f"/counters/{n128}"), n128, 1)
        self.assertProblem(self.c.put(f"/counters/{n128}x", json={"value": 1}), 400)
        self.assertProblem(self.c.get(f"/counters/{n128}x"), 400)


if __name__ == "__main__":
    unittest.main()
