"""Render deploy/ with kustomize and model what Kubernetes does with it.

Stdlib only: the rendered YAML is turned into JSON by kubectl itself
(`kubectl label --local ... -o json` works without a cluster), so the tests
need no YAML parser.

- render(overlay): the objects `kubectl kustomize deploy/<overlay>` emits.
- statefulset_pod(): the Pod and PVCs the StatefulSet controller creates for
  one ordinal (name, hostname/subdomain, labels, claims from
  volumeClaimTemplates).
- container_env(): the environment the kubelet gives a container: envFrom
  ConfigMaps, env, and the Service links when enableServiceLinks is not
  false.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from typing import Iterable, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "container"))
import engine  # noqa: E402

DEPLOY_DIR = os.path.join(engine.SOURCE_DIR, "deploy")
OVERLAYS = ("base", "overlays/dev", "overlays/local-pv", "overlays/tls")
# Prometheus Operator objects (CRDs: no schema in ../shared/k8s).
MONITORING = "monitoring"
VALIDATOR = os.environ.get(
    "COUNTERD_K8S_VALIDATE",
    os.path.join(engine.SOURCE_DIR, "..", "shared", "k8s", "validate"))


def kustomize_command() -> list[str]:
    """kubectl kustomize, else kustomize build; skips (fails in CI) if neither."""
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    engine.skip_or_fail("neither kubectl nor kustomize is installed: cannot render deploy/")


def render_yaml(overlay: str) -> str:
    p = subprocess.run(kustomize_command() + [os.path.join(DEPLOY_DIR, overlay)],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise AssertionError(f"kustomize failed for deploy/{overlay}:\n{p.stderr}")
    return p.stdout


def yaml_to_objects(text: str) -> list[dict]:
    """Parses a multi-document YAML stream of Kubernetes objects.

    Removing a label nobody has, locally, is a no-op that prints the objects
    as JSON (it adds an empty `labels: {}` to objects without labels)."""
    if not shutil.which("kubectl"):
        engine.skip_or_fail("kubectl is not installed: cannot read the rendered YAML")
    p = subprocess.run(["kubectl", "label", "--local", "-f", "-", "-o", "json",
                        "counterd.test/render-noop-"],
                       input=text, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"kubectl could not read the rendered YAML:\n{p.stderr}")
    decoder, out, pos, s = json.JSONDecoder(), [], 0, p.stdout
    while True:
        while pos < len(s) and s[pos].isspace():
            pos += 1
        if pos >= len(s):
            break
        obj, pos = decoder.raw_decode(s, pos)
        out.extend(obj["items"] if obj.get("kind") == "List" else [obj])
    return out


def render(overlay: str) -> list[dict]:
    return yaml_to_objects(render_yaml(overlay))


def find(objs: Iterable[dict], kind: str, name: Optional[str] = None) -> list[dict]:
    return [o for o in objs
            if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)]


def one(objs: Iterable[dict], kind: str, name: Optional[str] = None) -> dict:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected exactly one {kind} {name or ''}, found {len(found)}"
    return found[0]


def selector_matches(selector: dict, labels: dict) -> bool:
    """matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist)
    against |labels|; an empty selector matches nothing here (for our
    purposes a Service/NetworkPolicy/PDB must select explicitly)."""
    match = dict(selector.get("matchLabels") or {})
    exprs = selector.get("matchExpressions") or []
    if not match and not exprs:
        return False
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for e in exprs:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def statefulset_pod(sts: dict, ordinal: int = 0) -> tuple[dict, list[dict]]:
    """The Pod (and the PVCs) the StatefulSet controller creates for
    |ordinal|: same template, name <sts>-<ordinal>, hostname = pod name,
    subdomain = serviceName, the controller's identity labels, and one
    persistentVolumeClaim volume per volumeClaimTemplate, claim
    <template>-<sts>-<ordinal>."""
    name = f"{sts['metadata']['name']}-{ordinal}"
    template = copy.deepcopy(sts["spec"]["template"])
    labels = dict(template.get("metadata", {}).get("labels") or {})
    labels.update({"statefulset.kubernetes.io/pod-name": name,
                   "apps.kubernetes.io/pod-index": str(ordinal)})
    spec = template["spec"]
    spec["hostname"] = name
    spec["subdomain"] = sts["spec"]["serviceName"]
    volumes = spec.setdefault("volumes", [])
    claims = []
    for vct in sts["spec"].get("volumeClaimTemplates") or []:
        claim = f"{vct['metadata']['name']}-{name}"
        volumes.append({"name": vct["metadata"]["name"],
                        "persistentVolumeClaim": {"claimName": claim}})
        claims.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                       "metadata": {"name": claim,
                                    "labels": dict(vct["metadata"].get("labels") or {})},
                       "spec": copy.deepcopy(vct["spec"])})
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": labels,
                        "annotations": dict(template.get("metadata", {}).get("annotations") or {})},
           "spec": spec}
    return pod, claims


def service_link_env(services: Iterable[dict], fake_ip: str = "10.96.0.10") -> dict:
    """The Docker-links style variables the kubelet injects for every
    Service with a cluster IP in the namespace (enableServiceLinks: true,
    the default): FOO_SERVICE_HOST, FOO_SERVICE_PORT, FOO_PORT_80_TCP, ..."""
    env = {}
    for svc in services:
        spec = svc.get("spec") or {}
        if spec.get("clusterIP") == "None" or spec.get("type") == "ExternalName":
            continue
        prefix = re.sub(r"[^A-Za-z0-9]", "_", svc["metadata"]["name"]).upper()
        ports = spec.get("ports") or []
        if not ports:
            continue
        ip = spec.get("clusterIP") or fake_ip
        host = f"[{ip}]" if ":" in ip else ip   # net.JoinHostPort
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for p in ports:
            if p.get("name"):
                pname = re.sub(r"[^A-Za-z0-9]", "_", p["name"]).upper()
                env[f"{prefix}_SERVICE_PORT_{pname}"] = str(p["port"])
        first = ports[0]
        proto = (first.get("protocol") or "TCP").lower()
        env[f"{prefix}_PORT"] = f"{proto}://{host}:{first['port']}"
        for p in ports:
            proto = (p.get("protocol") or "TCP")
            base = f"{prefix}_PORT_{p['port']}_{proto.upper()}"
            env[base] = f"{proto.lower()}://{host}:{p['port']}"
            env[f"{base}_PROTO"] = proto.lower()
            env[f"{base}_PORT"] = str(p["port"])
            env[f"{base}_ADDR"] = ip
    return env


def container_env(objs: list[dict], pod_spec: dict, container: dict) -> dict:
    """The environment the kubelet builds for |container| (ConfigMaps only;
    Secrets and fieldRefs are not used by counterd's manifests)."""
    env: dict = {}
    if pod_spec.get("enableServiceLinks", True):
        env.update(service_link_env(find(objs, "Service")))
    for src in container.get("envFrom") or []:
        ref = src.get("configMapRef")
        assert ref, f"unsupported envFrom source {src}"
        cms = find(objs, "ConfigMap", ref["name"])
        assert cms or ref.get("optional"), f"envFrom names a missing ConfigMap {ref['name']}"
        for k, v in (cms[0].get("data") or {}).items() if cms else ():
            env[src.get("prefix", "") + k] = v
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "configMapKeyRef" in (e.get("valueFrom") or {}):
            ref = e["valueFrom"]["configMapKeyRef"]
            env[e["name"]] = one(objs, "ConfigMap", ref["name"])["data"][ref["key"]]
        else:
            raise AssertionError(f"unsupported env source {e}")
    return env


def named_port(container: dict, port) -> Optional[int]:
    """A probe's/Service's port (number or name) as the container port
    number, or None if the container declares no such port."""
    for p in container.get("ports") or []:
        if port == p.get("name") or port == p.get("containerPort"):
            return p["containerPort"]
    return None


def listen_port(env: dict) -> int:
    """The port counterd listens on under |env| (its default is 8080)."""
    addr = env.get("COUNTERD_LISTEN", "0.0.0.0:8080")
    return int(addr.rpartition(":")[2])


# --------------------------------------------------------------------------
# Options the manifests set before this counterd has them, and the Secrets
# the manifests mount.
# --------------------------------------------------------------------------

# Options deploy/ already sets that other branches add to counterd (issue
# 10): authentication and TLS. Where the binary does not list one yet, the
# tests leave that variable out when they start it. Once the binary lists
# it, the tests FAIL until its line here is deleted, so the list cannot rot.
PENDING_OPTIONS = {
    "COUNTERD_TLS_CERT_FILE": "--tls-cert-file (TLS, issue 10 §3)",
    "COUNTERD_TLS_KEY_FILE": "--tls-key-file (TLS, issue 10 §3)",
}
# A token with every scope, for the Secret counterd-tokens where an overlay
# does not generate one (the base expects the operator to create it).
TEST_TOKEN = "k8s-test-token-every-scope"


def env_option(key: str) -> str:
    """COUNTERD_FOO_BAR -> --foo-bar."""
    return "--" + key[len("COUNTERD_"):].lower().replace("_", "-")


def counterd_options(binary: str) -> set:
    p = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if not k.startswith("COUNTERD_")})
    return set(re.findall(r"--[a-z][a-z0-9-]*", p.stdout))


