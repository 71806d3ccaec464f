"""Bad input: every bad request gets a problem answer and changes nothing.
Also unknown paths (404), wrong methods (405 + Allow), bodies over the limit
(413) and non-JSON bodies (415)."""

import unittest

from counterd_harness import INT64_MAX, INT64_MIN, ServerTestCase, unique_name

MUTATIONS = [("PUT", ""), ("POST", "/increment"), ("POST", "/decrement")]


class BadInputTest(ServerTestCase):

    def setUp(self):
        super().setUp()
        self.name = unique_name("val")
        self.put_counter(self.name, 1000)
        self.before = self.list_all()

    def assertUnchanged(self, what):
        self.assertEqual(self.list_all(), self.before, f"state changed after {what}")

    def send(self, method, suffix, body, content_type="application/json", headers=None):
        return self.c.request(method, f"/counters/{self.name}{suffix}", body=body,
                              content_type=content_type, headers=headers)

    def test_malformed_json_is_400(self):
        bodies = [b"{", b'{"by":}', b'{"by":1', b'{"by":1}x', b"nul", b"{by:1}",
                  b"{'by':1}", b'{"by":1,}', b'\xff\xfe{"by":1}', b'{"value":01}',
                  b'{"value":1 2}']
        for method, suffix in MUTATIONS:
            for body in bodies:
                with self.subTest(method=method, suffix=suffix, body=body):
                    self.assertProblem(self.send(method, suffix, body), 400,
                                       f"{method} {suffix} {body!r}")
        self.assertUnchanged("malformed JSON")

    def test_non_object_json_is_400(self):
        for method, suffix in MUTATIONS:
            for body in (b"[]", b"[1]", b"1", b'"x"', b"null", b"true"):
                with self.subTest(method=method, suffix=suffix, body=body):
                    self.assertProblem(self.send(method, suffix, body), 400,
                                       f"{method} {suffix} {body!r}")
        self.assertUnchanged("non-object JSON")

    def test_unknown_and_missing_fields_are_400(self):
        cases = [
            ("PUT", "", b"{}"),
            ("PUT", "", b'{"by":1}'),
            ("PUT", "", b'{"value":1,"extra":2}'),
            ("PUT", "", b'{"Value":1}'),
            ("PUT", "", b'{"value":1,"version":3}'),
            ("POST", "/increment", b'{"by":1,"extra":2}'),
            ("POST", "/increment", b'{"value":1}'),
            ("POST", "/increment", b'{"By":1}'),
            ("POST", "/decrement", b'{"by":1,"x":null}'),
            ("POST", "/decrement", b'{"amount":1}'),
        ]
        for method, suffix, body in cases:
            with self.subTest(method=method, suffix=suffix, body=body):
                self.assertProblem(self.send(method, suffix, body), 400,
                                   f"{method} {suffix} {body!r}")
        self.assertUnchanged("unknown/missing fields")

    def test_wrong_types_are_400(self):
        wrong = [b'"1"', b"1.5", b"-0.5", b"true", b"[1]", b'{"a":1}', b"1e400"]
        for method, suffix in MUTATIONS:
            field = "value" if method == "PUT" else "by"
            for v in wrong:
                body = b'{"' + field.encode() + b'":' + v + b"}"
                with self.subTest(method=method, suffix=suffix, body=body):
                    self.assertProblem(self.send(method, suffix, body), 400,
                                       f"{method} {suffix} {body!r}")
        self.assertUnchanged("wrong types")

    def test_numbers_outside_int64_are_400(self):
        out = [INT64_MAX + 1, INT64_MIN - 1, 2**64, -(2**64), 10**30]
        for method, suffix in MUTATIONS:
            field = "value" if method == "PUT" else "by"
            for v in out:
                body = b'{"' + field.encode() + b'":' + str(v).encode() + b"}"
                with self.subTest(method=method, suffix=suffix, v=v):
                    self.assertProblem(self.send(method, suffix, body), 400,
                                       f"{method} {suffix} {body!r}")
        self.assertUnchanged("numbers outside int64")

    def test_wrong_content_type_is_415(self):
        for method, suffix in MUTATIONS:
            body = b'{"value":5}' if method == "PUT" else b'{"by":5}'
            for ct in ("text/plain", "application/x-www-form-urlencoded", "application/xml",
                       "multipart/form-data; boundary=x"):
                with self.subTest(method=method, suffix=suffix, ct=ct):
                    self.assertProblem(self.send(method, suffix, body, content_type=ct), 415,
                                       f"{method} {suffix} Content-Type {ct}")
        self.assertProblem(self.c.post("/counter/increment", body=b'{"by":5}',
                                       content_type="text/plain"), 415)
        self.assertUnchanged("non-JSON Content-Type")

    def test_json_with_charset_parameter_is_accepted(self):
        r = self.send("POST", "/increment", b'{"by":5}',
                      content_type="application/json; charset=utf-8")
        self.assertCounter(r, self.name, 1005)

    def test_body_over_default_limit_is_413(self):
        # A real 70 KiB JSON body (whitespace-padded), sent whole on a raw
        # socket; the answer must be a 413 problem, not a reset.
        big = b'{"by":1' + b" " * (70 * 1024) + b"}"
        for method, suffix in MUTATIONS:
            body = big.replace(b'"by"', b'"value"') if method == "PUT" else big
            with self.subTest(method=method, suffix=suffix):
                with self.server.raw() as raw:
                    sent = raw.send((f"{method} /counters/{self.name}{suffix} HTTP/1.1\r\n"
                                     f"Host: t\r\nContent-Type: application/json\r\n"
                                     f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
                    try:
                        r = raw.read_response(timeout=10)
                    except ConnectionError as e:
                        r = e
                if r is None or isinstance(r, Exception):
                    self.fail(f"{method} {suffix} with a {len(body)}-byte body: no 413, the "
                              f"connection was closed/reset ({r!r}; body fully sent: {sent})")
                self.assertProblem(r, 413, f"{method} {suffix} with {len(body)} bytes")
        self.assertUnchanged("an over-limit body")

    def test_declared_length_over_limit_is_413_without_body(self):
        # Only the headers: the server must refuse on Content-Length alone.
        with self.server.raw() as raw:
            raw.send((f"POST /counters/{self.name}/increment HTTP/1.1\r\n"
                      f"Host: {self.server.address}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: 1000000\r\n\r\n").encode())
            r = raw.read_response(timeout=10)
        self.assertIsNotNone(r, "closed without an answer")
        self.assertProblem(r, 413, "Content-Length: 1000000")
        self.assertUnchanged("a declared over-limit body")

    def test_body_just_under_limit_is_accepted(self):
        body = b'{"by":2' + b" " * (60 * 1024) + b"}"
        r = self.send("POST", "/increment", body)
        self.assertCounter(r, self.name, 1002)


class SmallBodyLimitTest(ServerTestCase):
    server_args = ["--max-body-bytes", "100"]

    def test_max_body_bytes_option(self):
        name = unique_name("small")
        ok = b'{"by":3' + b" " * 80 + b"}"          # 88 bytes
        too_big = b'{"by":3' + b" " * 120 + b"}"    # 128 bytes
        self.assertCounter(self.c.post(f"/counters/{name}/increment", body=ok,
                                       content_type="application/json"), name, 3)
        r = self.c.post(f"/counters/{name}/increment", body=too_big,
                        content_type="application/json")
        self.assertProblem(r, 413, "128-byte body with --max-body-bytes 100")
        self.assertEqual(self.get_counter(name)["value"], 3)


class RoutingTest(ServerTestCase):

    def test_unknown_paths_are_404(self):
        for method, path in [("GET", "/nope"), ("GET", "/counters/x/y"),
                             ("POST", "/counters/x/multiply"), ("GET", "/counterz"),
                             ("GET", "/counter/x"), ("DELETE", "/whatever/else"),
                             ("GET", "/counters/x/increment/more"), ("GET", "/livez/x")]:
            with self.subTest(method=method, path=path):
                self.assertProblem(self.c.request(method, path), 404, f"{method} {path}")

    def test_wrong_method_is_405_with_allow(self):
        name = unique_name("m405")
        self.put_counter(name, 1)
        before = self.get_counter(name)
        cases = [
            ("POST", f"/counters/{name}", {"GET", "PUT", "DELETE"}),
            ("PATCH", f"/counters/{name}", {"GET", "PUT", "DELETE"}),
            ("GET", f"/counters/{name}/increment", {"POST"}),
            ("PUT", f"/counters/{name}/decrement", {"POST"}),
            ("DELETE", f"/counters/{name}/increment", {"POST"}),
            ("DELETE", "/counter", {"GET"}),
            ("POST", "/counter", {"GET"}),
            ("GET", "/counter/increment", {"POST"}),
            ("DELETE", "/counters", {"GET"}),
            ("POST", "/counters", {"GET"}),
            ("POST", "/livez", {"GET"}),
            ("PUT", "/readyz", {"GET"}),
            ("POST", "/metrics", {"GET"}),
            ("DELETE", "/", {"GET"}),
        ]
        for method, path, must_allow in cases:
            with self.subTest(method=method, path=path):
                r = self.c.request(method, path)
                self.assertProblem(r, 405, f"{method} {path}")
                allow = r.header("Allow")
                self.assertIsNotNone(allow, f"405 without Allow: {r!r}")
                allowed = {m.strip().upper() for m in allow.split(",") if m.strip()}
                self.assertLessEqual(must_allow, allowed, f"Allow: {allow}")
                self.assertNotIn(method, allowed, f"Allow lists the refused method: {allow}")
        self.assertEqual(self.get_counter(name), before)


if __name__ == "__main__":
    unittest.main()
