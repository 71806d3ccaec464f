"""Bearer tokens with scopes (--auth-tokens-file), over real HTTP.

The full matrix endpoint x {no token, bad token, read, write, metrics,
admin, wrong prefix} with exact statuses and, for every refusal, proof that
nothing changed; 401 challenges; open probes; a refused request answered
before its body is sent; reloads by a Kubernetes-style ..data symlink swap
and by SIGHUP while a client keeps working; a failed reload keeping the old
tokens; Idempotency-Keys kept apart per token; `counterd hash-token`; an
invalid tokens file refused at start-up with exit code 2.

The matrix is printed (endpoint, token, status) so that it can be quoted.
"""

import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

from counterd_harness import (CounterdAssertions, CounterdServer, ServerTestCase, find_binary,
                              metric_sum, parse_prometheus, run_counterd, unique_name, wait_until)

REALM = 'Bearer realm="counterd"'
INVALID = 'Bearer realm="counterd", error="invalid_token"'


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(24)


def tokens_json(entries) -> str:
    """entries: [(name, token, scopes, prefixes or None)]"""
    out = []
    for name, token, scopes, prefixes in entries:
        e = {"name": name, "sha256": sha256_hex(token), "scopes": scopes}
        if prefixes is not None:
            e["prefixes"] = prefixes
        out.append(e)
    return json.dumps({"tokens": out}, indent=1)


class SecretVolume:
    """A directory laid out as the kubelet lays out a Secret volume:

        dir/..2026_01_01_00_00_00.000000001/tokens.json
        dir/..data -> ..2026_01_01_00_00_00.000000001
        dir/tokens.json -> ..data/tokens.json

    update() writes a new timestamped directory, points a temporary symlink
    at it and renames that over ..data (one atomic rename), then removes the
    old directory: the path counterd was given never changes."""

    def __init__(self, content: str):
        self.dir = tempfile.mkdtemp(prefix="counterd-secret-")
        self._n = 0
        self._current = self._write(content)
        os.symlink(self._current, os.path.join(self.dir, "..data"))
        os.symlink(os.path.join("..data", "tokens.json"), self.path)

    @property
    def path(self) -> str:
        return os.path.join(self.dir, "tokens.json")

    def _write(self, content: str) -> str:
        self._n += 1
        name = f"..2026_01_01_00_00_00.{self._n:09d}"
        os.mkdir(os.path.join(self.dir, name))
        with open(os.path.join(self.dir, name, "tokens.json"), "w") as f:
            f.write(content)
        return name

    def update(self, content: str):
        old = self._current
        self._current = self._write(content)
        tmp = os.path.join(self.dir, "..data_tmp")
        os.symlink(self._current, tmp)
        os.rename(tmp, os.path.join(self.dir, "..data"))
        shutil.rmtree(os.path.join(self.dir, old))

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class AuthServerCase(ServerTestCase):
    """One server per class over a SecretVolume holding cls.entries()."""

    @classmethod
    def entries(cls):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.tok = {}
        ents = []
        for name, scopes, prefixes in cls.entries():
            cls.tok[name] = new_token()
            ents.append((name, cls.tok[name], scopes, prefixes))
        cls.volume = SecretVolume(tokens_json(ents))
        cls.server_args = ["--auth-tokens-file", cls.volume.path]
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.volume.cleanup()

    def auth(self, name):
        return {"Authorization": f"Bearer {self.tok[name]}"}

    def metrics(self):
        r = self.c.get("/metrics", headers=self.auth("ops"))
        self.assertEqual(r.status, 200, repr(r))
        return parse_prometheus(r.text)

    def failures(self, reason):
        return metric_sum(self.metrics(), "counterd_auth_failures_total", reason=reason)

    def reloads(self, result):
        return metric_sum(self.metrics(), "counterd_auth_reloads_total", result=result)

    def counter_state(self, name):
        r = self.c.get(f"/counters/{name}", headers=self.auth("ops"))
        if r.status == 404:
            return None
        self.assertEqual(r.status, 200, repr(r))
        return r.json()

    def assertNoTokenInLogs(self):
        logs = self.server.log_text()
        for name, token in self.tok.items():
            self.assertNotIn(token, logs, f"token {name} appears in the logs")


