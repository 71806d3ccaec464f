"""Many clients at once: exact totals, distinct results, atomic preconditions."""

import threading
import unittest

from counterd_harness import ServerTestCase, unique_name


def run_threads(n, target, timeout=90):
    """Runs target(i) on n threads released together; returns (results, errors)."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def wrap(i):
        try:
            barrier.wait(30)
            results[i] = target(i)
        except Exception as e:
            errors.append(f"thread {i}: {e!r}")

    threads = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if any(t.is_alive() for t in threads):
        errors.append("threads still running after timeout")
    return results, errors


class ConcurrencyTest(ServerTestCase):

    def test_32_threads_x_50_increments_one_counter(self):
        name = unique_name("conc")
        threads, per = 32, 50
        start = self.put_counter(name, 0)

        def work(i):
            values, failures = [], []
            with self.server.client() as c:
                for _ in range(per):
                    r = c.post(f"/counters/{name}/increment")
                    if r.status != 200:
                        failures.append(repr(r))
                        continue
                    values.append(r.json()["value"])
                return values, failures, c.connects

        results, errors = run_threads(threads, work)
        self.assertEqual(errors, [])
        failures = [f for _, fs, _ in results for f in fs]
        self.assertEqual(failures, [], "increments failed")
        values = [v for vs, _, _ in results for v in vs]
        total = threads * per
        self.assertEqual(len(values), total)
        self.assertEqual(len(set(values)), total, "two increments returned the same value")
        self.assertEqual(set(values), set(range(1, total + 1)))
        final = self.get_counter(name)
        self.assertEqual(final["value"], total)
        self.assertEqual(final["version"], start["version"] + total)
        connects = [n for _, _, n in results]
        self.assertEqual(connects, [1] * threads, "each thread should reuse one keep-alive "
                                                  "connection (1 connect each)")

    def test_mixed_operations_on_several_counters(self):
        names = [unique_name(f"mix{i}") for i in range(4)]
        threads, per = 16, 25

        def work(i):
            bad = []
            with self.server.client() as c:
                for j in range(per):
                    name = names[(i + j) % len(names)]
                    op = "increment" if (i + j) % 3 else "decrement"
                    r = c.post(f"/counters/{name}/{op}", json={"by": i + 1})
                    if r.status != 200:
                        bad.append(repr(r))
            return bad

        results, errors = run_threads(threads, work)
        self.assertEqual(errors, [])
        self.assertEqual([b for bs in results for b in bs], [])
        expected = {n: 0 for n in names}
        for i in range(threads):
            for j in range(per):
                sign = 1 if (i + j) % 3 else -1
                expected[names[(i + j) % len(names)]] += sign * (i + 1)
        for name in names:
            self.assertEqual(self.get_counter(name)["value"], expected[name], name)

    def test_compare_and_set_race_has_one_winner(self):
        name = unique_name("cas")
        v = self.put_counter(name, 0)["version"]
        n = 16

        def work(i):
            with self.server.client() as c:
                return c.put(f"/counters/{name}", json={"value": 100 + i},
                             headers={"If-Match": f'"{v}"'})

        results, errors = run_threads(n, work)
        self.assertEqual(errors, [])
        winners = [r for r in results if r.status == 200]
        self.assertEqual(len(winners), 1, sorted(r.status for r in results))
        for r in results:
            if r is not winners[0]:
                self.assertProblem(r, 412, "lost If-Match race")
        won = winners[0].json()
        self.assertEqual(self.get_counter(name), won)
        self.assertEqual(won["version"], v + 1)

    def test_create_race_has_one_winner(self):
        name = unique_name("create")
        n = 16

        def work(i):
            with self.server.client() as c:
                return c.put(f"/counters/{name}", json={"value": i},
                             headers={"If-None-Match": "*"})

        results, errors = run_threads(n, work)
        self.assertEqual(errors, [])
        statuses = sorted(r.status for r in results)
        self.assertEqual(statuses, [201] + [412] * (n - 1))
        winner = next(r for r in results if r.status == 201)
        self.assertEqual(self.get_counter(name), winner.json())

    def test_reads_during_writes_are_monotonic(self):
        name = unique_name("mono")
        self.put_counter(name, 0)
        stop = threading.Event()
        seen, problems = [], []

        def reader():
            with self.server.client() as c:
                last = -1
                while not stop.is_set():
                    r = c.get(f"/counters/{name}")
                    if r.status != 200:
                        problems.append(repr(r))
                        return
                    v = r.json()["value"]
                    if v < last:
                        problems.append(f"value went back from {last} to {v}")
                    last = v
                    seen.append(v)

        rt = [threading.Thread(target=reader, daemon=True) for _ in range(2)]
        for t in rt:
            t.start()
        try:
            def writer(i):
                with self.server.client() as c:
                    return [c.post(f"/counters/{name}/increment").status for _ in range(30)]
            results, errors = run_threads(8, writer)
        finally:
            stop.set()
            for t in rt:
                t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(problems, [])
        self.assertTrue(all(s == 200 for rs in results for s in rs))
        self.assertEqual(self.get_counter(name)["value"], 240)
        self.assertTrue(seen)


if __name__ == "__main__":
    unittest.main()
