"""counterd on PostgreSQL, black-box: several replicas on one database, the
database crashing under load, and a failover to a synchronous standby.

Runs the real counterd binary (COUNTERD_BIN, as the integration suite) on
throwaway clusters (tests/support/pg_cluster.py). Each scenario prints its
numbers (acknowledged, found, duplicates) for the record. Python 3 standard
library only:

    COUNTERD_BIN=build/counterd python3 -m unittest -v test_ha   (in tests/postgres)
"""

from __future__ import annotations

import os
import sys
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "support"))

import pg_cluster  # noqa: E402
from counterd_harness import CounterdServer, HttpClient, wait_until  # noqa: E402


def start_counterd(url: str, *extra: str) -> CounterdServer:
    return CounterdServer(args=["--backend", "postgres", "--postgres-url", url,
                                *extra]).start(timeout=60)


class IdempotentLoad:
    """Threads that each send increments of one counter, every increment
    with its own Idempotency-Key, and retry an unanswered or 503 increment
    with the same key until it is acknowledged — so at the end every
    increment is acknowledged exactly once and the counter must equal the
    number of keys. Counts what it saw."""

    def __init__(self, servers: "list[CounterdServer]", name: str, threads: int,
                 per_thread: int):
        self.servers, self.name = servers, name
        self.threads, self.per_thread = threads, per_thread
        self.acked = 0
        self.unavailable = 0       # 503 answers
        self.conn_errors = 0       # no answer (connection refused/reset)
        self.replays = 0           # 200 answers that were replays
        self.gave_up = 0
        self.deadline = time.monotonic() + 120
        self._lock = threading.Lock()
        self._workers: "list[threading.Thread]" = []
        self.started = threading.Event()

    def _worker(self, index: int) -> None:
        server = self.servers[index % len(self.servers)]
        client = HttpClient(server.host, server.port, timeout=30)
        for i in range(self.per_thread):
            key = f"{self.name}-{index}-{i}-{uuid.uuid4().hex[:8]}"
            while True:
                if time.monotonic() > self.deadline:
                    with self._lock:
                        self.gave_up += 1
                    client.close()
                    return
                try:
                    r = client.post(f"/counters/{self.name}/increment", json={"by": 1},
                                    headers={"Idempotency-Key": key})
                except OSError:
                    client.close()
                    client = HttpClient(server.host, server.port, timeout=30)
                    with self._lock:
                        self.conn_errors += 1
                    time.sleep(0.02)
                    continue
                if r.status == 200:
                    with self._lock:
                        self.acked += 1
                        if r.headers.get("Idempotent-Replayed") == "true":
                            self.replays += 1
                    self.started.set()
                    break
                if r.status == 503:
                    with self._lock:
                        self.unavailable += 1
                    time.sleep(0.02)
                    continue
                raise AssertionError(f"unexpected {r.status}: {r.body!r}")
        client.close()

    def start(self) -> "IdempotentLoad":
        for t in range(self.threads):
            w = threading.Thread(target=self._worker, args=(t,), daemon=True)
            w.start()
            self._workers.append(w)
        return self

    def join(self) -> None:
        for w in self._workers:
            w.join()

    @property
    def total(self) -> int:
        return self.threads * self.per_thread


def request(server: CounterdServer, method: str, path: str, **kw):
    """One request on a connection of its own, closed after."""
    c = server.client()
    try:
        return c.request(method, path, **kw)
    finally:
        c.close()


def counter_value(server: CounterdServer, name: str) -> int:
    r = request(server, "GET", f"/counters/{name}")
    assert r.status == 200, (r.status, r.body)
    return r.json()["value"]


