#!/usr/bin/env python3
"""deploy/ renders, validates, and fits the binary and the image (issue 7).

For every overlay (base, dev, local-pv):
1. `kubectl kustomize` + ../shared/k8s/validate --restricted: strict schema
   validation against Kubernetes' OpenAPI plus the restricted Pod Security
   Standard.
2. What no schema can check: serviceName names a headless Service that
   exists; every selector (Services, NetworkPolicy, PDB) selects the pod
   template; Service targetPorts, probe ports and NetworkPolicy ports are the
   port counterd listens on (COUNTERD_LISTEN in the ConfigMap); the data
   volume is mounted where COUNTERD_DATA_DIR points; the grace period
   outlasts the drain timeout; the PDB does not block node drains; no
   Service link variable lands in counterd's COUNTERD_* namespace; uid/gid
   match the Dockerfile's USER; a pre-provisioned claim (local-pv) has the
   name and spec the StatefulSet adopts; recommended labels everywhere.
3. Against the real binary ($COUNTERD_BIN): every ConfigMap key is an option
   `counterd --help` lists, and counterd started with exactly the
   environment the kubelet would build (ConfigMap + env, Service links
   as configured) comes up and answers every probe path with 200.

Skips (exit 77) without kubectl or the validator; fails instead under CI=true.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import k8s_render as k8s  # noqa: E402
from k8s_render import engine  # noqa: E402
from engine import log  # noqa: E402

sys.path.insert(0, os.path.join(engine.SOURCE_DIR, "tests", "integration"))
from counterd_harness import CounterdServer, find_binary, run_counterd  # noqa: E402

RECOMMENDED_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                      "app.kubernetes.io/component", "app.kubernetes.io/part-of",
                      "app.kubernetes.io/managed-by")
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
# Time the process needs after the drain timeout: final sync and exit.
SHUTDOWN_MARGIN_MS = 5000
_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(q) -> float:
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(q))
    assert m and m.group(2) in _UNITS, f"unsupported quantity {q!r}"
    return float(m.group(1)) * _UNITS[m.group(2)]


def dockerfile_user() -> tuple[int, int]:
    with open(os.path.join(engine.SOURCE_DIR, "Dockerfile"), encoding="utf-8") as f:
        users = re.findall(r"^USER\s+(\d+):(\d+)\s*$", f.read(), re.M)
    assert users, "the Dockerfile has no numeric USER uid:gid"
    return int(users[-1][0]), int(users[-1][1])


class Checker:
    def __init__(self, overlay: str, objs: list[dict]):
        self.overlay, self.objs, self.problems = overlay, objs, []

    def need(self, cond, msg: str) -> bool:
        if not cond:
            self.problems.append(f"deploy/{self.overlay}: {msg}")
        return bool(cond)

    def run(self) -> list[str]:
        objs = self.objs
        sts = k8s.one(objs, "StatefulSet")
        spec = sts["spec"]
        tpl = spec["template"]
        pspec = tpl["spec"]
        labels = tpl["metadata"].get("labels") or {}
        containers = {c["name"]: c for c in pspec["containers"]}
        c = containers.get("counterd")
        if not self.need(c, "no container named counterd"):
            return self.problems
        env = k8s.container_env(objs, pspec, c)
        port = k8s.listen_port(env)

        # The StatefulSet itself.
        self.need(spec.get("replicas") == 1, f"replicas is {spec.get('replicas')}, must be 1 "
                  "(one writer per volume)")
        self.need(spec.get("podManagementPolicy") in ("OrderedReady", "Parallel"),
                  "podManagementPolicy must be set explicitly (it is immutable)")
        ret = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        self.need(ret.get("whenDeleted") and ret.get("whenScaled"),
                  "persistentVolumeClaimRetentionPolicy must state whenDeleted and whenScaled")
        self.need((spec.get("updateStrategy") or {}).get("type") == "RollingUpdate",
                  "updateStrategy must be RollingUpdate")
        self.need(k8s.selector_matches(spec["selector"], labels),
                  "StatefulSet selector does not match its template labels")

        # serviceName -> an existing headless Service selecting the pod.
        gov = k8s.find(objs, "Service", spec.get("serviceName"))
        if self.need(gov, f"serviceName {spec.get('serviceName')!r} names no Service"):
            self.need(gov[0]["spec"].get("clusterIP") == "None",
                      f"Service {spec['serviceName']} is not headless (clusterIP: None)")

        # Every Service selects the pod and targets the port counterd listens on.
        for svc in k8s.find(objs, "Service"):
            name = svc["metadata"]["name"]
            self.need(k8s.selector_matches({"matchLabels": svc["spec"].get("selector")}, labels),
                      f"Service {name} does not select the pod template")
            for p in svc["spec"].get("ports") or []:
                target = p.get("targetPort", p["port"])
                self.need(k8s.named_port(c, target) == port,
                          f"Service {name} port {p['port']} targets {target!r}, "
                          f"not the port counterd listens on ({port})")
        client = k8s.find(objs, "Service", "counterd")
        if self.need(client, "no client Service 'counterd'"):
            ports = client[0]["spec"]["ports"]
            self.need(client[0]["spec"].get("type", "ClusterIP") == "ClusterIP"
                      and [p["port"] for p in ports] == [80] and ports[0].get("name") == "http",
                      "Service counterd must be ClusterIP port 80 named http")

        # The ConfigMap, the port and the data dir agree with the pod.
        self.need(k8s.named_port(c, "http") == port,
                  f"container port 'http' is {k8s.named_port(c, 'http')}, but COUNTERD_LISTEN "
                  f"makes counterd listen on {port}")
        mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts") or []}
        self.need(mounts.get("data") == env.get("COUNTERD_DATA_DIR", "/data"),
                  f"volume 'data' is mounted at {mounts.get('data')}, but counterd writes "
                  f"{env.get('COUNTERD_DATA_DIR', '/data')}")
        links = k8s.service_link_env(k8s.find(objs, "Service"))
        clash = sorted(k for k in links if k.startswith("COUNTERD_"))
        self.need(pspec.get("enableServiceLinks") is False or not clash,
                  f"Service links would inject {clash} and counterd rejects unknown "
                  "COUNTERD_* variables: set enableServiceLinks: false")

        # Probes: HTTP on the listening port; liveness never on the disk.
        paths = {}
        for kind in PROBES:
            probe = c.get(kind)
            if not self.need(probe and "httpGet" in probe, f"{kind} must be an httpGet probe"):
                continue
            paths[kind] = probe["httpGet"]["path"]
            self.need(k8s.named_port(c, probe["httpGet"]["port"]) == port,
                      f"{kind} port {probe['httpGet']['port']!r} is not the listening port {port}")
        self.need(paths.get("livenessProbe") == "/livez", "livenessProbe must ask /livez")
        self.need(paths.get("readinessProbe") == "/readyz", "readinessProbe must ask /readyz")
        self.need(paths.get("startupProbe") in ("/readyz", "/livez"),
                  "startupProbe must ask /readyz or /livez")
        startup = c.get("startupProbe") or {}
        budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
        self.need(budget >= 300, f"startupProbe allows only {budget}s for recovery")

        # SIGTERM drains within the grace period.
        drain_ms = int(env.get("COUNTERD_DRAIN_TIMEOUT_MS", "10000"))
        grace = pspec.get("terminationGracePeriodSeconds", 30)
        self.need(grace * 1000 >= drain_ms + SHUTDOWN_MARGIN_MS,
                  f"terminationGracePeriodSeconds {grace}s does not outlast the drain timeout "
                  f"{drain_ms}ms plus {SHUTDOWN_MARGIN_MS}ms")

        # Security beyond the restricted profile, and the image's USER.
        sc = pspec.get("securityContext") or {}
        csc = c.get("securityContext") or {}
        uid, gid = dockerfile_user()
        self.need(sc.get("runAsUser") == uid and sc.get("runAsGroup") == gid,
                  f"runAsUser/runAsGroup {sc.get('runAsUser')}/{sc.get('runAsGroup')} "
                  f"differ from the Dockerfile's USER {uid}:{gid}")
        self.need(sc.get("fsGroup") == gid and sc.get("fsGroupChangePolicy") == "OnRootMismatch",
                  "fsGroup must be the runtime gid with fsGroupChangePolicy OnRootMismatch")
        self.need(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem must be true")
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            self.need((res.get(part) or {}).get("memory") and (res.get(part) or {}).get("cpu"),
                      f"resources.{part} must set cpu and memory")
        sa_name = pspec.get("serviceAccountName")
        sa = k8s.find(objs, "ServiceAccount", sa_name)
        self.need(sa and sa[0].get("automountServiceAccountToken") is False
                  and pspec.get("automountServiceAccountToken") is False,
                  "the pod's ServiceAccount must exist and not mount a token")
        image = c.get("image", "")
        self.need(image != "counterd" and re.search(r":[\w.-]+$|@sha256:", image),
                  f"image {image!r} was not set by kustomize images:")

        # NetworkPolicy: selects the pod, admits only the listening port.
        for np_ in k8s.find(objs, "NetworkPolicy"):
            nps = np_["spec"]
            self.need(k8s.selector_matches(nps["podSelector"], labels),
                      "NetworkPolicy does not select the pod")
            self.need("Ingress" in (nps.get("policyTypes") or []), "NetworkPolicy lacks Ingress")
            for rule in nps.get("ingress") or []:
                ports = rule.get("ports") or []
                self.need(ports, "a NetworkPolicy ingress rule admits every port")
                for p in ports:
                    self.need(k8s.named_port(c, p.get("port")) == port,
                              f"NetworkPolicy admits port {p.get('port')!r}, not {port}")
        self.need(k8s.find(objs, "NetworkPolicy"), "no NetworkPolicy")

        # PDB: selects the pod, never blocks a drain of the single replica.
        for pdb in k8s.find(objs, "PodDisruptionBudget"):
            ps = pdb["spec"]
            self.need(k8s.selector_matches(ps["selector"], labels), "PDB does not select the pod")
            self.need(str(ps.get("maxUnavailable", "x")) not in ("0", "0%")
                      and not (isinstance(ps.get("minAvailable"), int)
                               and ps["minAvailable"] >= spec["replicas"])
                      and str(ps.get("minAvailable")) != "100%",
                      "the PDB allows no disruption: node drains would block forever")

        # The claim template, and claims created ahead of the StatefulSet.
        vcts = {v["metadata"]["name"]: v for v in spec.get("volumeClaimTemplates") or []}
        data = vcts.get("data")
        if self.need(data, "no volumeClaimTemplate 'data'"):
            self.need(data["spec"].get("accessModes") == ["ReadWriteOnce"],
                      "the data claim must be ReadWriteOnce")
            self.check_preprovisioned(sts, vcts)

        # Recommended labels on every object and on the pod template.
        for o in objs + [{"kind": "pod template", "metadata": tpl["metadata"] | {"name": "-"}}]:
            have = o["metadata"].get("labels") or {}
            missing = [k for k in RECOMMENDED_LABELS if not have.get(k)]
            self.need(not missing, f"{o['kind']}/{o['metadata']['name']} lacks labels {missing}")
        return self.problems

    def check_preprovisioned(self, sts: dict, vcts: dict) -> None:
        """A PVC in the render must be one the StatefulSet adopts
        (<template>-<sts>-<ordinal>) and must fit the template; a PV it binds
        to must exist and fit the claim."""
        sname, replicas = sts["metadata"]["name"], sts["spec"]["replicas"]
        for pvc in k8s.find(self.objs, "PersistentVolumeClaim"):
            name = pvc["metadata"]["name"]
            m = re.fullmatch(rf"(.+)-{re.escape(sname)}-(\d+)", name)
            if not self.need(m and m.group(1) in vcts and int(m.group(2)) < replicas,
                             f"PVC {name} is not <template>-{sname}-<ordinal>: never adopted"):
                continue
            tspec, cspec = vcts[m.group(1)]["spec"], pvc["spec"]
            self.need(cspec.get("accessModes") == tspec.get("accessModes"),
                      f"PVC {name} accessModes differ from the template")
            self.need(cspec.get("storageClassName") == tspec.get("storageClassName"),
                      f"PVC {name} storageClassName {cspec.get('storageClassName')!r} differs "
                      f"from the template's {tspec.get('storageClassName')!r}")
            want = quantity(tspec["resources"]["requests"]["storage"])
            got = quantity(cspec["resources"]["requests"]["storage"])
            self.need(got >= want, f"PVC {name} requests less storage than the template")
            if cspec.get("volumeName"):
                pvs = k8s.find(self.objs, "PersistentVolume", cspec["volumeName"])
                if self.need(pvs, f"PVC {name} binds to a missing PV {cspec['volumeName']}"):
                    pv = pvs[0]["spec"]
                    self.need(quantity(pv["capacity"]["storage"]) >= got,
                              f"PV {cspec['volumeName']} is smaller than the claim")
                    self.need(set(cspec["accessModes"]) <= set(pv.get("accessModes") or []),
                              f"PV {cspec['volumeName']} lacks the claim's access modes")
                    self.need(pv.get("storageClassName", "") == cspec.get("storageClassName", ""),
                              f"PV {cspec['volumeName']} storageClassName differs from the claim")
                    self.need(pv.get("persistentVolumeReclaimPolicy") == "Retain",
                              f"PV {cspec['volumeName']} must be Retain")


def run_validator(overlay: str) -> bool:
    cmd = [k8s.VALIDATOR, "-k", os.path.join(k8s.DEPLOY_DIR, overlay), "--restricted"]
    p = engine.run(cmd, check=False, timeout=300)
    return p.returncode == 0


def check_against_binary(overlay: str, objs: list[dict], options: set) -> list[str]:
    """The ConfigMap keys are options; the pod's environment starts counterd
    and every probe path answers 200."""
    problems = []
    sts = k8s.one(objs, "StatefulSet")
    pspec = sts["spec"]["template"]["spec"]
    c = next(c for c in pspec["containers"] if c["name"] == "counterd")
    env = k8s.container_env(objs, pspec, c)
    for key in sorted(k for k in env if k.startswith("COUNTERD_")):
        opt = "--" + key[len("COUNTERD_"):].lower().replace("_", "-")
        if opt not in options:
            problems.append(f"deploy/{overlay}: ConfigMap key {key} is no option of counterd "
                            f"({opt} is not in --help)")
    # Outside a container: listen on loopback, write a temp dir.
    env["COUNTERD_LISTEN"] = "127.0.0.1:0"
    with tempfile.TemporaryDirectory(prefix="counterd-k8s-env-") as data:
        env["COUNTERD_DATA_DIR"] = data
        srv = CounterdServer(env=env, listen=None, log_format=None, hostname="counterd-0")
        try:
            srv.start()
            with srv.client() as http:
                for kind in PROBES:
                    path = c[kind]["httpGet"]["path"]
                    status = http.get(path).status
                    log(f"deploy/{overlay}: {kind} GET {path} -> {status}")
                    if status != 200:
                        problems.append(f"deploy/{overlay}: {kind} {path} answered {status}")
            rc = srv.stop()
            if rc != 0:
                problems.append(f"deploy/{overlay}: counterd exited {rc} after SIGTERM")
        except Exception as e:  # noqa: BLE001 - reported as a problem
            problems.append(f"deploy/{overlay}: counterd did not run with the pod's "
                            f"environment: {e}")
        finally:
            srv.cleanup()
    return problems


def main() -> int:
    if not os.access(k8s.VALIDATOR, os.X_OK):
        engine.skip_or_fail(f"the manifest validator {k8s.VALIDATOR} is not there")
    k8s.kustomize_command()
    problems = []
    rendered = {}
    for overlay in k8s.OVERLAYS:
        if not run_validator(overlay):
            problems.append(f"deploy/{overlay}: ../shared/k8s/validate --restricted failed")
        rendered[overlay] = k8s.render(overlay)
        found = Checker(overlay, rendered[overlay]).run()
        log(f"deploy/{overlay}: {len(rendered[overlay])} objects, "
            f"{'cross-checks ok' if not found else f'{len(found)} problems'}")
        problems += found

    binary = find_binary()
    help_text = run_counterd(["--help"], binary=binary).stdout
    options = set(re.findall(r"--[a-z][a-z0-9-]*", help_text))
    log(f"{binary} --help lists {len(options)} options")
    for overlay in k8s.OVERLAYS:
        problems += check_against_binary(overlay, rendered[overlay], options)

    # Why enableServiceLinks: false is there (informational): counterd
    # tolerates the links of the Service "counterd", but not those of any
    # other Service whose name starts with "counterd-".
    services = k8s.find(rendered["base"], "Service")
    extra = {"metadata": {"name": "counterd-metrics"},
             "spec": {"ports": [{"name": "metrics", "port": 9090}]}}
    for label, svcs in (("this base's Services", services),
                        ("one more Service counterd-metrics", services + [extra])):
        links = k8s.service_link_env(svcs)
        with tempfile.TemporaryDirectory(prefix="counterd-k8s-links-") as data:
            try:
                p = run_counterd(["--listen", "127.0.0.1:0", "--data-dir", data], env=links,
                                 binary=binary, timeout=3)
                verdict = f"exits {p.returncode}: {p.stderr.strip()[:160]}"
            except subprocess.TimeoutExpired:
                verdict = "starts"
        log(f"note: with the Service links of {label} in its environment, counterd {verdict}")

    for line in problems:
        log("PROBLEM: " + line)
    if problems:
        log(f"FAIL: {len(problems)} problems")
        return 1
    log("PASS: every overlay validates and fits the binary and the image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
