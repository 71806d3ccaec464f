#!/usr/bin/env python3
"""deploy/ renders, validates, and fits the binary and the image (issues 7,
10 §4, 14 §4).

For every overlay (base, dev, local-pv, tls):
1. `kubectl kustomize` + ../shared/k8s/validate --restricted: strict schema
   validation against Kubernetes' OpenAPI plus the restricted Pod Security
   Standard.
2. What no schema can check: serviceName names a headless Service that
   exists; every selector (Services, NetworkPolicy, PDB) selects the pod
   template; Service targetPorts, probe ports and NetworkPolicy ports are the
   port counterd listens on (COUNTERD_LISTEN in the ConfigMap); the data
   volume is mounted where COUNTERD_DATA_DIR points; the grace period
   outlasts the drain timeout; the PDB does not block node drains; service
   links are off (counterd never reads them); uid/gid match the
   Dockerfile's USER; a pre-provisioned claim (local-pv) has the name and
   spec the StatefulSet adopts; recommended labels everywhere; the tokens
   file and the TLS pair come from read-only, whole-directory Secret mounts
   (counterd-tokens, counterd-tls of type kubernetes.io/tls); probes use
   HTTPS exactly where TLS is on; no Secret outside the dev overlay, whose
   tokens are the ones deploy/README.md documents.
3. deploy/monitoring: the validator (CRDs have no schema here), the
   PrometheusRule holds the rules file's alerts, the ServiceMonitor selects
   only the client Service, through a port it has, with the metrics token.
4. Against the real binary ($COUNTERD_BIN): every ConfigMap key is an option
   `counterd --help` lists (or a PENDING_OPTIONS entry of k8s_render.py
   while counterd lacks it), and counterd started with exactly the
   environment the kubelet would build (ConfigMap + env, the Secrets' files
   where the pod mounts them) answers every probe the way the kubelet asks
   with 200, without a token; with authentication on, /metrics answers 401
   without a token and 200 with the metrics token. It also starts with the
   service links of several counterd-* Services and still refuses
   COUNTERD_PORT=8080.

Skips (exit 77) without kubectl or the validator; fails instead under CI=true.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import ssl
import sys
import tempfile
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import k8s_render as k8s  # noqa: E402
from k8s_render import engine  # noqa: E402
from engine import log  # noqa: E402

sys.path.insert(0, os.path.join(engine.SOURCE_DIR, "tests", "integration"))
from counterd_harness import CounterdServer, find_binary, run_counterd, wait_until  # noqa: E402

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
        tls = bool(env.get("COUNTERD_TLS_CERT_FILE") or env.get("COUNTERD_TLS_KEY_FILE"))
        port_name, client_port = ("https", 443) if tls else ("http", 80)

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
                      and [p["port"] for p in ports] == [client_port]
                      and ports[0].get("name") == port_name,
                      f"Service counterd must be ClusterIP port {client_port} named {port_name}")

        # The ConfigMap, the port and the data dir agree with the pod.
        self.need(k8s.named_port(c, port_name) == port,
                  f"container port {port_name!r} is {k8s.named_port(c, port_name)}, but "
                  f"COUNTERD_LISTEN makes counterd listen on {port}")
        mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts") or []}
        self.need(mounts.get("data") == env.get("COUNTERD_DATA_DIR", "/data"),
                  f"volume 'data' is mounted at {mounts.get('data')}, but counterd writes "
                  f"{env.get('COUNTERD_DATA_DIR', '/data')}")
        # counterd ignores the links of counterd-* Services (the binary check
        # below), but never uses them: they only fill the environment.
        self.need(pspec.get("enableServiceLinks") is False,
                  "enableServiceLinks must be false (counterd never reads the links)")

        # Probes: HTTP on the listening port; liveness never on the disk.
        paths = {}
        for kind in PROBES:
            probe = c.get(kind)
            if not self.need(probe and "httpGet" in probe, f"{kind} must be an httpGet probe"):
                continue
            paths[kind] = probe["httpGet"]["path"]
            self.need(k8s.named_port(c, probe["httpGet"]["port"]) == port,
                      f"{kind} port {probe['httpGet']['port']!r} is not the listening port {port}")
            scheme = probe["httpGet"].get("scheme", "HTTP")
            self.need(scheme == ("HTTPS" if tls else "HTTP"),
                      f"{kind} uses scheme {scheme}, but TLS is {'on' if tls else 'off'}")
        self.need(paths.get("livenessProbe") == "/livez", "livenessProbe must ask /livez")
        self.need(paths.get("readinessProbe") == "/readyz", "readinessProbe must ask /readyz")
        self.need(paths.get("startupProbe") in ("/readyz", "/livez"),
                  "startupProbe must ask /readyz or /livez")
        startup = c.get("startupProbe") or {}
        budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
        self.need(budget >= 300, f"startupProbe allows only {budget}s for recovery")

        self.check_secrets(pspec, c, env)

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

    def check_secrets(self, pspec: dict, c: dict, env: dict) -> None:
        """The tokens file and the TLS pair come from read-only, whole-
        directory Secret mounts (a subPath mount never sees an update, so
        rotation would need a restart); only the dev overlay renders a
        Secret, and a rendered Secret has what counterd reads from it."""
        mounts = k8s.secret_mounts(self.objs, pspec, c)
        for m in mounts:
            self.need(m["readOnly"], f"Secret {m['secretName']} is mounted writable")
            self.need(not m["subPath"] and not m["items"],
                      f"Secret {m['secretName']} is mounted with subPath/items: updates "
                      "(rotation) would not reach the file")
        tokens = env.get("COUNTERD_AUTH_TOKENS_FILE")
        if self.need(tokens, "COUNTERD_AUTH_TOKENS_FILE is not set: authentication is off"):
            m = k8s.mount_of(mounts, tokens)
            if self.need(m and m["secretName"] == "counterd-tokens",
                         f"the tokens file {tokens} is not in the Secret counterd-tokens' mount"):
                name = tokens[len(m["mountPath"].rstrip("/")) + 1:]
                if m["secret"]:
                    files = k8s.secret_data(m["secret"])
                    self.need(name in files and json.loads(files[name]).get("tokens"),
                              f"Secret counterd-tokens has no {name} with tokens")
        tls = {k: env.get(k) for k in ("COUNTERD_TLS_CERT_FILE", "COUNTERD_TLS_KEY_FILE")}
        if any(tls.values()):
            self.need(all(tls.values()), "TLS needs both COUNTERD_TLS_CERT_FILE and _KEY_FILE")
            for key, path in tls.items():
                m = k8s.mount_of(mounts, path or "")
                want = "tls.crt" if key.endswith("CERT_FILE") else "tls.key"
                self.need(m and m["secretName"] == "counterd-tls"
                          and path == m["mountPath"].rstrip("/") + "/" + want,
                          f"{key}={path} is not {want} in the Secret counterd-tls' mount")
                if m and m["secret"]:
                    self.need(m["secret"].get("type") == "kubernetes.io/tls",
                              "Secret counterd-tls is not of type kubernetes.io/tls")
        for secret in k8s.find(self.objs, "Secret"):
            self.need(self.overlay == "overlays/dev",
                      f"Secret {secret['metadata']['name']} is in the render: no secret "
                      "material in the repository outside the dev overlay")

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


def run_validator(overlay: str, *extra: str) -> bool:
    cmd = [k8s.VALIDATOR, "-k", os.path.join(k8s.DEPLOY_DIR, overlay), *extra]
    p = engine.run(cmd, check=False, timeout=300)
    return p.returncode == 0


def documented_dev_tokens() -> dict:
    """{name: (token, scopes, sha256)} from deploy/README.md, "The dev tokens"."""
    with open(os.path.join(k8s.DEPLOY_DIR, "README.md"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^### The dev tokens\n(.*?)^#", text, re.S | re.M)
    assert m, "deploy/README.md has no section '### The dev tokens'"
    rows = re.findall(r"^\| `([\w.-]+)` \| `([^`]+)` \| ([a-z, ]+) \| `([0-9a-f]{64})` \|$",
                      m.group(1), re.M)
    assert rows, "no token rows in deploy/README.md, 'The dev tokens'"
    return {name: (token, set(scopes.replace(" ", "").split(",")), digest)
            for name, token, scopes, digest in rows}


def check_dev_tokens(objs: list[dict]) -> list[str]:
    """The dev overlay's tokens file holds exactly the documented throwaway
    tokens' hashes and scopes, and its metrics-token Secret is the
    documented metrics token."""
    problems = []
    documented = documented_dev_tokens()
    for name, (token, _, digest) in documented.items():
        if hashlib.sha256(token.encode()).hexdigest() != digest:
            problems.append(f"deploy/README.md: the documented sha256 of {name}'s token is wrong")
    files = k8s.secret_data(k8s.one(objs, "Secret", "counterd-tokens"))
    entries = {e["name"]: e for e in json.loads(files["tokens.json"])["tokens"]}
    if set(entries) != set(documented):
        problems.append(f"overlays/dev/tokens.json names {sorted(entries)}, the README "
                        f"documents {sorted(documented)}")
    for name, e in entries.items():
        if name in documented:
            token, scopes, digest = documented[name]
            if e.get("sha256") != digest or set(e.get("scopes") or []) != scopes:
                problems.append(f"overlays/dev/tokens.json: {name} differs from the README "
                                f"(hash or scopes)")
    metrics = k8s.secret_data(k8s.one(objs, "Secret", "counterd-metrics-token")).get("token", b"")
    owners = [n for n, (t, scopes, _) in documented.items()
              if t.encode() == metrics and "metrics" in scopes]
    if not owners:
        problems.append("Secret counterd-metrics-token is no documented token with the "
                        "metrics scope")
    log(f"deploy/overlays/dev: tokens {sorted(entries)} match the README; "
        f"counterd-metrics-token is {owners}")
    return problems


def check_monitoring(rendered: dict) -> list[str]:
    """deploy/monitoring: CRDs without schemas here, so: it renders, the
    validator's other checks pass, the PrometheusRule has the rules file's
    alerts, and the ServiceMonitor scrapes the client Service (only) through
    a port it has, with the metrics token the dev overlay generates."""
    problems = []
    where = "deploy/monitoring"
    if not run_validator(k8s.MONITORING, "--ignore-missing-schemas"):
        problems.append(f"{where}: ../shared/k8s/validate failed")
    objs = k8s.render(k8s.MONITORING)
    rule = k8s.one(objs, "PrometheusRule", "counterd")
    sm = k8s.one(objs, "ServiceMonitor", "counterd")
    with open(os.path.join(k8s.DEPLOY_DIR, "monitoring", "counterd-rules.yaml"),
              encoding="utf-8") as f:
        in_file = re.findall(r"^\s*- alert: (\S+)\s*$", f.read(), re.M)
    in_rule = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    if not in_file or in_file != in_rule:
        problems.append(f"{where}: the PrometheusRule's alerts {in_rule} are not the rules "
                        f"file's {in_file}")
    for r in (r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r):
        if (r.get("labels") or {}).get("severity") not in ("critical", "warning") or \
                not (r.get("annotations") or {}).get("runbook_url"):
            problems.append(f"{where}: alert {r['alert']} lacks a severity or a runbook_url")
    spec = sm["spec"]
    if spec.get("namespaceSelector"):
        problems.append(f"{where}: the ServiceMonitor must watch its own namespace only")
    for overlay in ("base", "overlays/dev", "overlays/local-pv"):
        selected = [svc for svc in k8s.find(rendered[overlay], "Service")
                    if k8s.selector_matches(spec["selector"],
                                            svc["metadata"].get("labels") or {})]
        names = [svc["metadata"]["name"] for svc in selected]
        if names != ["counterd"]:
            problems.append(f"{where}: in deploy/{overlay} the ServiceMonitor selects {names}, "
                            "not just the client Service counterd")
            continue
        ports = {p.get("name") for p in selected[0]["spec"]["ports"]}
        for ep in spec["endpoints"]:
            if ep.get("port") not in ports:
                problems.append(f"{where}: endpoint port {ep.get('port')!r} is no port of "
                                f"Service counterd in deploy/{overlay} ({sorted(ports)})")
    for ep in spec["endpoints"]:
        cred = ((ep.get("authorization") or {}).get("credentials") or {})
        if ep.get("path") != "/metrics" or (ep.get("authorization") or {}).get("type") != \
                "Bearer" or (cred.get("name"), cred.get("key")) != ("counterd-metrics-token",
                                                                     "token"):
            problems.append(f"{where}: the endpoint must GET /metrics with the Bearer token "
                            "from Secret counterd-metrics-token, key token")
    dev_secret = k8s.find(rendered["overlays/dev"], "Secret", "counterd-metrics-token")
    if not dev_secret or "token" not in k8s.secret_data(dev_secret[0]):
        problems.append("deploy/overlays/dev does not generate counterd-metrics-token (key token)")
    for o in objs:
        missing = [k for k in RECOMMENDED_LABELS if not (o["metadata"].get("labels") or {}).get(k)]
        if missing:
            problems.append(f"{where}: {o['kind']}/{o['metadata']['name']} lacks labels {missing}")
    log(f"{where}: PrometheusRule with {len(in_rule)} alerts, ServiceMonitor selecting the "
        f"client Service: {'ok' if not problems else f'{len(problems)} problems'}")
    return problems


def probe_client(host: str, port: int, cafile: Optional[str]):
    """A GET function over HTTP, or HTTPS verified against |cafile| (the
    kubelet skips verification; verifying here proves counterd serves the
    mounted certificate)."""
    def get(path: str, token: Optional[str] = None) -> int:
        if cafile:
            ctx = ssl.create_default_context(cafile=cafile)
            conn = http.client.HTTPSConnection(host, port, timeout=10, context=ctx)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=10)
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
            r = conn.getresponse()
            r.read()
            return r.status
        finally:
            conn.close()
    return get


def check_against_binary(overlay: str, objs: list[dict], options: set) -> list[str]:
    """The ConfigMap keys are options; the pod's environment, with the
    Secrets' files where the pod mounts them, starts counterd; every probe
    answers 200 the way the kubelet asks (HTTP or HTTPS, no token); with
    authentication on, /metrics needs the metrics token."""
    problems = []
    sts = k8s.one(objs, "StatefulSet")
    pspec = sts["spec"]["template"]["spec"]
    c = next(c for c in pspec["containers"] if c["name"] == "counterd")
    env, left_out, _ = k8s.without_pending(k8s.container_env(objs, pspec, c), options)
    if left_out:
        log(f"deploy/{overlay}: pending options left out (counterd does not have them yet): "
            + ", ".join(f"{k} ({k8s.PENDING_OPTIONS[k]})" for k in left_out))
    for key in sorted(k for k in env if k.startswith("COUNTERD_")):
        opt = k8s.env_option(key)
        if opt not in options:
            problems.append(f"deploy/{overlay}: ConfigMap key {key} is no option of counterd "
                            f"({opt} is not in --help)")
    dev = documented_dev_tokens() if overlay == "overlays/dev" else {}
    ops_token = next((t for t, scopes, _ in dev.values() if "write" in scopes), k8s.TEST_TOKEN)
    metrics_token = next((t for t, scopes, _ in dev.values() if scopes == {"metrics"}),
                         k8s.TEST_TOKEN)
    # Outside a container: listen on loopback, write a temp dir, the
    # Secrets' files in a temp dir (the render's, else test ones).
    env["COUNTERD_LISTEN"] = "127.0.0.1:0"
    with tempfile.TemporaryDirectory(prefix="counterd-k8s-env-") as work:
        env["COUNTERD_DATA_DIR"] = os.path.join(work, "data")
        os.mkdir(env["COUNTERD_DATA_DIR"])
        tls = "COUNTERD_TLS_CERT_FILE" in env
        supplied = {"counterd-tokens": k8s.test_tokens_secret()}
        if tls:
            supplied["counterd-tls"] = k8s.self_signed_tls(work)
        local = k8s.materialize_secrets(k8s.secret_mounts(objs, pspec, c), supplied, work)
        env = k8s.relocate(env, local)
        srv = CounterdServer(env=env, listen=None, log_format=None, hostname="counterd-0")
        try:
            srv.start(wait_ready=not tls)
            cafile = env["COUNTERD_TLS_CERT_FILE"] if tls else None
            get = probe_client(srv.host, srv.port, cafile)
            startup = c["startupProbe"]["httpGet"]["path"]
            if tls:
                def started():
                    try:
                        return get(startup) == 200
                    except OSError:
                        return False
                wait_until(started, 30, 0.05, f"{startup} over HTTPS")
            for kind in PROBES:
                path = c[kind]["httpGet"]["path"]
                status = get(path)
                log(f"deploy/{overlay}: {kind} GET {path} over {'HTTPS' if tls else 'HTTP'} "
                    f"(manifest: {c[kind]['httpGet'].get('scheme', 'HTTP')}), no token -> {status}")
                if status != 200:
                    problems.append(f"deploy/{overlay}: {kind} {path} answered {status}")
            if "COUNTERD_AUTH_TOKENS_FILE" in env:
                seen = (get("/metrics"), get("/metrics", metrics_token),
                        get("/counters", ops_token))
                log(f"deploy/{overlay}: GET /metrics without a token -> {seen[0]}, with the "
                    f"metrics token -> {seen[1]}; GET /counters with the ops token -> {seen[2]}")
                if seen != (401, 200, 200):
                    problems.append(f"deploy/{overlay}: authentication answers {seen}, "
                                    "expected (401, 200, 200)")
            rc = srv.stop()
            if rc != 0:
                problems.append(f"deploy/{overlay}: counterd exited {rc} after SIGTERM")
        except Exception as e:  # noqa: BLE001 - reported as a problem
            problems.append(f"deploy/{overlay}: counterd did not run with the pod's "
                            f"environment: {e}")
        finally:
            srv.cleanup()
    return problems


def check_service_links(binary: str, base: list[dict]) -> list[str]:
    """With service links on (the Kubernetes default), every Service named
    counterd or counterd-* lands in COUNTERD_*: counterd must start with the
    links of the base's Services plus a PostgreSQL and a metrics Service,
    and still refuse a variable that only looks like one."""
    problems = []
    extra = [{"metadata": {"name": "counterd-postgres"},
              "spec": {"ports": [{"name": "postgres", "port": 5432}]}},
             {"metadata": {"name": "counterd-metrics"},
              "spec": {"clusterIP": "fd00:10:96::1a",
                       "ports": [{"name": "metrics", "port": 9090},
                                 {"name": "dns", "port": 53, "protocol": "UDP"}]}}]
    links = k8s.service_link_env(k8s.find(base, "Service") + extra)
    names = sorted(k for k in links if k.startswith("COUNTERD_"))
    srv = CounterdServer(env=links, binary=binary)
    try:
        srv.start()
        rc = srv.stop()
        log(f"counterd started with {len(names)} service-link variables of counterd, "
            f"counterd-postgres and counterd-metrics (e.g. {names[:3]}), exit {rc}")
        if rc != 0:
            problems.append(f"counterd exited {rc} with service links in its environment")
    except Exception as e:  # noqa: BLE001 - reported as a problem
        problems.append(f"counterd does not start with Kubernetes service links: {e}")
    finally:
        srv.cleanup()
    with tempfile.TemporaryDirectory(prefix="counterd-k8s-links-") as data:
        p = run_counterd(["--listen", "127.0.0.1:0", "--data-dir", data],
                         env=dict(links, COUNTERD_PORT="8080"), binary=binary, timeout=30)
    log(f"with COUNTERD_PORT=8080 (not a link's value) counterd exits {p.returncode}: "
        f"{p.stderr.strip()[:120]}")
    if p.returncode != 2 or "variable COUNTERD_PORT " not in p.stderr:
        problems.append("counterd did not refuse COUNTERD_PORT=8080 (no service link's value) "
                        f"by name: exit {p.returncode}: {p.stderr.strip()[:160]}")
    return problems


def main() -> int:
    if not os.access(k8s.VALIDATOR, os.X_OK):
        engine.skip_or_fail(f"the manifest validator {k8s.VALIDATOR} is not there")
    k8s.kustomize_command()
    problems = []
    rendered = {}
    for overlay in k8s.OVERLAYS:
        if not run_validator(overlay, "--restricted"):
            problems.append(f"deploy/{overlay}: ../shared/k8s/validate --restricted failed")
        rendered[overlay] = k8s.render(overlay)
        found = Checker(overlay, rendered[overlay]).run()
        log(f"deploy/{overlay}: {len(rendered[overlay])} objects, "
            f"{'cross-checks ok' if not found else f'{len(found)} problems'}")
        problems += found
    problems += check_dev_tokens(rendered["overlays/dev"])
    problems += check_monitoring(rendered)

    binary = find_binary()
    options = k8s.counterd_options(binary)
    log(f"{binary} --help lists {len(options)} options")
    problems += k8s.without_pending({}, options)[2]
    for overlay in k8s.OVERLAYS:
        problems += check_against_binary(overlay, rendered[overlay], options)
    problems += check_service_links(binary, rendered["base"])

    for line in problems:
        log("PROBLEM: " + line)
    if problems:
        log(f"FAIL: {len(problems)} problems")
        return 1
    log("PASS: every overlay validates and fits the binary and the image; monitoring fits "
        "the base")
    return 0


if __name__ == "__main__":
    sys.exit(main())
