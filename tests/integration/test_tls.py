"""TLS (issue 10, section 3) against the real binary, with real clients.

A throwaway CA, server certificate and client certificates are made with the
openssl CLI in a temp dir at test time (nothing is committed). Covered:

  * HTTPS only: curl --cacert GET and POST; plain HTTP on the port gets no
    HTTP answer; `counterd healthcheck` probes over HTTPS;
  * protocol versions with `openssl s_client`: TLS 1.3 and 1.2 negotiated
    (the protocol and cipher lines are printed), TLS 1.1 and 1.0 refused by
    the server (its "protocol version" alert), a non-AEAD TLS 1.2 cipher
    refused; refusals counted in counterd_tls_handshake_failures_total;
  * mutual TLS: a client certificate from the CA is accepted, none or one
    from another CA refused; the healthcheck presents the server's pair;
  * certificate rotation while a keep-alive connection stays open: files
    rewritten in place, then a Kubernetes-style "..data" symlink swap, then
    a broken pair (refused; the previous certificate stays). Each step waits
    on counterd_tls_certificate_reloads_total, and compares the SHA-256
    fingerprint a new connection sees with the files'.
"""

import hashlib
import http.client
import email.utils
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

from counterd_harness import (CounterdAssertions, CounterdServer, metric_sum,
                              parse_prometheus, run_counterd, unique_name,
                              wait_until)

LOOPBACK = "127.0.0.1"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Pki:
    """A CA, and certificates it (or another CA) signed, in |root|."""

    def __init__(self, root):
        self.root = root
        self._serial = 1000
        self.ca("ca")

    def path(self, name):
        return os.path.join(self.root, name)

    def ca(self, name):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
                "-subj", f"/CN=counterd test {name}", cwd=self.root)

    def issue(self, name, cn, ca="ca", usage="serverAuth,clientAuth"):
        """Writes <name>.crt and <name>.key signed by |ca|; returns the
        (cert path, key path)."""
        self._serial += 1
        ext = self.path(f"{name}.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                    f"extendedKeyUsage={usage}\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
                cwd=self.root)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey",
                f"{ca}.key", "-set_serial", str(self._serial), "-out", f"{name}.crt",
                "-days", "1", "-extfile", ext, cwd=self.root)
        return self.path(f"{name}.crt"), self.path(f"{name}.key")


