#!/usr/bin/env python3
"""The documented file backup and restore, on the volume a real kubelet
hands over (issue 14 §4).

On a single-node cluster the old restore (`tar -C /data -xf -`) failed where
the kubelet had applied fsGroup: the volume root belongs to root with group
65532 and mode 2775 (setgid, group-writable). The helper pod runs as 65532,
so tar could not set the root directory's times and mode ("Cannot utime",
"Cannot change mode to rwxr-sr-x", exit 2). A directory owned by 65532, as
earlier tests used, hides that.

This test takes the commands from deploy/README.md ("Back up and restore")
as they are written, and runs them as the helper pod does: uid/gid 65532,
with the fsGroup 65532 as a supplementary group. It runs them on
directories prepared the way mkfs and the kubelet prepare a volume: root
owns the root directory, `lost+found` is root's and 0700, and then the
fsGroup walk sets group 65532, adds g+rw, and for directories g+x and
setgid.

1. Control: the old restore command fails there, exactly as on the cluster.
   It passes on a directory owned by 65532, which is why no earlier test
   caught it.
2. counterd runs as 65532 on volume A (a snapshot, a journal after it,
   deletes, an idempotency key), then stops. Its listing and every value
   are recorded.
3. The documented backup command runs on A. The documented restore commands
   run on a fresh volume B, and again on A, which replaces its contents in
   place. Every command must exit 0 and print nothing on stderr.
4. `counterd check` (the documented last step) passes on each volume, and
   counterd started as 65532 on it shows the same listing (sha256) and
   values, and accepts a write.
5. Where a container engine runs, steps 3 and 4 run again inside the
   documented helper image: the same argv with the real /data path, the
   volume bind-mounted, `--user 65532:65532 --group-add 65532`.

Needs root (to prepare the volumes) and setpriv (util-linux). Skips (77)
without them; fails instead under CI=true.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import k8s_render as k8s  # noqa: E402
from k8s_render import engine  # noqa: E402
from engine import log  # noqa: E402

sys.path.insert(0, os.path.join(engine.SOURCE_DIR, "tests", "integration"))
from counterd_harness import CounterdServer, find_binary  # noqa: E402

UID = GID = 65532
FS_GROUP = 65532
README = os.path.join(k8s.DEPLOY_DIR, "README.md")
HELPER_IMAGE = "docker.io/library/debian:bookworm-slim"
OLD_RESTORE = "kubectl exec -i counterd-backup -- tar -C /data -xf - < counterd-2025-01-01.tar"


class Step:
    """One documented `kubectl exec POD [-i] -- ARGV [< IN | > OUT]` line."""

    def __init__(self, line: str):
        self.line = line
        m = re.fullmatch(r"kubectl exec (-i )?(\S+) -- (.*?)(?: ([<>]) (.+))?", line.strip())
        assert m, f"not a `kubectl exec POD -- ...` line: {line}"
        self.stdin, self.pod = bool(m.group(1)), m.group(2)
        self.argv = shlex.split(m.group(3))
        self.redirect = m.group(4)

    def argv_for(self, data_dir: str) -> list[str]:
        """The argv with the mount path /data replaced by |data_dir|."""
        return [data_dir + a[len("/data"):] if a == "/data" or a.startswith("/data/") else a
                for a in self.argv]

    def __str__(self):
        return self.line


def documented_steps() -> tuple[Step, list[Step], Step]:
    """(backup, restore steps in order, the final check) from deploy/README.md."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^### Back up and restore\n(.*?)^### ", text, re.S | re.M)
    assert m, "deploy/README.md has no section '### Back up and restore'"
    blocks = re.findall(r"```sh\n(.*?)```", m.group(1), re.S)
    assert len(blocks) >= 2, "expected a backup and a restore code block"
    backup = [Step(li) for li in blocks[0].splitlines() if li.startswith("kubectl exec")]
    restore_lines = [li for li in blocks[1].splitlines() if li.startswith("kubectl exec")]
    assert len(backup) == 1 and backup[0].redirect == ">", \
        f"expected one backup command writing to a file: {[str(s) for s in backup]}"
    helper = [Step(li) for li in restore_lines if " counterd-backup " in li]
    check = [Step(li) for li in restore_lines if " counterd-0 " in li]
    assert helper and len(check) == 1, "expected restore steps and one counterd check"
    assert any(s.redirect == "<" and s.stdin for s in helper), \
        "no restore step reads the archive from stdin"
    return backup[0], helper, check[0]


