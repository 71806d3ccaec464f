"""End-to-end fault injection through the file-system seam of the real binary.

counterd wraps its POSIX file system in FaultInjectionFileSystem when
COUNTERD_TEST_FAULTS is set ("op:ERRNO[:skip[:path-substring]]"). For ENOSPC
and EIO on write, fdatasync, rename and directory fsync this checks, over
HTTP:

  - the request that meets the fault (for rename and directory fsync, which
    only compaction does, the next write after it) gets a problem answer
    naming the cause: 507 insufficient-storage for ENOSPC (also when a
    compaction met it in the background), 503 store-unavailable otherwise;
  - /readyz turns 503; reads keep working and show the acknowledged value;
  - later writes are refused (503), even once the fault would have passed;
  - `counterd check --data-dir` accepts the dir, and a restart without the
    fault (after SIGKILL, so nothing is tidied at shutdown) recovers exactly
    the acknowledged state and accepts writes again.

Python 3 standard library only; uses tests/integration/counterd_harness.py.

    COUNTERD_BIN=build/dev/counterd python3 -m unittest -v fault_test   # in tests/torture
"""
from __future__ import annotations

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from counterd_harness import (  # noqa: E402
    CounterdAssertions, CounterdServer, ServerStartError, run_counterd, wait_until)

COUNTER = "faulty"
ENOSPC_TEXT = "No space left on device"
EIO_TEXT = "Input/output error"

# name: (rule, compaction, status of the failing write, errno text, op word)
# The rules skip the calls start-up makes: on a fresh dir start-up creates
# journal-1, writes and fdatasyncs its 24-byte header and fsyncs the
# directory once (docs/storage-format.md, "File header"); so a rule on
# journal writes or fdatasyncs skips one more than the records it lets
# through. With the smallest compaction threshold (4 KiB, about 90
# increments) writes soon start compactions: rotate the journal (open, write
# and fdatasync the new header, directory fsync), then write the snapshot
# (open, write, fdatasync, rename, directory fsync) and delete the old
# journal (unlink, directory fsync).
COMPACTION_THRESHOLD = "4096"
CASES = {
    "write_enospc": ("write:ENOSPC:4:journal", False, 507, ENOSPC_TEXT, "write"),
    "write_eio": ("write:EIO:4:journal", False, 503, EIO_TEXT, "write"),
    "fsync_eio": ("sync:EIO:4:journal", False, 503, EIO_TEXT, "fdatasync"),
    "fsync_enospc": ("sync:ENOSPC:4:journal", False, 507, ENOSPC_TEXT, "fdatasync"),
    "rename_eio": ("rename:EIO:2", True, 503, EIO_TEXT, "rename"),
    "rename_enospc": ("rename:ENOSPC:2", True, 507, ENOSPC_TEXT, "rename"),
    # The 2nd directory fsync is the journal rotation's, the 3rd the one
    # that makes the snapshot's rename durable.
    "dirsync_rotate_eio": ("syncdir:EIO:1", True, 503, EIO_TEXT, "fsync"),
    "dirsync_snapshot_eio": ("syncdir:EIO:2", True, 503, EIO_TEXT, "fsync"),
    "dirsync_enospc": ("syncdir:ENOSPC:2", True, 507, ENOSPC_TEXT, "fsync"),
    "snapshot_write_enospc": ("write:ENOSPC:1:state.json", True, 507, ENOSPC_TEXT,
                              "write"),
}

RESULTS: list[str] = []


