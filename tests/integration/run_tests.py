#!/usr/bin/env python3
"""Runs the counterd integration suite against a built binary.

    python3 tests/integration/run_tests.py                      # newest build/<preset>/counterd
    python3 tests/integration/run_tests.py --bin build/dev/counterd
    python3 tests/integration/run_tests.py test_counters test_list.ListTest
    python3 tests/integration/run_tests.py -k idempotent --show-logs

Equivalent by hand: cd tests/integration && COUNTERD_BIN=... python3 -m unittest -v
Exit status 0 when every test passed.
"""

import argparse
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tests", nargs="*",
                    help="modules / classes / methods (default: every test_*.py here)")
    ap.add_argument("--bin", help="the counterd binary (default: $COUNTERD_BIN or the "
                                  "newest build/<preset>/counterd or build*/counterd)")
    ap.add_argument("-k", dest="patterns", action="append", default=[],
                    help="only tests whose name contains this substring (repeatable)")
    ap.add_argument("--show-logs", action="store_true", help="echo server stderr live")
    ap.add_argument("--keep", action="store_true", help="keep temp data dirs")
    ap.add_argument("-q", "--quiet", action="store_true")
    ap.add_argument("-f", "--failfast", action="store_true")
    args = ap.parse_args()

    if args.bin:
        os.environ["COUNTERD_BIN"] = os.path.abspath(args.bin)
    if args.show_logs:
        os.environ["COUNTERD_TEST_SHOW_LOGS"] = "1"
    if args.keep:
        os.environ["COUNTERD_TEST_KEEP"] = "1"
    sys.path.insert(0, HERE)
    os.chdir(HERE)

    import counterd_harness  # after the environment is set
    try:
        binary = counterd_harness.find_binary()
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"counterd under test: {binary}", file=sys.stderr)

    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = [f"*{p}*" for p in args.patterns]
    if args.tests:
        suite = loader.loadTestsFromNames(args.tests)
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    t0 = time.monotonic()
    result = unittest.TextTestRunner(verbosity=1 if args.quiet else 2,
                                     failfast=args.failfast).run(suite)
    print(f"integration suite: {result.testsRun} run, {len(result.failures)} failed, "
          f"{len(result.errors)} errors, {len(result.skipped)} skipped "
          f"in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
