#!/usr/bin/env python3
"""Checks a live counterd against docs/openapi.yaml through Stoplight Prism.

Starts counterd on a temporary data dir and two Prism validation proxies in
front of it, drives every operation of the spec with valid and invalid
requests, and fails (exit 1, printing each one) when Prism reports that a
response does not match the spec, or that a request the driver means to be
valid is not.

  strict proxy   `prism proxy SPEC URL --errors`: valid requests. Prism turns
                 a response that violates the spec into its own 422 problem.
  lenient proxy  `prism proxy SPEC URL`: requests the spec itself calls
                 invalid (a bad body, a missing token), which the strict
                 proxy would refuse instead of forwarding. Prism forwards
                 them and lists request and response violations in the
                 `sl-violations` header of its answer; request violations
                 are expected there, response ones are not.

It runs twice: without authentication (requests carry a bearer token, which
counterd then ignores, because the spec's security requirement is what a
deployment with tokens sees) and with --auth-tokens-file, so that 401 and
403 answers are checked too. Watch streams are checked by ending them: the
driver opens them through the proxy, then stops counterd with SIGTERM, which
ends every stream; Prism validates what it then has.

Needs Prism (`npm install -g @stoplight/prism-cli`, tested with 5.14) and a
counterd binary. Python standard library only.

  tests/contract/prism_check.py [--counterd PATH] [--prism PATH]
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.path.join(ROOT, "docs", "openapi.yaml")
PRISM_ERROR_PREFIX = "https://stoplight.io/prism/errors#"

# Tokens of the authenticated run: name -> (token, scopes, prefixes).
TOKENS = {
    "all": ("all-0123456789abcdefABCDEF", ["read", "write", "metrics", "admin"], None),
    "reader": ("reader-0123456789abcdefABCDEF", ["read"], None),
    "billing": ("billing-0123456789abcdefABCDEF", ["read", "write"], ["billing:"]),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body)

    def prism_error(self):
        """The type of a problem Prism made itself, or None."""
        if "problem+json" not in self.headers.get("content-type", ""):
            return None
        try:
            t = self.json().get("type", "")
        except ValueError:
            return None
        return t if t.startswith(PRISM_ERROR_PREFIX) else None

    def violations(self):
        raw = self.headers.get("sl-violations")
        if not raw:
            return []
        try:
            return json.loads(raw)
        except ValueError:
            return [{"location": ["?"], "message": raw, "severity": "?"}]


def send(port, method, path, headers=None, body=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = b"" if method == "HEAD" else r.read()
        return Answer(r.status, r.getheaders(), data)
    finally:
        conn.close()


class Checker:
    """Sends requests through the proxies and collects what goes wrong."""

    def __init__(self, upstream_port, strict_port, lenient_port, token):
        self.upstream = upstream_port
        self.strict = strict_port
        self.lenient = lenient_port
        self.token = token  # sent unless a request says otherwise
        self.violations = []  # Prism says the server or the spec is wrong
        self.mismatches = []  # the server did not answer what the driver expected
        self.count = 0

    def direct(self, method, path, body=None):
        """Setup that Prism cannot carry, straight to counterd."""
        hdrs = {"Authorization": f"Bearer {self.token}"}
        a = send(self.upstream, method, path, hdrs, body)
        if a.status >= 300:
            self.mismatches.append(f"setup {method} {path}: {a.status} {a.body[:200]!r}")

    def _record(self, label, what):
        self.violations.append(f"{label}: {what}")

    def call(self, method, path, expect, *, headers=None, body=None, invalid=False,
             token="default", label=None, unrouted=False):
        """One request. `invalid`: the spec calls the request invalid, so it
        goes through the lenient proxy and request violations are expected.
        `unrouted`: no operation of the spec matches (an unknown path, a
        method the path lacks), so Prism cannot check the answer; the driver
        checks it is the documented problem (and `Allow` on a 405)."""
        label = label or f"{method} {path}"
        if method == "HEAD":
            return self._head(path, expect, headers, invalid, token, label)
        self.count += 1
        hdrs = dict(headers or {})
        tok = self.token if token == "default" else token
        if tok is not None:
            hdrs["Authorization"] = f"Bearer {tok}"
        port = self.lenient if invalid or unrouted else self.strict
        try:
            a = send(port, method, path, hdrs, body)
        except OSError as e:
            self.mismatches.append(f"{label}: no answer: {e!r}")
            return Answer(0, [], b"")
        if unrouted:
            self._check_unrouted(label, path, expect, a)
        err = a.prism_error()
        if err:
            detail = a.json()
            self._record(label, f"Prism answered {a.status} {err}: "
                         f"{json.dumps(detail.get('validation', detail.get('detail')))}")
            return a
        for v in a.violations():
            loc = v.get("location", [])
            if (invalid or unrouted) and loc[:1] == ["request"]:
                continue
            self._record(label, f"[{v.get('severity')}] {'.'.join(map(str, loc))}: "
                         f"{v.get('message')}")
        request_flagged = any(v.get("location", [])[:1] == ["request"] for v in a.violations())
        if invalid and not unrouted and not request_flagged:
            self.mismatches.append(f"{label}: meant as invalid, but Prism found nothing "
                                   "wrong with the request")
        if a.status != expect:
            self.mismatches.append(f"{label}: expected {expect}, got {a.status} "
                                   f"{a.body[:200]!r}")
        return a

    def _check_unrouted(self, label, path, expect, a):
        problem = {}
        try:
            problem = a.json()
        except ValueError:
            pass
        wanted = "method-not-allowed" if expect == 405 else "route-not-found"
        if (a.headers.get("content-type") != "application/problem+json"
                or problem.get("type") != f"urn:counterd:problem:{wanted}"
                or problem.get("status") != expect
                or problem.get("instance") != path.split("?")[0]
                or not isinstance(problem.get("detail"), str)
                or (expect == 405) != ("allow" in a.headers)):
            self._record(label, f"not the documented {expect} {wanted} problem: "
                         f"{a.headers.get('content-type')} {a.headers.get('allow')} "
                         f"{a.body[:200]!r}")

    def _head(self, path, expect, headers, invalid, token, label):
        """Prism cannot proxy HEAD (it parses the empty body of a JSON answer
        and fails), so HEAD goes to counterd directly and must answer what
        the GET (checked through Prism) answers, without a body, as the
        spec's "As GET, without a body" says."""
        get = self.call("GET", path, expect, headers=headers, invalid=invalid, token=token,
                        label=label.replace("HEAD", "GET (for HEAD)", 1))
        self.count += 1
        hdrs = dict(headers or {})
        tok = self.token if token == "default" else token
        if tok is not None:
            hdrs["Authorization"] = f"Bearer {tok}"
        h = send(self.upstream, "HEAD", path, hdrs)
        compared = ["content-type", "etag", "allow", "www-authenticate"]
        if path.startswith("/counter"):
            compared.append("content-length")  # the other bodies change by the second
        differ = [f"{k}: GET {get.headers.get(k)!r} HEAD {h.headers.get(k)!r}"
                  for k in compared if get.headers.get(k) != h.headers.get(k)]
        if h.status != get.status or differ or h.body:
            self._record(label, f"HEAD differs from GET: status GET {get.status} HEAD "
                         f"{h.status}; {'; '.join(differ)}")
        return h