def kubelet_volume(parent: str, name: str) -> str:
    """A fresh ext4 volume root as mkfs leaves it (root's, 0755, with a
    root-only lost+found), after the kubelet's fsGroup walk
    (pkg/volume/volume_linux.go: group fsGroup, g+rw, directories also g+x
    and setgid)."""
    root = os.path.join(parent, name)
    os.mkdir(root, 0o755)
    os.mkdir(os.path.join(root, "lost+found"), 0o700)
    for path in (root, os.path.join(root, "lost+found")):
        os.chown(path, 0, 0)
        os.chmod(path, 0o755 if path == root else 0o700)
    for dirpath, dirnames, filenames in os.walk(root):
        for p in [dirpath] + [os.path.join(dirpath, f) for f in filenames]:
            st = os.lstat(p)
            os.chown(p, -1, FS_GROUP)
            mode = stat.S_IMODE(st.st_mode) | 0o060
            if stat.S_ISDIR(st.st_mode):
                mode |= 0o010 | stat.S_ISGID
            os.chmod(p, mode)
    return root


def describe(path: str) -> str:
    st = os.stat(path)
    return f"{st.st_uid}:{st.st_gid} {stat.filemode(st.st_mode)} {path}"


def as_helper(argv: list[str], stdin=None, stdout=None) -> subprocess.CompletedProcess:
    """|argv| as the helper pod's process: uid/gid 65532, supplementary group
    fsGroup, no capabilities."""
    cmd = ["setpriv", f"--reuid={UID}", f"--regid={GID}", f"--groups={FS_GROUP}",
           "--inh-caps=-all", "--bounding-set=-all", "--", *argv]
    return subprocess.run(cmd, stdin=stdin, stdout=stdout if stdout else subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120, cwd="/")


def run_step(step: Step, data_dir: str, archive: str) -> None:
    argv = step.argv_for(data_dir)
    log(f"$ {step}\n    as {UID}:{GID} (+{FS_GROUP}): {shlex.join(argv)}")
    if step.redirect == "<":
        with open(archive, "rb") as f:
            p = as_helper(argv, stdin=f)
    elif step.redirect == ">":
        with open(archive, "wb") as f:
            p = as_helper(argv, stdout=f)
    else:
        p = as_helper(argv)
    out = (p.stdout or b"").decode(errors="replace").strip()
    err = p.stderr.decode(errors="replace").strip()
    for line in out.splitlines():
        log(f"    | {line}")
    assert p.returncode == 0 and not err, \
        f"`{step}` exited {p.returncode} on {describe(data_dir)}:\n{err}"


class Store:
    """counterd running as 65532 on a volume, through a setpriv wrapper."""

    def __init__(self, work: str, binary: str):
        self.wrapper = os.path.join(work, "counterd-as-65532")
        with open(self.wrapper, "w", encoding="utf-8") as f:
            f.write("#!/bin/sh\nexec setpriv --reuid=%d --regid=%d --groups=%d --inh-caps=-all "
                    "%s \"$@\"\n" % (UID, GID, FS_GROUP, shlex.quote(binary)))
        os.chmod(self.wrapper, 0o755)

    def server(self, data_dir: str) -> CounterdServer:
        return CounterdServer(data_dir=data_dir, binary=self.wrapper,
                              args=["--compaction-threshold-bytes", "4096"])

    def check(self, data_dir: str) -> str:
        p = subprocess.run([self.wrapper, "check", "--data-dir", data_dir],
                           capture_output=True, text=True, timeout=60)
        log(f"$ counterd check --data-dir {data_dir}  (as {UID}, exit {p.returncode})\n"
            f"    | {p.stdout.strip()}{p.stderr.strip()}")
        assert p.returncode == 0, f"counterd check failed on {data_dir}"
        return p.stdout


