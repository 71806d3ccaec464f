"""Operational endpoints: /, /livez, /readyz, /metrics; HEAD on them."""

import re
import time
import unittest

from counterd_harness import BACKEND, ServerTestCase, metric_sum, parse_prometheus, \
    run_counterd, unique_name

METRIC_FAMILIES = [
    "counterd_http_requests_total",
    "counterd_http_request_duration_seconds",
    "counterd_commit_batch_size",
    "counterd_fsync_duration_seconds",
    "counterd_fsyncs_total",
    "counterd_mutations_total",
    "counterd_counters",
    "counterd_journal_bytes",
    "counterd_build_info",
]


class ServiceEndpointsTest(ServerTestCase):
    server_hostname = "counterd-0"

    def metrics(self):
        r = self.c.get("/metrics")
        self.assertEqual(r.status, 200, repr(r))
        self.assertEqual(r.content_type, "text/plain", repr(r))
        return r.text, parse_prometheus(r.text)

    def test_livez_and_readyz(self):
        for path in ("/livez", "/readyz"):
            with self.subTest(path=path):
                r = self.c.get(path)
                self.assertEqual(r.status, 200, repr(r))
                h = self.c.head(path)
                self.assertEqual(h.status, 200, repr(h))
                self.assertEqual(h.body, b"")

    def test_root_document(self):
        t0 = time.monotonic()
        r = self.c.get("/")
        self.assertEqual(r.status, 200, repr(r))
        self.assertEqual(r.content_type, "application/json", repr(r))
        doc = r.json()
        for key in ("name", "version", "hostname", "uptime_seconds"):
            self.assertIn(key, doc, repr(r))
        self.assertEqual(doc["name"], "counterd")
        self.assertEqual(doc["hostname"], "counterd-0", "HOSTNAME=counterd-0 not reported")
        self.assertRegex(doc["version"], r"^\d+\.\d+\.\d+")
        self.assertIsInstance(doc["uptime_seconds"], (int, float))
        elapsed_since_start = t0 - self.server.start_time + 1
        self.assertGreaterEqual(doc["uptime_seconds"], 0)
        self.assertLessEqual(doc["uptime_seconds"], elapsed_since_start + 5)
        h = self.c.head("/")
        self.assertEqual(h.status, 200, repr(h))
        self.assertEqual(h.body, b"")

        # The same version as --version prints.
        out = run_counterd(["--version"])
        self.assertEqual(out.returncode, 0, out)
        self.assertIn(doc["version"], out.stdout + out.stderr)

    def test_metrics_families_present(self):
        self.c.post(f"/counters/{unique_name('m')}/increment")
        text, samples = self.metrics()
        names = {n for n, _, _ in samples}
        for fam in METRIC_FAMILIES:
            with self.subTest(family=fam):
                present = any(n == fam or n.startswith(fam + "_") for n in names)
                self.assertTrue(present, f"{fam} missing from /metrics")
                self.assertRegex(text, rf"(?m)^# TYPE {fam} \w+", f"# TYPE {fam} missing")
        # The duration histogram is a histogram with the usual series.
        self.assertRegex(text, r"(?m)^# TYPE counterd_http_request_duration_seconds histogram")
        for suffix in ("_bucket", "_sum", "_count"):
            self.assertIn("counterd_http_request_duration_seconds" + suffix, names)
        self.assertTrue(any(n == "counterd_http_request_duration_seconds_bucket"
                            and l.get("le") == "+Inf" for n, l, _ in samples))
        # build_info carries a version label and the value 1.
        info = [(l, v) for n, l, v in samples if n == "counterd_build_info"]
        self.assertTrue(info, "counterd_build_info has no sample")
        self.assertEqual(info[0][1], 1.0)
        self.assertIn("version", info[0][0])
        # requests_total has the decided labels.
        reqs = [l for n, l, _ in samples if n == "counterd_http_requests_total"]
        self.assertTrue(reqs)
        for l in reqs:
            self.assertLessEqual({"route", "method", "code"}, set(l), l)

    def test_metrics_move(self):
        name = unique_name("mm")
        _, before = self.metrics()
        n_get = 7
        self.put_counter(name, 1)
        for _ in range(n_get):
            self.assertEqual(self.c.get(f"/counters/{name}").status, 200)
        for _ in range(3):
            self.assertEqual(self.c.post(f"/counters/{name}/increment").status, 200)
        self.assertEqual(self.c.get(f"/counters/{unique_name('absent')}").status, 404)
        after_text, after = self.metrics()

        def delta(metric, **labels):
            return metric_sum(after, metric, **labels) - metric_sum(before, metric, **labels)

        self.assertGreaterEqual(delta("counterd_http_requests_total", method="GET", code="200"),
                                n_get)
        self.assertGreaterEqual(delta("counterd_http_requests_total", method="POST", code="200"),
                                3)
        self.assertGreaterEqual(delta("counterd_http_requests_total", method="GET", code="404"),
                                1)
        self.assertGreaterEqual(delta("counterd_http_request_duration_seconds_count"), 11)
        self.assertGreaterEqual(delta("counterd_mutations_total"), 4)
        self.assertGreaterEqual(delta("counterd_fsyncs_total"), 1)
        if BACKEND == "file":  # the postgres backend has no journal file
            self.assertGreater(delta("counterd_journal_bytes"), 0)
        for hist in ("counterd_fsync_duration_seconds", "counterd_commit_batch_size"):
            if re.search(rf"(?m)^# TYPE {hist} (histogram|summary)", after_text):
                self.assertGreaterEqual(delta(hist + "_count"), 1, hist)
        self.assertEqual(delta("counterd_counters"), 1)
        # The route label is a template, not the concrete counter name.
        routes = {l["route"] for n, l, _ in after if n == "counterd_http_requests_total"}
        self.assertFalse(any(name in r for r in routes), f"raw names in route labels: {routes}")

    def test_counters_gauge_matches_list(self):
        self.put_counter(unique_name("g"), 5)
        _, samples = self.metrics()
        self.assertEqual(metric_sum(samples, "counterd_counters"), len(self.list_all()))

    def test_head_everywhere_get_works(self):
        name = unique_name("h")
        self.put_counter(name, 1)
        for path in ("/", "/livez", "/readyz", "/metrics", "/counter", f"/counters/{name}",
                     "/counters", "/counters?limit=2"):
            with self.subTest(path=path):
                g = self.c.get(path)
                h = self.c.head(path)
                self.assertEqual(h.status, g.status, f"HEAD {path}: {h!r} vs GET {g!r}")
                self.assertEqual(h.body, b"")
                self.assertEqual(h.content_type, g.content_type, path)


if __name__ == "__main__":
    unittest.main()
