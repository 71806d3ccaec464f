#!/usr/bin/env python3
"""Every pod deploy/ describes exits promptly on SIGTERM (issue 14 §4).

A container's main process is PID 1 of its PID namespace, and the kernel
does not deliver a signal to such a process unless the process has a
handler for it, not even the kubelet's SIGTERM. A helper pod whose command
is `sleep 3600` therefore ignores `kubectl delete pod` and holds it for the
whole grace period, until the SIGKILL.

1. Collects every pod spec in deploy/: the pod templates of every rendered
   overlay, and the examples in deploy/README.md (YAML after `kubectl apply
   -f - <<'EOF'`, and `kubectl run ... --overrides=...`).
2. The examples pass ../shared/k8s/validate --restricted, like the
   manifests.
3. Each container either runs counterd (which handles SIGTERM: drain, sync,
   exit 0), or, in a pod that restarts (a long-running helper), runs a
   command that catches SIGTERM. That command is started for real, as PID 1
   of a new PID namespace (`unshare --pid --fork`), which is how a container
   runtime starts it. The test waits until the process has installed its
   SIGTERM handler (SigCgt in /proc/PID/status), sends SIGTERM from the
   parent namespace, as the kubelet does, and expects an exit within 10
   seconds. One-shot pods (restartPolicy Never) must not sleep.
4. Control: `sleep 3600` started the same way has no SIGTERM handler, so the
   check above would catch it.

Needs kubectl (to render and read YAML) and, for step 3, root and unshare
(util-linux). Skips (77) without them; fails instead under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import k8s_render as k8s  # noqa: E402
from k8s_render import engine  # noqa: E402
from engine import log  # noqa: E402

README = os.path.join(k8s.DEPLOY_DIR, "README.md")
WORKLOADS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")
EXIT_DEADLINE_S = 10
SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def pod_spec(obj: dict) -> dict:
    spec = obj["spec"]
    if obj["kind"] == "Pod":
        return spec
    if obj["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return spec["template"]["spec"]


def default_restart(obj: dict) -> str:
    return "Never" if obj["kind"] in ("Job", "CronJob") else "Always"


def readme_examples() -> tuple[list[dict], str]:
    """The objects of deploy/README.md's heredocs and `kubectl run
    --overrides` pods, and the heredocs' YAML (for the validator)."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    docs = re.findall(r"<<'?EOF'?\n(.*?)\nEOF\n", text, re.S)
    objs = k8s.yaml_to_objects("\n---\n".join(docs)) if docs else []
    for m in re.finditer(r"kubectl run (\S+)(.*?)--overrides='(.*?)'", text, re.S):
        name, flags, overrides = m.group(1), m.group(2), m.group(3)
        spec = json.loads(overrides.replace("\\\n", ""))["spec"]
        restart = re.search(r"--restart=(\w+)", flags)
        spec.setdefault("restartPolicy", restart.group(1) if restart else "Always")
        objs.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                     "spec": spec, "_source": "kubectl run"})
    return objs, "\n---\n".join(docs)


def runs_counterd(c: dict) -> bool:
    image = c.get("image", "")
    cmd = (c.get("command") or [])[:1]
    return (re.search(r"(^|/)counterd(:|@|$)", image) is not None
            and (not cmd or os.path.basename(cmd[0]) == "counterd"))


def proc_status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except FileNotFoundError:
        pass
    return out


def child_of(pid: int) -> int:
    """The one child of |pid| (unshare's forked PID 1), once it exists."""
    deadline = time.monotonic() + EXIT_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/task/{pid}/children", encoding="utf-8") as f:
                kids = f.read().split()
        except FileNotFoundError:
            kids = []
        if kids:
            return int(kids[0])
        time.sleep(0.01)
    raise AssertionError(f"unshare (pid {pid}) started no child")


class Pid1:
    """|argv| as PID 1 of a new PID namespace, like a container's process."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.proc = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", "--",
                                      *argv], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.pid = child_of(self.proc.pid)

    def wait_settled(self, predicate, what: str) -> dict:
        """Polls /proc/PID/status until |predicate| holds (the program has
        started and set up its handlers)."""
        deadline = time.monotonic() + EXIT_DEADLINE_S
        while time.monotonic() < deadline:
            st = proc_status(self.pid)
            if st and predicate(self.pid, st):
                return st
            time.sleep(0.01)
        st = proc_status(self.pid)
        raise AssertionError(f"not {what} within {EXIT_DEADLINE_S}s (Name={st.get('Name')} "
                             f"SigCgt={st.get('SigCgt')}: no SIGTERM handler)")

    def catches_term(self, st: dict) -> bool:
        return bool(int(st.get("SigCgt", "0"), 16) & SIGTERM_BIT)

    def terminate(self) -> float:
        """SIGTERM from the parent namespace; seconds until unshare reports
        the exit of its child."""
        start = time.monotonic()
        os.kill(self.pid, signal.SIGTERM)
        self.proc.wait(timeout=EXIT_DEADLINE_S)
        return time.monotonic() - start

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=EXIT_DEADLINE_S)


def has_children(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="utf-8") as f:
            return bool(f.read().split())
    except FileNotFoundError:
        return False


def check_long_running(argv: list[str]) -> str:
    """Starts |argv| as PID 1, waits until it catches SIGTERM and has started
    its work, sends SIGTERM, and returns how it ended."""
    p = Pid1(argv)
    try:
        st = p.wait_settled(lambda pid, st: p.catches_term(st) and has_children(pid),
                            "catching SIGTERM with its work started")
        took = p.terminate()
        return f"SigCgt={st['SigCgt']}; exited {p.proc.returncode} {took:.2f}s after SIGTERM"
    finally:
        p.kill()


def control() -> None:
    """`sleep 3600` as PID 1 has no SIGTERM handler: the kernel drops the
    kubelet's SIGTERM, and only the SIGKILL after the grace period ends it."""
    p = Pid1(["sleep", "3600"])
    try:
        st = p.wait_settled(lambda pid, st: st.get("Name") == "sleep", "running sleep")
        assert not p.catches_term(st), st
        log(f"control: `sleep 3600` as PID 1: SigCgt={st['SigCgt']}, no SIGTERM handler: "
            "it would hold a pod deletion for the whole grace period")
    finally:
        p.kill()


def main() -> int:
    k8s.kustomize_command()
    pods = []   # (where, obj)
    # deploy/backup: the backup CronJob example (not an overlay of the
    # server, so not in k8s.OVERLAYS).
    for overlay in k8s.OVERLAYS + ("backup",):
        for obj in k8s.render(overlay):
            if obj["kind"] in WORKLOADS:
                pods.append((f"deploy/{overlay}", obj))
    examples, example_yaml = readme_examples()
    pods += [("deploy/README.md", obj) for obj in examples]
    log(f"{len(pods)} pod specs: " + ", ".join(f"{w}: {o['kind']}/{o['metadata']['name']}"
                                               for w, o in pods))
    assert any(o["metadata"]["name"] == "counterd-backup" and o["kind"] == "Pod"
               for _, o in pods), "the README's backup pod was not found"
    assert any(o["kind"] == "CronJob" for _, o in pods), \
        "deploy/backup's CronJob was not found"

    problems = []
    # The README's manifests meet the same bar as deploy/'s.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(example_yaml + "\n")
        path = f.name
    try:
        p = engine.run([k8s.VALIDATOR, path, "--restricted"], check=False, timeout=300)
        if p.returncode != 0:
            problems.append("deploy/README.md: an example pod fails validate --restricted")
    finally:
        os.unlink(path)

    can_run = os.geteuid() == 0 and shutil.which("unshare") is not None
    if not can_run:
        engine.skip_or_fail("running commands as PID 1 needs root and unshare (util-linux)")
    control()
    for where, obj in pods:
        spec = pod_spec(obj)
        restart = spec.get("restartPolicy") or default_restart(obj)
        for c in spec.get("containers") or []:
            label = f"{where}: {obj['kind']}/{obj['metadata']['name']} container {c['name']}"
            if runs_counterd(c):
                log(f"{label}: runs counterd (SIGTERM: drain, sync, exit 0)")
                continue
            argv = list(c.get("command") or []) + list(c.get("args") or [])
            if not argv:
                problems.append(f"{label}: image {c.get('image')} with its default command: "
                                "cannot tell whether it handles SIGTERM; give a command")
                continue
            if restart == "Never":
                if re.search(r"\bsleep\b|tail -f", " ".join(argv)):
                    problems.append(f"{label}: a one-shot pod that sleeps: {shlex.join(argv)}")
                else:
                    log(f"{label}: one-shot (restartPolicy Never), ends by itself: "
                        f"{shlex.join(argv)}")
                continue
            try:
                verdict = check_long_running(argv)
                log(f"{label}: `{shlex.join(argv)}` as PID 1: {verdict}")
            except (AssertionError, subprocess.TimeoutExpired) as e:
                problems.append(f"{label}: `{shlex.join(argv)}` does not exit promptly on "
                                f"SIGTERM as PID 1: {e}")

    for line in problems:
        log("PROBLEM: " + line)
    if problems:
        log(f"FAIL: {len(problems)} problems")
        return 1
    log("PASS: every pod in deploy/ runs counterd or exits promptly on SIGTERM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