def drive_common(c, auth):
    """Every operation, valid and invalid; `auth` says tokens are on."""
    J = {"Content-Type": "application/json"}
    n = "billing:c1" if auth else "c1"

    # Operations, health, metrics.
    c.call("GET", "/", 200)
    c.call("HEAD", "/", 200)
    c.call("GET", "/livez", 200, token=None)
    c.call("HEAD", "/livez", 200, token=None)
    c.call("GET", "/readyz", 200, token=None)
    c.call("HEAD", "/readyz", 200, token=None)
    c.call("GET", "/metrics", 200)
    c.call("HEAD", "/metrics", 200)
    c.call("GET", "/admin/snapshot", 200)
    c.call("HEAD", "/admin/snapshot", 200)
    for path in ("/", "/livez", "/readyz", "/metrics", "/admin/snapshot", "/counter",
                 "/counters", "/batch"):
        method = "GET" if path == "/batch" else "DELETE"
        c.call(method, path, 405, unrouted=True)
    c.call("GET", "/no/such/path", 404, unrouted=True)

    # PUT / GET / HEAD / DELETE of one counter, with preconditions.
    c.call("PUT", f"/counters/{n}", 201, body={"value": 5})
    c.call("PUT", f"/counters/{n}", 200, body={"value": 6})
    c.call("PUT", f"/counters/{n}", 200, body={"value": 6, "ttl_seconds": 3600})
    c.call("PUT", f"/counters/{n}", 200, body={"value": 7}, headers={"If-Match": '"3"'})
    c.call("PUT", f"/counters/{n}", 412, body={"value": 7}, headers={"If-Match": '"99"'})
    c.call("PUT", f"/counters/{n}", 412, body={"value": 7}, headers={"If-None-Match": "*"})
    # If-None-Match other than "*" and Idempotency-Key are ignored on PUT.
    c.call("PUT", f"/counters/{n}", 200, body={"value": 7}, headers={"If-None-Match": '"4"'})
    c.call("PUT", f"/counters/{n}", 200, body={"value": 7},
           headers={"Idempotency-Key": "put-key"})
    c.call("PUT", f"/counters/{n}", 400, body={"value": "7"}, invalid=True)
    c.call("PUT", f"/counters/{n}", 400, body={"value": 1, "extra": 1}, invalid=True)
    c.call("PUT", f"/counters/{n}", 400, body={"value": 1, "ttl_seconds": 0}, invalid=True)
    c.call("PUT", f"/counters/{n}", 400, invalid=True, label="PUT without a body")
    c.call("PUT", f"/counters/{n}", 400, body=[1], invalid=True, label="PUT with a JSON array")
    c.call("PUT", f"/counters/{n}", 415, body="value=1",
           headers={"Content-Type": "text/plain"}, invalid=True)
    c.call("PUT", f"/counters/{n}", 413, body={"value": 1, "pad": "x" * 70000}, invalid=True,
           label="PUT with a 70 kB body")
    c.call("PUT", "/counters/bad%2Fname", 400, body={"value": 1}, invalid=True)
    c.call("PUT", "/counters/" + "a" * 129, 400, body={"value": 1}, invalid=True,
           label="PUT with a 129-character name")
    a = c.call("GET", f"/counters/{n}", 200)
    etag = a.headers.get("etag", '"0"')
    c.call("GET", f"/counters/{n}", 304, headers={"If-None-Match": etag})
    c.call("GET", f"/counters/{n}", 304, headers={"If-None-Match": "*"})
    c.call("GET", f"/counters/{n}", 200, headers={"If-None-Match": '"99"'})
    c.call("HEAD", f"/counters/{n}", 200)
    c.call("HEAD", f"/counters/{n}", 304, headers={"If-None-Match": etag})
    # Not "..": Prism normalises the path before it forwards it.
    c.call("GET", "/counters/a%20b", 400, invalid=True)
    c.call("HEAD", "/counters/a%20b", 400, invalid=True)
    missing = "billing:missing" if auth else "missing"
    c.call("GET", f"/counters/{missing}", 404)
    c.call("HEAD", f"/counters/{missing}", 404)
    c.call("DELETE", f"/counters/{missing}", 404)
    c.call("DELETE", f"/counters/{n}", 412, headers={"If-Match": '"99"'})
    c.call("DELETE", f"/counters/{n}", 204, headers={"If-Match": etag})
    c.call("DELETE", "/counters/bad%2Fname", 400, invalid=True)
    c.call("POST", f"/counters/{n}", 405, unrouted=True)

    # Increment and decrement: by, min, max, ttl_seconds, If-Match.
    for op in ("increment", "decrement"):
        p = f"/counters/{n}/{op}"
        c.call("POST", p, 200)
        c.call("POST", p, 200, body={"by": 5})
        c.call("POST", p, 200, body={"by": -2, "min": -100, "max": 100})
        c.call("POST", p, 409, body={"by": 1000, "min": -100, "max": 100})
        c.call("POST", p, 400, body={"by": 1, "min": 5, "max": 1})
        c.call("POST", p, 400, body={"by": 1.5}, invalid=True)
        c.call("POST", p, 400, body={"by": "1"}, invalid=True)
        c.call("POST", p, 400, body={"by": 1, "color": "red"}, invalid=True)
        c.call("POST", p, 400, body={"ttl_seconds": 0}, invalid=True)
        c.call("POST", p, 400, body=[1], invalid=True, label=f"POST {p} with a JSON array")
        c.call("POST", p, 415, body="by=1", headers={"Content-Type": "text/plain"},
               invalid=True)
        c.call("POST", p, 200, body="", headers={"Content-Type": "text/plain"},
               label=f"POST {p} with an empty text/plain body")
        c.call("POST", p, 413, body={"by": 1, "pad": "x" * 70000}, invalid=True,
               label=f"POST {p} with a 70 kB body")
        c.call("POST", p, 412, headers={"If-Match": '"999"'})
    c.call("GET", f"/counters/{n}/increment", 405, unrouted=True)
    # Overflow. Prism holds JSON numbers as doubles: it re-encodes those
    # beyond 2^53 before it forwards them and flags them as outside int64,
    # so the counter is brought to the edge directly, and deleted after.
    big = "billing:big" if auth else "big"
    c.direct("PUT", f"/counters/{big}", {"value": 9223372036854775807})
    c.call("POST", f"/counters/{big}/increment", 409, body={"by": 1})
    c.call("POST", f"/counters/{big}/increment", 409, body={"by": 1, "max": 5})
    c.call("POST", "/batch", 409, body={"operations": [
        {"op": "increment", "name": big, "by": 1}]}, label="POST /batch overflowing")
    c.direct("DELETE", f"/counters/{big}")
    a = c.call("GET", f"/counters/{n}", 200)
    etag = a.headers.get("etag", '"0"')
    c.call("POST", f"/counters/{n}/increment", 200, headers={"If-Match": etag})
    c.call("POST", f"/counters/{n}/increment", 200, headers={"If-Match": "*"})
    c.call("POST", "/counters/bad%2Fname/increment", 400, invalid=True)

    # Rate-limit window: max + ttl_seconds, then a refusal with Retry-After.
    w = "billing:window" if auth else "window"
    for _ in range(2):
        c.call("POST", f"/counters/{w}/increment", 200, body={"max": 2, "ttl_seconds": 60})
    c.call("POST", f"/counters/{w}/increment", 409, body={"max": 2, "ttl_seconds": 60})
    c.call("GET", f"/counters/{w}", 200)

    # Idempotency-Key: first, replay, reuse for another request, malformed.
    k = {"Idempotency-Key": f"key-{auth}-1"}
    c.call("POST", f"/counters/{n}/increment", 200, headers=k, body={"by": 2})
    c.call("POST", f"/counters/{n}/increment", 200, headers=k, body={"by": 2})
    c.call("POST", f"/counters/{n}/increment", 422, headers=k, body={"by": 3})
    k2 = {"Idempotency-Key": f"key-{auth}-2"}
    c.call("POST", f"/counters/{w}/increment", 409, headers=k2, body={"max": 2})
    c.call("POST", f"/counters/{w}/increment", 409, headers=k2, body={"max": 2})
    c.call("POST", f"/counters/{n}/increment", 400, headers={"Idempotency-Key": "a b"},
           invalid=True)
    c.call("POST", f"/counters/{n}/increment", 400, headers={"Idempotency-Key": "x" * 256},
           invalid=True)

    # Listing: prefix, limit, after (the cursor).
    pre = "billing:l" if auth else "l"
    for i in range(3):
        c.call("PUT", f"/counters/{pre}{i}", 201, body={"value": i})
    a = c.call("GET", f"/counters?prefix={pre}&limit=2", 200)
    nxt = a.json().get("next") if a.status == 200 else None
    c.call("GET", f"/counters?prefix={pre}&limit=2&after={nxt}", 200)
    c.call("HEAD", f"/counters?prefix={pre}", 200)
    c.call("GET", "/counters?limit=0", 400, invalid=True)
    c.call("GET", "/counters?limit=1001", 400, invalid=True)
    c.call("GET", "/counters?limit=x", 400, invalid=True)
    c.call("GET", "/counters?prefix=a%2Fb", 400, invalid=True)
    c.call("GET", "/counters?after=a%20b", 400, invalid=True)
    c.call("HEAD", "/counters?limit=0", 400, invalid=True)
    if not auth:
        c.call("GET", "/counters", 200)
        c.call("GET", "/counters?unknown=1", 200)

    # Classic /counter.
    if not auth:
        c.call("GET", "/counter", 200)
        c.call("HEAD", "/counter", 200)
        c.call("POST", "/counter/increment", 200)
        c.call("POST", "/counter/increment", 200, body={"by": 3})
        a = c.call("GET", "/counter", 200)
        c.call("GET", "/counter", 304, headers={"If-None-Match": a.headers.get("etag", "")})
        c.call("HEAD", "/counter", 304, headers={"If-None-Match": a.headers.get("etag", "")})
        c.call("POST", "/counter/increment", 412, headers={"If-Match": '"999"'})
        c.call("POST", "/counter/increment", 409, body={"by": 1, "max": 0})
        c.call("POST", "/counter/increment", 400, body={"by": "x"}, invalid=True)
        c.call("POST", "/counter/increment", 415, body="by=1",
               headers={"Content-Type": "text/plain"}, invalid=True)
        ck = {"Idempotency-Key": "classic-1"}
        c.call("POST", "/counter/increment", 200, headers=ck)
        c.call("POST", "/counter/increment", 200, headers=ck)
        c.call("POST", "/counter/increment", 422, headers=ck, body={"by": 7})
        c.call("GET", "/counter/increment", 405, unrouted=True)

    # Batch: success, failures naming the operation, invalid bodies.
    b = "billing:b" if auth else "b"
    ok = {"operations": [
        {"op": "set", "name": f"{b}1", "value": 10, "if_none_match": "*"},
        {"op": "increment", "name": f"{b}1", "by": 2, "max": 100},
        {"op": "decrement", "name": f"{b}2", "by": 1, "ttl_seconds": 60},
        {"op": "get", "name": f"{b}1"},
        {"op": "get", "name": f"{b}none"},
        {"op": "delete", "name": f"{b}2"},
    ]}
    c.call("POST", "/batch", 200, body=ok)
    c.call("POST", "/batch", 409, body={"operations": [
        {"op": "increment", "name": f"{b}1"},
        {"op": "increment", "name": f"{b}1", "by": 1000, "max": 100}]})
    c.call("POST", "/batch", 412, body={"operations": [
        {"op": "set", "name": f"{b}1", "value": 1, "if_match": '"999"'}]})
    c.call("POST", "/batch", 404, body={"operations": [
        {"op": "delete", "name": f"{b}none"}]})
    bk = {"Idempotency-Key": f"batch-{auth}"}
    one = {"operations": [{"op": "increment", "name": f"{b}1"}]}
    c.call("POST", "/batch", 200, headers=bk, body=one)
    c.call("POST", "/batch", 200, headers=bk, body=one)
    c.call("POST", "/batch", 422, headers=bk, body={"operations": [
        {"op": "increment", "name": f"{b}1", "by": 2}]})
    c.call("POST", "/batch", 400, body={"operations": []}, invalid=True)
    c.call("POST", "/batch", 400, body={"operations": [{"op": "get", "name": f"{b}1",
                                                        "by": 1}]}, invalid=True)
    c.call("POST", "/batch", 400, body={"operations": [{"op": "frob", "name": f"{b}1"}]},
           invalid=True)
    c.call("POST", "/batch", 400, body={"operations": [{"op": "get", "name": "a/b"}]},
           invalid=True)
    c.call("POST", "/batch", 400, body={"operations": [{"op": "get", "name": ".."}]},
           invalid=True)
    c.call("POST", "/batch", 400, invalid=True, label="POST /batch without a body")
    c.call("POST", "/batch", 415, body="x", headers={"Content-Type": "text/plain"},
           invalid=True)

    # Watch: the answers that are not streams.
    c.call("GET", "/counters/bad%2Fname/watch", 400, invalid=True)
    c.call("GET", f"/counters/{n}/watch", 400, headers={"Last-Event-ID": "x"}, invalid=True)
    c.call("POST", f"/counters/{n}/watch", 405, unrouted=True)
    c.call("GET", "/watch?prefix=a%2Fb", 400, invalid=True)
    c.call("DELETE", "/watch", 405, unrouted=True)