class FaultInjectionTest(CounterdAssertions, unittest.TestCase):
    maxDiff = None

    @classmethod
    def tearDownClass(cls):
        print("\nfault matrix:", file=sys.stderr)
        for line in RESULTS:
            print("  " + line, file=sys.stderr)
        super().tearDownClass()

    def run_case(self, name):
        rule, compaction, status, errno_text, op_word = CASES[name]
        args = ["--compaction-threshold-bytes", COMPACTION_THRESHOLD] if compaction else []
        # The failed-closed server is what this test inspects: it must stay
        # up (--on-store-failure=exit is tests/integration/test_full_disk.py's).
        args += ["--on-store-failure", "stay"]
        server = CounterdServer(args=args, env={"COUNTERD_TEST_FAULTS": rule})
        self.addCleanup(server.cleanup)
        try:
            server.start()
        except ServerStartError as e:
            self.fail(f"counterd did not start with COUNTERD_TEST_FAULTS={rule!r} "
                      f"(is fault injection wired into main?):\n{e}")
        # The fault injection must announce itself loudly.
        server.wait_for_log(r"(?i)fault", timeout=5)

        acked = 0
        failure = None
        c = server.client()
        self.addCleanup(c.close)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and acked < 5000:
            r = c.post(f"/counters/{COUNTER}/increment", json={"by": 1})
            if r.status == 200:
                acked += 1
                self.assertEqual(r.json()["value"], acked, repr(r))
                continue
            failure = r
            break
        self.assertIsNotNone(failure, f"{rule}: no write ever failed ({acked} acked)")
        self.assertEqual(failure.status, status, repr(failure))
        doc = self.assertProblem(failure, failure.status, rule)
        slug = "insufficient-storage" if failure.status == 507 else "store-unavailable"
        self.assertEqual(doc["type"], "urn:counterd:problem:" + slug, repr(failure))
        self.assertIn(errno_text, doc["detail"], f"detail must name the cause: {doc}")
        self.assertIn(op_word, doc["detail"], f"detail must name the call: {doc}")
        if not compaction:
            self.assertIn("(injected)", doc["detail"])
            self.assertEqual(acked, 3, "the rule lets the header and exactly 3 records "
                                       "through")
        self.assertGreaterEqual(acked, 1)

        # Fail closed: not ready, reads go on, writes refused.
        ready = c.get("/readyz")
        self.assertProblem(ready, 503, "readyz after the failure")
        got = c.get(f"/counters/{COUNTER}")
        self.assertCounter(got, COUNTER, acked)
        for _ in range(3):
            later = c.post(f"/counters/{COUNTER}/increment", json={"by": 1})
            self.assertProblem(later, 503, "a later write")
            self.assertEqual(later.json()["type"], "urn:counterd:problem:store-unavailable")
        self.assertCounter(c.get(f"/counters/{COUNTER}"), COUNTER, acked)
        c.close()

        # A crash (no tidying at shutdown), an offline check, a clean restart.
        server.kill()
        check = run_counterd(["check", "--data-dir", server.data_dir], timeout=60)
        self.assertEqual(check.returncode, 0,
                         f"counterd check refused the dir:\n{check.stdout}{check.stderr}")
        self.assertIn("is sound", check.stdout)
        again = server.restart(env={})
        self.addCleanup(again.cleanup)
        c2 = again.client()
        self.addCleanup(c2.close)
        self.assertEqual(c2.get("/readyz").status, 200)
        self.assertCounter(c2.get(f"/counters/{COUNTER}"), COUNTER, acked)
        self.assertCounter(c2.post(f"/counters/{COUNTER}/increment", json={"by": 1}),
                           COUNTER, acked + 1)
        self.assertEqual(again.stop(), 0)
        RESULTS.append(f"{name:22s} {rule:28s} -> {failure.status} {doc['type'].split(':')[-1]}"
                       f" after {acked} acked; readyz 503, reads ok, later writes 503; "
                       f"check sound, restart recovered {acked}\n"
                       f"{'':25s}detail: {doc['detail']}")


def _make(name):
    def test(self):
        self.run_case(name)
    test.__name__ = f"test_{name}"
    test.__doc__ = f"{CASES[name][0]}"
    return test


for _name in CASES:
    setattr(FaultInjectionTest, f"test_{_name}", _make(_name))


if __name__ == "__main__":
    unittest.main()