@unittest.skipUnless(pg_cluster.available(), "PostgreSQL 15 server not installed")
class MultiReplicaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = pg_cluster.PgCluster("replicas")
        cls.pg.create_database("counterd")
        url = cls.pg.url("counterd")
        cls.replicas = [start_counterd(url) for _ in range(3)]

    @classmethod
    def tearDownClass(cls):
        for s in cls.replicas:
            s.stop()
        cls.pg.teardown()

    def test_concurrent_increments_through_three_replicas_sum_exactly(self):
        threads, each = 12, 50
        errors = []

        def work(index):
            s = self.replicas[index % 3]
            c = HttpClient(s.host, s.port)
            for _ in range(each):
                r = c.post("/counters/hot/increment", json={"by": 1})
                if r.status != 200:
                    errors.append((r.status, r.body))
            c.close()

        ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        for s in self.replicas:  # every replica reads the same, at once
            r = request(s, "GET", "/counters/hot")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json(), {"name": "hot", "value": threads * each,
                                        "version": threads * each})
        print(f"\nmulti-replica: {threads * each} increments through 3 replicas, "
              f"found {counter_value(self.replicas[0], 'hot')}")

    def test_replicas_creating_the_same_counter_at_once_lose_nothing(self):
        rounds = 20
        barrier = threading.Barrier(3)
        errors = []

        def work(index):
            s = self.replicas[index]
            c = HttpClient(s.host, s.port)
            for i in range(rounds):
                barrier.wait()
                r = c.post(f"/counters/race:{i}/increment", json={"by": index + 1})
                if r.status != 200:
                    errors.append((r.status, r.body))
            c.close()

        ts = [threading.Thread(target=work, args=(i,)) for i in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        for i in range(rounds):
            r = request(self.replicas[i % 3], "GET", f"/counters/race:{i}")
            self.assertEqual(r.json(), {"name": f"race:{i}", "value": 6, "version": 3})

    def test_a_write_through_one_replica_is_read_through_the_others(self):
        for i in range(20):
            w = request(self.replicas[i % 3], "PUT", f"/counters/seen:{i}",
                        json={"value": i})
            self.assertEqual(w.status, 201)
            for s in self.replicas:
                self.assertEqual(request(s, "GET", f"/counters/seen:{i}").json()["value"], i)

    def test_an_idempotency_key_replays_on_another_replica(self):
        key = {"Idempotency-Key": "cross-replica-1"}
        a = request(self.replicas[0], "POST", "/counters/idem/increment", json={"by": 5},
                    headers=key)
        b = request(self.replicas[1], "POST", "/counters/idem/increment", json={"by": 5},
                    headers=key)
        self.assertEqual(a.status, 200)
        self.assertEqual(b.status, 200)
        self.assertEqual(a.json(), b.json())
        self.assertEqual(counter_value(self.replicas[2], "idem"), 5)


@unittest.skipUnless(pg_cluster.available(), "PostgreSQL 15 server not installed")
class DatabaseCrashTest(unittest.TestCase):
    def test_immediate_stop_under_load_loses_and_duplicates_nothing(self):
        with pg_cluster.PgCluster("crash") as pg:
            pg.create_database("counterd")
            server = start_counterd(pg.url("counterd"))
            try:
                load = IdempotentLoad([server], "crash", threads=8, per_thread=150).start()
                self.assertTrue(load.started.wait(30))
                wait_until(lambda: load.acked >= 200, timeout=30)
                acked_before = load.acked
                pg.stop("immediate")  # a crash: no checkpoint, connections cut
                # While it is down: 503 store-unavailable, /readyz 503, /livez 200.
                c = HttpClient(server.host, server.port)
                r = c.post("/counters/probe/increment", json={"by": 1})
                self.assertEqual(r.status, 503)
                self.assertEqual(r.json()["type"], "urn:counterd:problem:store-unavailable")
                self.assertEqual(c.get("/readyz").status, 503)
                self.assertEqual(c.get("/livez").status, 200)
                pg.start()
                wait_until(lambda: c.get("/readyz").status == 200, timeout=30)
                load.join()
                c.close()
                found = counter_value(server, "crash")
                print(f"\ndatabase crash: acknowledged {load.acked} "
                      f"({acked_before} before the crash), found {found}, "
                      f"duplicates {found - load.acked}, 503s {load.unavailable}, "
                      f"unanswered {load.conn_errors}, replayed {load.replays}")
                self.assertEqual(load.gave_up, 0)
                self.assertEqual(load.acked, load.total)
                self.assertEqual(found, load.total)  # every ack present, none twice
                self.assertGreater(load.unavailable, 0)
            finally:
                server.stop()


@unittest.skipUnless(pg_cluster.available(), "PostgreSQL 15 server not installed")
class FailoverTest(unittest.TestCase):
    def test_promoted_standby_takes_over_with_every_increment_exactly_once(self):
        primary, standby = pg_cluster.primary_with_standby()
        try:
            primary.create_database("counterd")
            url = pg_cluster.multi_host_url([primary, standby], "counterd")
            servers = [start_counterd(url), start_counterd(url)]
            try:
                load = IdempotentLoad(servers, "failover", threads=8, per_thread=150).start()
                self.assertTrue(load.started.wait(30))
                wait_until(lambda: load.acked >= 200, timeout=30)
                acked_before = load.acked
                primary.stop("immediate")  # the primary's machine dies
                failover_started = time.monotonic()
                standby.promote()
                c = HttpClient(servers[0].host, servers[0].port)
                wait_until(lambda: c.get("/readyz").status == 200, timeout=60)
                reconnected_after = time.monotonic() - failover_started
                c.close()
                load.join()
                found = counter_value(servers[1], "failover")
                print(f"\nfailover: acknowledged {load.acked} ({acked_before} before the "
                      f"primary died), found {found} on the promoted standby, "
                      f"duplicates {found - load.acked}, 503s {load.unavailable}, "
                      f"unanswered {load.conn_errors}, replayed {load.replays}, "
                      f"ready again after {reconnected_after:.2f} s")
                self.assertEqual(load.gave_up, 0)
                self.assertEqual(load.acked, load.total)
                self.assertEqual(found, load.total)
                self.assertFalse(standby.is_in_recovery())
            finally:
                for s in servers:
                    s.stop()
        finally:
            standby.teardown()
            primary.teardown()


if __name__ == "__main__":
    unittest.main()
