"""The command line: --help, --version, bad options (exit 2), COUNTERD_*
environment options, start-up log lines, the data-dir lock, healthcheck."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from counterd_harness import BACKEND, CounterdAssertions, CounterdServer, file_backend_only, \
    free_port, run_counterd, unique_name


class CliTest(CounterdAssertions, unittest.TestCase):

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="counterd-cli-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def test_help(self):
        r = run_counterd(["--help"])
        self.assertEqual(r.returncode, 0, r)
        out = r.stdout + r.stderr
        for opt in ("--listen", "--data-dir", "--log-format", "--header-timeout-ms",
                    "--idle-timeout-ms", "--max-connections", "--drain-timeout-ms",
                    "--max-body-bytes"):
            self.assertIn(opt, out, f"--help does not mention {opt}")

    def test_version(self):
        r = run_counterd(["--version"])
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout + r.stderr, r"\d+\.\d+\.\d+")

    def test_invalid_options_exit_2_with_one_line(self):
        d = self.tmpdir()
        base = ["--data-dir", d]
        cases = [
            ["--listen", "127.0.0.1:0", "--no-such-option"],
            ["--listen", "nonsense"],
            ["--listen", "127.0.0.1:99999"],
            ["--listen", "127.0.0.1:0", "--max-connections", "abc"],
            ["--listen", "127.0.0.1:0", "--idle-timeout-ms", "soon"],
            ["--listen", "127.0.0.1:0", "--header-timeout-ms", "1.5x"],
            ["--listen", "127.0.0.1:0", "--max-body-bytes", "lots"],
            ["--listen", "127.0.0.1:0", "--log-format", "xml"],
            ["--listen", "127.0.0.1:0", "unexpected-positional"],
        ]
        for args in cases:
            with self.subTest(args=args):
                t0 = time.monotonic()
                try:
                    r = run_counterd(base + args, timeout=10)
                except subprocess.TimeoutExpired:
                    self.fail(f"counterd {args} kept running (should exit 2)")
                self.assertEqual(r.returncode, 2, f"{args}: rc={r.returncode} "
                                                  f"stderr={r.stderr!r}")
                lines = [l for l in r.stderr.splitlines() if l.strip()]
                self.assertEqual(len(lines), 1, f"{args}: want one error line, got {lines!r}")
                self.assertLess(time.monotonic() - t0, 5)

    def test_invalid_env_option_exits_2(self):
        d = self.tmpdir()
        r = run_counterd(["--listen", "127.0.0.1:0", "--data-dir", d], timeout=10,
                         env={"COUNTERD_MAX_CONNECTIONS": "many"})
        self.assertEqual(r.returncode, 2, r)

    def test_options_from_environment(self):
        d = self.tmpdir()
        srv = CounterdServer(listen=None, log_format=None, data_dir=d, env={
            "COUNTERD_LISTEN": "127.0.0.1:0",
            "COUNTERD_DATA_DIR": d,
            "COUNTERD_LOG_FORMAT": "json",
            "COUNTERD_MAX_BODY_BYTES": "100",
        })
        self.assertNotIn("--listen", srv.command())
        self.assertNotIn("--data-dir", srv.command())
        with srv.start():
            # JSON logging came from the environment.
            self.assertTrue(srv.json_logs, "COUNTERD_LOG_FORMAT=json ignored:\n" + srv.log_text())
            name = unique_name("env")
            with srv.client() as c:
                ok = b'{"by":3' + b" " * 80 + b"}"
                big = b'{"by":3' + b" " * 120 + b"}"
                self.assertCounter(c.post(f"/counters/{name}/increment", body=ok,
                                          content_type="application/json"), name, 3)
                self.assertProblem(c.post(f"/counters/{name}/increment", body=big,
                                          content_type="application/json"), 413,
                                   "COUNTERD_MAX_BODY_BYTES=100")
            self.assertEqual(srv.stop(), 0)
        if BACKEND == "file":
            # The data went to COUNTERD_DATA_DIR.
            self.assertTrue(os.listdir(d), "nothing written to COUNTERD_DATA_DIR")
        else:
            # Accepted and ignored, so one configuration can switch backends.
            self.assertEqual(os.listdir(d), [], "the postgres backend wrote to the data dir")

    def test_text_startup_line(self):
        d = self.tmpdir()
        # The file backend names its data dir; postgres names the backend
        # (the data dir is ignored) and never the URL, which may hold a
        # password.
        where = r"data_dir=(\S+)" if BACKEND == "file" else r"backend=(postgres)"
        pat = re.compile(rf"counterd (\S+) listening on 127\.0\.0\.1:(\d+) {where} "
                         r"counters=(\d+) recovery_ms=(\d+)$")
        with CounterdServer(data_dir=d, log_format=None) as srv:
            line = srv.wait_for_log(r"listening on")
            m = pat.search(line)
            self.assertIsNotNone(m, f"start-up line {line!r}")
            self.assertEqual(int(m.group(2)), srv.port)
            if BACKEND == "file":
                self.assertEqual(os.path.realpath(m.group(3)), os.path.realpath(d))
            else:
                self.assertNotIn(srv.postgres_url, srv.log_text())
                self.assertNotIn("postgresql://", srv.log_text())
            self.assertEqual(m.group(4), "0")
            self.assertRegex(m.group(1), r"^\d+\.\d+\.\d+")
            with srv.client() as c:
                for i in range(3):
                    self.assertEqual(c.put(f"/counters/t{i}", json={"value": i}).status, 201)
            self.assertEqual(srv.stop(), 0)
        with CounterdServer(data_dir=d, log_format=None) as srv:
            m = pat.search(srv.wait_for_log(r"listening on"))
            self.assertIsNotNone(m)
            self.assertEqual(m.group(4), "3", "counters= after restart")

    def test_json_logs(self):
        with CounterdServer() as srv:
            with srv.client() as c:
                c.get("/livez")
                c.get("/nope")
            self.assertEqual(srv.stop(), 0)
            listening = [o for o in srv.json_logs if o.get("msg") == "listening"]
            self.assertEqual(len(listening), 1, srv.log_text())
            self.assertEqual(listening[0]["listen"], srv.address)
            if BACKEND == "file":
                self.assertEqual(listening[0]["data_dir"], srv.data_dir)
                self.assertNotIn("backend", listening[0])
            else:
                self.assertEqual(listening[0]["backend"], "postgres")
                self.assertNotIn("data_dir", listening[0])
                self.assertNotIn("postgresql://", srv.log_text())
            bad = [l for l in srv.lines if l.strip() and not l.lstrip().startswith("{")]
            self.assertEqual(bad, [], "non-JSON lines in --log-format json mode")
            for l in srv.lines:
                if l.strip():
                    self.assertIsInstance(json.loads(l), dict)

    @file_backend_only("the data-dir lock is the file backend's; replicas on one "
                       "database are the postgres design (tests/postgres/test_ha.py)")
    def test_second_process_on_same_data_dir_exits_with_lock_error(self):
        d = self.tmpdir()
        with CounterdServer(data_dir=d) as srv:
            with srv.client() as c:
                self.assertEqual(c.put("/counters/locked", json={"value": 7}).status, 201)
            t0 = time.monotonic()
            try:
                r = run_counterd(["--listen", "127.0.0.1:0", "--data-dir", srv.data_dir],
                                 timeout=10)
            except subprocess.TimeoutExpired:
                self.fail("second counterd on a locked data dir did not exit within 10 s")
            self.assertLess(time.monotonic() - t0, 5, "second process should exit at once")
            self.assertNotEqual(r.returncode, 0, r)
            self.assertIn("lock", (r.stderr + r.stdout).lower(),
                          f"message does not mention the lock: {r.stderr!r}")
            # The first server is unharmed.
            with srv.client() as c:
                self.assertEqual(c.get("/counters/locked").json()["value"], 7)
                self.assertEqual(c.post("/counters/locked/increment").status, 200)
            self.assertEqual(srv.stop(), 0)
        # Once released, the dir can be opened again.
        with CounterdServer(data_dir=d) as again:
            with again.client() as c:
                self.assertEqual(c.get("/counters/locked").json()["value"], 8)
            self.assertEqual(again.stop(), 0)

    def test_healthcheck_subcommand(self):
        with CounterdServer() as srv:
            r = run_counterd(["healthcheck", "--listen", srv.address], timeout=10)
            self.assertEqual(r.returncode, 0, r)
            self.assertEqual(srv.stop(), 0)
        r = run_counterd(["healthcheck", "--listen", f"127.0.0.1:{free_port()}"], timeout=15)
        self.assertNotEqual(r.returncode, 0, "healthcheck passed with nobody listening")


if __name__ == "__main__":
    unittest.main()
