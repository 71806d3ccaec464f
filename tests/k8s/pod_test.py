#!/usr/bin/env python3
"""counterd-0 for real, from deploy/base, under Podman (issue 7).

There is no kubelet here, but `podman kube play` runs Kubernetes Pod YAML
with its security context (uid/gid, read-only root file system, dropped
capabilities, no privilege escalation, seccomp), a ConfigMap (--configmap),
hostname and ports. The test:

1. renders deploy/base and builds the Pod the StatefulSet controller would
   create: counterd-0 from the template, hostname counterd-0, subdomain the
   headless Service, the claim data-counterd-0 from volumeClaimTemplates;
   the image built from the Dockerfile (shared with the container test);
   plus a test-only hostPort on 127.0.0.1 to reach it;
2. provisions data-counterd-0 as a Podman volume the way a provisioner
   hands over a fresh PV (an empty root-owned directory) and applies the
   kubelet's fsGroup ownership change (OnRootMismatch), which Podman does
   not do itself (Podman 4.3 ignores fsGroup);
3. plays the pod, checks the process really runs as the manifest says,
   answers every probe of the manifest, and writes over HTTP;
4. deletes the pod the way the kubelet does (SIGTERM, exit 0 within
   terminationGracePeriodSeconds, then `podman kube down`); the volume stays;
5. plays it again and reads every value back.

A non-root process that cannot write a fresh volume, or a binary that writes
outside /data under the read-only root, fails step 3.

Needs `docker` (for the image) and `podman` (kube play). Skips (exit 77)
without them; fails instead under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import k8s_render as k8s  # noqa: E402
from k8s_render import engine  # noqa: E402
from engine import log, run  # noqa: E402

sys.path.insert(0, os.path.join(engine.SOURCE_DIR, "tests", "integration"))
from counterd_harness import HttpClient, find_binary, free_port, wait_until  # noqa: E402

OWNER_LABEL = "counterd.test/owner"
OWNER = "k8s-pod-test"
HELPER_IMAGE = "docker.io/library/debian:bookworm-slim"
READY_CAP_S = 120


def podman(*args, check=True, timeout=180, quiet=False):
    return run(["podman", *args], check=check, timeout=timeout, quiet=quiet)


def podman_image(tag: str) -> str:
    """The full name Podman stores a `docker build -t counterd:test` image
    under (through the Docker API it becomes docker.io/library/...); kube
    play with imagePullPolicy: Never needs the exact local name."""
    p = podman("image", "inspect", tag, "--format", "{{json .RepoTags}}", quiet=True)
    names = json.loads(p.stdout or "[]") or []
    for name in names:
        if name == tag or name.endswith("/" + tag):
            return name
    raise AssertionError(f"podman does not know {tag} by name: {names}")


def secret_volumes_as_dirs(objs: list[dict], spec: dict, workdir: str) -> list[str]:
    """Podman 4.3's kube play cannot mount a Secret volume (it crashes on an
    unset `optional`, and stores the data still base64-encoded), so each
    Secret volume becomes a hostPath directory holding the files the kubelet
    would project: the render's Secret, else a test one (the base expects
    the operator to create counterd-tokens), owned root:fsGroup, mode
    defaultMode. Returns the Secret names."""
    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    supplied = {"counterd-tokens": k8s.test_tokens_secret()}
    names = []
    for v in spec.get("volumes") or []:
        if "secret" not in v:
            continue
        name = v["secret"]["secretName"]
        found = k8s.find(objs, "Secret", name)
        files = k8s.secret_data(found[0]) if found else supplied.get(name)
        assert files is not None, f"no data for Secret {name}"
        d = os.path.join(workdir, f"secret-{name}")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        for fname, content in files.items():
            path = os.path.join(d, fname)
            with open(path, "wb") as f:
                f.write(content)
            os.chown(path, 0, fs_group if fs_group is not None else 0)
            os.chmod(path, v["secret"].get("defaultMode", 0o644))
        v.pop("secret")
        v["hostPath"] = {"path": d, "type": "Directory"}
        names.append(name)
    return names


def build_pod(objs: list[dict], image: str, host_port: int,
              workdir: str) -> tuple[dict, dict, dict, dict]:
    """(pod, claim, configmap, container) as the StatefulSet controller and
    the kubelet would have them, with the test's image and hostPort."""
    sts = k8s.one(objs, "StatefulSet")
    pod, claims = k8s.statefulset_pod(sts, 0)
    assert [c["metadata"]["name"] for c in claims] == ["data-counterd-0"], claims
    spec = pod["spec"]
    pod["metadata"]["labels"][OWNER_LABEL] = OWNER
    c = next(c for c in spec["containers"] if c["name"] == "counterd")
    c["image"] = image
    c["imagePullPolicy"] = "Never"
    for p in c["ports"]:
        if p.get("name") == "http":
            p["hostPort"], p["hostIP"] = host_port, "127.0.0.1"
    if spec.get("enableServiceLinks", True):
        # The kubelet would inject these; Podman does not, so add them.
        links = k8s.service_link_env(k8s.find(objs, "Service"))
        c.setdefault("env", []).extend({"name": k, "value": v} for k, v in sorted(links.items()))
    sc = spec.get("securityContext") or {}
    if sc.get("fsGroup") is not None and sc.get("fsGroup") != sc.get("runAsGroup"):
        # The kubelet adds fsGroup to the supplementary groups.
        sc.setdefault("supplementalGroups", []).append(sc["fsGroup"])
    refs = [s["configMapRef"]["name"] for s in c.get("envFrom") or [] if "configMapRef" in s]
    assert len(refs) == 1, f"expected one ConfigMap in envFrom, got {refs}"
    secrets = secret_volumes_as_dirs(objs, spec, workdir)
    log(f"Secret volumes {secrets} played as hostPath directories under {workdir}")
    # The image is built from this source, so the local binary's options are
    # the image's: options deploy/ sets before counterd has them stay out.
    configmap = json.loads(json.dumps(k8s.one(objs, "ConfigMap", refs[0])))
    data, left_out, problems = k8s.without_pending(configmap.get("data") or {},
                                                   k8s.counterd_options(find_binary()))
    assert not problems, problems
    if left_out:
        log(f"pending options left out of the ConfigMap: {left_out}")
    configmap["data"] = data
    return pod, claims[0], configmap, c


