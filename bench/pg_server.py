#!/usr/bin/env python3
"""A throwaway PostgreSQL 15 server for bench/run --backend postgres.

    python3 bench/pg_server.py --dir DIR [--setting NAME=VALUE ...]

Makes a cluster under DIR with tests/support/pg_cluster.py (fsync on,
synchronous_commit on; as a non-root server user when run as root), prints
one line

    port=PORT socket=SOCKET_DIR data=DATA_DIR

and keeps it running until its standard input reaches end of file (the
bench closes it) or it gets SIGTERM; then stops the server (immediately)
and removes its files. DIR must be on the file system being measured.
"""
import argparse
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args()
    settings = {}
    for s in args.setting:
        name, _, value = s.partition("=")
        settings[name] = value
    os.environ["COUNTERD_PG_TMPDIR"] = os.path.abspath(args.dir)
    import pg_cluster  # after COUNTERD_PG_TMPDIR is set
    # SIGTERM ends the wait below through SystemExit, so the cluster's
    # teardown (pg_cluster's atexit hook) runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    pg = pg_cluster.PgCluster("bench", settings=settings)
    try:
        print(f"port={pg.port} socket={pg.socket_dir} data={pg.data_dir}", flush=True)
        sys.stdin.read()
    finally:
        pg.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
