"""A full disk that heals (issue 14 §2), against the real binary.

LowDiskTest puts the data dir on a real 8 MiB tmpfs (mount(2): needs root)
and, while a client keeps incrementing, fills it from outside to under
--min-free-bytes. Then:

  - writes are refused with 507 insufficient-storage naming the free bytes
    and the threshold, before they reach the journal (every other answer is
    200, and the acknowledged values go up by one without a gap);
  - GET still answers 200 with the acknowledged value; /readyz answers 503;
    /metrics shows counterd_low_disk 1 and the refusals;
  - once the filler is deleted, writes succeed again in the same process;
  - a restart finds exactly the acknowledged value, and the store is sound.

Without root (or where tmpfs cannot be mounted) it is skipped with the
reason, except under CI=true, where that is a failure.

StoreFailureTest forces a fail-closed I/O error (an injected EIO on the
journal's fdatasync, COUNTERD_TEST_FAULTS) and checks --on-store-failure:
exit ends the process with code 3 (and a restart recovers the journal);
stay keeps it up, serving reads, with /readyz 503.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from counterd_harness import (CounterdAssertions, CounterdServer, file_backend_only,
                              run_counterd)

MiB = 1024 * 1024
TMPFS_BYTES = 8 * MiB
MIN_FREE = 4 * MiB
COUNTER = "disk"
EXIT_STORE_FAILED = 3
INCREMENT = f"/counters/{COUNTER}/increment"


def free_bytes(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def low_disk_detail(free: int, threshold: int) -> str:
    return (f"low disk: the data dir's file system has {free} bytes free, under "
            f"--min-free-bytes {threshold}; writes are refused until space is "
            "freed (reads go on, nothing was written)")


def metric(text: str, series: str) -> float:
    m = re.search(r"^" + re.escape(series) + r" (\S+)$", text, re.M)
    if not m:
        raise AssertionError(f"{series} not in /metrics")
    return float(m.group(1))


def mount_tmpfs(where: str) -> str:
    """Mounts an 8 MiB tmpfs on |where|; '' or why not."""
    if os.geteuid() != 0:
        return "not root (mounting a tmpfs needs CAP_SYS_ADMIN)"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0700",
                        "tmpfs", where], capture_output=True, text=True)
    if r.returncode != 0:
        return f"mount -t tmpfs failed: {r.stderr.strip() or r.returncode}"
    return ""


class Writer(threading.Thread):
    """Increments COUNTER one request at a time until stopped, keeping every
    answer; |cond| is notified after each one."""

    def __init__(self, server: CounterdServer):
        super().__init__(daemon=True)
        self.client = server.client()
        self.cond = threading.Condition()
        self.answers: "list[tuple[int, dict]]" = []
        self.stopping = False

    def run(self):
        try:
            while True:
                with self.cond:
                    if self.stopping:
                        return
                r = self.client.post(INCREMENT, json={"by": 1})
                with self.cond:
                    self.answers.append((r.status, r.json()))
                    self.cond.notify_all()
        finally:
            self.client.close()

    def wait_for(self, pred, what: str, timeout: float = 20.0):
        """Waits until pred(answers) holds (the server looks at the free
        space about once a second)."""
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self.answers), timeout):
                raise AssertionError(f"timed out waiting for {what}; last answers: "
                                     f"{self.answers[-3:]}")

    def stop(self):
        with self.cond:
            self.stopping = True
        self.join(30)


@file_backend_only("the data dir's file system")
class LowDiskTest(CounterdAssertions, unittest.TestCase):

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="counterd-lowdisk-")
        self.addCleanup(shutil.rmtree, self.base, True)
        self.mnt = os.path.join(self.base, "mnt")
        os.makedirs(self.mnt)
        why = mount_tmpfs(self.mnt)
        if why:
            if os.environ.get("CI") == "true":
                self.fail(f"the low-disk test must run under CI: {why}")
            self.skipTest(f"no real small file system: {why}")
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt])

    def test_writes_refused_under_min_free_then_resume_without_restart(self):
        data_dir = os.path.join(self.mnt, "data")
        os.makedirs(data_dir)
        server = CounterdServer(data_dir=data_dir,
                                args=["--min-free-bytes", str(MIN_FREE)])
        self.addCleanup(server.cleanup)
        server.start()
        pid = server.pid
        c = server.client()
        self.addCleanup(c.close)
        self.assertEqual(c.post(INCREMENT, json={"by": 1}).status, 200)

        writer = Writer(server)
        writer.start()
        self.addCleanup(writer.stop)
        writer.wait_for(lambda a: len(a) >= 3, "writes before the fill")

        # Fill from outside to 3 MiB free: under --min-free-bytes (4 MiB),
        # with room for the writes acknowledged until the server's next look.
        filler = os.path.join(self.mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (free_bytes(self.mnt) - 3 * MiB))
            f.flush()
            os.fsync(f.fileno())
        writer.wait_for(lambda a: any(s != 200 for s, _ in a), "the first refusal")

        # Refused writes reach no file: the free space stays what the
        # server saw, and its answer names it.
        free = free_bytes(self.mnt)
        self.assertLess(free, MIN_FREE)
        refusal = c.post(INCREMENT, json={"by": 1})
        doc = self.assertProblem(refusal, 507)
        self.assertEqual(doc, {
            "type": "urn:counterd:problem:insufficient-storage",
            "title": "Insufficient storage",
            "status": 507,
            "detail": low_disk_detail(free, MIN_FREE),
            "instance": INCREMENT,
        })
        acked_while_low = sum(1 for s, _ in writer.answers if s == 200)

        got = c.get(f"/counters/{COUNTER}")
        self.assertEqual(got.status, 200, got)
        value_while_low = got.json()["value"]
        self.assertEqual(value_while_low, 1 + acked_while_low)
        ready = self.assertProblem(c.get("/readyz"), 503)
        self.assertEqual(ready["type"], "urn:counterd:problem:not-ready")
        self.assertEqual(ready["detail"], low_disk_detail(free, MIN_FREE))
        metrics = c.get("/metrics").text
        self.assertEqual(metric(metrics, "counterd_low_disk"), 1)
        self.assertEqual(metric(metrics, "counterd_data_dir_free_bytes"), free)
        self.assertGreaterEqual(
            metric(metrics, 'counterd_writes_refused_total{reason="low-disk"}'), 2)

        # Space comes back: writes resume by themselves, same process.
        os.remove(filler)
        writer.wait_for(
            lambda a: any(s != 200 for s, _ in a) and a[-1][0] == 200,
            "a write to succeed after the filler was deleted")
        writer.stop()
        self.assertEqual(server.pid, pid)
        self.assertTrue(server.running)

        statuses = [s for s, _ in writer.answers]
        self.assertEqual(set(statuses), {200, 507}, statuses)
        values = [b["value"] for s, b in writer.answers if s == 200]
        self.assertEqual(values, list(range(2, 2 + len(values))),
                         "acknowledged values skip or repeat")
        for s, body in writer.answers:
            if s == 507:
                self.assertEqual(body["type"],
                                 "urn:counterd:problem:insufficient-storage")
                self.assertTrue(body["detail"].startswith("low disk: "), body)
        final = 1 + len(values)
        self.assertEqual(c.get(f"/counters/{COUNTER}").json()["value"], final)
        self.assertEqual(c.get("/readyz").status, 200)
        metrics = c.get("/metrics").text
        self.assertEqual(metric(metrics, "counterd_low_disk"), 0)
        self.assertEqual(
            metric(metrics, 'counterd_writes_refused_total{reason="low-disk"}'),
            statuses.count(507) + 1)
        c.close()

        # No torn state: a restart finds exactly the acknowledged value.
        self.assertEqual(server.stop(), 0)
        check = run_counterd(["check", "--data-dir", data_dir], timeout=60)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        again = server.restart()
        self.addCleanup(again.cleanup)
        c2 = again.client()
        self.addCleanup(c2.close)
        self.assertEqual(c2.get(f"/counters/{COUNTER}").json()["value"], final)
        print(f"\nlow disk on tmpfs ({TMPFS_BYTES} bytes): {len(values) + 1}"
              f" writes acknowledged, {statuses.count(507)} refused with 507 at "
              f"{free} bytes free, resumed after the filler went; restart "
              f"found {final}", flush=True)


@file_backend_only("the journal's fail-closed latch")
class StoreFailureTest(CounterdAssertions, unittest.TestCase):
    # Start-up writes and fdatasyncs the new journal's header: skipping two
    # fdatasyncs lets exactly one record through; the second write fails.
    FAULT = {"COUNTERD_TEST_FAULTS": "sync:EIO:2:journal"}

    def fail_the_store(self, server: CounterdServer) -> None:
        c = server.client()
        self.addCleanup(c.close)
        self.assertEqual(c.post(INCREMENT, json={"by": 1}).status, 200)
        doc = self.assertProblem(c.post(INCREMENT, json={"by": 1}), 503)
        self.assertEqual(doc["type"], "urn:counterd:problem:store-unavailable")

    def test_exit_ends_the_process_with_code_3_and_the_restart_recovers(self):
        server = CounterdServer(args=["--on-store-failure", "exit"], env=self.FAULT)
        self.addCleanup(server.cleanup)
        server.start()
        self.fail_the_store(server)
        self.assertEqual(server.wait(timeout=10), EXIT_STORE_FAILED, server.log_text(20))
        self.assertIn("store failed closed; exiting", server.log_text())
        again = server.restart(env={})
        self.addCleanup(again.cleanup)
        c = again.client()
        self.addCleanup(c.close)
        self.assertEqual(c.get(f"/counters/{COUNTER}").json()["value"], 1)
        self.assertEqual(c.post(INCREMENT, json={"by": 1}).json()["value"], 2)

    def test_exit_is_the_default(self):
        server = CounterdServer(env=self.FAULT)
        self.addCleanup(server.cleanup)
        server.start()
        self.fail_the_store(server)
        self.assertEqual(server.wait(timeout=10), EXIT_STORE_FAILED, server.log_text(20))

    def test_stay_keeps_serving_reads_and_is_not_ready(self):
        server = CounterdServer(args=["--on-store-failure", "stay"], env=self.FAULT)
        self.addCleanup(server.cleanup)
        server.start()
        self.fail_the_store(server)
        c = server.client()
        self.addCleanup(c.close)
        # Ten times the exit mode's 200 ms look: the process is still there.
        until = time.monotonic() + 2.0
        while time.monotonic() < until:
            self.assertEqual(c.get(f"/counters/{COUNTER}").json()["value"], 1)
            self.assertProblem(c.get("/readyz"), 503)
        self.assertTrue(server.running)
        self.assertNotIn("exiting", server.log_text())
        # Closing a failed store reports the failure: exit code 1, not 3.
        self.assertEqual(server.stop(), 1)


if __name__ == "__main__":
    unittest.main()