def provision_claim(claim: str, fs_group) -> None:
    """A fresh PV as a provisioner hands it over (empty, root:root 0755),
    then the kubelet's fsGroup step with fsGroupChangePolicy OnRootMismatch:
    if the root does not already have group fsGroup and g+rwxs, chgrp the
    tree to fsGroup and make it group-writable, directories setgid."""
    if not podman("volume", "exists", claim, check=False, quiet=True).returncode == 0:
        podman("volume", "create", "--label", f"{OWNER_LABEL}={OWNER}", claim)
        # The first mount (as root) also uses up Podman's own chown of a new
        # volume to the container user, which a real PV does not have.
        podman("run", "--rm", "--user", "0:0", "--net", "none", "-v", f"{claim}:/pv",
               HELPER_IMAGE, "sh", "-c", "chown 0:0 /pv && chmod 0755 /pv")
    if fs_group is None:
        return
    g = int(fs_group)
    script = (f'set -e; if [ "$(stat -c %g /pv)" != {g} ] || '
              f'[ $(( 0$(stat -c %a /pv) & 02070 )) -ne $(( 02070 )) ]; then '
              f'chgrp -R {g} /pv; find /pv -type d -exec chmod u+rwx,g+rwxs {{}} +; '
              f'find /pv -type f -exec chmod ug+rw {{}} +; echo "fsGroup {g}: ownership changed"; '
              f'else echo "fsGroup {g}: root already matches, skipped (OnRootMismatch)"; fi; '
              f'stat -c "%u:%g %A %n" /pv')
    podman("run", "--rm", "--user", "0:0", "--net", "none", "-v", f"{claim}:/pv",
           HELPER_IMAGE, "sh", "-c", script)


def list_claim(claim: str) -> list[str]:
    p = podman("run", "--rm", "--net", "none", "-v", f"{claim}:/pv:ro", HELPER_IMAGE,
               "sh", "-c", "cd /pv && stat -c '%u:%g %A %n' . * 2>/dev/null", quiet=True)
    return p.stdout.splitlines()


