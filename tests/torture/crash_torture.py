#!/usr/bin/env python3
"""Crash torture: the real counterd, SIGKILLed at random moments under load.

Many client threads increment and read a few counters while the server is
killed with SIGKILL at random moments and restarted on the same data dir,
round after round. Every other round runs with a tiny compaction threshold,
so kills land in the middle of compactions too; some rounds kill the server
while it is still recovering. Per counter it asserts:

  - every acknowledged increment survived: final >= sum of acknowledged "by";
  - nothing appeared from nowhere: final <= sum of attempted "by" (acked plus
    those whose outcome is unknown because the server died under them);
  - no two acknowledgements returned the same value (with by >= 1 each
    acknowledged increment must produce a distinct value);
  - no value a client saw was later taken back: every answer (increment or
    read) is >= the largest value any operation that *completed before it
    started* had seen, within a round and across restarts (after each
    restart the first read is checked against everything seen before).

Between rounds `counterd check --data-dir` must accept the killed server's
data dir (exit 0). Python 3 standard library only; uses the integration
harness (tests/integration/counterd_harness.py) read-only.

    python3 tests/torture/crash_torture.py --seconds 60          # CI
    python3 tests/torture/crash_torture.py --seconds 1800 -v     # on demand
    python3 tests/torture/crash_torture.py --seed 1234           # replay a seed

Exit status 0 if every check passed, 1 otherwise. The seed is printed first;
thread timing still varies between runs, so a seed replays the schedule of
kills and operations, not the exact interleaving.
"""
from __future__ import annotations

import argparse
import http.client
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from counterd_harness import (  # noqa: E402
    CounterdServer, HttpClient, ServerStartError, find_binary, run_counterd)

NETWORK_ERRORS = (OSError, http.client.HTTPException)


class Violation(AssertionError):
    pass


class Ledger:
    """What the clients did and saw, per counter. Thread-safe."""

    def __init__(self, names):
        self.lock = threading.Lock()
        self.names = list(names)
        self.acked_by = {n: 0 for n in names}       # sum of acknowledged by
        self.attempted_by = {n: 0 for n in names}   # acked + unknown outcome
        self.ack_values = {n: [] for n in names}    # every acknowledged value
        self.floor = {n: 0 for n in names}          # max value any completed op saw
        self.acked = 0
        self.unknown = 0
        self.reads = 0
        self.checks = 0
        self.violations: list[str] = []

    def violate(self, text: str):
        with self.lock:
            self.violations.append(text)

    def snapshot_floor(self, name):
        with self.lock:
            return self.floor[name]

    def saw(self, name, value, floor_at_start, what):
        with self.lock:
            self.checks += 1
            if value < floor_at_start:
                self.violations.append(
                    f"{name}: {what} answered {value} but a value of "
                    f"{floor_at_start} had already been seen (taken back)")
            if value > self.floor[name]:
                self.floor[name] = value


class Cluster:
    """The current server's address; clients wait here while it is down."""

    def __init__(self):
        self.cond = threading.Condition()
        self.addr = None          # (host, port) or None while down
        self.generation = 0
        self.stopping = False

    def up(self, host, port):
        with self.cond:
            self.addr = (host, port)
            self.generation += 1
            self.cond.notify_all()

    def down(self):
        with self.cond:
            self.addr = None

    def wait_up(self, timeout=0.5):
        with self.cond:
            if self.addr is None and not self.stopping:
                self.cond.wait(timeout)
            return self.addr, self.generation


