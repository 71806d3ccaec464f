"""`counterd check --data-dir DIR` on sound and damaged data dirs.

The offline check applies start-up's recovery rules without changing
anything: exit 0 with a summary when the dir is sound (a torn tail is a
note, not an error: start-up cuts it), exit 1 with a report naming the file
and byte offset when it is not. Each case also starts the server on the
same dir and checks it agrees (refuses, or recovers the acknowledged value).

Python 3 standard library only; uses tests/integration/counterd_harness.py.

    COUNTERD_BIN=build/dev/counterd python3 -m unittest -v check_test   # in tests/torture
"""
from __future__ import annotations

import glob
import os
import shutil
import struct
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from counterd_harness import CounterdServer, ServerStartError, run_counterd  # noqa: E402

HEADER = 16  # record header: crc u32, length u32, seq u64 (docs/storage-format.md)
FILE_HEADER = 24  # "CNTRDJNL", version u32, first_seq u64, crc u32


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def write(path: str, data: bytes):
    with open(path, "wb") as f:
        f.write(data)


def record_offsets(path: str) -> list[int]:
    """Start offsets of the records in a journal file."""
    data = read(path)
    assert data[:12] == b"CNTRDJNL\x02\x00\x00\x00", f"{path}: not a format-2 journal"
    out, off = [], FILE_HEADER
    while off + HEADER <= len(data):
        _, length, _ = struct.unpack_from("<IIQ", data, off)
        if length == 0 or off + HEADER + length > len(data):
            break
        out.append(off)
        off += HEADER + length
    return out


def snapshot_of_dir(d: str) -> dict:
    """name -> (size, mtime_ns) of every file, to prove check changes nothing."""
    return {n: (os.stat(os.path.join(d, n)).st_size, os.stat(os.path.join(d, n)).st_mtime_ns)
            for n in sorted(os.listdir(d))}


class CheckTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="counterd-check-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def populate(self, increments: int, compaction: bool = False, kill: bool = True) -> int:
        args = ["--compaction-threshold-bytes", "4096"] if compaction else []
        srv = CounterdServer(data_dir=self.dir, args=args).start()
        try:
            with srv.client() as c:
                for i in range(increments):
                    r = c.post("/counters/checked/increment", json={"by": 1})
                    self.assertEqual(r.status, 200, repr(r))
            if kill:
                srv.kill()
            else:
                self.assertEqual(srv.stop(), 0)
        finally:
            srv.cleanup()
        return increments

    def check(self):
        r = run_counterd(["check", "--data-dir", self.dir], timeout=60)
        return r.returncode, r.stdout + r.stderr

    def start_value(self):
        srv = CounterdServer(data_dir=self.dir)
        try:
            srv.start()
        except ServerStartError as e:
            return None, str(e)
        try:
            with srv.client() as c:
                r = c.get("/counters/checked")
                return (r.json()["value"] if r.status == 200 else 0), ""
        finally:
            srv.stop()
            srv.cleanup()

    def journals(self) -> list[str]:
        return sorted(glob.glob(os.path.join(self.dir, "journal-*.log")))

    def test_sound_dir_exits_0_and_changes_nothing(self):
        acked = self.populate(300, compaction=True)
        before = snapshot_of_dir(self.dir)
        rc, out = self.check()
        self.assertEqual(rc, 0, out)
        self.assertIn("sound", out.lower(), out)
        self.assertEqual(snapshot_of_dir(self.dir), before, "check changed the dir")
        self.assertEqual(self.start_value()[0], acked)

    def test_torn_tail_is_a_note_not_an_error(self):
        acked = self.populate(20)
        journal = self.journals()[-1]
        with open(journal, "ab") as f:  # a half-written, never acknowledged record
            f.write(struct.pack("<IIQ", 0xDEADBEEF, 40, acked + 1) + b"x" * 10)
        before = snapshot_of_dir(self.dir)
        rc, out = self.check()
        self.assertEqual(rc, 0, out)
        self.assertIn("torn", out.lower(), out)
        self.assertEqual(snapshot_of_dir(self.dir), before, "check cut the tail itself")
        self.assertEqual(self.start_value()[0], acked)
        rc, out = self.check()  # start-up cut it
        self.assertEqual(rc, 0, out)
        self.assertNotIn("torn", out.lower(), out)

    def test_damage_before_the_tail_names_file_and_offset(self):
        self.populate(20)
        journal = self.journals()[-1]
        offsets = record_offsets(journal)
        self.assertGreater(len(offsets), 5)
        victim = offsets[3]
        data = bytearray(read(journal))
        data[victim + HEADER + 2] ^= 0x01  # a payload bit of record 4 of 20
        write(journal, bytes(data))
        rc, out = self.check()
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{journal} at byte offset {victim}", out)
        value, log = self.start_value()
        self.assertIsNone(value, "start-up accepted a damaged journal")
        self.assertIn(f"at byte offset {victim}", log)

    def test_corrupt_snapshot_names_the_snapshot(self):
        self.populate(300, compaction=True, kill=False)
        snap = os.path.join(self.dir, "state.json")
        self.assertTrue(os.path.exists(snap), os.listdir(self.dir))
        text = read(snap)
        i = text.index(b'"value":') + len(b'"value":')
        flipped = text[:i] + (b"8" if text[i:i + 1] != b"8" else b"7") + text[i + 1:]
        write(snap, flipped)
        rc, out = self.check()
        self.assertEqual(rc, 1, out)
        self.assertIn(f"{snap} at byte offset", out)
        self.assertIsNone(self.start_value()[0], "start-up accepted a corrupt snapshot")

    def test_lost_snapshot_is_never_taken_for_an_empty_store(self):
        self.populate(300, compaction=True, kill=False)
        os.remove(os.path.join(self.dir, "state.json"))
        rc, out = self.check()
        self.assertEqual(rc, 1, out)
        self.assertIn("at byte offset", out)
        self.assertIsNone(self.start_value()[0], "start-up began with an empty store")

    def test_missing_dir_is_an_error(self):
        r = run_counterd(["check", "--data-dir", os.path.join(self.dir, "nope")], timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