def drive_auth(c):
    """401 and 403 answers of the authenticated run."""
    all_tok, reader, billing = (TOKENS[k][0] for k in ("all", "reader", "billing"))
    for method, path, body in (
            ("GET", "/", None), ("GET", "/metrics", None), ("GET", "/admin/snapshot", None),
            ("GET", "/counter", None), ("POST", "/counter/increment", None),
            ("GET", "/counters", None), ("GET", "/counters/x", None),
            ("PUT", "/counters/x", {"value": 1}), ("DELETE", "/counters/x", None),
            ("POST", "/counters/x/increment", None), ("POST", "/counters/x/decrement", None),
            ("GET", "/counters/x/watch", None), ("GET", "/watch", None),
            ("POST", "/batch", {"operations": [{"op": "get", "name": "x"}]})):
        c.call(method, path, 401, body=body, token=None, invalid=True,
               label=f"{method} {path} without a token")
        c.call(method, path, 401, body=body, token="unknown-token", invalid=False,
               label=f"{method} {path} with an unknown token")
    c.call("HEAD", "/counters/x", 401, token=None, invalid=True,
           label="HEAD /counters/x without a token")
    c.call("GET", "/counters/x", 401, headers={"Authorization": "Basic Zm9vOmJhcg=="},
           token=None, invalid=True, label="GET /counters/x with Basic credentials")
    # Known tokens without the scope or outside their prefixes.
    for method, path, body in (
            ("GET", "/", None), ("GET", "/metrics", None), ("GET", "/admin/snapshot", None),
            ("PUT", "/counters/x", {"value": 1}), ("DELETE", "/counters/x", None),
            ("POST", "/counters/x/increment", None), ("POST", "/counter/increment", None),
            ("POST", "/batch", {"operations": [{"op": "get", "name": "x"}]})):
        c.call(method, path, 403, body=body, token=reader,
               label=f"{method} {path} with a read-only token")
    c.call("GET", "/counters/orders", 403, token=billing,
           label="GET /counters/orders with a billing: token")
    c.call("GET", "/counters?prefix=orders", 403, token=billing,
           label="GET /counters?prefix=orders with a billing: token")
    c.call("GET", "/counters", 200, token=billing)
    c.call("GET", "/counter", 403, token=billing, label="GET /counter with a billing: token")
    c.call("POST", "/batch", 403, token=billing,
           body={"operations": [{"op": "increment", "name": "billing:a"},
                                {"op": "increment", "name": "orders"}]},
           label="POST /batch touching orders with a billing: token")
    c.call("GET", "/watch?prefix=orders", 403, token=billing,
           label="GET /watch?prefix=orders with a billing: token")
    c.call("GET", "/counters", 200, token=all_tok)
    c.call("GET", "/counter", 200, token=all_tok)


