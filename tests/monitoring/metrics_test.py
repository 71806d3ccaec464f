#!/usr/bin/env python3
"""Every metric the alerts and the dashboard use is one counterd exports
(issue 14 §3).

1. Collects every counterd_* name that deploy/monitoring/counterd-rules.yaml
   (expressions and annotations) and grafana-dashboard.json (queries and
   variables) reference, and the label names their selectors use.
2. Starts the real counterd ($COUNTERD_BIN) on a temp dir and port 0, sends
   one request of each kind, and reads GET /metrics.
3. `promtool check metrics` on that page must be clean.
4. Every referenced name must be exported (a histogram's _bucket/_sum/_count
   count as its family), or be listed below as PENDING (announced, not
   implemented yet), POSTGRES_ONLY or TLS_ONLY. A name on those lists that
   the file backend *does* export fails the test, and so does an entry that
   nothing references: the lists cannot rot. A selector's label name must
   be a label of the exported series.

Skips (77) without promtool or python3-yaml; fails instead under CI=true.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.environ.get("COUNTERD_SOURCE_DIR", os.path.join(HERE, "..", "..")))
sys.path.insert(0, os.path.join(ROOT, "tests", "container"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import engine  # noqa: E402
from engine import log  # noqa: E402
from counterd_harness import CounterdServer, find_binary, run_counterd  # noqa: E402

MON = os.path.join(ROOT, "deploy", "monitoring")

# Announced in the issues, not exported yet. The owner of the feature removes
# its line when the metric lands (the test then requires it on /metrics).
# Export labelled counters with every known label value at 0 from the start
# (or at least their # HELP/# TYPE lines), so a fresh process shows them.
PENDING = {
}
# Exported only while the PostgreSQL backend runs; a file-backend process
# must not show them. (Once that backend lands, a run against PostgreSQL can
# check them the same way.)
POSTGRES_ONLY = {
    "counterd_postgres_reconnects_total",
}
# Exported only with --tls-cert-file (the server here runs plain HTTP; the
# TLS metrics are asserted by tests/integration/test_tls.py).
TLS_ONLY = {
    "counterd_tls_handshake_failures_total",
    "counterd_tls_certificate_reloads_total",
    "counterd_tls_certificate_expiry_timestamp_seconds",
}
# Series Prometheus makes itself, not counterd.
PROMETHEUS_SERIES = {"up"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
NAME = re.compile(r"\bcounterd_[a-z0-9_]+\b")
# name{label="v", label2=~"v"} in PromQL; string contents are skipped.
SELECTOR = re.compile(r"\b(counterd_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*\"(?:[^\"\\]|\\.)*\"\s*,?")


def need_tools():
    if not shutil.which("promtool"):
        engine.skip_or_fail("promtool is not installed (Debian package prometheus)")
    try:
        import yaml
    except ImportError:
        engine.skip_or_fail("python3-yaml is not installed")
    return yaml


def referenced(yaml) -> tuple[dict, list]:
    """{name: [where, ...]} and [(name, label, where)] for every selector
    label, from the rules and the dashboard."""
    names: dict = {}
    labels: list = []

    def scan(text: str, where: str, is_query: bool):
        for n in NAME.findall(text):
            names.setdefault(n, []).append(where)
        if is_query:
            for m in SELECTOR.finditer(text):
                body = m.group(2)
                for lm in MATCHER.finditer(body):
                    labels.append((m.group(1), lm.group(1), where))
    with open(os.path.join(MON, "counterd-rules.yaml"), encoding="utf-8") as f:
        rules = yaml.safe_load(f)
    for group in rules["groups"]:
        for r in group["rules"]:
            where = f"rule {r.get('alert') or r.get('record')}"
            scan(r["expr"], where, True)
            for v in (r.get("annotations") or {}).values():
                scan(str(v), where + " (annotation)", False)
    with open(os.path.join(MON, "grafana-dashboard.json"), encoding="utf-8") as f:
        dash = json.load(f)

    def walk(panels):
        for p in panels:
            for t in p.get("targets") or []:
                scan(t.get("expr", ""), f"dashboard panel {p.get('title')!r}", True)
            scan(p.get("description", ""), f"dashboard panel {p.get('title')!r} (text)", False)
            walk(p.get("panels") or [])
    walk(dash.get("panels") or [])
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        scan(json.dumps(q), f"dashboard variable ${v.get('name')}", True)
    return names, labels


def parse_exposition(text: str) -> tuple[dict, dict]:
    """{family: type} from # TYPE lines, and {sample name: set of label
    names} from the samples."""
    families, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            families[name] = kind.strip()
        elif line and not line.startswith("#"):
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s", line)
            assert m, f"unparsable sample line: {line}"
            label_names = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"", m.group(3) or ""))
            samples.setdefault(m.group(1), set()).update(label_names)
    return families, samples


def family_of(name: str, families: dict) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and families.get(base) in ("histogram", "summary"):
            return base
    return name


def live_metrics_page(binary: str) -> str:
    """A running counterd's /metrics after one request of each kind. With
    authentication available, it runs with a tokens file and a metrics
    token, and one refused request."""
    help_text = run_counterd(["--help"], binary=binary).stdout
    with tempfile.TemporaryDirectory(prefix="counterd-monitoring-") as tmp:
        args, auth = [], {}
        if "--auth-tokens-file" in help_text:
            # The token file holds SHA-256 hashes of the tokens' bytes (what
            # `counterd hash-token` prints).
            token = "monitoring-test-token"
            digest = hashlib.sha256(token.encode()).hexdigest()
            path = os.path.join(tmp, "tokens.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump({"tokens": [{"name": "monitoring", "sha256": digest,
                                       "scopes": ["read", "write", "metrics", "admin"]}]}, f)
            args += ["--auth-tokens-file", path]
            auth = {"Authorization": f"Bearer {token}"}
        data = os.path.join(tmp, "data")
        os.mkdir(data)
        srv = CounterdServer(data_dir=data, args=args)
        try:
            srv.start()
            with srv.client() as c:
                for method, path, body in (
                        ("GET", "/", None), ("GET", "/livez", None), ("GET", "/readyz", None),
                        ("GET", "/counter", None), ("POST", "/counter/increment", None),
                        ("PUT", "/counters/m", {"value": 1}),
                        ("POST", "/counters/m/increment", {"by": 2}),
                        ("POST", "/counters/m/decrement", None),
                        ("GET", "/counters/m", None), ("GET", "/counters", None),
                        ("DELETE", "/counters/m", None), ("GET", "/counters/absent", None)):
                    kw = {"headers": auth}
                    if body is not None:
                        kw["json"] = body
                    c.request(method, path, **kw)
                if auth:
                    c.get("/counters", headers={"Authorization": "Bearer wrong"})
                page = c.get("/metrics", headers=auth)
                assert page.status == 200, f"GET /metrics answered {page.status}"
                text = page.body.decode()
            rc = srv.stop()
            assert rc == 0, f"counterd exited {rc} after SIGTERM"
        finally:
            srv.cleanup()
    return text


def main() -> int:
    yaml = need_tools()
    binary = find_binary()
    names, selector_labels = referenced(yaml)
    log(f"the rules and the dashboard reference {len(names)} counterd metric names")
    text = live_metrics_page(binary)

    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    log(f"$ promtool check metrics < GET /metrics  (exit {p.returncode})")
    if p.stdout.strip() or p.stderr.strip():
        log(p.stdout + p.stderr)
    problems = []
    if p.returncode != 0:
        problems.append("promtool check metrics found problems on the live /metrics page")

    families, samples = parse_exposition(text)
    exported = set(families) | set(samples)
    log(f"{binary}: /metrics has {len(families)} families")
    for name in sorted(names):
        fam = family_of(name, families)
        where = sorted(set(names[name]))[0]
        is_exported = name in exported and (fam in families or name in samples)
        if fam in PENDING or name in PENDING:
            if is_exported:
                problems.append(f"{name} is exported now: remove it from PENDING in "
                                "tests/monitoring/metrics_test.py")
            else:
                log(f"  pending   {name} ({PENDING.get(fam) or PENDING.get(name)})")
        elif fam in POSTGRES_ONLY or name in POSTGRES_ONLY:
            if is_exported:
                problems.append(f"{name} is exported by the file backend: it is not "
                                "PostgreSQL-only (update POSTGRES_ONLY)")
            else:
                log(f"  postgres  {name}")
        elif fam in TLS_ONLY or name in TLS_ONLY:
            if is_exported:
                problems.append(f"{name} is exported without TLS: it is not TLS-only "
                                "(update TLS_ONLY)")
            else:
                log(f"  tls       {name}")
        elif is_exported:
            log(f"  exported  {name}")
        else:
            problems.append(f"{name} (used by {where}) is not exported by counterd, "
                            "nor listed as pending")
    for name in sorted((set(PENDING) | POSTGRES_ONLY) - {family_of(n, families) for n in names}):
        problems.append(f"{name} is listed as pending/postgres-only but nothing references it: "
                        "remove it from the list")
    # Label names in selectors must exist on the exported series.
    for metric, label, where in selector_labels:
        if metric in samples and label not in samples[metric] | {"job", "instance"}:
            problems.append(f"{where}: {metric} has no label {label!r} on /metrics "
                            f"(labels: {sorted(samples[metric])})")
    for name in PROMETHEUS_SERIES:
        if name in exported:
            problems.append(f"counterd exports {name!r}, which Prometheus reserves")

    for line in problems:
        log("PROBLEM: " + line)
    if problems:
        log(f"FAIL: {len(problems)} problems")
        return 1
    log(f"PASS: promtool check metrics is clean; every referenced metric is exported "
        f"({sum(1 for n in names if family_of(n, families) in families or n in samples)}) "
        f"or listed as pending/postgres-only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