def listing(http) -> tuple[list, str]:
    """Every counter (all pages) and the sha256 of their JSON."""
    out, after = [], None
    while True:
        r = http.get("/counters?limit=1000" + (f"&after={after}" if after else ""))
        assert r.status == 200, r
        page = r.json()
        out += page["counters"]
        after = page["next"]
        if after is None:
            break
    return out, hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest()


def write_data(srv: CounterdServer) -> tuple[list, str]:
    with srv.client() as http:
        for i in range(300):   # past 4 KiB of journal: a snapshot and a new journal
            assert http.post(f"/counters/c{i % 23}/increment", json={"by": i}).status == 200
        assert http.put("/counters/neg", json={"value": -(2**62)}).status in (200, 201)
        assert http.post("/counter/increment").status == 200
        assert http.put("/counters/gone", json={"value": 1}).status in (200, 201)
        assert http.delete("/counters/gone").status == 204
        r = http.post("/counters/idem/increment", json={"by": 5},
                      headers={"Idempotency-Key": "restore-test-1"})
        assert r.status == 200, r
        return listing(http)


def verify(store: Store, data_dir: str, want: tuple[list, str], label: str) -> None:
    check = store.check(data_dir)
    m = re.search(r"is sound: (\d+) counters", check)
    assert m and int(m.group(1)) == len(want[0]), \
        f"{label}: counterd check counts {m and m.group(1)}, expected {len(want[0])}"
    srv = store.server(data_dir)
    try:
        srv.start()
        with srv.client() as http:
            got = listing(http)
            assert got[1] == want[1], f"{label}: the listing differs:\n{got[0]}\n{want[0]}"
            r = http.post("/counters/idem/increment", json={"by": 5},
                          headers={"Idempotency-Key": "restore-test-1"})
            assert r.status == 200 and r.json()["value"] == 5, \
                f"{label}: the idempotency record did not survive: {r}"
            r = http.post("/counters/after-restore/increment")
            assert r.status == 200, f"{label}: a write after the restore failed: {r}"
        rc = srv.stop()
        assert rc == 0, f"{label}: counterd exited {rc}"
    finally:
        srv.cleanup()
    log(f"{label}: counterd check and a start as {UID}: {len(want[0])} counters, listing "
        f"sha256 {want[1][:16]}..., identical; a new write works")


def restore_on(steps: list[Step], data_dir: str, archive: str) -> None:
    for step in steps:
        run_step(step, data_dir, archive)
    for name in os.listdir(data_dir):
        p = os.path.join(data_dir, name)
        if name != "lost+found":
            st = os.stat(p)
            assert (st.st_uid, st.st_gid) == (UID, FS_GROUP), f"{describe(p)}: not 65532:65532"


def control(work: str, archive: str) -> None:
    """The old command fails on the kubelet's volume and passes on a
    directory owned by 65532."""
    old = Step(OLD_RESTORE)
    kubelet = kubelet_volume(work, "control-kubelet")
    with open(archive, "rb") as f:
        p = as_helper(old.argv_for(kubelet), stdin=f)
    err = p.stderr.decode(errors="replace").strip()
    log(f"control: old restore `{shlex.join(old.argv)}` on {describe(kubelet)}: "
        f"exit {p.returncode}\n    | " + err.replace("\n", "\n    | "))
    assert p.returncode == 2 and "Cannot utime: Operation not permitted" in err, \
        "the old restore command did not fail on the kubelet's volume: the test does not " \
        "reproduce the cluster"
    owned = os.path.join(work, "control-owned")
    os.mkdir(owned)
    os.chown(owned, UID, GID)
    with open(archive, "rb") as f:
        p = as_helper(old.argv_for(owned), stdin=f)
    log(f"control: the same on {describe(owned)}: exit {p.returncode}")
    assert p.returncode == 0, p.stderr