def drive_low_disk(c):
    """Free space under --min-free-bytes: writes 507, /readyz 503, reads go on."""
    c.call("PUT", "/counters/d", 507, body={"value": 1})
    c.call("POST", "/counters/d/increment", 507)
    c.call("POST", "/counters/d/decrement", 507, body={"by": 2})
    c.call("POST", "/counter/increment", 507)
    c.call("DELETE", "/counters/d", 507)
    c.call("POST", "/batch", 507, body={"operations": [{"op": "increment", "name": "d"}]})
    c.call("POST", "/batch", 200, body={"operations": [{"op": "get", "name": "d"}]})
    c.call("GET", "/readyz", 503, token=None)
    c.call("HEAD", "/readyz", 503, token=None)
    c.call("GET", "/livez", 200, token=None)
    c.call("GET", "/counters/d", 404)
    c.call("GET", "/counter", 200)


# The runs: name, with tokens, extra counterd options.
MAX_WATCHERS = 4
RUNS = [
    ("no auth", False, ["--max-watchers", str(MAX_WATCHERS)]),
    ("auth", True, ["--max-watchers", str(MAX_WATCHERS)]),
    ("low disk", False, ["--min-free-bytes", str(10**15)]),  # 1 PB
]


class Run:
    """counterd and its two proxies."""

    def __init__(self, args, workdir, tag, auth, extra):
        self.args = args
        self.tag = tag.replace(" ", "-")
        self.auth = auth
        self.data = os.path.join(workdir, f"data-{self.tag}")
        os.makedirs(self.data)
        self.port = free_port()
        self.strict = free_port()
        self.lenient = free_port()
        self.logs = {}
        cmd = [args.counterd, "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data,
               "--drain-timeout-ms", "3000"] + extra
        if auth:
            tokens = []
            for name, (tok, scopes, prefixes) in TOKENS.items():
                digest = subprocess.run([args.counterd, "hash-token"], input=tok + "\n",
                                        capture_output=True, text=True, check=True)
                entry = {"name": name, "sha256": digest.stdout.strip(), "scopes": scopes}
                if prefixes:
                    entry["prefixes"] = prefixes
                tokens.append(entry)
            path = os.path.join(workdir, "tokens.json")
            with open(path, "w") as f:
                json.dump({"tokens": tokens}, f)
            cmd += ["--auth-tokens-file", path]
        self.server = self._spawn("counterd", cmd, workdir)
        upstream = f"http://127.0.0.1:{self.port}"
        self.proxies = [
            self._spawn("prism-strict", [args.prism, "proxy", args.spec, upstream, "--errors",
                                         "-h", "127.0.0.1", "-p", str(self.strict)], workdir),
            self._spawn("prism-lenient", [args.prism, "proxy", args.spec, upstream,
                                          "-h", "127.0.0.1", "-p", str(self.lenient)], workdir),
        ]
        try:
            wait_for(lambda: self._alive() and send(self.port, "GET", "/livez").status == 200,
                     20, "counterd")
            for p in (self.strict, self.lenient):
                wait_for(lambda: self._alive() and send(p, "GET", "/livez").status == 200, 60,
                         f"prism on port {p}")
        except BaseException:
            self.stop()
            raise

    def _alive(self):
        for p, name in zip([self.server] + self.proxies, self.logs):
            if p.poll() is not None:
                with open(self.logs[name]) as f:
                    raise RuntimeError(f"{name} exited with {p.returncode}: {f.read()[-2000:]}")
        return True

    def _spawn(self, name, cmd, workdir):
        log = os.path.join(workdir, f"{name}-{self.tag}.log")
        self.logs[name] = log
        return subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)

    def stop(self):
        for p in [self.server] + self.proxies:
            if p.poll() is None:
                p.terminate()
        for p in [self.server] + self.proxies:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def watchers(run):
    """counterd's open watch streams, from its /metrics."""
    hdrs = {"Authorization": f"Bearer {TOKENS['all'][0]}"} if run.auth else {}
    for line in send(run.port, "GET", "/metrics", hdrs).body.decode().splitlines():
        if line.startswith("counterd_watchers "):
            return int(float(line.split()[1]))
    return -1


