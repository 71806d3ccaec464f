#!/usr/bin/env python3
"""Runs a command against a throwaway PostgreSQL 15 cluster.

    tests/postgres/with_cluster.py [--db NAME] -- COMMAND [ARGS...]

Creates a cluster (tests/support/pg_cluster.py) and a database, runs COMMAND
with COUNTERD_TEST_POSTGRES_URL set to a libpq URI for it (loopback TCP) and
COUNTERD_TEST_POSTGRES_SOCKET_URL for its unix socket, tears the cluster down
and exits with COMMAND's status. CTest runs the C++ tests that need a real
server (label "postgres") through it.
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import pg_cluster  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="counterd_test")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no command")
    with pg_cluster.PgCluster("ctest") as pg:
        pg.create_database(args.db)
        env = dict(os.environ)
        env["COUNTERD_TEST_POSTGRES_URL"] = pg.url(args.db)
        env["COUNTERD_TEST_POSTGRES_SOCKET_URL"] = pg.socket_url(args.db)
        return subprocess.run(cmd, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