def client_loop(idx, seed, cluster: Cluster, ledger: Ledger, stop: threading.Event,
                verbose: bool):
    rng = random.Random(seed * 1000 + idx)
    client, client_gen = None, -1
    while not stop.is_set():
        addr, gen = cluster.wait_up()
        if addr is None:
            continue
        if client is None or client_gen != gen:
            if client is not None:
                client.close()
            client, client_gen = HttpClient(addr[0], addr[1], timeout=10), gen
        name = rng.choice(ledger.names)
        floor = ledger.snapshot_floor(name)
        if rng.random() < 0.75:
            by = rng.randint(1, 3)
            with ledger.lock:
                ledger.attempted_by[name] += by
            try:
                r = client.post(f"/counters/{name}/increment", json={"by": by})
            except NETWORK_ERRORS:
                with ledger.lock:
                    ledger.unknown += 1
                client = None
                continue
            if r.status == 200:
                value = r.json()["value"]
                with ledger.lock:
                    ledger.acked += 1
                    ledger.acked_by[name] += by
                    ledger.ack_values[name].append(value)
                ledger.saw(name, value, floor + by, f"increment by {by}")
            elif r.status in (503,):
                # Draining or closing: the outcome is unknown to the client.
                with ledger.lock:
                    ledger.unknown += 1
            else:
                ledger.violate(f"{name}: increment answered {r.status}: {r.text[:200]}")
        else:
            try:
                r = client.get(f"/counters/{name}")
            except NETWORK_ERRORS:
                client = None
                continue
            if r.status == 200:
                with ledger.lock:
                    ledger.reads += 1
                ledger.saw(name, r.json()["value"], floor, "read")
            elif r.status == 404:
                if floor > 0:
                    ledger.violate(f"{name}: read 404 after {floor} had been seen")
            elif r.status != 503:
                ledger.violate(f"{name}: read answered {r.status}: {r.text[:200]}")
    if client is not None:
        client.close()


def check_dir(data_dir, ledger: Ledger, stats: dict):
    """counterd check on a dead server's dir must accept it (exit 0)."""
    try:
        res = run_counterd(["check", "--data-dir", data_dir], timeout=60)
    except subprocess.TimeoutExpired:
        ledger.violate("counterd check did not finish in 60 s")
        return
    if res.returncode == 0 and "is sound" in res.stdout:
        stats["checks_ok"] += 1
    else:
        ledger.violate(f"counterd check --data-dir exited {res.returncode}:\n"
                       f"{res.stdout}{res.stderr}")


def early_kill(data_dir, args, rng, stats):
    """Starts counterd and SIGKILLs it within 0-60 ms: usually while it is
    still recovering (or cutting a torn tail, or deleting old journals)."""
    cmd = [find_binary(), "--listen", "127.0.0.1:0", "--data-dir", data_dir,
           "--log-format", "json", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNTERD_")}
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    time.sleep(rng.uniform(0, 0.06))
    p.send_signal(signal.SIGKILL)
    p.wait(20)
    stats["early_kills"] += 1


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "WARNING: ThreadSanitizer",
                   "ERROR: LeakSanitizer", "runtime error:")


def sanitizer_reports(server: CounterdServer, ledger: Ledger):
    """A sanitizer build reports on stderr; SIGKILL would hide the exit code."""
    for line in server.lines:
        if any(mark in line for mark in SANITIZER_MARKS):
            ledger.violate(f"sanitizer report from counterd: {line.strip()[:300]}\n"
                           + server.log_text(60))
            return


def wait_for_temp_snapshot(data_dir, budget) -> bool:
    """Polls for state.json.tmp for up to |budget| seconds; True if seen."""
    deadline = time.monotonic() + budget
    temp = os.path.join(data_dir, "state.json.tmp")
    while time.monotonic() < deadline:
        if os.path.exists(temp):
            return True
        time.sleep(0.0005)
    return False


def verify_after_restart(server: CounterdServer, ledger: Ledger, stats):
    """After a restart every counter must show at least everything seen
    (and acknowledged) before, and no more than was attempted."""
    with server.client() as c:
        for name in ledger.names:
            with ledger.lock:
                floor, acked, attempted = (ledger.floor[name], ledger.acked_by[name],
                                           ledger.attempted_by[name])
            r = c.get(f"/counters/{name}")
            value = r.json()["value"] if r.status == 200 else 0
            if r.status not in (200, 404):
                ledger.violate(f"{name}: GET after restart answered {r.status}")
                continue
            with ledger.lock:
                ledger.checks += 3
            if value < floor:
                ledger.violate(f"{name}: after restart {value} < {floor} already seen")
            if value < acked:
                ledger.violate(f"{name}: after restart {value} < {acked} acknowledged")
            if value > attempted:
                ledger.violate(f"{name}: after restart {value} > {attempted} attempted")
            with ledger.lock:
                ledger.floor[name] = max(ledger.floor[name], value)
    stats["restarts_verified"] += 1