def check_watch_streams(c, run, auth):
    """Opens watch streams through the strict proxy, then drains counterd:
    the streams end and Prism validates the whole 200 answers."""
    n = "billing:c1" if auth else "c1"
    pre = "billing:" if auth else ""
    requests = [("GET", f"/counters/{n}/watch", {}),  # MAX_WATCHERS of them
                ("GET", f"/counters/{n}/watch", {"Last-Event-ID": "1"}),
                ("GET", f"/watch?prefix={pre}", {}),
                ("GET", "/watch" if not auth else f"/watch?prefix={pre}l",
                 {"Last-Event-ID": "0"})]
    results = [None] * len(requests)

    def one(i, method, path, headers):
        results[i] = c.call(method, path, 200, headers=headers, label=f"{method} {path} "
                            f"(stream) {json.dumps(headers) if headers else ''}".strip())

    threads = [threading.Thread(target=one, args=(i, *r), daemon=True)
               for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    wait_for(lambda: watchers(run) == len(requests), 20, "the watch streams to open")
    # Every watcher slot is taken now (--max-watchers): one more is refused.
    c.call("GET", f"/counters/{n}/watch", 503, label="GET watch beyond --max-watchers")
    run.server.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=30)
    for (method, path, _), r in zip(requests, results):
        if r is None:
            c.mismatches.append(f"{method} {path} (stream): no answer")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counterd", default=os.environ.get("COUNTERD_BINARY") or
                    shutil.which("counterd") or os.path.join(ROOT, "build", "counterd"))
    ap.add_argument("--prism", default=shutil.which("prism") or "prism")
    ap.add_argument("--spec", default=SPEC, help="the OpenAPI document (docs/openapi.yaml)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir with the logs")
    args = ap.parse_args()
    args.spec = os.path.abspath(args.spec)
    if not os.access(args.counterd, os.X_OK):
        sys.exit(f"prism_check: no counterd binary at {args.counterd} (--counterd PATH)")
    if not shutil.which(args.prism) and not os.access(args.prism, os.X_OK):
        sys.exit("prism_check: needs Prism: npm install -g @stoplight/prism-cli")

    workdir = tempfile.mkdtemp(prefix="prism-check-")
    violations, mismatches, total = [], [], 0
    finished = False
    try:
        for tag, auth, extra in RUNS:
            run = Run(args, workdir, tag, auth, extra)
            try:
                token = TOKENS["all"][0] if auth else "no-auth-needed"
                c = Checker(run.port, run.strict, run.lenient, token)
                if tag == "low disk":
                    drive_low_disk(c)
                else:
                    drive_common(c, auth)
                    if auth:
                        drive_auth(c)
                    check_watch_streams(c, run, auth)
            finally:
                run.stop()
            print(f"{tag}: {c.count} requests, {len(c.violations)} violations, "
                  f"{len(c.mismatches)} unexpected answers")
            violations += [f"({tag}) {v}" for v in c.violations]
            mismatches += [f"({tag}) {m}" for m in c.mismatches]
            total += c.count
        finished = True
    finally:
        if args.keep or violations or mismatches or not finished:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    for v in violations:
        print("VIOLATION", v)
    for m in mismatches:
        print("UNEXPECTED", m)
    print(f"prism_check: {total} requests, {len(violations)} spec violations, "
          f"{len(mismatches)} unexpected answers")
    return 1 if violations or mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