def in_container(backup: Step, restore: list[Step], work: str, store: Store) -> None:
    """The exact argv, /data included, in the helper image, as 65532. Left
    out without an engine, unless an engine is required here."""
    missing = None
    if shutil.which("podman") is None:
        missing = "podman is not installed"
    elif subprocess.run(["podman", "image", "exists", HELPER_IMAGE],
                        capture_output=True).returncode != 0:
        missing = f"{HELPER_IMAGE} is not available locally"
    if missing:
        if engine.is_required():
            raise AssertionError(f"the in-image run is required here: {missing}")
        log(f"(in-image run left out: {missing})")
        return

    def run(step: Step, vol: str, archive: str):
        cmd = ["podman", "run", "--rm", "-i", "--net", "none", "--user", f"{UID}:{GID}",
               "--group-add", str(FS_GROUP), "--cap-drop", "ALL",
               "--security-opt", "no-new-privileges", "-v", f"{vol}:/data", HELPER_IMAGE,
               *step.argv]
        log(f"$ {step}\n    in {HELPER_IMAGE}: {shlex.join(step.argv)}")
        mode = {"<": "rb", ">": "wb"}.get(step.redirect)
        f = open(archive, mode) if mode else None
        try:
            p = subprocess.run(cmd, stdin=f if step.redirect == "<" else subprocess.DEVNULL,
                               stdout=f if step.redirect == ">" else subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=180)
        finally:
            if f:
                f.close()
        err = p.stderr.decode(errors="replace").strip()
        assert p.returncode == 0 and not err, f"`{step}` in the image exited {p.returncode}:\n{err}"
    src = kubelet_volume(work, "container-a")
    srv = store.server(src)
    try:
        srv.start()
        got = write_data(srv)
        assert srv.stop() == 0
    finally:
        srv.cleanup()
    archive = os.path.join(work, "container-backup.tar")
    run(backup, src, archive)
    dst = kubelet_volume(work, "container-b")
    for step in restore:
        run(step, dst, archive)
    verify(store, dst, got, "in the helper image, fresh volume")


def main() -> int:
    if os.geteuid() != 0:
        engine.skip_or_fail("needs root to prepare volumes the way the kubelet does")
    if shutil.which("setpriv") is None:
        engine.skip_or_fail("setpriv (util-linux) is not installed")
    binary = find_binary()
    backup, restore, check = documented_steps()
    assert check.argv[-2:] == ["--data-dir", "/data"] and check.argv[1] == "check", check
    log("deploy/README.md: backup:\n  " + str(backup) + "\nrestore:\n  "
        + "\n  ".join(str(s) for s in restore) + f"\nthen: {check}")
    work = tempfile.mkdtemp(prefix="counterd-restore-")
    os.chmod(work, 0o755)   # 65532 must reach the volumes inside
    try:
        store = Store(work, binary)
        vol_a = kubelet_volume(work, "volume-a")
        log(f"volume A as the kubelet hands it over: {describe(vol_a)}; "
            f"{describe(os.path.join(vol_a, 'lost+found'))}")
        srv = store.server(vol_a)
        try:
            srv.start()
            want = write_data(srv)
            rc = srv.stop()
            assert rc == 0, f"counterd exited {rc}"
        finally:
            srv.cleanup()
        files = sorted(os.listdir(vol_a))
        log(f"volume A after counterd ran: {files}")
        assert "state.json" in files and any(f.startswith("journal-") for f in files), files

        archive = os.path.join(work, "counterd-backup.tar")
        run_step(backup, vol_a, archive)
        members = subprocess.run(["tar", "-tf", archive], capture_output=True, text=True,
                                 check=True).stdout.split()
        log(f"backup: {os.path.getsize(archive)} bytes, members {members}")
        assert "./lost+found/" not in members, members

        control(work, archive)

        vol_b = kubelet_volume(work, "volume-b")
        restore_on(restore, vol_b, archive)
        verify(store, vol_b, want, "restored onto a fresh volume")
        restore_on(restore, vol_a, archive)
        verify(store, vol_a, want, "restored in place over the old contents")

        in_container(backup, restore, work, store)
        log("PASS: the documented backup and restore work as uid 65532 on the kubelet's "
            "volume, and counterd starts on the result with every value")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