def fingerprint_of_file(cert_path):
    with open(cert_path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


class TlsServerBase(CounterdAssertions, unittest.TestCase):
    """One TLS server per class; subclasses set up the certificate files
    in make_files() and may add server arguments in more_args()."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp(prefix="counterd-tls-it-")
        cls.pki = Pki(cls.dir)
        cls.cert, cls.key = cls.make_files()
        cls.server = CounterdServer(args=["--tls-cert-file", cls.cert,
                                          "--tls-key-file", cls.key, *cls.more_args()])
        try:
            cls.server.start(wait_ready=False)
            wait_until(lambda: cls.https_status("/readyz") == 200, 20, 0.05,
                       "GET /readyz over HTTPS")
        except BaseException:
            cls.server.cleanup()
            shutil.rmtree(cls.dir, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.server.stop()
            if rc != 0:
                raise AssertionError(f"counterd exited with {rc}:\n"
                                     + cls.server.log_text(40))
        finally:
            cls.server.cleanup()
            shutil.rmtree(cls.dir, ignore_errors=True)
            super().tearDownClass()

    @classmethod
    def make_files(cls):
        return cls.pki.issue("server", "localhost")

    @classmethod
    def more_args(cls):
        return []

    @classmethod
    def client_context(cls, identity=None):
        ctx = ssl.create_default_context(cafile=cls.pki.path("ca.crt"))
        if identity:
            ctx.load_cert_chain(*identity)
        return ctx

    @classmethod
    def https(cls, method, path, body=None, headers=None, identity=None):
        conn = http.client.HTTPSConnection(LOOPBACK, cls.server.port, timeout=10,
                                           context=cls.client_context(identity))
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    @classmethod
    def https_status(cls, path):
        try:
            return cls.https("GET", path)[0]
        except (OSError, http.client.HTTPException):
            return None

    @classmethod
    def metric(cls, name, **labels):
        status, body = cls.https("GET", "/metrics", identity=cls.metrics_identity())
        assert status == 200, status
        return metric_sum(parse_prometheus(body.decode()), name, **labels)

    @classmethod
    def metrics_identity(cls):
        return None

    def curl(self, *args):
        return subprocess.run(
            ["curl", "-sS", "--max-time", "10", "--cacert", self.pki.path("ca.crt"), *args],
            capture_output=True, text=True)

    def s_client(self, *args):
        """openssl s_client against the server; (exit code, output)."""
        p = subprocess.run(
            ["openssl", "s_client", "-connect", f"{LOOPBACK}:{self.server.port}",
             "-servername", "localhost", "-CAfile", self.pki.path("ca.crt"), *args],
            input="", capture_output=True, text=True, timeout=20)
        return p.returncode, p.stdout + p.stderr

    def served_fingerprint(self, identity=None):
        """The SHA-256 of the certificate a new connection is served."""
        ctx = self.client_context(identity)
        with socket.create_connection((LOOPBACK, self.server.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


class HttpsTest(TlsServerBase):

    def test_curl_get_and_post(self):
        name = unique_name("tls")
        base = f"https://{LOOPBACK}:{self.server.port}"
        p = self.curl("-w", "\n%{http_code} %{ssl_verify_result}", f"{base}/livez")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, '{"status":"ok"}\n200 0')
        p = self.curl("-w", "\n%{http_code}", "-X", "POST", "-H",
                      "Content-Type: application/json", "-d", '{"by": 5}',
                      f"{base}/counters/{name}/increment")
        self.assertEqual(p.returncode, 0, p.stderr)
        body, code = p.stdout.rsplit("\n", 1)
        self.assertEqual(code, "200")
        self.assertEqual(json.loads(body), {"name": name, "value": 5, "version": 1})

    def test_plain_http_on_the_port_gets_no_http_answer(self):
        before = self.metric("counterd_tls_handshake_failures_total")
        with self.server.raw() as raw:
            raw.send(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(raw.wait_closed(10), "plain connection left open")
            self.assertNotIn(b"HTTP/1.1", raw.received)
        self.assertEqual(self.metric("counterd_tls_handshake_failures_total"), before + 1)

    def test_protocol_versions(self):
        before = self.metric("counterd_tls_handshake_failures_total")
        lines = ["\nopenssl s_client against counterd:"]
        for flag, want in (("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")):
            rc, out = self.s_client(flag)
            self.assertEqual(rc, 0, out)
            self.assertIn("Verify return code: 0 (ok)", out)
            new = next(l for l in out.splitlines() if l.startswith("New, "))
            self.assertRegex(new, rf"^New, {want}, Cipher is \S*(GCM|CHACHA20)\S*$",
                             "not the version asked for, or not an AEAD cipher")
            # (TLS 1.3 may print a session block per ticket: show one.)
            shown = [new] + list(dict.fromkeys(
                l.strip() for l in out.splitlines()
                if l.strip().startswith(("Protocol  :", "Cipher    :"))))
            lines.append(f"  {flag}: " + " | ".join(shown))
        # The client is told to offer the old versions (security level 0);
        # the refusal is the server's alert.
        for flag in ("-tls1_1", "-tls1"):
            rc, out = self.s_client(flag, "-cipher", "DEFAULT@SECLEVEL=0")
            self.assertNotEqual(rc, 0, out)
            self.assertIn("alert protocol version", out)
            self.assertIn("Cipher is (NONE)", out)
            lines.append(f"  {flag}: refused: " + next(
                l.strip() for l in out.splitlines() if "alert protocol version" in l))
        # TLS 1.2 without an AEAD cipher (CBC with RSA key exchange): refused.
        rc, out = self.s_client("-tls1_2", "-cipher", "AES128-SHA:ECDHE-ECDSA-AES128-SHA")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("Cipher is (NONE)", out)
        lines.append("  -tls1_2 -cipher AES128-SHA:ECDHE-ECDSA-AES128-SHA: refused")
        self.assertEqual(self.metric("counterd_tls_handshake_failures_total"), before + 3)
        print("\n".join(lines), file=sys.stderr)

    def test_healthcheck_probes_over_https(self):
        env = {"COUNTERD_LISTEN": f"{LOOPBACK}:{self.server.port}",
               "COUNTERD_TLS_CERT_FILE": self.cert, "COUNTERD_TLS_KEY_FILE": self.key,
               "COUNTERD_DATA_DIR": "/nonexistent"}
        p = run_counterd(["healthcheck"], env=env)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        p = run_counterd(["healthcheck", "--tls", "--listen", f"{LOOPBACK}:{self.server.port}"])
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        # Without TLS it speaks plain HTTP to a TLS port: no answer.
        p = run_counterd(["healthcheck", "--listen", f"{LOOPBACK}:{self.server.port}"])
        self.assertEqual(p.returncode, 1)
        self.assertIn("counterd healthcheck: read response", p.stderr)

    def test_tls_metrics_are_shown(self):
        self.assertEqual(self.metric("counterd_tls_certificate_reloads_total", result="ok"), 0)
        expiry = self.metric("counterd_tls_certificate_expiry_timestamp_seconds")
        out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", self.cert],
                             capture_output=True, text=True, check=True).stdout
        not_after = email.utils.parsedate_to_datetime(
            out.strip().split("=", 1)[1].replace("  ", " ")).timestamp()
        self.assertEqual(expiry, not_after)


class MutualTlsTest(TlsServerBase):

    @classmethod
    def more_args(cls):
        return ["--tls-client-ca-file", cls.pki.path("ca.crt")]

    @classmethod
    def make_files(cls):
        cls.client = cls.pki.issue("client", "client-1", usage="clientAuth")
        cls.pki.ca("other")
        cls.stranger = cls.pki.issue("stranger", "stranger", ca="other", usage="clientAuth")
        return cls.pki.issue("server", "localhost")

    @classmethod
    def metrics_identity(cls):
        return cls.client

    @classmethod
    def https_status(cls, path):
        try:
            return cls.https("GET", path, identity=cls.client)[0]
        except (OSError, http.client.HTTPException):
            return None

    def test_client_certificate_from_the_ca_is_accepted(self):
        base = f"https://{LOOPBACK}:{self.server.port}"
        p = self.curl("-w", "\n%{http_code}", "--cert", self.client[0], "--key",
                      self.client[1], f"{base}/livez")
        self.assertEqual((p.returncode, p.stdout), (0, '{"status":"ok"}\n200'), p.stderr)

    def test_no_or_foreign_client_certificate_is_refused(self):
        before = self.metric("counterd_tls_handshake_failures_total")
        base = f"https://{LOOPBACK}:{self.server.port}"
        none = self.curl("-w", "%{http_code}", f"{base}/livez")
        self.assertNotEqual(none.returncode, 0)
        self.assertEqual(none.stdout, "000", "an HTTP response without a certificate")
        foreign = self.curl("-w", "%{http_code}", "--cert", self.stranger[0], "--key",
                            self.stranger[1], f"{base}/livez")
        self.assertNotEqual(foreign.returncode, 0)
        self.assertEqual(foreign.stdout, "000", "an HTTP response for another CA's client")
        self.assertEqual(self.metric("counterd_tls_handshake_failures_total"), before + 2)
        print(f"\nmTLS: curl without a client certificate: exit {none.returncode}; "
              f"{none.stderr.strip()}\nmTLS: curl with another CA's certificate: exit "
              f"{foreign.returncode}; {foreign.stderr.strip()}", file=sys.stderr)

    def test_healthcheck_presents_the_servers_pair(self):
        env = {"COUNTERD_LISTEN": f"{LOOPBACK}:{self.server.port}",
               "COUNTERD_TLS_CERT_FILE": self.cert, "COUNTERD_TLS_KEY_FILE": self.key,
               "COUNTERD_TLS_CLIENT_CA_FILE": self.pki.path("ca.crt")}
        p = run_counterd(["healthcheck"], env=env)
        self.assertEqual((p.returncode, p.stderr), (0, ""))


class RotationTest(TlsServerBase):
    """The server reads secret/tls.{crt,key}, symlinks through secret/..data
    into a versioned directory, as a Kubernetes Secret volume does."""

    @classmethod
    def make_files(cls):
        cls.secret = os.path.join(cls.dir, "secret")
        os.makedirs(cls.secret)
        cls.version_dir("..v1", cls.pki.issue("v1", "localhost"))
        os.symlink("..v1", os.path.join(cls.secret, "..data"))
        for f in ("tls.crt", "tls.key"):
            os.symlink(os.path.join("..data", f), os.path.join(cls.secret, f))
        return os.path.join(cls.secret, "tls.crt"), os.path.join(cls.secret, "tls.key")

    @classmethod
    def version_dir(cls, name, pair):
        d = os.path.join(cls.secret, name)
        os.makedirs(d, exist_ok=True)
        shutil.copyfile(pair[0], os.path.join(d, "tls.crt"))
        shutil.copyfile(pair[1], os.path.join(d, "tls.key"))

    def swap_data(self, name):
        tmp = os.path.join(self.secret, "..data_tmp")
        os.symlink(name, tmp)
        os.replace(tmp, os.path.join(self.secret, "..data"))  # atomic

    def wait_reloads(self, conn, result, count):
        """Polls /metrics on the kept-alive |conn| until the reload counter
        reaches |count|; the poll itself proves |conn| still works."""
        def reached():
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            samples = parse_prometheus(r.read().decode())
            return metric_sum(samples, "counterd_tls_certificate_reloads_total",
                              result=result) >= count
        wait_until(reached, 15, 0.1, f"reloads_total{{result={result}}} >= {count}")

    def test_rotation_keeps_open_connections_and_serves_the_new_certificate(self):
        lines = ["\ncertificate rotation:"]
        conn = http.client.HTTPSConnection(LOOPBACK, self.server.port, timeout=10,
                                           context=self.client_context())
        self.addCleanup(conn.close)
        conn.request("GET", "/livez")
        self.assertEqual(conn.getresponse().read(), b'{"status":"ok"}')
        sock = conn.sock
        v1 = fingerprint_of_file(self.pki.path("v1.crt"))
        self.assertEqual(self.served_fingerprint(), v1)
        lines.append(f"  start:            new connections get v1 sha256={v1[:16]}")

        # 1. cert-manager style: the files rewritten in place.
        v2_pair = self.pki.issue("v2", "localhost")
        for source, target in ((v2_pair[1], "tls.key"), (v2_pair[0], "tls.crt")):
            with open(source, "rb") as src, \
                    open(os.path.join(self.secret, "..v1", target), "wb") as dst:
                dst.write(src.read())
        self.wait_reloads(conn, "ok", 1)
        v2 = fingerprint_of_file(v2_pair[0])
        self.assertEqual(self.served_fingerprint(), v2)
        self.assertIs(conn.sock, sock, "the kept-alive connection was replaced")
        lines.append(f"  in-place rewrite: reloads ok=1, new connections get v2 "
                     f"sha256={v2[:16]}, the open connection still served")

        # 2. Kubernetes style: ..data swapped to a new directory.
        self.version_dir("..v3", self.pki.issue("v3", "localhost"))
        self.swap_data("..v3")
        self.wait_reloads(conn, "ok", 2)
        v3 = fingerprint_of_file(self.pki.path("v3.crt"))
        self.assertEqual(self.served_fingerprint(), v3)
        self.assertIs(conn.sock, sock)
        lines.append(f"  ..data swap:      reloads ok=2, new connections get v3 "
                     f"sha256={v3[:16]}, the open connection still served")

        # 3. A broken pair (v4's certificate with another key): refused,
        #    v3 stays.
        v4_pair = self.pki.issue("v4", "localhost")
        other = self.pki.issue("v4other", "localhost")
        self.version_dir("..v4", (v4_pair[0], other[1]))
        self.swap_data("..v4")
        self.wait_reloads(conn, "error", 1)
        self.assertEqual(self.served_fingerprint(), v3)
        self.server.wait_for_log(r"certificate reload refused.*does not match")
        conn.request("GET", "/livez")
        self.assertEqual(conn.getresponse().read(), b'{"status":"ok"}')
        self.assertIs(conn.sock, sock)
        line = json.loads(self.server.wait_for_log(r"certificate reload refused"))
        refused = f"{line['msg']}: {line['error']}"
        lines.append("  broken pair:      reloads error=1, new connections still get v3, "
                     "the open connection still served; log: "
                     + refused.replace(self.dir, "$TMP"))
        print("\n".join(lines), file=sys.stderr)


class TlsConfigErrorsTest(unittest.TestCase):

    def test_one_tls_file_without_the_other_is_bad_usage(self):
        p = run_counterd(["--listen", f"{LOOPBACK}:0", "--data-dir", "/nonexistent",
                          "--tls-cert-file", "/x.crt"])
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr, "counterd: --tls-cert-file needs --tls-key-file too: "
                                   "give both TLS files or neither\n")
        p = run_counterd(["--listen", f"{LOOPBACK}:0", "--data-dir", "/nonexistent"],
                         env={"COUNTERD_TLS_KEY_FILE": "/x.key"})
        self.assertEqual(p.returncode, 2)
        self.assertIn("COUNTERD_TLS_KEY_FILE needs COUNTERD_TLS_CERT_FILE", p.stderr)

    def test_a_pair_that_does_not_load_stops_start_up(self):
        d = tempfile.mkdtemp(prefix="counterd-tls-bad-")
        self.addCleanup(shutil.rmtree, d, True)
        pki = Pki(d)
        cert, _ = pki.issue("a", "localhost")
        _, other_key = pki.issue("b", "localhost")
        p = run_counterd(["--listen", f"{LOOPBACK}:0", "--data-dir", os.path.join(d, "data"),
                          "--tls-cert-file", cert, "--tls-key-file", other_key])
        self.assertEqual(p.returncode, 2, p.stderr)
        errors = [l for l in p.stderr.splitlines() if " error " in l]
        self.assertEqual(len(errors), 1, p.stderr)
        self.assertIn(f'cannot serve error="{other_key}: the private key does not match the '
                      f'certificate in {cert}"', errors[0])


if __name__ == "__main__":
    unittest.main()
