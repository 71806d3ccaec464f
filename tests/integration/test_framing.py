"""HTTP/1.1 framing and conformance over raw sockets (RFC 9112, RFC 9110).

One table, the framing matrix: Content-Length / Transfer-Encoding
combinations, duplicate and list-valued Content-Length, transfer codings,
obsolete line folding, bare LF and CR, NUL bytes, Host rules, absolute-form
targets, HTTP versions and method tokens. Each case is sent on a connection
of its own and asserts the exact status (None: closed without an answer)
and whether the server closed the connection afterwards. A case expected to
stay open proves it by a second request on the same connection; one
expected to close must see EOF.

Most requests carry a smuggled second request in what the server must not
read as one: "DELETE /counters/<victim>" or an increment of the victim. The
victim counter must never change, and a refused outer request must not have
run either (its counter does not exist).

The matrix is printed (case, status, closed) to stderr.
"""

import sys
import unittest

from counterd_harness import ServerTestCase, unique_name

# Placeholders filled per case: {outer} names the counter the outer request
# targets, {victim} the one the smuggled request would delete or change.
SMUGGLED_DELETE = b"DELETE /counters/{victim} HTTP/1.1\r\nHost: x\r\n\r\n"
SMUGGLED_INCREMENT = (b"POST /counters/{victim}/increment HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 0\r\n\r\n")
POST = b"POST /counters/{outer}/increment HTTP/1.1\r\nHost: x\r\n"
JSON = b"Content-Type: application/json\r\n"
BODY = b'{"by":2}'  # 8 bytes
CHUNKED_BODY = b"8\r\n" + BODY + b"\r\n0\r\n\r\n"

