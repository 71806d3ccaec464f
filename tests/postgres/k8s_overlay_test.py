#!/usr/bin/env python3
"""deploy/overlays/postgres and its cloudnativepg example: rendered with
kustomize, validated with ../shared/k8s/validate --restricted, and checked
for what the postgres backend needs and no schema can say: a Deployment of
3 replicas without volumes, the URL from the Secret CloudNativePG creates,
readiness on /readyz and liveness on /livez, the autoscaler and PDB on the
Deployment, spread over nodes, every COUNTERD_* setting an option of the
real binary, and synchronous replication with dataDurability: required.
Exit 0 ok, 1 problems, 77 skipped (no validator or kubectl; fails under CI).
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "k8s"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import k8s_render as k8s  # noqa: E402
import engine  # noqa: E402
from counterd_harness import find_binary, run_counterd  # noqa: E402

OVERLAY = "overlays/postgres"
CNPG = "overlays/postgres/cloudnativepg"


def main() -> int:
    if not os.access(k8s.VALIDATOR, os.X_OK):
        engine.skip_or_fail(f"the manifest validator {k8s.VALIDATOR} is not there")
    k8s.kustomize_command()
    problems = []

    def check(ok, what):
        if not ok:
            problems.append(what)

    for overlay, extra in ((OVERLAY, []), (CNPG, ["--skip-kind", "Cluster"])):
        r = subprocess.run([k8s.VALIDATOR, "-k", os.path.join(k8s.DEPLOY_DIR, overlay),
                            "--restricted", *extra], capture_output=True, text=True)
        print(f"deploy/{overlay}: {r.stdout.strip()}")
        check(r.returncode == 0, f"deploy/{overlay}: validate failed: {r.stdout}{r.stderr}")

    objs = k8s.render(OVERLAY)
    check(not k8s.find(objs, "StatefulSet"), "the StatefulSet is still there")
    check(not k8s.find(objs, "PersistentVolumeClaim"), "a PVC is there")
    dep = k8s.one(objs, "Deployment", "counterd")
    spec = dep["spec"]["template"]["spec"]
    check(dep["spec"]["replicas"] == 3, "replicas != 3")
    check(not spec.get("volumes"), "the Deployment has volumes")
    check(spec.get("enableServiceLinks") is False, "enableServiceLinks is not false")
    keys = {c["topologyKey"] for c in spec.get("topologySpreadConstraints", [])}
    check("kubernetes.io/hostname" in keys, "no spread over nodes")
    c = spec["containers"][0]
    env = {e["name"]: e for e in c.get("env", [])}
    url = env.get("COUNTERD_POSTGRES_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(url == {"name": "counterd-db-app", "key": "uri"},
          f"COUNTERD_POSTGRES_URL not from Secret counterd-db-app/uri: {url}")
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness is not /readyz")
    check(c["livenessProbe"]["httpGet"]["path"] == "/livez", "liveness is not /livez")
    hpa = k8s.one(objs, "HorizontalPodAutoscaler", "counterd")
    check(hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                            "name": "counterd"}, "HPA target")
    check(hpa["spec"]["minReplicas"] >= 3, "HPA minReplicas < 3")
    pdb = k8s.one(objs, "PodDisruptionBudget", "counterd")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    check(k8s.selector_matches(pdb["spec"]["selector"], labels), "PDB does not select the pods")
    cm_name = spec["containers"][0]["envFrom"][0]["configMapRef"]["name"]
    cm = k8s.one(objs, "ConfigMap", cm_name)
    check(cm["data"].get("COUNTERD_BACKEND") == "postgres", "COUNTERD_BACKEND is not postgres")

    # Every setting is an option the binary knows (it refuses unknown ones).
    help_text = run_counterd(["--help"], binary=find_binary()).stdout
    options = set(re.findall(r"--([a-z][a-z0-9-]*)", help_text))
    for name in list(cm["data"]) + list(env):
        option = name[len("COUNTERD_"):].lower().replace("_", "-")
        check(option in options, f"{name}: counterd has no --{option}")

    cluster = k8s.one(k8s.render(CNPG), "Cluster", "counterd-db")
    sync = cluster["spec"]["postgresql"]["synchronous"]
    check(cluster["spec"]["instances"] == 3, "Cluster instances != 3")
    check(sync.get("dataDurability") == "required" and sync.get("number", 0) >= 1,
          f"synchronous replication not required: {sync}")
    check(cluster["spec"]["bootstrap"]["initdb"]["database"] == "counterd", "database name")

    for p in problems:
        print("PROBLEM:", p)
    print(f"postgres overlay: {len(objs)} objects, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
