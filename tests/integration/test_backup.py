"""Backup and restore: GET /admin/snapshot, counterd restore, counterd check
--snapshot, over the real binary.

A backup taken while writers run is the state after one commit (its seq in
Counterd-Snapshot-Seq); restoring it gives a data dir that serves the same
listing (counts and a sha256 of the listing before and after); a data dir
that holds a store is refused unless --force; a damaged snapshot is refused
naming the file and the byte offset; a volume prepared as the kubelet
prepares one (root-owned, group 65532, setgid 2775) is restored into by a
non-root user of that group.
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import unittest

from counterd_harness import (REPO_ROOT, CounterdServer, file_backend_only,
                              find_binary, new_postgres_database, run_counterd,
                              wait_until)

import test_auth


def listing(client):
    """Every live counter, paginated: [(name, value, version)]."""
    out, after = [], ""
    while True:
        r = client.get("/counters?limit=1000" + (f"&after={after}" if after else ""))
        assert r.status == 200, repr(r)
        doc = r.json()
        out += [(c["name"], c["value"], c["version"]) for c in doc["counters"]]
        if doc["next"] is None:
            return out
        after = doc["next"]


def listing_of(server):
    with server.client() as client:
        return listing(client)


def checksum(rows):
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


class TempDirs:
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="counterd-backup-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def snapshot_of(self, server, file_name="backup.json"):
        with server.client() as client:
            r = client.get("/admin/snapshot")
        self.assertEqual(r.status, 200, repr(r))
        path = self.path(file_name)
        with open(path, "wb") as f:
            f.write(r.body)
        return r, path


@file_backend_only("restore builds a file backend data dir")
class BackupRestoreTest(TempDirs, unittest.TestCase):
    def populate(self, server, n=250):
        c = server.client()
        self.addCleanup(c.close)
        for i in range(n):
            r = c.post(f"/counters/c{i:04d}/increment", json={"by": i + 1})
            self.assertEqual(r.status, 200, repr(r))
        r = c.post("/counters/keyed/increment", json={"by": 5},
                   headers={"Idempotency-Key": "backup-key-1"})
        self.assertEqual(r.status, 200, repr(r))
        return r

    def test_round_trip_keeps_counts_checksum_and_idempotency(self):
        src = self.path("src")
        with CounterdServer(data_dir=src) as server:
            first = self.populate(server)
            before = listing_of(server)
            r, backup = self.snapshot_of(server)
        self.assertEqual(r.header("Content-Type"), "application/json")
        seq = int(r.header("Counterd-Snapshot-Seq"))
        self.assertEqual(r.body.split(b"\n", 1)[0],
                         b'{"format":2,"kind":"counterd-snapshot","last_seq":%d,' % seq)
        doc = json.loads(r.body)
        self.assertEqual((doc["format"], doc["kind"], doc["last_seq"],
                          len(doc["counters"]), len(doc["idempotency"])),
                         (2, "counterd-snapshot", seq, 251, 1))
        self.assertEqual(seq, 251)  # one commit per request

        chk = run_counterd(["check", "--snapshot", backup])
        self.assertEqual(chk.returncode, 0, chk.stderr)
        self.assertEqual(
            chk.stdout,
            f"counterd check: snapshot {backup} is sound: format 2, seq 251, "
            f"251 counters, 1 idempotency records, {len(r.body)} bytes\n")

        dst = self.path("dst")
        res = run_counterd(["restore", "--from", backup, "--data-dir", dst])
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(
            res.stdout,
            f"counterd restore: restored {dst} from {backup}: seq 251, 251 "
            f"counters, 1 idempotency records\n")
        self.assertEqual(sorted(os.listdir(dst)), ["LOCK", "state.json"])
        with CounterdServer(data_dir=dst) as server:
            after = listing_of(server)
            self.assertEqual(len(after), len(before))
            self.assertEqual(checksum(after), checksum(before))
            # The idempotency record came along: the retry is answered as
            # the first request was, and changes nothing.
            c = server.client()
            self.addCleanup(c.close)
            again = c.post("/counters/keyed/increment", json={"by": 5},
                           headers={"Idempotency-Key": "backup-key-1"})
            self.assertEqual((again.status, again.json()),
                             (first.status, first.json()))
            self.assertEqual(c.get("/counters/keyed").json()["value"], 5)
            # A new snapshot continues the sequence.
            c.post("/counters/new/increment", json={"by": 1})
            self.assertEqual(c.get("/admin/snapshot").header(
                "Counterd-Snapshot-Seq"), "252")

    def test_snapshot_while_writers_run_is_the_state_at_one_commit(self):
        # Each writer increments its a, then its b, one request at a time,
        # so every state after a commit has a == b or a == b + 1; a copy
        # that mixed two moments could show anything else.
        with CounterdServer(data_dir=self.path("src")) as server:
            stop = threading.Event()
            acked = {}
            errors = []

            def writer(w):
                with server.client() as c:
                    n = 0
                    while not stop.is_set():
                        for name in (f"w{w}-a", f"w{w}-b"):
                            r = c.post(f"/counters/{name}/increment",
                                       json={"by": 1})
                            if r.status != 200:
                                errors.append(repr(r))
                                return
                        n += 1
                        acked[w] = n

            threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
            for t in threads:
                t.start()
            try:
                server_client = server.client()
                self.addCleanup(server_client.close)
                wait_until(lambda: len(acked) == 4 or errors, timeout=20,
                           message="every writer committing")
                floor = dict(acked)
                snaps = [server_client.get("/admin/snapshot") for _ in range(5)]
                ceiling = dict(acked)
            finally:
                stop.set()
                for t in threads:
                    t.join()
        self.assertEqual(errors, [])
        seqs, bodies = [], {}
        for i, r in enumerate(snaps):
            self.assertEqual(r.status, 200, repr(r))
            seq = int(r.header("Counterd-Snapshot-Seq"))
            seqs.append(seq)
            # Two snapshots at one seq are the same state, byte for byte.
            self.assertEqual(bodies.setdefault(seq, r.body), r.body)
            path = self.path(f"s{i}.json")
            with open(path, "wb") as f:
                f.write(r.body)
            dst = self.path(f"d{i}")
            res = run_counterd(["restore", "--from", path, "--data-dir", dst])
            self.assertEqual(res.returncode, 0, res.stderr)
            with CounterdServer(data_dir=dst) as restored:
                rows = {name: value for name, value, _ in listing_of(restored)}
            for w in range(4):
                a, b = rows.get(f"w{w}-a", 0), rows.get(f"w{w}-b", 0)
                self.assertIn(a - b, (0, 1), f"writer {w} in snapshot {seq}")
                self.assertGreaterEqual(b, floor[w])
                self.assertLessEqual(a, ceiling[w] + 1)
        self.assertEqual(seqs, sorted(seqs))

    def test_a_data_dir_with_a_store_is_refused_unless_forced(self):
        with CounterdServer(data_dir=self.path("src")) as server:
            self.populate(server, n=3)
            _, backup = self.snapshot_of(server)
        dst = self.path("dst")
        with CounterdServer(data_dir=dst) as other:
            with other.client() as c:
                c.post("/counters/other/increment", json={"by": 42})
            # While it runs, even --force is refused: the dir is locked.
            res = run_counterd(["restore", "--from", backup, "--data-dir", dst,
                                "--force"])
            self.assertEqual(res.returncode, 1, res.stdout)
            self.assertIn("data dir " + dst, res.stderr)
        res = run_counterd(["restore", "--from", backup, "--data-dir", dst])
        self.assertEqual(res.returncode, 2, res.stdout)
        self.assertRegex(
            res.stderr,
            r"^counterd restore: ALREADY_EXISTS: data dir " + dst +
            r" is not empty \(it holds journal-\d+\.log\); restore replaces a "
            r"store only with --force\n$")
        with CounterdServer(data_dir=dst) as other:
            self.assertEqual(listing_of(other), [("other", 42, 1)])
        res = run_counterd(["restore", "--from", backup, "--data-dir", dst,
                            "--force"])
        self.assertEqual(res.returncode, 0, res.stderr)
        with CounterdServer(data_dir=dst) as restored:
            names = [n for n, _, _ in listing_of(restored)]
        self.assertEqual(names, ["c0000", "c0001", "c0002", "keyed"])

    def test_a_damaged_snapshot_is_refused_naming_file_and_offset(self):
        with CounterdServer(data_dir=self.path("src")) as server:
            self.populate(server, n=3)
            r, backup = self.snapshot_of(server)
        body = bytearray(r.body)
        body[len(body) // 2] ^= 0x01
        bad = self.path("bad.json")
        with open(bad, "wb") as f:
            f.write(bytes(body))
        dst = self.path("dst")
        res = run_counterd(["restore", "--from", bad, "--data-dir", dst])
        self.assertEqual(res.returncode, 1, res.stdout)
        self.assertRegex(res.stderr,
                         r"^counterd restore: DATA_LOSS: " + bad +
                         r".*offset \d+")
        self.assertFalse(os.path.exists(dst))
        chk = run_counterd(["check", "--snapshot", bad])
        self.assertEqual(chk.returncode, 1)
        self.assertRegex(chk.stderr, r"^counterd check: " + bad +
                         r": NOT SOUND: DATA_LOSS: .*offset \d+")
        # A truncated download, too.
        cut = self.path("cut.json")
        with open(cut, "wb") as f:
            f.write(r.body[: len(r.body) - 10])
        res = run_counterd(["restore", "--from", cut, "--data-dir", dst])
        self.assertEqual(res.returncode, 1, res.stdout)
        self.assertIn(cut, res.stderr)
        res = run_counterd(["restore", "--from", self.path("absent.json"),
                            "--data-dir", dst])
        self.assertEqual(res.returncode, 1, res.stdout)

    @unittest.skipUnless(os.geteuid() == 0 or os.environ.get("CI") == "true",
                         "needs root to prepare a volume as the kubelet does")
    def test_restore_into_a_volume_prepared_as_the_kubelet_does(self):
        self.assertEqual(os.geteuid(), 0, "CI runs this as root")
        self.assertIsNotNone(shutil.which("setpriv"), "setpriv (util-linux)")
        with CounterdServer(data_dir=self.path("src")) as server:
            self.populate(server, n=20)
            before = listing_of(server)
            _, backup = self.snapshot_of(server)
        # The kubelet with fsGroup 65532: the volume root owned by root,
        # group 65532, setgid, group-writable; the pod runs as 65532.
        os.chmod(self.tmp, 0o755)
        os.chmod(backup, 0o644)
        volume = self.path("volume")
        os.mkdir(volume)
        os.chown(volume, 0, 65532)
        os.chmod(volume, 0o2775)
        as_pod = ["setpriv", "--reuid", "65532", "--regid", "65532",
                  "--clear-groups"]
        res = subprocess.run(
            as_pod + [find_binary(), "restore",
                      "--from", backup, "--data-dir", volume],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(res.returncode, 0, res.stderr)
        st = os.stat(volume)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777),
                         (0, 65532, 0o2775), "the volume root is untouched")

        class PodServer(CounterdServer):
            def command(self):
                return as_pod + super().command()

        with PodServer(data_dir=volume) as server:
            after = listing_of(server)
            with server.client() as c:
                r = c.post("/counters/after-restore/increment", json={"by": 1})
                self.assertEqual(r.status, 200, repr(r))
        self.assertEqual(checksum(after), checksum(before))


def chunk_sizes(raw: bytes):
    """The sizes of the chunks of the one chunked response in |raw|."""
    rest = raw.split(b"\r\n\r\n", 1)[1]
    sizes = []
    while True:
        line, rest = rest.split(b"\r\n", 1)
        size = int(line, 16)
        sizes.append(size)
        if size == 0:
            assert rest == b"\r\n", rest[:80]
            return sizes
        assert rest[size:size + 2] == b"\r\n"
        rest = rest[size + 2:]


class SnapshotStreamTest(TempDirs, unittest.TestCase):
    """The document is streamed, encoded piece by piece as the socket takes
    it: chunked for HTTP/1.1, until close for HTTP/1.0, the head alone for
    HEAD; the connection closes after it. Both backends."""

    COUNTERS = 3000  # about 150 KB of document: several pieces

    def populate(self, client):
        for start in range(0, self.COUNTERS, 100):
            ops = [{"op": "set", "name": f"s{i:05d}", "value": i}
                   for i in range(start, start + 100)]
            r = client.post("/batch", json={"operations": ops})
            self.assertEqual(r.status, 200, repr(r))

    def request(self, server, head_line):
        raw = server.raw()
        self.addCleanup(raw.close)
        raw.send(head_line + b"\r\nHost: x\r\n\r\n")
        r = raw.read_response(head=head_line.startswith(b"HEAD"))
        self.assertIsNotNone(r)
        # Nothing follows the response on this connection: it closes.
        self.assertTrue(raw.wait_closed())
        return r, raw.received

    def test_http11_gets_chunks_then_close_and_http10_the_same_bytes(self):
        with CounterdServer(data_dir=self.path("src")) as server:
            with server.client() as c:
                self.populate(c)
            r, raw = self.request(server, b"GET /admin/snapshot HTTP/1.1")
            self.assertEqual(r.status, 200, repr(r))
            self.assertEqual(r.header("Transfer-Encoding"), "chunked")
            self.assertEqual(r.header("Connection"), "close")
            self.assertIsNone(r.header("Content-Length"))
            self.assertEqual(r.header("Content-Type"), "application/json")
            doc = json.loads(r.body)
            self.assertEqual(len(doc["counters"]), self.COUNTERS)
            self.assertEqual(doc["last_seq"], int(r.header("Counterd-Snapshot-Seq")))
            sizes = chunk_sizes(raw)
            # Pieces of about 60 KiB (one record more at most), then the
            # last chunk: never the document in one piece.
            self.assertGreaterEqual(len(sizes), 4, sizes)
            self.assertTrue(all(0 < n < 62 * 1024 for n in sizes[:-1]), sizes)
            self.assertEqual(sum(sizes), len(r.body))

            # HTTP/1.0 has no chunked coding: the body runs until close.
            # Nothing was written since, so the bytes are the same.
            r10, _ = self.request(server, b"GET /admin/snapshot HTTP/1.0")
            self.assertEqual(r10.status, 200, repr(r10))
            self.assertIsNone(r10.header("Transfer-Encoding"))
            self.assertIsNone(r10.header("Content-Length"))
            self.assertEqual(r10.body, r.body)

            # HEAD: the same head, no body.
            rh, raw_head = self.request(server, b"HEAD /admin/snapshot HTTP/1.1")
            self.assertEqual(rh.status, 200, repr(rh))
            self.assertEqual(rh.header("Transfer-Encoding"), "chunked")
            self.assertEqual(rh.header("Counterd-Snapshot-Seq"),
                             r.header("Counterd-Snapshot-Seq"))
            self.assertTrue(raw_head.endswith(b"\r\n\r\n"))
            self.assertEqual(raw_head.count(b"\r\n\r\n"), 1)

            # The server goes on serving on new connections.
            with server.client() as c:
                self.assertEqual(c.get("/counters/s00042").json()["value"], 42)


class SnapshotAuthTest(TempDirs, unittest.TestCase):
    def test_only_an_admin_token_takes_a_snapshot(self):
        tokens = {"adm": "admin-token-0123456789", "rd": "read-token-0123456789"}
        path = self.path("tokens.json")
        with open(path, "w") as f:
            f.write(test_auth.tokens_json([
                ("adm", tokens["adm"], ["admin"], None),
                ("rd", tokens["rd"], ["read", "write", "metrics"], None)]))
        with CounterdServer(args=["--auth-tokens-file", path]) as server:
            c = server.client()
            self.addCleanup(c.close)
            r = c.get("/admin/snapshot")
            self.assertEqual(r.status, 401, repr(r))
            r = c.get("/admin/snapshot",
                      headers={"Authorization": "Bearer " + tokens["rd"]})
            self.assertEqual(r.status, 403, repr(r))
            self.assertIn("lacks the admin scope", r.json()["detail"])
            r = c.get("/admin/snapshot",
                      headers={"Authorization": "Bearer " + tokens["adm"]})
            self.assertEqual(r.status, 200, repr(r))
            self.assertEqual(r.header("Counterd-Snapshot-Seq"), "0")
            r = c.post("/admin/snapshot",
                       headers={"Authorization": "Bearer " + tokens["adm"]})
            self.assertEqual(r.status, 405, repr(r))
            self.assertEqual(r.header("Allow"), "GET, HEAD")


def postgres_available() -> bool:
    import sys
    sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "support"))
    import pg_cluster
    return pg_cluster.available()


@file_backend_only("the snapshot is taken from a file backend")
@unittest.skipUnless(postgres_available() or os.environ.get("CI") == "true",
                     "needs the PostgreSQL 15 server binaries "
                     "(scripts/install-deps test)")
class MoveToPostgresTest(TempDirs, unittest.TestCase):
    """The documented move: snapshot the file backend, restore into
    PostgreSQL, start the postgres backend, compare the listings."""

    def test_file_to_postgres_and_refusals(self):
        with CounterdServer(data_dir=self.path("src")) as server:
            c = server.client()
            self.addCleanup(c.close)
            for i in range(1500):  # more than one INSERT chunk (1000 rows)
                r = c.post(f"/counters/m{i:05d}/increment", json={"by": i})
                self.assertEqual(r.status, 200, repr(r))
            r = c.post("/counters/ttl/increment",
                       json={"by": 3, "ttl_seconds": 3600})
            self.assertEqual(r.status, 200, repr(r))
            expires_at = r.json()["expires_at"]
            first = c.post("/counters/keyed/increment", json={"by": 2},
                           headers={"Idempotency-Key": "move-key"})
            self.assertEqual(first.status, 200, repr(first))
            before = listing(c)
            _, backup = self.snapshot_of(server)
        url = new_postgres_database()
        pg = ["--backend", "postgres", "--postgres-url", url]

        res = run_counterd(["restore", "--from", backup] + pg, timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(
            res.stdout,
            f"counterd restore: restored the postgres database from {backup}: "
            f"seq 1502, 1502 counters, 1 idempotency records\n")
        with CounterdServer(data_dir=self.path("pg"), args=pg) as server:
            c = server.client()
            self.addCleanup(c.close)
            after = listing(c)
            self.assertEqual(len(after), len(before))
            self.assertEqual(checksum(after), checksum(before))
            self.assertEqual(c.get("/counters/ttl").json()["expires_at"],
                             expires_at)
            again = c.post("/counters/keyed/increment", json={"by": 2},
                           headers={"Idempotency-Key": "move-key"})
            self.assertEqual((again.status, again.json()),
                             (first.status, first.json()))
            # The postgres backend takes snapshots too: the same encoding,
            # as of its own commit sequence (the restore was commit 1).
            snap = c.get("/admin/snapshot")
            self.assertEqual(snap.status, 200, repr(snap))
            self.assertEqual(snap.header("Counterd-Snapshot-Seq"), "1")
            with open(backup, "rb") as f:
                from_file = json.loads(f.read())
            from_pg = json.loads(snap.body)
            self.assertEqual(from_pg["counters"], from_file["counters"])
            self.assertEqual(from_pg["idempotency"], from_file["idempotency"])
            r = c.post("/counters/after/increment", json={"by": 1})
            self.assertEqual(r.status, 200, repr(r))
            back = c.get("/admin/snapshot")
            self.assertEqual(back.header("Counterd-Snapshot-Seq"), "2")
            back_listing = listing(c)
        # ... and back to the file backend.
        path = self.path("back.json")
        with open(path, "wb") as f:
            f.write(back.body)
        res = run_counterd(["restore", "--from", path, "--data-dir",
                            self.path("back")])
        self.assertEqual(res.returncode, 0, res.stderr)
        with CounterdServer(data_dir=self.path("back")) as server:
            self.assertEqual(listing_of(server), back_listing)

        # Not empty now: refused without --force, and nothing changes.
        res = run_counterd(["restore", "--from", backup] + pg, timeout=120)
        self.assertEqual(res.returncode, 2, res.stdout)
        self.assertEqual(
            res.stderr,
            "counterd restore: ALREADY_EXISTS: the database is not empty "
            "(1503 counters, 1 idempotency records); restore replaces them "
            "only with --force\n")
        bad = self.path("bad.json")
        with open(backup, "rb") as f:
            body = f.read()
        with open(bad, "wb") as f:
            f.write(body[:-20])
        res = run_counterd(["restore", "--from", bad, "--force"] + pg,
                           timeout=120)
        self.assertEqual(res.returncode, 1, res.stdout)
        self.assertIn(bad, res.stderr)
        with CounterdServer(data_dir=self.path("pg"), args=pg) as server:
            self.assertEqual(len(listing_of(server)), 1503)

        res = run_counterd(["restore", "--from", backup, "--force"] + pg,
                           timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr)
        with CounterdServer(data_dir=self.path("pg"), args=pg) as server:
            self.assertEqual(checksum(listing_of(server)), checksum(before))


if __name__ == "__main__":
    unittest.main()