def final_violations(ledger: Ledger, final: dict) -> list[str]:
    """The end-of-run checks per counter, given the final values."""
    out = []
    for name in ledger.names:
        values = ledger.ack_values[name]
        ledger.checks += 4
        if final[name] < ledger.acked_by[name]:
            out.append(f"{name}: final {final[name]} < acknowledged "
                       f"{ledger.acked_by[name]} (an acknowledged increment was lost)")
        if final[name] > ledger.attempted_by[name]:
            out.append(f"{name}: final {final[name]} > attempted "
                       f"{ledger.attempted_by[name]} (a value from nowhere)")
        if len(set(values)) != len(values):
            dup = sorted(v for v in set(values) if values.count(v) > 1)[:5]
            out.append(f"{name}: acknowledgements repeated values {dup}")
        if final[name] < ledger.floor[name]:
            out.append(f"{name}: final {final[name]} < {ledger.floor[name]} seen")
    return out


def self_test() -> int:
    """The checks must be able to fail: feed them each kind of violation."""
    ledger = Ledger(["x"])
    ledger.attempted_by["x"], ledger.acked_by["x"] = 10, 6
    ledger.ack_values["x"] = [2, 4, 4]
    ledger.saw("x", 5, 0, "read")
    ledger.saw("x", 3, 5, "read")                  # taken back
    found = ledger.violations + final_violations(ledger, {"x": 5})   # 5 < 6 acked
    found += final_violations(ledger, {"x": 11})  # more than attempted
    kinds = ["taken back", "was lost", "from nowhere", "repeated values"]
    missing = [k for k in kinds if not any(k in v for v in found)]
    print(f"self-test: {len(found)} violations found; missing kinds: {missing or 'none'}")
    return 1 if missing else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float,
                    default=float(os.environ.get("COUNTERD_TORTURE_SECONDS", "60")),
                    help="how long to keep killing (default 60, env COUNTERD_TORTURE_SECONDS)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--counters", type=int, default=3)
    ap.add_argument("--min-rounds", type=int, default=5)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--self-test", action="store_true",
                    help="check that the checks catch each kind of violation, then exit")
    opts = ap.parse_args(argv)
    if opts.self_test:
        return self_test()
    seed = opts.seed if opts.seed is not None else int.from_bytes(os.urandom(4), "little")
    print(f"crash torture: seed {seed} (replay with --seed {seed}), "
          f"{opts.clients} clients, {opts.counters} counters, ~{opts.seconds:.0f} s",
          flush=True)
    rng = random.Random(seed)
    names = [f"torture-{i}" for i in range(opts.counters)]
    ledger = Ledger(names)
    cluster = Cluster()
    stop = threading.Event()
    stats = {"rounds": 0, "kills": 0, "early_kills": 0, "compaction_rounds": 0,
             "compactions_logged": 0, "kills_in_snapshot_write": 0, "checks_ok": 0, "restarts_verified": 0,
             "graceful_stops": 0}
    data_dir = tempfile.mkdtemp(prefix="counterd-torture-")
    threads = [threading.Thread(target=client_loop,
                                args=(i, seed, cluster, ledger, stop, opts.verbose),
                                daemon=True) for i in range(opts.clients)]
    for t in threads:
        t.start()
    server = None
    final: dict = {}
    started = time.monotonic()
    failed = False
    try:
        while (time.monotonic() - started < opts.seconds
               or stats["rounds"] < opts.min_rounds) and not ledger.violations:
            compaction = stats["rounds"] % 2 == 1
            args = ["--compaction-threshold-bytes", str(rng.choice([4096, 8192]))] \
                if compaction else []
            if stats["rounds"] > 0 and rng.random() < 0.25:
                early_kill(data_dir, args, rng, stats)
                check_dir(data_dir, ledger, stats)
            server = CounterdServer(data_dir=data_dir, args=args)
            try:
                server.start()
            except ServerStartError as e:
                ledger.violate(f"restart {stats['rounds']} failed: {e}")
                break
            verify_after_restart(server, ledger, stats)
            cluster.up(server.host, server.port)
            stats["rounds"] += 1
            stats["compaction_rounds"] += compaction
            budget = rng.uniform(0.2, 1.5)  # the load runs meanwhile
            if compaction and rng.random() < 0.5:
                # Aim at a snapshot being written: kill the moment its temp
                # file shows up (or when the budget is spent).
                if wait_for_temp_snapshot(data_dir, budget):
                    stats["kills_in_snapshot_write"] += 1
            else:
                time.sleep(budget)
            cluster.down()
            server.kill()
            stats["kills"] += 1
            sanitizer_reports(server, ledger)
            stats["compactions_logged"] += sum(
                1 for l in server.json_logs if "compaction" in str(l.get("msg", "")))
            if opts.verbose:
                with ledger.lock:
                    print(f"round {stats['rounds']}: acked {ledger.acked}, "
                          f"unknown {ledger.unknown}, floors {ledger.floor}", flush=True)
            check_dir(data_dir, ledger, stats)
        # A last clean run: graceful stop, then the final accounting.
        server = CounterdServer(data_dir=data_dir)
        server.start()
        verify_after_restart(server, ledger, stats)
        stop.set()
        cluster.stopping = True
        with cluster.cond:
            cluster.cond.notify_all()
        for t in threads:
            t.join(30)
        with server.client() as c:
            for name in names:
                r = c.get(f"/counters/{name}")
                final[name] = r.json()["value"] if r.status == 200 else 0
        rc = server.stop()
        stats["graceful_stops"] += 1
        sanitizer_reports(server, ledger)
        if rc != 0:
            ledger.violate(f"graceful stop exited {rc}")
        check_dir(data_dir, ledger, stats)
        for problem in final_violations(ledger, final):
            ledger.violate(problem)
    except Exception as e:  # report what we have, then fail
        ledger.violate(f"torture harness error: {type(e).__name__}: {e}")
    finally:
        stop.set()
        cluster.stopping = True
        with cluster.cond:
            cluster.cond.notify_all()
        if server is not None:
            server.cleanup()
        for t in threads:
            t.join(5)
    elapsed = time.monotonic() - started
    print(f"crash torture: seed {seed}: {stats['rounds']} rounds in {elapsed:.1f} s, "
          f"{stats['kills']} SIGKILLs under load + {stats['early_kills']} during start-up, "
          f"{stats['compaction_rounds']} rounds with compaction "
          f"({stats['compactions_logged']} compactions logged, "
          f"{stats['kills_in_snapshot_write']} kills while state.json.tmp existed); "
          f"{ledger.acked} acknowledged increments, {ledger.unknown} with unknown outcome, "
          f"{ledger.reads} reads; {ledger.checks} checks, "
          f"{stats['checks_ok']} `counterd check` runs passed, "
          f"{stats['restarts_verified']} restarts verified", flush=True)
    for name in names:
        print(f"  {name}: final {final.get(name, '?')}, acknowledged by-sum "
              f"{ledger.acked_by[name]}, attempted "
              f"{ledger.attempted_by[name]}, max seen {ledger.floor[name]}, "
              f"{len(ledger.ack_values[name])} acks", flush=True)
    if ledger.violations:
        failed = True
        print(f"FAILED ({len(ledger.violations)} violations), seed {seed}:", flush=True)
        for v in ledger.violations[:20]:
            print("  " + v, flush=True)
        print(f"data dir kept at {data_dir}", flush=True)
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    if ledger.acked == 0 and not failed:
        print("FAILED: no increment was ever acknowledged", flush=True)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