# (case, request bytes, expected status or None, expected closed,
#  value of {outer} afterwards: None = must not exist)
CASES = [
    # --- Content-Length / Transfer-Encoding ---------------------------------
    ("CL only", POST + JSON + b"Content-Length: 8\r\n\r\n" + BODY, 200, False, 2),
    ("CL: 0, no body", POST + b"Content-Length: 0\r\n\r\n", 200, False, 1),
    ("TE chunked", POST + JSON + b"Transfer-Encoding: chunked\r\n\r\n" + CHUNKED_BODY,
     200, False, 2),
    ("TE CHUNKED (upper case)", POST + JSON + b"Transfer-Encoding: CHUNKED\r\n\r\n"
     + CHUNKED_BODY, 200, False, 2),
    ("CL + TE chunked", POST + JSON + b"Content-Length: 8\r\nTransfer-Encoding: chunked\r\n\r\n"
     + b"0\r\n\r\n" + SMUGGLED_DELETE, 400, True, None),
    ("TE chunked + CL", POST + JSON + b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n"
     + b"0\r\n\r\n" + SMUGGLED_DELETE, 400, True, None),
    ("CL + TE identity", POST + b"Content-Length: 45\r\nTransfer-Encoding: identity\r\n\r\n"
     + SMUGGLED_DELETE, 400, True, None),
    ("TE identity + CL", POST + b"Transfer-Encoding: identity\r\nContent-Length: 45\r\n\r\n"
     + SMUGGLED_DELETE, 400, True, None),
    ("CL twice, same value", POST + JSON + b"Content-Length: 8\r\nContent-Length: 8\r\n\r\n"
     + BODY + SMUGGLED_DELETE, 400, True, None),
    ("CL twice, different", POST + JSON + b"Content-Length: 8\r\nContent-Length: 0\r\n\r\n"
     + BODY + SMUGGLED_DELETE, 400, True, None),
    ("CL list '8, 8'", POST + JSON + b"Content-Length: 8, 8\r\n\r\n" + BODY
     + SMUGGLED_DELETE, 400, True, None),
    ("CL list '0, 8'", POST + JSON + b"Content-Length: 0, 8\r\n\r\n" + BODY
     + SMUGGLED_DELETE, 400, True, None),
    ("CL '+8'", POST + JSON + b"Content-Length: +8\r\n\r\n" + BODY, 400, True, None),
    ("CL '-1'", POST + b"Content-Length: -1\r\n\r\n" + SMUGGLED_DELETE, 400, True, None),
    ("CL hex '0x8'", POST + b"Content-Length: 0x8\r\n\r\n" + BODY, 400, True, None),
    # --- transfer codings ---------------------------------------------------
    ("TE identity (issue 10)", POST + b"Transfer-Encoding: identity\r\n\r\n" + SMUGGLED_DELETE,
     400, True, None),
    ("TE 'chunked, identity'", POST + b"Transfer-Encoding: chunked, identity\r\n\r\n"
     + SMUGGLED_DELETE, 400, True, None),
    ("TE gzip", POST + b"Transfer-Encoding: gzip\r\n\r\n" + SMUGGLED_DELETE, 400, True, None),
    ("TE 'gzip, chunked'", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + b"0\r\n\r\n"
     + SMUGGLED_DELETE, 501, True, None),
    ("TE 'identity, chunked'", POST + b"Transfer-Encoding: identity, chunked\r\n\r\n"
     + b"0\r\n\r\n" + SMUGGLED_DELETE, 501, True, None),
    ("TE xchunked", POST + b"Transfer-Encoding: xchunked\r\n\r\n" + SMUGGLED_DELETE,
     400, True, None),
    ("TE 'chunked, chunked'", POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n"
     + SMUGGLED_DELETE, 400, True, None),
    ("TE chunked on two lines", POST + b"Transfer-Encoding: chunked\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED_DELETE, 400, True, None),
    ("TE gzip line + chunked line", POST + b"Transfer-Encoding: gzip\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED_DELETE, 501, True, None),
    ("TE 'chunked;x=1'", POST + b"Transfer-Encoding: chunked;x=1\r\n\r\n0\r\n\r\n"
     + SMUGGLED_DELETE, 400, True, None),
    ("TE empty", POST + b"Transfer-Encoding: \r\n\r\n" + SMUGGLED_DELETE, 400, True, None),
    ("TE chunked in HTTP/1.0", b"POST /counters/{outer}/increment HTTP/1.0\r\nHost: x\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED_DELETE, 400, True, None),
    ("chunk size not hex", POST + JSON + b"Transfer-Encoding: chunked\r\n\r\n0x8\r\n" + BODY
     + b"\r\n0\r\n\r\n" + SMUGGLED_DELETE, 400, True, None),
    ("chunk size overflows", POST + b"Transfer-Encoding: chunked\r\n\r\n"
     + b"1" * 20 + b"\r\n" + SMUGGLED_DELETE, 400, True, None),
    # --- obsolete line folding ---------------------------------------------
    ("obs-fold in a field", POST + b"X-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n", 400, True, None),
    ("obs-fold continuing TE", POST + b"Transfer-Encoding: identity\r\n\tchunked\r\n\r\n"
     + b"0\r\n\r\n" + SMUGGLED_DELETE, 400, True, None),
    ("obs-fold hiding TE", POST + b"X-A: 1\r\n Transfer-Encoding: chunked\r\n"
     b"Content-Length: 45\r\n\r\n" + SMUGGLED_DELETE, 400, True, None),
    # --- line endings ---------------------------------------------------------
    ("bare LF everywhere", b"POST /counters/{outer}/increment HTTP/1.1\nHost: x\n"
     b"Content-Length: 0\n\n" + SMUGGLED_DELETE, 400, True, None),
    ("bare LF after a field", POST + b"Content-Length: 0\nX-A: 1\r\n\r\n" + SMUGGLED_DELETE,
     400, True, None),
    ("bare CR after the request line", b"POST /counters/{outer}/increment HTTP/1.1\rHost: x\r\n"
     b"Content-Length: 0\r\n\r\n", 400, True, None),
    ("bare CR after a field", POST + b"Content-Length: 0\rX-A: 1\r\n\r\n" + SMUGGLED_DELETE,
     400, True, None),
    ("bare CR in a value", POST + b"X-A: 1\r2\r\nContent-Length: 0\r\n\r\n", 400, True, None),
    # --- NUL bytes --------------------------------------------------------------
    ("NUL in a field name", POST + b"X-\x00A: 1\r\nContent-Length: 0\r\n\r\n", 400, True, None),
    ("NUL in a field value", POST + b"X-A: 1\x002\r\nContent-Length: 0\r\n\r\n", 400, True, None),
    ("NUL in the target", b"POST /counters/{outer}\x00/increment HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: 0\r\n\r\n", 400, True, None),
    ("NUL in the method", b"PO\x00ST /counters/{outer}/increment HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: 0\r\n\r\n", 400, True, None),
    # --- Host -------------------------------------------------------------------
    ("HTTP/1.1 without Host", b"POST /counters/{outer}/increment HTTP/1.1\r\n"
     b"Content-Length: 0\r\n\r\n", 400, True, None),
    ("Host twice (same)", POST + b"Host: x\r\nContent-Length: 0\r\n\r\n", 400, True, None),
    ("Host twice (different)", POST + b"Host: y\r\nContent-Length: 0\r\n\r\n", 400, True, None),
    ("Host empty", b"POST /counters/{outer}/increment HTTP/1.1\r\nHost:\r\n"
     b"Content-Length: 0\r\n\r\n", 200, False, 1),
    ("Host 'a b'", b"POST /counters/{outer}/increment HTTP/1.1\r\nHost: a b\r\n"
     b"Content-Length: 0\r\n\r\n", 400, True, None),
    ("Host 'x/y'", b"POST /counters/{outer}/increment HTTP/1.1\r\nHost: x/y\r\n"
     b"Content-Length: 0\r\n\r\n", 400, True, None),
    ("Host with port", b"POST /counters/{outer}/increment HTTP/1.1\r\nHost: [::1]:8080\r\n"
     b"Content-Length: 0\r\n\r\n", 200, False, 1),
    ("HTTP/1.0 without Host", b"POST /counters/{outer}/increment HTTP/1.0\r\n"
     b"Content-Length: 0\r\n\r\n", 200, True, 1),
    ("HTTP/1.0 with Host twice", b"POST /counters/{outer}/increment HTTP/1.0\r\nHost: x\r\n"
     b"Host: x\r\nContent-Length: 0\r\n\r\n", 400, True, None),
    # --- absolute-form targets (RFC 9112 §3.2.2) --------------------------------
    ("absolute-form http", b"POST http://elsewhere.example/counters/{outer}/increment HTTP/1.1\r\n"
     b"Host: x\r\nContent-Length: 0\r\n\r\n", 200, False, 1),
    ("absolute-form HTTPS with port", b"POST HTTPS://x:8443/counters/{outer}/increment HTTP/1.1\r\n"
     b"Host: x\r\nContent-Length: 0\r\n\r\n", 200, False, 1),
    ("absolute-form without Host", b"POST http://x/counters/{outer}/increment HTTP/1.1\r\n"
     b"Content-Length: 0\r\n\r\n", 400, True, None),
    ("absolute-form ftp scheme", b"POST ftp://x/counters/{outer}/increment HTTP/1.1\r\n"
     b"Host: x\r\nContent-Length: 0\r\n\r\n", 400, False, None),
    ("absolute-form with userinfo", b"POST http://u@x/counters/{outer}/increment HTTP/1.1\r\n"
     b"Host: x\r\nContent-Length: 0\r\n\r\n", 400, True, None),
    ("absolute-form bad authority", b"POST http://a%zz/counters/{outer}/increment HTTP/1.1\r\n"
     b"Host: x\r\nContent-Length: 0\r\n\r\n", 400, True, None),
    # --- HTTP versions ----------------------------------------------------------
    ("HTTP/1.0", b"POST /counters/{outer}/increment HTTP/1.0\r\nHost: x\r\n"
     b"Content-Length: 0\r\n\r\n", 200, True, 1),
    ("HTTP/1.1", POST + b"Content-Length: 0\r\n\r\n", 200, False, 1),
    ("HTTP/1.2 (served as 1.1)", b"POST /counters/{outer}/increment HTTP/1.2\r\nHost: x\r\n"
     b"Content-Length: 0\r\n\r\n", 200, False, 1),
    ("HTTP/2.0", b"POST /counters/{outer}/increment HTTP/2.0\r\nHost: x\r\n"
     b"Content-Length: 0\r\n\r\n", 400, True, None),
    ("HTTP/0.9 version", b"POST /counters/{outer}/increment HTTP/0.9\r\nHost: x\r\n"
     b"Content-Length: 0\r\n\r\n", 400, True, None),
    ("HTTP/0.9 request line", b"GET /counters/{outer}\r\n\r\n", 400, True, None),
    ("HTTP/1.10", b"POST /counters/{outer}/increment HTTP/1.10\r\nHost: x\r\n"
     b"Content-Length: 0\r\n\r\n", 400, True, None),
    ("http/1.1 (lower case)", b"POST /counters/{outer}/increment http/1.1\r\nHost: x\r\n"
     b"Content-Length: 0\r\n\r\n", 400, True, None),
    # --- methods ----------------------------------------------------------------
    ("unknown method FOO", b"FOO /counters/{outer}/increment HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: 0\r\n\r\n", 501, False, None),
    ("lower-case get", b"get /counters/{outer} HTTP/1.1\r\nHost: x\r\n\r\n", 501, False, None),
    ("PATCH (known, not allowed)", b"PATCH /counters/{outer}/increment HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: 0\r\n\r\n", 405, False, None),
]


class FramingMatrixTest(ServerTestCase):

    def _fill(self, data: bytes, outer: str, victim: str) -> bytes:
        return data.replace(b"{outer}", outer.encode()).replace(b"{victim}", victim.encode())

    def _run_case(self, data: bytes):
        """(status or None, closed) for |data| sent on a fresh connection."""
        with self.server.raw(timeout=10) as raw:
            raw.send(data)
            try:
                r = raw.read_response(timeout=10)
            except ConnectionError:
                r = None
            if r is not None and r.status >= 400:
                self.assertProblem(r, r.status)
                self.assertIsNotNone(r.header("Date"), repr(r))
            # Open: a second request on the same connection is answered.
            # Closed: EOF within the linger bound.
            follow_up = b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"
            closed = True
            if raw.send(follow_up):
                try:
                    again = raw.read_response(timeout=10)
                except ConnectionError:
                    again = None
                if again is not None:
                    self.assertEqual(again.status, 200, repr(again))
                    closed = False
                else:
                    closed = True
            if closed:
                self.assertTrue(raw.wait_closed(10), "neither answered nor closed")
            return r, closed

    def test_framing_matrix(self):
        victim = unique_name("victim")
        self.put_counter(victim, 100)
        rows = []
        failures = []
        for case, template, want_status, want_closed, want_outer in CASES:
            outer = unique_name("outer")
            data = self._fill(template, outer, victim)
            with self.subTest(case=case):
                r, closed = self._run_case(data)
                status = r.status if r is not None else None
                rows.append((case, status, closed))
                if (status, closed) != (want_status, want_closed):
                    failures.append(case)
                self.assertEqual((status, closed), (want_status, want_closed),
                                 f"{case}: {data!r} -> {r!r}")
                got = self.get_counter(outer)
                self.assertEqual(None if got is None else got["value"], want_outer,
                                 f"{case}: the outer request's effect")
                self.assertCounter(self.c.get(f"/counters/{victim}"), victim, 100,
                                   msg=f"{case}: the smuggled request ran")
        width = max(len(case) for case, _, _ in rows)
        lines = [f"\nframing matrix ({len(rows)} cases):",
                 f"  {'case':<{width}}  status  closed"]
        for case, status, closed in rows:
            mark = "  <-- unexpected" if case in failures else ""
            lines.append(f"  {case:<{width}}  {str(status):>6}  {'yes' if closed else 'no':>6}{mark}")
        print("\n".join(lines), file=sys.stderr)

    def test_smuggled_increment_after_identity_is_not_run(self):
        victim = unique_name("victim")
        self.put_counter(victim, 7)
        outer = unique_name("outer")
        data = self._fill(POST + b"Transfer-Encoding: identity\r\n\r\n" + SMUGGLED_INCREMENT,
                          outer, victim)
        r, closed = self._run_case(data)
        self.assertProblem(r, 400)
        self.assertTrue(closed)
        self.assertCounter(self.c.get(f"/counters/{victim}"), victim, 7)
        self.assertIsNone(self.get_counter(outer))

    def test_every_response_has_an_imf_fixdate(self):
        for r in (self.c.get("/livez"), self.c.get("/nope"), self.c.head("/counter"),
                  self.c.post("/counters/x/increment", json={"by": "x"})):
            self.assertRegex(r.header("Date") or "",
                             r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
                             r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                             r"\d{4} \d\d:\d\d:\d\d GMT$", repr(r))

    def test_unknown_method_problem_names_the_method(self):
        with self.server.raw() as raw:
            raw.send(b"BREW /counter HTTP/1.1\r\nHost: x\r\n\r\n")
            r = raw.read_response()
        doc = self.assertProblem(r, 501)
        self.assertEqual(doc["type"], "urn:counterd:problem:not-implemented")
        self.assertIn("BREW", doc["detail"])
        self.assertEqual(doc["instance"], "/counter")

    def test_405_keeps_its_allow_header(self):
        r = self.c.request("OPTIONS", "/counters/x")
        self.assertProblem(r, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD, PUT, DELETE")


if __name__ == "__main__":
    unittest.main()
