#!/usr/bin/env python3
"""The container image, for real (issue 4).

Builds the image from the repository's Dockerfile, then does what
docs/container.md tells a user to do: run it with a named volume, increment
counters over HTTP, `docker stop` it (SIGTERM drains: exit code 0 within the
grace period), start a new container on the same volume and read the values
back. Along the way it checks the image itself: at most 25 MB, USER
65532:65532 and the process really running as 65532, no shell, VOLUME /data,
EXPOSE 8080, exec-form ENTRYPOINT, STOPSIGNAL SIGTERM, OCI labels, and a
HEALTHCHECK that runs the binary's own `healthcheck` subcommand.

Skips (exit 77) without a container engine; fails instead under CI=true.
Run:  eval "$(../shared/tools/container-engine)"; python3 tests/container/image_test.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engine  # noqa: E402
from engine import log, run  # noqa: E402

sys.path.insert(0, os.path.join(engine.SOURCE_DIR, "tests", "integration"))
from counterd_harness import HttpClient, wait_until  # noqa: E402

MAX_IMAGE_BYTES = 25 * 1000 * 1000     # "at most 25 MB"
RUNTIME_UID = 65532
BINARY = "/usr/local/bin/counterd"
STOP_GRACE_S = 10                      # docker stop's default
READY_TIMEOUT_S = 60
REQUIRED_LABELS = ("org.opencontainers.image.source", "org.opencontainers.image.version",
                   "org.opencontainers.image.licenses", "org.opencontainers.image.title",
                   "org.opencontainers.image.revision")


def repository_license() -> str:
    """The SPDX identifier of the LICENSE file at the repository root."""
    with open(os.path.join(engine.SOURCE_DIR, "LICENSE"), encoding="utf-8") as f:
        head = " ".join(f.read(400).split())
    if head.startswith("Apache License Version 2.0,"):
        return "Apache-2.0"
    raise AssertionError(f"LICENSE is not a licence this test knows: {head[:80]!r}")


def inspect(kind: str, name: str) -> dict:
    p = run(["docker", kind, "inspect", name], quiet=True)
    return json.loads(p.stdout)[0]


def check_image_config(tag: str) -> None:
    img = inspect("image", tag)
    cfg = img.get("Config") or {}
    size = int(img["Size"])
    log(f"image {tag}: {size} bytes ({size / 1e6:.2f} MB; budget {MAX_IMAGE_BYTES / 1e6:.0f} MB)")
    assert size <= MAX_IMAGE_BYTES, f"image is {size} bytes, over the {MAX_IMAGE_BYTES} budget"
    assert cfg.get("User") == f"{RUNTIME_UID}:{RUNTIME_UID}", f"USER is {cfg.get('User')!r}"
    assert "/data" in (cfg.get("Volumes") or {}), f"no VOLUME /data: {cfg.get('Volumes')}"
    assert "8080/tcp" in (cfg.get("ExposedPorts") or {}), f"no EXPOSE 8080: {cfg.get('ExposedPorts')}"
    assert cfg.get("Entrypoint") == [BINARY], f"ENTRYPOINT is {cfg.get('Entrypoint')!r}"
    assert cfg.get("StopSignal") in ("SIGTERM", "15"), f"STOPSIGNAL is {cfg.get('StopSignal')!r}"
    labels = cfg.get("Labels") or {}
    missing = [k for k in REQUIRED_LABELS if not labels.get(k)]
    assert not missing, f"missing OCI labels {missing}: {labels}"
    if not engine.prebuilt():  # built here with --build-arg VERSION=<CMake project version>
        assert labels["org.opencontainers.image.version"] == engine.project_version(), labels
    assert labels["org.opencontainers.image.licenses"] == repository_license(), \
        f"the licenses label does not match LICENSE ({repository_license()}): {labels}"
    health = cfg.get("Healthcheck")
    if not health and shutil.which("podman"):
        # Podman's Docker API leaves Config.Healthcheck out; ask Podman itself.
        p = run(["podman", "image", "inspect", tag, "--format", "{{json .HealthCheck}}"], quiet=True)
        health = json.loads(p.stdout or "null")
    assert health and health.get("Test") == ["CMD", BINARY, "healthcheck"], \
        f"HEALTHCHECK is {health!r}"
    log(f"image config ok: User={cfg['User']} Entrypoint={cfg['Entrypoint']} "
        f"Volumes={list(cfg['Volumes'])} ExposedPorts={list(cfg['ExposedPorts'])} "
        f"StopSignal={cfg['StopSignal']} Healthcheck={health['Test']}")
    log("labels: " + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())
                               if k.startswith("org.opencontainers")))
    check_image_files(tag)


def check_image_files(tag: str) -> None:
    """The runtime file system is the binary, its shared libraries and
    loader (none when static), /etc/passwd and /etc/group, and an empty
    /data owned by 65532: no shell, no package manager, nothing else."""
    name = f"counterd-test-export-{uuid.uuid4().hex[:8]}"
    run(["docker", "create", "--name", name, tag], quiet=True)
    try:
        with tempfile.TemporaryFile() as tar_file:
            log(f"$ docker export {name}")
            subprocess.run(["docker", "export", name], stdout=tar_file, check=True, timeout=120)
            tar_file.seek(0)
            with tarfile.open(fileobj=tar_file) as tar:
                members = [m for m in tar.getmembers() if m.name.strip("./")]
    finally:
        run(["docker", "rm", "-f", "-v", name], check=False, quiet=True)
    files = {m.name.lstrip("./"): m for m in members if m.isfile()}
    for path, m in sorted(files.items()):
        log(f"  {m.uid}:{m.gid} {m.mode & 0o7777:04o} {m.size:>9} /{path}")
    allowed = {BINARY.lstrip("/"), "etc/passwd", "etc/group"}
    extra = [p for p in files if p not in allowed and ".so" not in os.path.basename(p)]
    assert not extra, f"unexpected files in the image: {extra}"
    assert BINARY.lstrip("/") in files, f"no {BINARY}"
    data = [m for m in members if m.name.strip("./") == "data"]
    assert data and data[0].isdir() and (data[0].uid, data[0].gid) == (RUNTIME_UID, RUNTIME_UID), \
        f"/data is not a directory owned by {RUNTIME_UID}: {data}"
    assert not any(m.name.strip("./").startswith("data/") for m in members), "/data is not empty"
    assert "etc/passwd" in files, "no /etc/passwd"
    log(f"image files ok: {len(files)} files; no shell, no package manager; "
        f"/data empty and owned by {RUNTIME_UID}")
    # And the engine agrees: there is no shell to run.
    p = run(["docker", "run", "--rm", "--tmpfs", "/data", "--entrypoint", "/bin/sh", tag],
            check=False, quiet=True)
    assert p.returncode != 0, "/bin/sh ran inside the image"


class Container:
    """One `docker run -d` of the image, published on a free loopback port."""

    def __init__(self, tag: str, volume: str, name: str):
        self.name = name
        run(["docker", "run", "-d", "--name", name, "-p", "127.0.0.1::8080",
             "-v", f"{volume}:/data", tag])
        port = run(["docker", "port", name, "8080/tcp"]).stdout.split()[0]
        self.host, _, p = port.rpartition(":")
        self.port = int(p)

    def client(self) -> HttpClient:
        return HttpClient(self.host, self.port, timeout=10)

    def wait_ready(self) -> None:
        def ready():
            try:
                with self.client() as c:
                    return c.get("/readyz").status == 200
            except OSError:
                return False
        try:
            wait_until(ready, READY_TIMEOUT_S, 0.2, f"{self.name}: GET /readyz == 200")
        except AssertionError:
            run(["docker", "logs", self.name], check=False)
            raise
        log(f"{self.name}: /readyz 200 on {self.host}:{self.port}")

    def stop(self) -> None:
        """docker stop with the default grace period; the exit code must be 0
        and the container must be gone well before SIGKILL would come."""
        start = time.monotonic()
        run(["docker", "stop", "-t", str(STOP_GRACE_S), self.name], timeout=STOP_GRACE_S + 30)
        took = time.monotonic() - start
        state = inspect("container", self.name)["State"]
        log(f"{self.name}: stopped in {took:.2f}s, exit code {state['ExitCode']}, "
            f"OOMKilled={state.get('OOMKilled')}")
        logs = run(["docker", "logs", self.name], check=False, quiet=True)
        for line in (logs.stdout + logs.stderr).splitlines()[-6:]:
            log(f"  {self.name} log| {line}")
        assert state["ExitCode"] == 0, f"exit code {state['ExitCode']} after SIGTERM"
        assert took < STOP_GRACE_S, f"docker stop took {took:.1f}s: SIGTERM did not end it"

    def remove(self) -> None:
        run(["docker", "rm", "-f", "-v", self.name], check=False, quiet=True)


def check_runs_as_nonroot(c: Container) -> None:
    state = inspect("container", c.name)
    pid = state["State"]["Pid"]
    status = engine.proc_status(pid)
    if status is not None:
        uids, gids = status["Uid"].split(), status["Gid"].split()
        log(f"{c.name}: pid {pid} Uid={uids} Gid={gids} Groups={status.get('Groups', '').split()}")
        assert set(uids) == {str(RUNTIME_UID)}, f"process uids {uids}"
        assert set(gids) == {str(RUNTIME_UID)}, f"process gids {gids}"
    else:
        # A remote engine: ask it.
        top = run(["docker", "top", c.name, "-o", "uid,gid,args"]).stdout
        assert f"{RUNTIME_UID}" in top, top
    # The healthcheck the image declares, run the way the engine runs it.
    run(["docker", "exec", c.name, BINARY, "healthcheck"])
    log(f"{c.name}: `counterd healthcheck` exit 0")


def check_volume_files(volume: str) -> None:
    """What counterd wrote into the volume is owned by the runtime user."""
    helper = "debian:bookworm-slim"
    if not engine.image_exists(helper):
        log(f"(no {helper} locally: not listing the volume)")
        return
    p = run(["docker", "run", "--rm", "-v", f"{volume}:/data:ro", helper,
             "sh", "-c", "stat -c '%u:%g %a %n' /data /data/*"])
    owners = {line.split()[0] for line in p.stdout.splitlines() if line.strip()}
    assert owners == {f"{RUNTIME_UID}:{RUNTIME_UID}"}, f"volume owners: {owners}"


def main() -> int:
    engine.require_docker()
    tag = engine.ensure_image()
    check_image_config(tag)

    suffix = uuid.uuid4().hex[:8]
    volume = f"counterd-test-{suffix}"
    containers: list[Container] = []
    run(["docker", "volume", "create", volume])
    try:
        # 1. First container on a fresh named volume: write.
        c1 = Container(tag, volume, f"counterd-test-{suffix}-1")
        containers.append(c1)
        c1.wait_ready()
        check_runs_as_nonroot(c1)
        with c1.client() as http:
            root = http.get("/").json()
            log(f"GET / -> {root}")
            assert root.get("name") == "counterd", root
            assert root.get("hostname") == inspect("container", c1.name)["Config"]["Hostname"], root
            for _ in range(5):
                r = http.post("/counters/visits/increment")
                assert r.status == 200, r
            r = http.post("/counters/visits/increment", json={"by": 37})
            assert r.status == 200 and r.json()["value"] == 42, r
            for _ in range(3):
                assert http.post("/counter/increment").status == 200
            default_before = http.get("/counter").json()["value"]
            log(f"wrote: visits=42, default counter={default_before}")

        # 2. docker stop: SIGTERM drains, exit 0 within the grace period.
        c1.stop()
        check_volume_files(volume)

        # 3. A new container on the same volume reads the values back.
        c2 = Container(tag, volume, f"counterd-test-{suffix}-2")
        containers.append(c2)
        c2.wait_ready()
        with c2.client() as http:
            r = http.get("/counters/visits")
            log(f"after restart: GET /counters/visits -> {r.status} {r.text}")
            assert r.status == 200 and r.json()["value"] == 42, r
            r = http.get("/counter")
            log(f"after restart: GET /counter -> {r.status} {r.text}")
            assert r.json()["value"] == default_before, r
        c2.stop()
        log("PASS: image builds, runs as 65532, stops cleanly, and the volume keeps the counters")
        return 0
    finally:
        for c in containers:
            c.remove()
        run(["docker", "volume", "rm", "-f", volume], check=False, quiet=True)


if __name__ == "__main__":
    sys.exit(main())