def without_pending(env: dict, options: set) -> tuple[dict, list, list]:
    """(|env| minus the pending options this binary lacks, the keys left
    out, problems: pending options the binary has by now)."""
    out, left_out, problems = dict(env), [], []
    for key, what in PENDING_OPTIONS.items():
        if env_option(key) in options:
            problems.append(f"counterd has {env_option(key)} now: delete {key} from "
                            "PENDING_OPTIONS in tests/k8s/k8s_render.py")
        elif key in out:
            del out[key]
            left_out.append(key)
    return out, left_out, problems


def secret_data(secret: dict) -> dict:
    """A Secret's files: data (base64) and stringData, as bytes."""
    files = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    files.update({k: v.encode() for k, v in (secret.get("stringData") or {}).items()})
    return files


def secret_mounts(objs: list[dict], pod_spec: dict, container: dict) -> list[dict]:
    """The container's mounts of Secret volumes: mountPath, readOnly,
    subPath, secretName, and the Secret itself if the render has it."""
    volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
    out = []
    for m in container.get("volumeMounts") or []:
        vol = volumes.get(m["name"]) or {}
        if "secret" not in vol:
            continue
        name = vol["secret"]["secretName"]
        found = find(objs, "Secret", name)
        out.append({"mountPath": m["mountPath"], "readOnly": m.get("readOnly") is True,
                    "subPath": m.get("subPath"), "secretName": name,
                    "items": vol["secret"].get("items"),
                    "secret": found[0] if found else None})
    return out