def remove_leftovers(pod_name: str, claim: str) -> None:
    """A pod or claim left by an earlier, killed run of this test goes; one
    that is not ours stops the test rather than being deleted."""
    for kind, name in (("pod", pod_name), ("volume", claim)):
        p = podman(kind, "inspect", name, check=False, quiet=True)
        if p.returncode != 0:
            continue
        info = json.loads(p.stdout)
        info = info[0] if isinstance(info, list) else info
        if (info.get("Labels") or {}).get(OWNER_LABEL) != OWNER:
            raise AssertionError(f"a {kind} {name} exists that this test did not create")
        podman(kind, "rm", "-f", name, check=False)


class PlayedPod:
    def __init__(self, workdir: str, pod: dict, configmap: dict, container: dict):
        self.name = pod["metadata"]["name"]
        self.ctr = f"{self.name}-{container['name']}"
        self.container = container
        self.grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        self.pod_file = os.path.join(workdir, "pod.yaml")
        self.cm_file = os.path.join(workdir, "configmap.yaml")
        with open(self.pod_file, "w", encoding="utf-8") as f:
            f.write(json.dumps(pod, indent=1) + "\n")
        with open(self.cm_file, "w", encoding="utf-8") as f:
            f.write(json.dumps(configmap, indent=1) + "\n")
        self.port = next(p["hostPort"] for p in container["ports"] if p.get("hostPort"))

    def play(self) -> None:
        podman("kube", "play", "--configmap", self.cm_file, self.pod_file)

    def down(self) -> None:
        podman("kube", "down", self.pod_file, check=False)

    def client(self) -> HttpClient:
        return HttpClient("127.0.0.1", self.port, timeout=10)

    def probe(self, kind: str) -> int:
        path = self.container[kind]["httpGet"]["path"]
        with self.client() as c:
            return c.get(path).status

    def wait_started(self) -> None:
        """The kubelet's order: the startupProbe until it succeeds (within
        its budget, capped here), then readiness and liveness."""
        sp = self.container["startupProbe"]
        budget = min(sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3), READY_CAP_S)

        def started():
            state = self.inspect()["State"]
            if not state.get("Running"):
                raise AssertionError(f"{self.ctr} is not running: {state}\n{self.logs()}")
            try:
                return self.probe("startupProbe") == 200
            except OSError:
                return False
        try:
            wait_until(started, budget, 0.2, f"{self.ctr} startupProbe")
        except AssertionError:
            log(self.logs())
            raise
        for kind in ("readinessProbe", "livenessProbe"):
            status = self.probe(kind)
            log(f"{kind} GET {self.container[kind]['httpGet']['path']} -> {status}")
            assert status == 200, f"{kind} answered {status}"

    def inspect(self) -> dict:
        out = json.loads(podman("inspect", self.ctr, quiet=True).stdout)
        return out[0] if isinstance(out, list) else out

    def logs(self) -> str:
        p = podman("logs", self.ctr, check=False, quiet=True)
        return p.stdout + p.stderr

    def check_security(self, spec: dict) -> None:
        """Podman applied the security context: ids, capabilities, no new
        privileges, seccomp, read-only root."""
        info = self.inspect()
        sc = spec.get("securityContext") or {}
        status = engine.proc_status(info["State"]["Pid"])
        assert status is not None, "cannot read the container process's /proc status"
        uid, gid = str(sc["runAsUser"]), str(sc["runAsGroup"])
        log(f"{self.ctr}: Uid={status['Uid'].split()} Gid={status['Gid'].split()} "
            f"Groups={status.get('Groups', '').split()} CapEff={status['CapEff']} "
            f"NoNewPrivs={status['NoNewPrivs']} Seccomp={status['Seccomp']} "
            f"ReadonlyRootfs={info['HostConfig'].get('ReadonlyRootfs')}")
        assert set(status["Uid"].split()) == {uid}, status["Uid"]
        assert set(status["Gid"].split()) == {gid}, status["Gid"]
        assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, status["CapEff"]
        assert status["NoNewPrivs"] == "1", "allowPrivilegeEscalation: false not applied"
        assert status["Seccomp"] == "2", "no seccomp filter"
        assert info["HostConfig"].get("ReadonlyRootfs") is True, "root file system is writable"

    def stop_gracefully(self) -> None:
        """What the kubelet does on delete: SIGTERM, SIGKILL only after the
        grace period. The process must exit 0 well within it."""
        start = time.monotonic()
        podman("pod", "stop", "-t", str(self.grace), self.name, timeout=self.grace + 60)
        took = time.monotonic() - start
        state = self.inspect()["State"]
        log(f"{self.ctr}: stopped in {took:.2f}s, exit code {state['ExitCode']} "
            f"(grace {self.grace}s)")
        for line in self.logs().splitlines()[-5:]:
            log(f"  log| {line}")
        assert state["ExitCode"] == 0, f"exit code {state['ExitCode']} after SIGTERM"
        assert took < self.grace, f"took {took:.1f}s: SIGTERM did not end it"


