#!/usr/bin/env python3
"""What Kubernetes does to counterd-0, played with the real binary (issue 7).

The process runs as the pod would: HOSTNAME=counterd-0, the environment of
deploy/base's ConfigMap (listen address and data dir pointed at loopback and
a directory that plays the PersistentVolumeClaim), one fixed port across
restarts like the pod's containerPort. Then, in order:

1. write under load, SIGKILL mid-load (node loss, or the kubelet's SIGKILL
   after the grace period), start a new process on the same directory;
2. write under load, SIGTERM as a rolling update or `kubectl delete pod`
   does: new connections are refused, in-flight requests complete, the
   process exits 0 within terminationGracePeriodSeconds (taken from the
   StatefulSet);
3. stop and start again (scale to 0 and back); the stop (SIGTERM with
   nothing else running) shows that a /readyz request begun before it is
   answered 503 while draining.

At every start: the port opens only after recovery, and the moment /readyz
first answers 200 every acknowledged write is there (each writer owns a
counter, so acked <= value <= acked + what was in flight when the process
died), and the value a PUT acknowledged is exact.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import k8s_render as k8s  # noqa: E402
from k8s_render import engine  # noqa: E402
from engine import log  # noqa: E402

sys.path.insert(0, os.path.join(engine.SOURCE_DIR, "tests", "integration"))
from counterd_harness import (CounterdServer, HttpClient, RawConnection,  # noqa: E402
                              free_port, wait_until)

POD = "counterd-0"
WRITERS = 6
LOAD_SECONDS = 1.5
RECOVERY_TIMEOUT_S = 60


# Authentication is not what this test is about (manifests_test checks it
# with the pod's Secret); without a token file the load needs no token.
NOT_HERE = ("COUNTERD_AUTH_TOKENS_FILE",)


def pod_environment() -> tuple[dict, int]:
    """The ConfigMap environment of counterd-0 and its grace period, from
    the rendered base (or, without kubectl, from the base's source files)."""
    if shutil.which("kubectl") or shutil.which("kustomize"):
        objs = k8s.render("base")
        sts = k8s.one(objs, "StatefulSet")
        pspec = sts["spec"]["template"]["spec"]
        c = next(c for c in pspec["containers"] if c["name"] == "counterd")
        env = k8s.container_env(objs, pspec, c)
        grace = pspec.get("terminationGracePeriodSeconds", 30)
    else:
        log("(no kubectl: reading deploy/base/counterd.env and statefulset.yaml directly)")
        base = os.path.join(k8s.DEPLOY_DIR, "base")
        with open(os.path.join(base, "counterd.env"), encoding="utf-8") as f:
            env = dict(line.strip().split("=", 1) for line in f
                       if "=" in line and not line.lstrip().startswith("#"))
        with open(os.path.join(base, "statefulset.yaml"), encoding="utf-8") as f:
            m = re.search(r"terminationGracePeriodSeconds:\s*(\d+)", f.read())
        grace = int(m.group(1)) if m else 30
    return {k: v for k, v in env.items() if k not in NOT_HERE}, grace


class Load:
    """|WRITERS| threads, each incrementing its own counter over its own
    keep-alive connection, one request in flight each. Per counter it
    records what was acknowledged and what was sent without an answer."""

    def __init__(self, port: int, phase: str):
        self.port, self.phase = port, phase
        self.acked: dict = defaultdict(int)
        self.in_doubt: dict = defaultdict(int)
        self.errors: list = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._write, args=(f"{phase}-w{i}",), daemon=True)
                         for i in range(WRITERS)]

    @property
    def names(self) -> list:
        return [f"{self.phase}-w{i}" for i in range(WRITERS)]

    def start(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def _write(self, name: str) -> None:
        client = HttpClient("127.0.0.1", self.port, timeout=10)
        n = 0
        while not self._stop.is_set():
            by = 1 + n % 3
            n += 1
            try:
                r = client.post(f"/counters/{name}/increment", json={"by": by})
            except ConnectionRefusedError:
                break                       # never sent: the listener is closed
            except (OSError, http.client.HTTPException):
                self.in_doubt[name] += by   # sent, no answer: may or may not be applied
                break
            if r.status == 200:
                self.acked[name] += by
            elif r.status == 503:
                self.in_doubt[name] += by   # refused while shutting down; count it loosely
                break
            else:
                self.errors.append(f"{name}: {r!r}")
                break
        client.close()

    def total(self) -> int:
        return sum(self.acked.values())


class Pod:
    """counterd-0's process on the "PVC" directory, always on the same port."""

    def __init__(self, env: dict, pvc: str, port: int):
        self.env = dict(env, COUNTERD_LISTEN=f"127.0.0.1:{port}", COUNTERD_DATA_DIR=pvc)
        self.pvc, self.port = pvc, port
        self.srv: CounterdServer | None = None
        self.generation = 0

    def start_and_verify(self, check) -> CounterdServer:
        """Starts a process and polls the port from the first instant: the
        port must stay closed (or /readyz not 200) until recovery is over,
        and the first 200 from /readyz must come with every acked write
        readable (|check| gets a client and raises otherwise)."""
        self.generation += 1
        seen = defaultdict(int)
        verdict: dict = {}
        done = threading.Event()

        def poll():
            while not done.is_set():
                try:
                    with HttpClient("127.0.0.1", self.port, timeout=5) as c:
                        status = c.get("/readyz").status
                        seen[status] += 1
                        if status == 200:
                            check(c)            # at the first ready instant
                            verdict["ok"] = True
                            return
                except ConnectionRefusedError:
                    seen["refused"] += 1
                except (OSError, http.client.HTTPException) as e:
                    seen[type(e).__name__] += 1
                except AssertionError as e:
                    verdict["error"] = e
                    return
                time.sleep(0.005)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        t0 = time.monotonic()
        self.srv = CounterdServer(env=self.env, listen=None, log_format=None, hostname=POD)
        self.srv.start(wait_ready=False, timeout=RECOVERY_TIMEOUT_S)
        poller.join(RECOVERY_TIMEOUT_S)
        done.set()
        if "error" in verdict:
            raise verdict["error"]
        assert verdict.get("ok"), f"/readyz never answered 200: {dict(seen)}\n{self.srv.log_text(30)}"
        line = self.srv.wait_for_log("listening", 5)
        rec = re.search(r'"?recovery_ms"?[=:]\s*"?(\d+)', line)
        cnt = re.search(r'"?counters"?[=:]\s*"?(\d+)', line)
        log(f"  start #{self.generation}: ready after {time.monotonic() - t0:.2f}s; "
            f"recovered {cnt.group(1) if cnt else '?'} counters in "
            f"{rec.group(1) if rec else '?'} ms; probes before ready: {dict(seen)}")
        with self.srv.client() as c:
            root = c.get("/").json()
        assert root.get("hostname") == POD, f"GET / says hostname {root.get('hostname')!r}"
        return self.srv

    def files(self) -> list:
        return sorted(os.listdir(self.pvc))


def read_values(c: HttpClient, names) -> dict:
    out = {}
    for name in names:
        r = c.get(f"/counters/{name}")
        assert r.status in (200, 404), r
        out[name] = r.json()["value"] if r.status == 200 else 0
    return out


def bounds_check(base: dict, load: Load, pinned: tuple | None):
    """The check run at the first ready instant: base + acked <= value <=
    base + acked + in doubt, per writer counter; the pinned PUT exact."""
    def check(c: HttpClient):
        values = read_values(c, load.names)
        for name, v in values.items():
            lo = base.get(name, 0) + load.acked[name]
            hi = lo + load.in_doubt[name]
            assert lo <= v <= hi, (f"{name}: value {v} outside [{lo}, {hi}] "
                                   f"(acked {load.acked[name]}, in doubt {load.in_doubt[name]})")
        if pinned:
            r = c.get(f"/counters/{pinned[0]}")
            assert r.status == 200 and r.json()["value"] == pinned[1], f"pinned: {r!r}"
        check.values = values
    return check


def pin(c: HttpClient, step: int) -> tuple:
    value = 1_000_000 + step
    r = c.put("/counters/pinned", json={"value": value})
    assert r.status in (200, 201), r
    return ("pinned", value)


def main() -> int:
    env, grace = pod_environment()
    log(f"pod environment (from deploy/base): {env}; terminationGracePeriodSeconds={grace}")
    pvc = tempfile.mkdtemp(prefix="pvc-data-counterd-0-")
    pod = Pod(env, pvc, free_port())
    srv = None
    try:
        # --- 0. First start on an empty volume.
        log("step 0: first start on an empty claim")
        empty = Load(pod.port, "none")
        srv = pod.start_and_verify(bounds_check({}, empty, None))

        # --- 1. Writes under load, then SIGKILL: node loss.
        log("step 1: write under load, SIGKILL mid-load, start a new process on the claim")
        load = Load(pod.port, "kill").start()
        with srv.client() as c:
            pinned = pin(c, 1)
        time.sleep(LOAD_SECONDS)
        rc = srv.kill()
        load.stop()
        assert not load.errors, load.errors
        log(f"  SIGKILL under load: exit {rc}; acked {load.total()} increments over "
            f"{WRITERS} counters, in doubt {dict(load.in_doubt)}; claim holds {pod.files()}")
        check = bounds_check({}, load, pinned)
        srv = pod.start_and_verify(check)
        base = check.values
        log(f"  after restart: {base}")

        # --- 2. SIGTERM under load: a rolling update / kubectl delete pod.
        log(f"step 2: write under load, SIGTERM with a {grace}s grace period")
        load2 = Load(pod.port, "term").start()
        with srv.client() as c:
            pinned = pin(c, 2)
        time.sleep(LOAD_SECONDS)
        t_term = time.monotonic()
        srv.terminate()
        srv.wait_for_log(r"draining", 5)
        # The line is logged as the drain begins; the listener closes right
        # after it.
        try:
            refused = wait_until(srv.connection_refused, 2.0, 0.01, "listener closed")
        except AssertionError:
            refused = False
        log(f"  while draining: new connections refused: {refused}")
        assert refused, "the listener still accepts connections while draining"
        try:
            rc = srv.wait(grace)
        except Exception:
            srv.kill()
            raise AssertionError(f"counterd outlived the {grace}s grace period; the kubelet "
                                 f"would SIGKILL it:\n{srv.log_text(20)}") from None
        took = time.monotonic() - t_term
        load2.stop()
        assert not load2.errors, load2.errors
        log(f"  SIGTERM: exit {rc} after {took * 1000:.0f} ms (grace {grace}s); acked "
            f"{load2.total()} increments, in doubt {dict(load2.in_doubt)}")
        for line in srv.log_text(6).splitlines():
            log("  " + line.strip())
        assert rc == 0, f"exit code {rc} after SIGTERM"
        assert took < grace, f"took {took:.1f}s, not within {grace}s"
        check = bounds_check(base, load2, pinned)
        srv = pod.start_and_verify(check)
        base.update(check.values)

        # --- 3. Scale to 0 and back: stop, then start again later.
        log("step 3: scale to 0 (SIGTERM, idle) and back to 1")
        with srv.client() as c:
            pinned = pin(c, 3)
            before = read_values(c, list(base))
        # A /readyz request the server has begun reading counts as in flight,
        # so the drain waits for it: finished after draining has begun, it
        # is answered 503. Nothing else runs now, so two requests in flight
        # (the probe and the /metrics request asking) mean the server has
        # read the probe's first bytes.
        probe = RawConnection("127.0.0.1", pod.port, timeout=10)
        probe.send(b"GET /readyz HTTP/1.1\r\nHost: counterd-0\r\n")
        srv.wait_for_metric("counterd_http_requests_in_flight", 2)
        srv.terminate()
        srv.wait_for_log(r"draining", 5)
        probe.send(b"\r\n")
        resp = probe.read_response(timeout=5)
        probe.close()
        log(f"  while draining: /readyz -> {resp.status if resp else None} "
            f"(Connection: {resp.header('Connection') if resp else None})")
        assert resp is not None and resp.status == 503, f"/readyz while draining: {resp!r}"
        rc = srv.wait(grace)
        assert rc == 0, f"exit code {rc} on scale-down"
        log(f"  scaled to 0: exit {rc}; claim holds {pod.files()}")
        time.sleep(0.5)
        still = Load(pod.port, "none")

        def exact(c: HttpClient):
            bounds_check({}, still, pinned)(c)
            after = read_values(c, list(before))
            assert after == before, f"values changed across scale 0 -> 1: {before} -> {after}"
        srv = pod.start_and_verify(exact)
        rc = srv.stop(grace)
        assert rc == 0, rc
        log(f"PASS: no acknowledged write lost across SIGKILL, SIGTERM under load and "
            f"scale 0 -> 1; readiness only after recovery; final values {before}")
        return 0
    finally:
        if srv is not None:
            srv.cleanup()
        shutil.rmtree(pvc, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