# The matrix: (label, method, path template, body); {n} is a fresh counter.
ENDPOINTS = [
    ("GET /livez", "GET", "/livez", None),
    ("GET /readyz", "GET", "/readyz", None),
    ("GET /", "GET", "/", None),
    ("GET /metrics", "GET", "/metrics", None),
    ("GET /counter", "GET", "/counter", None),
    ("POST /counter/increment", "POST", "/counter/increment", {"by": 1}),
    ("GET /counters", "GET", "/counters", None),
    ("GET /counters?prefix=m-", "GET", "/counters?prefix=m-", None),
    ("GET /counters/{name}", "GET", "/counters/{n}", None),
    ("HEAD /counters/{name}", "HEAD", "/counters/{n}", None),
    ("PUT /counters/{name}", "PUT", "/counters/{n}", {"value": 99}),
    ("POST /counters/{name}/increment", "POST", "/counters/{n}/increment", {"by": 5}),
    ("POST /counters/{name}/decrement", "POST", "/counters/{n}/decrement", {"by": 5}),
    ("DELETE /counters/{name}", "DELETE", "/counters/{n}", None),
]
TOKENS = ["none", "bad", "read", "write", "metrics", "admin", "wrong-prefix"]
# Exact statuses, in TOKENS order. "wrong-prefix" has read and write but
# only for counters named billing:*; the counters here are m-*.
EXPECTED = {
    "GET /livez":                      (200, 200, 200, 200, 200, 200, 200),
    "GET /readyz":                     (200, 200, 200, 200, 200, 200, 200),
    "GET /":                           (401, 401, 403, 403, 403, 200, 403),
    "GET /metrics":                    (401, 401, 403, 403, 200, 403, 403),
    "GET /counter":                    (401, 401, 200, 403, 403, 403, 403),
    "POST /counter/increment":         (401, 401, 403, 200, 403, 403, 403),
    "GET /counters":                   (401, 401, 200, 403, 403, 403, 200),
    "GET /counters?prefix=m-":         (401, 401, 200, 403, 403, 403, 403),
    "GET /counters/{name}":            (401, 401, 200, 403, 403, 403, 403),
    "HEAD /counters/{name}":           (401, 401, 200, 403, 403, 403, 403),
    "PUT /counters/{name}":            (401, 401, 403, 200, 403, 403, 403),
    "POST /counters/{name}/increment": (401, 401, 403, 200, 403, 403, 403),
    "POST /counters/{name}/decrement": (401, 401, 403, 200, 403, 403, 403),
    "DELETE /counters/{name}":         (401, 401, 403, 204, 403, 403, 403),
}
MUTATIONS = {"PUT", "POST", "DELETE"}