def mount_of(mounts: list[dict], path: str) -> Optional[dict]:
    """The Secret mount |path| lies in, if any."""
    for m in mounts:
        if path.startswith(m["mountPath"].rstrip("/") + "/"):
            return m
    return None


def materialize_secrets(mounts: list[dict], supplied: dict, root: str) -> dict:
    """Writes each mounted Secret's files (from the render, else from
    |supplied|[secretName]) under |root|, 0440 as the kubelet does with
    defaultMode 0440; returns {mountPath: local dir}."""
    out = {}
    for i, m in enumerate(mounts):
        files = secret_data(m["secret"]) if m["secret"] else supplied.get(m["secretName"])
        if files is None:
            continue
        d = os.path.join(root, f"secret-{i}-{m['secretName']}")
        os.makedirs(d, exist_ok=True)
        for name, content in files.items():
            path = os.path.join(d, name)
            with open(path, "wb") as f:
                f.write(content)
            os.chmod(path, 0o440)
        out[m["mountPath"]] = d
    return out


def relocate(env: dict, local: dict) -> dict:
    """|env| with values under a mount path pointed at its local copy."""
    out = dict(env)
    for key, value in env.items():
        for mount, d in local.items():
            if value.startswith(mount.rstrip("/") + "/"):
                out[key] = os.path.join(d, value[len(mount.rstrip("/")) + 1:])
    return out


def test_tokens_secret() -> dict:
    """counterd-tokens with TEST_TOKEN (every scope)."""
    digest = hashlib.sha256(TEST_TOKEN.encode()).hexdigest()
    doc = {"tokens": [{"name": "k8s-test", "sha256": digest,
                       "scopes": ["read", "write", "admin", "metrics"]}]}
    return {"tokens.json": json.dumps(doc).encode()}


def self_signed_tls(work: str) -> dict:
    """A kubernetes.io/tls Secret's files for CN counterd (127.0.0.1 too)."""
    if not shutil.which("openssl"):
        engine.skip_or_fail("openssl is not installed: cannot make a test certificate")
    key, crt = os.path.join(work, "tls.key"), os.path.join(work, "tls.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=counterd",
                    "-addext", "subjectAltName=DNS:counterd,IP:127.0.0.1",
                    "-keyout", key, "-out", crt], check=True, capture_output=True, timeout=60)
    with open(crt, "rb") as c, open(key, "rb") as k:
        return {"tls.crt": c.read(), "tls.key": k.read()}
