"""POST /batch: 1 to 100 operations applied in order, all or nothing, as one
journal record with one fdatasync; results in order; the failing
operation's status and index; Idempotency-Key; strict validation."""

import unittest

from counterd_harness import ServerTestCase, metric_sum, parse_prometheus, unique_name


class BatchTest(ServerTestCase):

    def batch(self, ops, headers=None):
        return self.c.post("/batch", json={"operations": ops}, headers=headers or {})

    def fsyncs(self):
        return metric_sum(parse_prometheus(self.c.get("/metrics").text),
                          "counterd_fsyncs_total")

    def test_every_kind_in_order_in_one_fsync(self):
        a, b, c, gone = (unique_name(x) for x in ("a", "b", "c", "gone"))
        self.put_counter(b, 10)
        self.put_counter(gone, 1)
        before = self.fsyncs()
        r = self.batch([
            {"op": "increment", "name": a, "by": 5},
            {"op": "decrement", "name": b, "by": 3, "min": 0},
            {"op": "set", "name": c, "value": -7, "if_none_match": "*"},
            {"op": "increment", "name": a},           # sees the first
            {"op": "delete", "name": gone, "if_match": '"1"'},
            {"op": "get", "name": a},
            {"op": "get", "name": gone},
        ])
        self.assertEqual(r.status, 200, repr(r))
        self.assertEqual(r.content_type, "application/json")
        results = r.json()["results"]
        self.assertEqual([x and (x["name"], x["value"], x["version"]) for x in results], [
            (a, 5, 1), (b, 7, 2), (c, -7, 1), (a, 6, 2), None, (a, 6, 2), None])
        self.assertEqual(self.fsyncs() - before, 1, "one record, one fdatasync")
        self.assertEqual(self.get_counter(a)["value"], 6)
        self.assertIsNone(self.get_counter(gone))

    def test_all_or_nothing_failing_at_index_2(self):
        a, b, c = (unique_name(x) for x in ("a", "b", "c"))
        self.put_counter(a, 1)
        self.put_counter(c, 100)
        before = {n: self.get_counter(n) for n in (a, b, c)}
        r = self.batch([
            {"op": "increment", "name": a},
            {"op": "set", "name": b, "value": 9},
            {"op": "increment", "name": c, "max": 100},   # refused: limit
            {"op": "increment", "name": a},
        ])
        doc = self.assertProblem(r, 409)
        self.assertEqual(doc["operation"], 2)
        self.assertEqual(doc["type"], "urn:counterd:problem:limit-exceeded")
        self.assertEqual({n: self.get_counter(n) for n in (a, b, c)}, before,
                         "nothing applied")

    def test_each_failure_answers_as_the_operation_alone_would(self):
        a = unique_name("a")
        self.put_counter(a, 1)
        cases = [
            ({"op": "delete", "name": unique_name("missing")}, 404, "not-found"),
            ({"op": "set", "name": a, "value": 2, "if_match": '"9"'}, 412,
             "precondition-failed"),
            ({"op": "set", "name": a, "value": 2, "if_none_match": "*"}, 412,
             "precondition-failed"),
            ({"op": "increment", "name": a, "by": 9223372036854775807}, 409, "overflow"),
        ]
        for op, status, slug in cases:
            doc = self.assertProblem(self.batch([{"op": "get", "name": a}, op]), status,
                                     repr(op))
            self.assertEqual(doc["operation"], 1)
            self.assertEqual(doc["type"], f"urn:counterd:problem:{slug}")
        self.assertEqual(self.get_counter(a)["value"], 1)

    def test_idempotency_key_replays_the_batch(self):
        a = unique_name("a")
        key = {"Idempotency-Key": unique_name("k")}
        ops = [{"op": "increment", "name": a, "by": 2}, {"op": "get", "name": a}]
        first = self.batch(ops, key)
        self.assertEqual(first.status, 200, repr(first))
        again = self.batch(ops, key)
        self.assertEqual(again.status, 200)
        self.assertEqual(again.body, first.body)
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        self.assertEqual(self.get_counter(a)["value"], 2)
        other = self.batch([{"op": "increment", "name": a, "by": 3}], key)
        self.assertProblem(other, 422)
        # The same key on a single increment of the same meaning is another
        # request too (a batch answers a list).
        single = self.c.post(f"/counters/{a}/increment", json={"by": 2}, headers=key)
        self.assertProblem(single, 422)

    def test_validation_is_strict_and_changes_nothing(self):
        a = unique_name("a")
        ok = {"op": "increment", "name": a}
        bad_bodies = [
            {"operations": []},
            {"operations": [ok] * 101},
            {"operations": [ok], "extra": 1},
            {"ops": [ok]},
            {"operations": [{"op": "increment", "name": a, "bogus": 1}]},
            {"operations": [{"op": "increment", "name": a, "by": "1"}]},
            {"operations": [{"op": "set", "name": a}]},
            {"operations": [{"op": "get", "name": a, "by": 1}]},
            {"operations": [{"op": "frobnicate", "name": a}]},
            {"operations": [{"op": "increment", "name": a, "min": 2, "max": 1}]},
            {"operations": [ok, {"op": "increment", "name": "bad name"}]},
            {"operations": [ok, {"op": "increment"}]},
        ]
        for body in bad_bodies:
            r = self.c.post("/batch", json=body)
            self.assertProblem(r, 400, repr(body)[:80])
        self.assertIsNone(self.get_counter(a))
        doc = self.assertProblem(self.c.post("/batch", json={"operations": [
            ok, {"op": "increment", "name": "bad name"}]}), 400)
        self.assertEqual(doc["operation"], 1)
        self.assertProblem(self.c.post("/batch", body=b"[1]",
                                       headers={"Content-Type": "application/json"}), 400)
        self.assertProblem(self.c.post("/batch", body=b'{"operations":[]}',
                                       headers={"Content-Type": "text/plain"}), 415)
        r = self.c.get("/batch")
        self.assertProblem(r, 405)
        self.assertEqual(r.header("Allow"), "POST")

    def test_a_hundred_operations_fit(self):
        names = [unique_name("h") for _ in range(10)]
        ops = [{"op": "increment", "name": names[i % 10]} for i in range(100)]
        r = self.batch(ops)
        self.assertEqual(r.status, 200, repr(r))
        self.assertEqual(len(r.json()["results"]), 100)
        for n in names:
            self.assertEqual(self.get_counter(n)["value"], 10)


if __name__ == "__main__":
    unittest.main()