class AuthMatrixTest(AuthServerCase):

    @classmethod
    def entries(cls):
        return [("read", ["read"], None), ("write", ["write"], None),
                ("metrics", ["metrics"], None), ("admin", ["admin"], None),
                ("wrong-prefix", ["read", "write"], ["billing:"]),
                ("ops", ["read", "write", "metrics", "admin"], None)]

    def headers_for(self, token):
        if token == "none":
            return {}
        if token == "bad":
            return {"Authorization": "Bearer " + new_token()}
        return self.auth(token)

    def test_matrix(self):
        rows = []
        for label, method, template, body in ENDPOINTS:
            for i, token in enumerate(TOKENS):
                with self.subTest(endpoint=label, token=token):
                    name = unique_name("m")
                    r = self.c.put(f"/counters/{name}", json={"value": 10}, headers=self.auth("ops"))
                    self.assertEqual(r.status, 201, repr(r))
                    before = self.counter_state(name)
                    default_before = self.c.get("/counter", headers=self.auth("ops")).json()
                    kw = {"headers": self.headers_for(token)}
                    if body is not None:
                        kw["json"] = body
                    resp = self.c.request(method, template.format(n=name), **kw)
                    rows.append((label, token, resp.status))
                    want = EXPECTED[label][i]
                    self.assertEqual(resp.status, want, repr(resp))
                    if resp.status == 401:
                        if method == "HEAD":
                            self.assertEqual(resp.body, b"")
                            self.assertEqual(resp.content_type, "application/problem+json")
                        else:
                            doc = self.assertProblem(resp, 401)
                            self.assertEqual(doc["type"], "urn:counterd:problem:unauthorized")
                        self.assertEqual(resp.header("WWW-Authenticate"),
                                         REALM if token == "none" else INVALID)
                        self.assertEqual(resp.header("Connection"), "close")
                    elif resp.status == 403:
                        if method == "HEAD":
                            self.assertEqual(resp.body, b"")
                        else:
                            doc = self.assertProblem(resp, 403)
                            self.assertEqual(doc["type"], "urn:counterd:problem:forbidden")
                            self.assertIn(f'token "{token}"', doc["detail"])
                    if resp.status in (401, 403):
                        # A refused request changes nothing.
                        self.assertEqual(self.counter_state(name), before)
                        self.assertEqual(self.c.get("/counter", headers=self.auth("ops")).json(),
                                         default_before)
                        if token not in ("none", "bad"):
                            self.assertNotIn(self.tok[token], resp.text)
                    elif method in MUTATIONS and template != "/counter/increment":
                        self.assertNotEqual(self.counter_state(name), before)
        # The matrix, for the record.
        width = max(len(label) for label, *_ in ENDPOINTS)
        out = ["", "auth matrix (endpoint x token -> status):",
               f"  {'endpoint':<{width}}  " + " ".join(f"{t:>12}" for t in TOKENS)]
        for label, *_ in ENDPOINTS:
            got = {t: s for l, t, s in rows if l == label}
            out.append(f"  {label:<{width}}  " + " ".join(f"{got.get(t, '-'):>12}" for t in TOKENS))
        print("\n".join(out), flush=True)
        self.assertNoTokenInLogs()

    def test_failures_are_counted_by_reason(self):
        before = {r: self.failures(r) for r in ("missing", "malformed", "unknown", "forbidden")}
        self.assertEqual(self.c.get("/counter").status, 401)
        self.assertEqual(self.c.get("/counter", headers={"Authorization": "Basic eDp5"}).status, 401)
        self.assertEqual(self.c.get("/counter", headers={"Authorization": "Bearer"}).status, 401)
        self.assertEqual(self.c.get("/counter", headers={"Authorization": "Bearer a b"}).status, 401)
        self.assertEqual(self.c.get("/counter", headers={"Authorization": "Bearer x"}).status, 401)
        self.assertEqual(self.c.get("/metrics", headers=self.auth("read")).status, 403)
        after = {r: self.failures(r) for r in before}
        self.assertEqual({r: after[r] - before[r] for r in before},
                         {"missing": 2, "malformed": 2, "unknown": 1, "forbidden": 1})
        samples = self.metrics()
        self.assertEqual(metric_sum(samples, "counterd_auth_enabled"), 1)

    def test_probes_stay_open_and_other_methods_do_not(self):
        for path in ("/livez", "/readyz"):
            for method in ("GET", "HEAD"):
                with self.subTest(path=path, method=method):
                    self.assertEqual(self.c.request(method, path).status, 200)
            r = self.c.post(path)
            self.assertEqual(r.status, 401, repr(r))
            r = self.c.post(path, headers=self.auth("read"))
            self.assertEqual(r.status, 405, "a known token gets the route's own answer")

    def test_unknown_paths_need_a_token_too(self):
        self.assertEqual(self.c.get("/nope").status, 401)
        r = self.c.get("/nope", headers=self.auth("metrics"))
        self.assertProblem(r, 404)

    def test_forbidden_details_name_the_scope_and_the_prefix_rule(self):
        r = self.c.put(f"/counters/{unique_name('m')}", json={"value": 1},
                       headers=self.auth("read"))
        doc = self.assertProblem(r, 403)
        self.assertEqual(doc["detail"], 'token "read" lacks the write scope that PUT '
                                        '/counters/{name} needs (it has: read)')
        self.assertEqual(r.header("WWW-Authenticate"),
                         REALM + ', error="insufficient_scope", scope="write"')
        r = self.c.post("/counters/orders/increment", headers=self.auth("wrong-prefix"))
        doc = self.assertProblem(r, 403)
        self.assertEqual(doc["detail"], 'token "wrong-prefix" may only touch counters whose '
                                        'names start with "billing:"; "orders" does not')
        r = self.c.get("/counters?prefix=bill", headers=self.auth("wrong-prefix"))
        doc = self.assertProblem(r, 403)
        self.assertEqual(doc["detail"], 'token "wrong-prefix" may only list counters whose '
                                        'names start with "billing:"; prefix="bill" reaches '
                                        'outside them')

    def test_prefix_token_reads_writes_and_lists_only_its_counters(self):
        mine = [f"billing:{uuid.uuid4().hex[:8]}" for _ in range(5)]
        for n in mine:
            r = self.c.put(f"/counters/{n}", json={"value": 1}, headers=self.auth("wrong-prefix"))
            self.assertEqual(r.status, 201, repr(r))
            r = self.c.post(f"/counters/{n}/increment", headers=self.auth("wrong-prefix"))
            self.assertCounter(r, n, 2)
        for _ in range(3):
            self.c.put(f"/counters/{unique_name('other')}", json={"value": 1},
                       headers=self.auth("ops"))
        # Paginated listing with a limit smaller than the set, no ?prefix.
        seen, after = [], None
        for _ in range(100):
            q = "/counters?limit=2" + (f"&after={after}" if after else "")
            r = self.c.get(q, headers=self.auth("wrong-prefix"))
            self.assertEqual(r.status, 200, repr(r))
            doc = r.json()
            self.assertLessEqual(len(doc["counters"]), 2)
            seen += [c["name"] for c in doc["counters"]]
            after = doc["next"]
            if after is None:
                break
        self.assertTrue(all(n.startswith("billing:") for n in seen), seen)
        self.assertTrue(set(mine) <= set(seen), (mine, seen))
        self.assertEqual(seen, sorted(seen))
        everything = [c["name"] for c in
                      self.c.get("/counters?limit=1000", headers=self.auth("ops")).json()["counters"]]
        self.assertEqual(seen, [n for n in everything if n.startswith("billing:")])
        r = self.c.get("/counters?prefix=billing:", headers=self.auth("wrong-prefix"))
        self.assertEqual([c["name"] for c in r.json()["counters"]], seen)

    def test_refused_request_is_answered_before_its_body_is_sent(self):
        for headers, status in ((b"", 401),
                                (b"Authorization: Bearer " + self.tok["read"].encode() + b"\r\n",
                                 403)):
            for expect in (b"", b"Expect: 100-continue\r\n"):
                with self.subTest(status=status, expect=expect):
                    name = unique_name("big")
                    raw = self.server.raw()
                    self.addCleanup(raw.close)
                    # Only the header: the 60000-byte body is never sent.
                    raw.send(b"POST /counters/" + name.encode() + b"/increment HTTP/1.1\r\n"
                             b"Host: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 60000\r\n" + expect + headers + b"\r\n")
                    resp = raw.read_response(timeout=5)
                    self.assertIsNotNone(resp)
                    self.assertEqual(resp.status, status, repr(resp))
                    self.assertEqual(resp.header("Connection"), "close")
                    self.assertTrue(raw.wait_closed(5), "the connection stays open")
                    self.assertIsNone(self.counter_state(name), "a refused POST created it")