def main() -> int:
    engine.require_docker()
    if not shutil.which("podman"):
        engine.skip_or_fail("podman is not installed: `podman kube play` plays the pod "
                            "(here: eval \"$(../shared/tools/container-engine)\")")
    if podman("image", "exists", HELPER_IMAGE, check=False, quiet=True).returncode != 0:
        engine.skip_or_fail(f"{HELPER_IMAGE} is not available locally (it plays the provisioner)")
    objs = k8s.render("base")
    tag = engine.ensure_image()
    workdir = tempfile.mkdtemp(prefix="counterd-pod-test-")
    pod, claim, configmap, container = build_pod(objs, podman_image(tag), free_port(), workdir)
    claim_name = claim["metadata"]["name"]
    fs_group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
    remove_leftovers(pod["metadata"]["name"], claim_name)
    played = PlayedPod(workdir, pod, configmap, container)
    # With authentication on, clients send the test token (probes do not).
    auth = ({"Authorization": f"Bearer {k8s.TEST_TOKEN}"}
            if "COUNTERD_AUTH_TOKENS_FILE" in configmap["data"] else {})
    log(f"pod {played.name}: image {container['image']}, claim {claim_name}, "
        f"ConfigMap {configmap['metadata']['name']}, hostPort 127.0.0.1:{played.port}, "
        f"YAML in {workdir}")
    try:
        # 1. A fresh claim, the first pod: write.
        provision_claim(claim_name, fs_group)
        played.play()
        played.wait_started()
        played.check_security(pod["spec"])
        with played.client() as http:
            root = http.get("/", headers=auth).json()
            log(f"GET / -> {root}")
            assert root.get("hostname") == played.name, root
            for _ in range(7):
                assert http.post("/counters/pod-test/increment", headers=auth).status == 200
            r = http.put("/counters/pinned", json={"value": -12345}, headers=auth)
            assert r.status == 201, r  # a fresh claim: created
            for _ in range(2):
                assert http.post("/counter/increment", headers=auth).status == 200
            default = http.get("/counter", headers=auth).json()["value"]
        log(f"wrote pod-test=7, pinned=-12345, default counter={default}")

        # 2. Delete the pod; the claim stays.
        played.stop_gracefully()
        played.down()
        assert podman("volume", "exists", claim_name, check=False).returncode == 0, \
            "the claim's volume went away with the pod"
        files = list_claim(claim_name)
        log(f"claim {claim_name} after the pod is gone:\n  " + "\n  ".join(files))
        owner = f"{pod['spec']['securityContext']['runAsUser']}:"
        assert all(line.startswith(owner) for line in files[1:]), files

        # 3. The pod again, on the same claim: the values are back.
        provision_claim(claim_name, fs_group)   # the kubelet's fsGroup step, again
        played.play()
        played.wait_started()
        with played.client() as http:
            got = {"pod-test": http.get("/counters/pod-test", headers=auth).json()["value"],
                   "pinned": http.get("/counters/pinned", headers=auth).json()["value"],
                   "default": http.get("/counter", headers=auth).json()["value"]}
        log(f"after re-creating the pod: {got}")
        assert got == {"pod-test": 7, "pinned": -12345, "default": default}, got
        played.stop_gracefully()
        log("PASS: counterd-0 ran as the manifest says, wrote its fresh claim, "
            "and the claim kept the values across pod deletion")
        return 0
    finally:
        played.down()
        podman("volume", "rm", "-f", claim_name, check=False, quiet=True)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
