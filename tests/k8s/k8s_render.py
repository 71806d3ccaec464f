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

import copy
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
OVERLAYS = ("base", "overlays/dev", "overlays/local-pv")
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
        env[f"{prefix}_SERVICE_HOST"] = fake_ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for p in ports:
            if p.get("name"):
                pname = re.sub(r"[^A-Za-z0-9]", "_", p["name"]).upper()
                env[f"{prefix}_SERVICE_PORT_{pname}"] = str(p["port"])
        first = ports[0]
        proto = (first.get("protocol") or "TCP").lower()
        env[f"{prefix}_PORT"] = f"{proto}://{fake_ip}:{first['port']}"
        for p in ports:
            proto = (p.get("protocol") or "TCP")
            base = f"{prefix}_PORT_{p['port']}_{proto.upper()}"
            env[base] = f"{proto.lower()}://{fake_ip}:{p['port']}"
            env[f"{base}_PROTO"] = proto.lower()
            env[f"{base}_PORT"] = str(p["port"])
            env[f"{base}_ADDR"] = fake_ip
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