class IdempotencyScopeTest(AuthServerCase):

    @classmethod
    def entries(cls):
        return [("alice", ["read", "write"], None), ("bob", ["read", "write"], None),
                ("ops", ["read", "write", "metrics", "admin"], None)]

    def test_same_key_from_two_tokens_is_two_keys(self):
        name = unique_name("idem")
        key = {"Idempotency-Key": "shared-" + uuid.uuid4().hex}
        a1 = self.c.post(f"/counters/{name}/increment", json={"by": 2},
                         headers={**self.auth("alice"), **key})
        self.assertCounter(a1, name, 2)
        self.assertIsNone(a1.header("Idempotent-Replayed"))
        b1 = self.c.post(f"/counters/{name}/increment", json={"by": 2},
                         headers={**self.auth("bob"), **key})
        self.assertCounter(b1, name, 4)
        self.assertIsNone(b1.header("Idempotent-Replayed"), "bob got alice's answer")
        a2 = self.c.post(f"/counters/{name}/increment", json={"by": 2},
                         headers={**self.auth("alice"), **key})
        self.assertEqual(a2.header("Idempotent-Replayed"), "true")
        self.assertEqual(a2.body, a1.body)
        b2 = self.c.post(f"/counters/{name}/increment", json={"by": 2},
                         headers={**self.auth("bob"), **key})
        self.assertEqual(b2.header("Idempotent-Replayed"), "true")
        self.assertEqual(b2.body, b1.body)
        # Another request under bob's key is refused for bob, and alice's
        # record is untouched.
        b3 = self.c.post(f"/counters/{name}/increment", json={"by": 7},
                         headers={**self.auth("bob"), **key})
        self.assertProblem(b3, 422)
        self.assertEqual(self.counter_state(name)["value"], 4)


