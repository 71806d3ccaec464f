#!/usr/bin/env python3
"""A real full disk: counterd's data dir on a tiny file system that fills up.

Mounts a 2 MiB tmpfs (or, where tmpfs cannot be mounted, a loop-mounted
4 MiB ext4 image) as the data dir, fills it with a ballast file to a few KiB
short of full, and increments until the disk is full. The low-disk guard is
off (--min-free-bytes 0), so a write meets ENOSPC itself: this is the case
of a disk another process filled between two looks, which must still fail
closed (--on-store-failure stay keeps the server up to be inspected; the
guard's 507s and healing are tests/integration/test_full_disk.py's). Then,
over HTTP:

  - the write that meets the full disk gets 507 insufficient-storage naming
    "No space left on device" (also when a compaction met it first);
  - /readyz turns 503; reads keep working and show the acknowledged value;
  - later writes are refused with 503, even after space is freed;
  - after SIGKILL, freeing the space and restarting, exactly the acknowledged
    value is back, `counterd check` accepts the dir, and writes work again.

Needs root and mount(2) (CAP_SYS_ADMIN). When neither tmpfs nor a loop
mount is possible it prints why and exits 77, which CTest reports as
skipped (SKIP_RETURN_CODE 77). Python 3 standard library only.

    sudo COUNTERD_BIN=build/dev/counterd python3 tests/torture/full_disk_test.py
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from counterd_harness import CounterdServer, run_counterd  # noqa: E402

SKIP = 77
COUNTER = "disk"
ENOSPC_TEXT = "No space left on device"


def sh(*cmd) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True)


def mount_small_fs(where: str, image: str) -> tuple[str | None, str]:
    """Mounts a small file system on |where|; returns (kind, why-not).
    COUNTERD_FULL_DISK_FS=tmpfs|loop picks one (default: tmpfs, else loop)."""
    why = []
    want = os.environ.get("COUNTERD_FULL_DISK_FS", "auto")
    if os.geteuid() != 0:
        return None, "not root"
    if want in ("auto", "tmpfs"):
        r = sh("mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", where)
        if r.returncode == 0:
            return "tmpfs (2 MiB)", ""
        why.append(f"tmpfs: {r.stderr.strip() or r.returncode}")
    if want not in ("auto", "loop"):
        why.append(f"loop: not tried (COUNTERD_FULL_DISK_FS={want})")
    elif shutil.which("mkfs.ext4"):
        with open(image, "wb") as f:
            f.truncate(4 << 20)
        r = sh("mkfs.ext4", "-q", "-F", "-m", "0", image)
        if r.returncode == 0:
            r = sh("mount", "-o", "loop", image, where)
            if r.returncode == 0:
                return "ext4 on a loop device (4 MiB)", ""
            why.append(f"loop mount: {r.stderr.strip() or r.returncode}")
        else:
            why.append(f"mkfs.ext4: {r.stderr.strip()}")
    else:
        why.append("loop: mkfs.ext4 not installed")
    return None, "; ".join(why)


def fill(path: str, leave: int) -> int:
    """Writes a ballast file until only about |leave| bytes are free."""
    st = os.statvfs(os.path.dirname(path))
    free = st.f_bavail * st.f_frsize
    size = max(0, free - leave)
    with open(path, "wb") as f:
        chunk = b"\xab" * 65536
        written = 0
        try:
            while written < size:
                n = min(len(chunk), size - written)
                f.write(chunk[:n])
                written += n
            f.flush()
            os.fsync(f.fileno())
        except OSError:
            pass
    return size


class Failure(AssertionError):
    pass


def expect(cond, what):
    if not cond:
        raise Failure(what)


def problem(resp) -> dict:
    expect(resp.content_type == "application/problem+json", f"not a problem: {resp!r}")
    doc = resp.json()
    expect(doc.get("status") == resp.status, f"problem status mismatch: {resp!r}")
    return doc


def run(mountpoint: str, kind: str) -> None:
    data_dir = os.path.join(mountpoint, "data")
    os.makedirs(data_dir)
    ballast = os.path.join(mountpoint, "ballast")
    # A disk filled behind the low-disk guard's back: the guard is off
    # (--min-free-bytes 0), so the write meets ENOSPC itself and the store
    # fails closed, staying up to be inspected (--on-store-failure stay).
    # The guard's own refusals are tests/integration/test_full_disk.py's.
    server = CounterdServer(data_dir=data_dir,
                            args=["--compaction-threshold-bytes", "65536",
                                  "--min-free-bytes", "0",
                                  "--on-store-failure", "stay"])
    server.start()
    try:
        c = server.client()
        expect(c.post(f"/counters/{COUNTER}/increment", json={"by": 1}).status == 200,
               "first write failed")
        fill(ballast, leave=24 * 1024)
        acked, failure = 1, None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = c.post(f"/counters/{COUNTER}/increment", json={"by": 1})
            if r.status != 200:
                failure = r
                break
            acked += 1
            expect(r.json()["value"] == acked, f"value {r.json()} after {acked} acks")
        expect(failure is not None, f"the disk never filled ({acked} writes acked)")
        doc = problem(failure)
        expect(failure.status == 507, f"full disk answered {failure!r}")
        expect(ENOSPC_TEXT in doc["detail"], f"detail does not name ENOSPC: {doc}")
        print(f"full disk on {kind}: {acked} writes acknowledged, then "
              f"{failure.status} {doc['type']}: {doc['detail']}", flush=True)

        expect(c.get("/readyz").status == 503, "/readyz not 503 after the full disk")
        got = c.get(f"/counters/{COUNTER}")
        expect(got.status == 200 and got.json()["value"] == acked,
               f"read after failure: {got!r}, acked {acked}")
        os.remove(ballast)  # space is back, but the store stays failed
        later = c.post(f"/counters/{COUNTER}/increment", json={"by": 1})
        expect(later.status == 503, f"a later write was not refused: {later!r}")
        c.close()
        server.kill()

        check = run_counterd(["check", "--data-dir", data_dir], timeout=60)
        expect(check.returncode == 0 and "is sound" in check.stdout,
               f"counterd check refused the dir:\n{check.stdout}{check.stderr}")
        again = server.restart()
        try:
            c = again.client()
            got = c.get(f"/counters/{COUNTER}")
            expect(got.status == 200 and got.json()["value"] == acked,
                   f"after restart {got!r}, acked {acked}")
            ok = c.post(f"/counters/{COUNTER}/increment", json={"by": 1})
            expect(ok.status == 200 and ok.json()["value"] == acked + 1,
                   f"write after restart: {ok!r}")
            c.close()
            expect(again.stop() == 0, "graceful stop failed")
        finally:
            again.cleanup()
        print(f"full disk on {kind}: restart recovered exactly {acked}; passed",
              flush=True)
    finally:
        server.cleanup()


def main() -> int:
    base = tempfile.mkdtemp(prefix="counterd-fulldisk-")
    mountpoint = os.path.join(base, "mnt")
    os.makedirs(mountpoint)
    image = os.path.join(base, "disk.img")
    kind, why = mount_small_fs(mountpoint, image)
    if kind is None:
        print(f"SKIP: cannot mount a small file system here ({why}); "
              "the real full-disk test did not run", flush=True)
        shutil.rmtree(base, ignore_errors=True)
        return SKIP
    try:
        run(mountpoint, kind)
        return 0
    except Failure as e:
        print(f"FAILED: {e}", flush=True)
        return 1
    finally:
        sh("umount", "-l", mountpoint)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