class TokenReloadTest(AuthServerCase):
    """Reloads while a client keeps making requests with a token present in
    every version of the file: none of its requests may fail."""

    @classmethod
    def entries(cls):
        return [("keeper", ["read", "write"], None), ("old", ["read"], None),
                ("ops", ["read", "write", "metrics", "admin"], None)]

    def start_client(self):
        """A client thread incrementing a counter as "keeper" until stopped
        (60 s at most). Returns (result, finish)."""
        stop = threading.Event()
        result = {"ok": 0, "failures": []}

        def loop():
            deadline = time.monotonic() + 60
            with self.server.client() as c:
                name = unique_name("keep")
                while not stop.is_set() and time.monotonic() < deadline:
                    r = c.post(f"/counters/{name}/increment", headers=self.auth("keeper"))
                    if r.status == 200:
                        result["ok"] += 1
                    else:
                        result["failures"].append(r.status)
        t = threading.Thread(target=loop, daemon=True)
        t.start()
        wait_until(lambda: result["ok"] > 0, 10, message="the client's first request")

        def finish():
            # Some requests after the reload too, then stop.
            at_reload = result["ok"]
            wait_until(lambda: result["ok"] >= at_reload + 20, 10,
                       message="the client's requests after the reload")
            stop.set()
            t.join(10)
            return result
        return result, finish

    def file_with(self, names):
        ents = []
        for name, scopes in names:
            self.tok.setdefault(name, new_token())
            ents.append((name, self.tok[name], scopes, None))
        return tokens_json(ents)

    def wait_reloads(self, result, count):
        return wait_until(lambda: self.reloads(result) >= count, 15,
                          message=f"counterd_auth_reloads_total{{result={result!r}}} >= {count}")

    def test_1_symlink_swap_while_a_client_keeps_working(self):
        ok_before = self.reloads("ok")
        self.assertEqual(self.c.get("/counter", headers=self.auth("old")).status, 200)
        _, finish = self.start_client()
        self.volume.update(self.file_with([("keeper", ["read", "write"]), ("new", ["read"]),
                                           ("ops", ["read", "write", "metrics", "admin"])]))
        self.wait_reloads("ok", ok_before + 1)
        line = self.server.wait_for_log(r"tokens reloaded")
        print(f"\ntoken reload (symlink swap): {line}", flush=True)
        self.assertEqual(self.c.get("/counter", headers=self.auth("new")).status, 200)
        r = self.c.get("/counter", headers=self.auth("old"))
        self.assertEqual(r.status, 401, "the removed token still works")
        self.assertEqual(r.header("WWW-Authenticate"), INVALID)
        result = finish()
        self.assertEqual(result["failures"], [], "requests failed during the swap")
        print(f"client requests across the swap: {result['ok']} ok, "
              f"{len(result['failures'])} failed", flush=True)
        self.assertNoTokenInLogs()

    def test_2_sighup_reloads_a_change_polling_cannot_see(self):
        # Rewrite the file's target in place with the same size and mtime:
        # stat cannot tell, only SIGHUP makes counterd read it again.
        target = os.path.realpath(self.volume.path)
        st = os.stat(target)
        with open(target) as f:
            old_text = f.read()
        doc = json.loads(old_text)
        rotated = new_token()
        for e in doc["tokens"]:
            if e["name"] == "ops":
                continue
            if e["name"] != "keeper":
                e["sha256"] = sha256_hex(rotated)
                gone = e["name"]
        new_text = json.dumps(doc, indent=1)
        self.assertEqual(len(new_text), len(old_text))
        ok_before = self.reloads("ok")
        self.assertEqual(self.c.get("/counter", headers=self.auth(gone)).status, 200)
        _, finish = self.start_client()
        with open(target, "w") as f:
            f.write(new_text)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        self.assertEqual(os.stat(target).st_size, st.st_size)
        self.server.signal(signal.SIGHUP)
        self.wait_reloads("ok", ok_before + 1)
        line = self.server.wait_for_log(r"reason=SIGHUP|\"reason\":\"SIGHUP\"")
        print(f"\ntoken reload (SIGHUP): {line}", flush=True)
        self.assertEqual(self.c.get("/counter", headers=self.auth(gone)).status, 401)
        self.assertEqual(self.c.get("/counter",
                                    headers={"Authorization": f"Bearer {rotated}"}).status, 200)
        self.tok[gone] = rotated
        result = finish()
        self.assertEqual(result["failures"], [])
        self.assertTrue(self.server.running, "SIGHUP stopped the server")

    def test_3_a_bad_file_keeps_the_previous_tokens(self):
        err_before, ok_before = self.reloads("error"), self.reloads("ok")
        self.volume.update('{"tokens": [{"name": "x", "sha256": "nope", "scopes": ["read"]}]}')
        wait_until(lambda: self.reloads("error") >= err_before + 1, 15,
                   message="a failed reload counted")
        line = self.server.wait_for_log(r"tokens reload failed")
        self.assertIn("tokens[0]", line)
        self.assertIn("sha256", line)
        self.assertEqual(self.c.get("/counter", headers=self.auth("keeper")).status, 200)
        self.assertEqual(self.reloads("ok"), ok_before)
        # Repaired: the next change is loaded.
        self.volume.update(self.file_with([("keeper", ["read"]),
                                           ("ops", ["read", "write", "metrics", "admin"])]))
        self.wait_reloads("ok", ok_before + 1)
        self.assertEqual(self.c.post("/counter/increment", headers=self.auth("keeper")).status,
                         403, "keeper lost write in the repaired file")


class AuthCliTest(CounterdAssertions, unittest.TestCase):

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="counterd-auth-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def hash_token(self, stdin: bytes):
        return subprocess.run([find_binary(), "hash-token"], input=stdin,
                              capture_output=True, timeout=10)

    def test_hash_token(self):
        token = new_token()
        for sent in (token.encode(), token.encode() + b"\n", token.encode() + b"\r\n"):
            with self.subTest(sent=sent[-2:]):
                r = self.hash_token(sent)
                self.assertEqual(r.returncode, 0, r)
                self.assertEqual(r.stdout.decode(), sha256_hex(token) + "\n")
                self.assertEqual(r.stderr, b"")
        for bad in (b"", b"\n", b"two words\n", b"tok\n\n", b"t\xc3\xa9\n"):
            with self.subTest(bad=bad):
                r = self.hash_token(bad)
                self.assertEqual(r.returncode, 2, r)
                self.assertEqual(r.stdout, b"")
                self.assertEqual(len(r.stderr.decode().strip().splitlines()), 1, r.stderr)
                self.assertTrue(r.stderr.startswith(b"counterd hash-token: "), r.stderr)

    def test_invalid_tokens_file_exits_2_with_one_line(self):
        d = self.tmpdir()
        good = {"name": "a", "sha256": "a" * 64, "scopes": ["read"]}
        cases = [
            ("{not json", r"^counterd: .*/t\.json: not valid JSON: "),
            (json.dumps({"tokens": [good, {**good, "name": "b", "sha256": "b" * 64,
                                            "scopes": ["rw"]}]}),
             r'^counterd: .*/t\.json: tokens\[1\] \(name "b"\): unknown scope "rw"'),
            (json.dumps({"tokens": [good, {**good, "sha256": "c" * 64}]}),
             r'^counterd: .*/t\.json: tokens\[1\] \(name "a"\): the name is used by an '
             r'earlier entry$'),
            (json.dumps({"tokens": [good, {**good, "name": "b"}]}),
             r'^counterd: .*/t\.json: tokens\[1\] \(name "b"\): "sha256" is the same as that '
             r'of "a"'),
            (json.dumps({"tokens": [{**good, "prefix": ["x:"]}]}),
             r'^counterd: .*/t\.json: tokens\[0\] \(name "a"\): unknown field "prefix"'),
            (json.dumps({"tokens": [{**good, "sha256": "A" * 64}]}),
             r'^counterd: .*/t\.json: tokens\[0\] \(name "a"\): "sha256" must be exactly 64 '
             r'lowercase hex digits'),
        ]
        for text, pattern in cases:
            with self.subTest(pattern=pattern):
                path = os.path.join(d, "t.json")
                with open(path, "w") as f:
                    f.write(text)
                r = run_counterd(["--listen", "127.0.0.1:0", "--data-dir", d,
                                  "--auth-tokens-file", path], timeout=10)
                self.assertEqual(r.returncode, 2, r)
                lines = r.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertRegex(lines[0], pattern)
        r = run_counterd(["--listen", "127.0.0.1:0", "--data-dir", d],
                         env={"COUNTERD_AUTH_TOKENS_FILE": os.path.join(d, "missing.json")},
                         timeout=10)
        self.assertEqual(r.returncode, 2, r)
        self.assertRegex(r.stderr.strip(), r"^counterd: --auth-tokens-file: open .*missing\.json: ")

    def test_without_a_tokens_file_auth_is_off_and_says_so(self):
        with CounterdServer() as srv:
            warn = srv.wait_for_log(r"authentication is off")
            self.assertEqual(json.loads(warn)["level"], "warning")
            c = srv.client()
            self.addCleanup(c.close)
            self.assertEqual(c.post("/counters/free/increment").status, 200)
            samples = parse_prometheus(c.get("/metrics").text)
            self.assertEqual(metric_sum(samples, "counterd_auth_enabled"), 0)
            # SIGHUP is taken, never fatal.
            srv.signal(signal.SIGHUP)
            srv.wait_for_log(r"SIGHUP received; nothing to reload")
            self.assertEqual(c.get("/livez").status, 200)
            self.assertEqual(srv.stop(), 0)

    def test_env_variable_turns_auth_on(self):
        d = self.tmpdir()
        token = new_token()
        path = os.path.join(d, "t.json")
        with open(path, "w") as f:
            f.write(tokens_json([("ops", token, ["read"], None)]))
        with CounterdServer(env={"COUNTERD_AUTH_TOKENS_FILE": path}) as srv:
            line = srv.wait_for_log(r"authentication on")
            self.assertIn('"tokens":1', line.replace(" ", ""))
            c = srv.client()
            self.addCleanup(c.close)
            self.assertEqual(c.get("/counter").status, 401)
            self.assertEqual(c.get("/counter", headers={"Authorization": f"Bearer {token}"}).status,
                             200)
            self.assertNotIn(token, srv.log_text())


if __name__ == "__main__":
    unittest.main()
