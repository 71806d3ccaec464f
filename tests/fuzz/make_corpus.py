#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets: tests/fuzz/corpus/<target>/.

The seeds are small, valid (or deliberately damaged) examples of each input
format, built from docs/storage-format.md and the HTTP API, so the fuzzers
start from inputs that reach deep into the code. Python 3 standard library
only; deterministic. Files named regress-* are inputs that once found a bug;
this script never touches them.

    python3 tests/fuzz/make_corpus.py          # rewrite the seed-* files
"""
from __future__ import annotations

import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# --- CRC-32C (Castagnoli), as src/core/crc32c.cc --------------------------
_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

# --- Journal records (docs/storage-format.md, "Journal files") -------------


def s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<I", len(raw)) + raw


def record(seq: int, effects: list[bytes]) -> bytes:
    payload = struct.pack("<I", len(effects)) + b"".join(effects)
    body = struct.pack("<IQ", len(payload), seq) + payload
    return struct.pack("<I", crc32c(body)) + body


def journal_name(first_seq: int) -> str:
    return f"journal-{first_seq:020d}.log"


# Version 2: a 24-byte file header, then records of tags 2, 4 and 5.


def header(first_seq: int, version: int = 2) -> bytes:
    h = b"CNTRDJNL" + struct.pack("<IQ", version, first_seq)
    return h + struct.pack("<I", crc32c(h))


def counter(name: str, value: int, version: int, expires_at_ms: int = 0) -> bytes:
    return s(name) + struct.pack("<qQq", value, version, expires_at_ms)


def put_counter(name: str, value: int, version: int, expires_at_ms: int = 0) -> bytes:
    return b"\x04" + counter(name, value, version, expires_at_ms)


def delete_counter(name: str) -> bytes:
    return b"\x02" + s(name)


OP_KINDS = {"get": 0, "set": 1, "increment": 2, "decrement": 3, "delete": 4}
STATUS = {"OK": 0, "INVALID_ARGUMENT": 1, "NOT_FOUND": 2, "FAILED_PRECONDITION": 3,
          "OUT_OF_RANGE": 4, "ABORTED": 5, "ALREADY_EXISTS": 6,
          "RESOURCE_EXHAUSTED": 7, "UNAVAILABLE": 8, "DATA_LOSS": 9,
          "INTERNAL": 10, "LIMIT_EXCEEDED": 11}


def op(kind: str, name: str, operand: int = 0, if_match=(), match_any=False,
       none_match=False, min_=None, max_=None, ttl=None) -> bytes:
    flags = ((1 if match_any else 0) | (2 if none_match else 0)
             | (4 if min_ is not None else 0) | (8 if max_ is not None else 0)
             | (16 if ttl is not None else 0))
    out = bytes([OP_KINDS[kind]]) + s(name) + struct.pack("<qB", operand, flags)
    out += struct.pack("<H", len(if_match)) + b"".join(struct.pack("<Q", v) for v in if_match)
    if min_ is not None:
        out += struct.pack("<q", min_)
    if max_ is not None:
        out += struct.pack("<q", max_)
    if ttl is not None:
        out += struct.pack("<I", ttl)
    return out


def outcome(status: str = "OK", message: str = "", failed_op=None, results=(),
            current=None) -> bytes:
    flags = (1 if failed_op is not None else 0) | (2 if current else 0)
    out = bytes([STATUS[status]]) + s(message) + bytes([flags])
    if failed_op is not None:
        out += struct.pack("<I", failed_op)
    out += struct.pack("<H", len(results))
    for c, created in results:
        out += bytes([(1 if c else 0) | (2 if created else 0)])
        if c:
            out += counter(*c)
    if current:
        out += counter(*current)
    return out


def put_idempotency(scope: str, key: str, created_ms: int, ops: list[bytes],
                    result: bytes, batch: bool = False) -> bytes:
    return (b"\x05" + s(scope) + s(key) + struct.pack("<q", created_ms)
            + bytes([1 if batch else 0]) + struct.pack("<H", len(ops)) + b"".join(ops)
            + result)


def sample_journal(first: int = 1, n: int = 3) -> bytes:
    out = header(first)
    for i in range(n):
        seq = first + i
        out += record(seq, [put_counter("orders", seq * 10, seq)])
    return out


def all_effects() -> list[bytes]:
    """One of every effect and every optional field."""
    return [
        put_counter("user:42:logins", -5, 3),
        put_counter("rl:user42", 3, 3, 1763683260000),
        delete_counter("gone"),
        put_idempotency("", "k-1", 1763683200000, [op("increment", "a", 1)],
                        outcome(results=[(("a", 1, 1, 0), True)])),
        put_idempotency("tenant-1", "k-2", 1763683200000,
                        [op("increment", "b", 1, max_=3, ttl=60)],
                        outcome("LIMIT_EXCEEDED", "would pass its maximum 3", 0,
                                current=("b", 3, 3, 1763683260000))),
        put_idempotency("", "k-3", 1, [
            op("get", "a"),
            op("set", "b", -2**63, if_match=(1, 2**64 - 1), ttl=31536000),
            op("increment", "c", 2**63 - 1, match_any=True, min_=-2**63, max_=100),
            op("decrement", "d", -2**63, none_match=True, min_=-5),
            op("delete", "e", if_match=(7,)),
        ], outcome(results=[(None, False), (("b", -2**63, 1, 99), True),
                            (("c", 5, 2, 0), False), (("d", 1, 1, 0), True),
                            (None, False)]), batch=True),
        put_idempotency("", "k-4", 2, [op("decrement", "x", 1)],
                        outcome("OUT_OF_RANGE", "would leave the int64 range", 0,
                                current=("x", -2**63, 4, 0))),
    ]


# Version 1 (counterd 0.1): no file header; tags 1, 2 and 3.


def v1_put_counter(name: str, value: int, version: int) -> bytes:
    return b"\x01" + s(name) + struct.pack("<qQ", value, version)


def v1_put_idempotency(key: str, fingerprint: str, created_ms: int, code: int,
                       message: str, counter=None, created=False) -> bytes:
    flags = (1 if counter else 0) | (2 if created else 0)
    out = (b"\x03" + s(key) + s(fingerprint) + struct.pack("<q", created_ms)
           + bytes([code]) + s(message) + bytes([flags]))
    if counter:
        out += v1_put_counter(*counter)[1:]
    return out


def v1_sample_journal(first: int = 1, n: int = 3) -> bytes:
    out = b""
    for i in range(n):
        seq = first + i
        out += record(seq, [v1_put_counter("orders", seq * 10, seq)])
    return out


def v1_all_effects() -> list[bytes]:
    return [
        v1_put_counter("user:42:logins", -5, 3),
        delete_counter("gone"),
        v1_put_idempotency("k-1", "POST /counters/a/increment by=1", 1763683200000,
                           0, "", ("a", 1, 1), True),
        v1_put_idempotency("k-2", "POST /counters/b:c/decrement by=-9223372036854775808",
                           1763683200000, 4, "would overflow"),
        v1_put_idempotency("k-3", "POST /counter/increment by=1", 1763683200000,
                           0, "", ("default", 2, 2), False),
    ]


# --- Snapshots (docs/storage-format.md, "Snapshot") ------------------------


def snapshot_body(last_seq: int, counters: list[tuple], idem: list[dict],
                  version: int = 2) -> bytes:
    """Everything before the crc32c line, byte for byte as EncodeSnapshot
    (src/storage/file/snapshot_codec.cc) writes it; version 1 as counterd
    0.1 wrote it."""
    if version == 1:
        out = ('{"format":"counterd-snapshot","version":1,"last_seq":%d,\n' % last_seq)
    else:
        out = ('{"format":%d,"kind":"counterd-snapshot","last_seq":%d,\n'
               % (version, last_seq))
    lines = []
    for c in counters:
        d = {"name": c[0], "value": c[1], "version": c[2]}
        if len(c) > 3 and c[3]:
            d["expires_at_ms"] = c[3]
        lines.append(json.dumps(d, separators=(",", ":")))
    out += '"counters":[' + ("\n" + ",\n".join(lines) + "\n],\n" if lines else "],\n")
    lines = [json.dumps(r, separators=(",", ":")) for r in idem]
    out += '"idempotency":[' + ("\n" + ",\n".join(lines) + "\n],\n" if lines else "],\n")
    return out.encode()


def snapshot(last_seq, counters, idem, version: int = 2) -> bytes:
    body = snapshot_body(last_seq, counters, idem, version)
    return body + b'"crc32c":"%08x"}\n' % crc32c(body)


IDEM = [
    {"scope": "billing", "key": "k-1", "created_at_ms": 1763683200000,
     "request": {"batch": False, "ops": [{"op": "increment", "name": "orders", "by": 1}]},
     "outcome": {"status": "OK", "results": [
         {"counter": {"name": "orders", "value": 1042, "version": 1042}}]}},
    {"scope": "", "key": "k-2", "created_at_ms": 1763683200001,
     "request": {"batch": True, "ops": [
         {"op": "set", "name": "a", "value": -9223372036854775808, "if_match": [1, 2],
          "ttl_seconds": 60},
         {"op": "increment", "name": "b", "by": 1, "if_match_any": True, "min": 0,
          "max": 10},
         {"op": "decrement", "name": "c", "by": 1, "if_none_match": True},
         {"op": "get", "name": "d"}, {"op": "delete", "name": "e"}]},
     "outcome": {"status": "LIMIT_EXCEEDED", "message": "would pass its maximum 10",
                 "failed_op": 1,
                 "current": {"name": "b", "value": 10, "version": 10,
                             "expires_at_ms": 1763683260000}}},
    {"scope": "", "key": "k-3", "created_at_ms": 3,
     "request": {"batch": False, "ops": [{"op": "decrement", "name": "x", "by": 1}]},
     "outcome": {"status": "OUT_OF_RANGE", "message": "overflow", "failed_op": 0}},
]

V1_IDEM = [
    {"key": "k-1", "fingerprint": "POST /counters/orders/increment by=1",
     "created_at_ms": 1763683200000,
     "outcome": {"code": 0, "message": "", "created": False,
                 "counter": {"name": "orders", "value": 1042, "version": 1042}}},
    {"key": "k-2", "fingerprint": "POST /counters/x/increment by=9",
     "created_at_ms": 1763683200001,
     "outcome": {"code": 4, "message": "overflow", "created": False}},
    {"key": "k-3", "fingerprint": "POST /counter/increment by=1",
     "created_at_ms": 1763683200002,
     "outcome": {"code": 0, "message": "", "created": True,
                 "counter": {"name": "default", "value": 1, "version": 1}}},
]

STORAGE_TARGETS = ("journal_fuzz", "snapshot_fuzz", "recovery_fuzz")


def write(target: str, name: str, data: bytes):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def clear_seeds(target: str):
    d = os.path.join(CORPUS, target)
    if os.path.isdir(d):
        for name in os.listdir(d):
            if name.startswith("seed-"):
                os.remove(os.path.join(d, name))


def journal_seeds():
    t = "journal_fuzz"
    write(t, "empty", b"")
    write(t, "header-only", header(1))
    write(t, "one-put", header(1) + record(1, [put_counter("orders", 1, 1)]))
    write(t, "three", sample_journal())
    write(t, "all-effects", header(7) + record(7, all_effects())
          + record(8, [put_counter("a", 2, 2)]))
    write(t, "payload-all-effects", record(1, all_effects())[16:])
    j = sample_journal()
    write(t, "torn-tail", j[:-5])
    write(t, "zero-tail", j + b"\0" * 40)
    bad = bytearray(j)
    bad[24 + 20] ^= 0xFF
    write(t, "bad-crc-first", bytes(bad))
    write(t, "seq-gap", header(1) + record(1, [put_counter("a", 1, 1)])
          + record(3, [put_counter("a", 2, 2)]))
    write(t, "huge-length", header(1) + struct.pack("<IIQ", 0, 0xFFFFFFFF, 1) + b"x" * 8)
    write(t, "int64-edges", header(1) + record(1, [
        put_counter("min", -2**63, 2**64 - 1, -1),
        put_counter("max", 2**63 - 1, 1, 2**63 - 1)]))
    write(t, "header-torn", header(1)[:13])
    write(t, "header-zeros", b"\0" * 24)
    write(t, "header-bad-crc", header(1)[:20] + b"\0\0\0\0" + j[24:])
    write(t, "header-format-3", header(1, 3) + j[24:])
    write(t, "v1-tag-in-v2", header(1) + record(1, [v1_put_counter("a", 1, 1)]))
    # Version 1.
    write(t, "v1-one-put", record(1, [v1_put_counter("orders", 1, 1)]))
    write(t, "v1-three", v1_sample_journal())
    write(t, "v1-all-effects", record(7, v1_all_effects())
          + record(8, [v1_put_counter("a", 2, 2)]))
    write(t, "v1-payload-all-effects", record(1, v1_all_effects())[16:])
    write(t, "v1-torn-tail", v1_sample_journal()[:-5])
    write(t, "v2-tag-in-v1", record(1, [put_counter("a", 1, 1)]))


def snapshot_seeds():
    t = "snapshot_fuzz"
    counters = [("orders", 1042, 1042), ("rl:user42", 3, 3, 1763683260000),
                ("user:42:logins", 7, 7)]
    write(t, "empty-store", b"\0" + snapshot(0, [], []))
    write(t, "doc-example", b"\0" + snapshot(42016, counters, IDEM))
    write(t, "fixup-doc-example", b"\1" + snapshot_body(42016, counters, IDEM))
    write(t, "fixup-empty", b"\1" + snapshot_body(0, [], []))
    write(t, "fixup-int64", b"\1" + snapshot_body(
        9, [("a", -2**63, 1, -1), ("b", 2**63 - 1, 2**64 - 1, 2**63 - 1)], []))
    full = snapshot(42016, counters, IDEM)
    write(t, "truncated", b"\0" + full[:-10])
    write(t, "fixup-unsorted", b"\1" + snapshot_body(1, [("b", 1, 1), ("a", 1, 1)], []))
    write(t, "fixup-float", b"\1" + snapshot_body(1, [], []).replace(
        b'"last_seq":1', b'"last_seq":1.5'))
    write(t, "fixup-format-3", b"\1" + snapshot_body(1, counters, [], version=3))
    # Version 1.
    v1_counters = [("orders", 1042, 1042), ("user:42:logins", 7, 7)]
    write(t, "v1-doc-example", b"\0" + snapshot(42016, v1_counters, V1_IDEM, 1))
    write(t, "fixup-v1-doc-example", b"\1" + snapshot_body(42016, v1_counters, V1_IDEM, 1))
    write(t, "fixup-v1-empty", b"\1" + snapshot_body(0, [], [], 1))


def recovery_seeds():
    t = "recovery_fuzz"
    sep = b"\n@@@@\n"

    def files(*pairs):
        return sep.join(name.encode() + b"\n" + data for name, data in pairs)

    counters = [("orders", 30, 3), ("rl:user42", 3, 3, 1763683260000)]
    write(t, "empty-dir", b"")
    write(t, "journal-only", files((journal_name(1), sample_journal())))
    write(t, "all-effects", files(
        (journal_name(1), header(1) + record(1, all_effects())
         + record(2, [put_counter("a", 2, 2)]))))
    write(t, "snapshot-and-journal", files(
        ("state.json", snapshot(3, counters, IDEM)),
        (journal_name(1), sample_journal()),
        (journal_name(4), sample_journal(4, 2))))
    write(t, "fixup-snapshot", files(
        ("state.json+", snapshot_body(3, counters, IDEM)),
        (journal_name(4), sample_journal(4, 2))))
    write(t, "torn-tail", files((journal_name(1), sample_journal()[:-3])))
    write(t, "stale-temp", files(
        ("state.json.tmp", b'{"format":2,"kind":"counterd-snap'),
        (journal_name(1), sample_journal())))
    write(t, "missing-snapshot", files((journal_name(4), sample_journal(4, 2))))
    write(t, "header-torn-new-journal", files(
        ("state.json", snapshot(3, counters, [])),
        (journal_name(1), sample_journal()),
        (journal_name(4), header(4)[:9])))
    write(t, "damage-mid-file", files(
        (journal_name(1), sample_journal()[:54] + b"X" + sample_journal()[55:])))
    write(t, "header-format-3", files((journal_name(1), header(1, 3))))
    # Version 1, and a dir part-way through the upgrade.
    write(t, "v1-journal-only", files((journal_name(1), v1_sample_journal())))
    write(t, "v1-snapshot-and-journal", files(
        ("state.json", snapshot(3, [("orders", 30, 3)], V1_IDEM, 1)),
        (journal_name(1), v1_sample_journal()),
        (journal_name(4), v1_sample_journal(4, 2) + record(6, v1_all_effects()))))
    write(t, "v1-fixup-snapshot", files(
        ("state.json+", snapshot_body(3, [("orders", 30, 3)], V1_IDEM, 1)),
        (journal_name(4), v1_sample_journal(4, 2))))
    write(t, "v1-torn-tail", files((journal_name(1), v1_sample_journal()[:-3])))
    write(t, "v1-empty-new-journal", files(
        ("state.json", snapshot(3, [("orders", 30, 3)], [], 1)),
        (journal_name(1), v1_sample_journal()),
        (journal_name(4), b"")))
    write(t, "upgraded-v1-then-v2", files(
        ("state.json", snapshot(3, [("orders", 30, 3)], V1_IDEM, 1)),
        (journal_name(4), v1_sample_journal(4, 2)),
        (journal_name(6), sample_journal(6, 2))))


def http_seeds():
    t = "http_request_fuzz"

    def req(method, target, body=b"", headers=()):
        h = [f"{method} {target} HTTP/1.1", "Host: x"]
        h += list(headers)
        if body or method in ("POST", "PUT"):
            h.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(h) + "\r\n\r\n").encode() + body

    js = ("Content-Type: application/json",)
    write(t, "get-root", req("GET", "/"))
    write(t, "readyz", req("GET", "/readyz"))
    write(t, "livez-head", req("HEAD", "/livez"))
    write(t, "metrics", req("GET", "/metrics"))
    write(t, "increment", req("POST", "/counters/orders/increment", b'{"by":5}', js))
    write(t, "increment-nobody", req("POST", "/counters/orders/increment"))
    write(t, "decrement", req("POST", "/counters/a/decrement", b'{"by":-9223372036854775808}', js))
    write(t, "put", req("PUT", "/counters/a", b'{"value":7}', js + ('If-None-Match: *',)))
    write(t, "put-if-match", req("PUT", "/counters/a", b'{"value":7}', js + ('If-Match: "1"',)))
    write(t, "delete", req("DELETE", "/counters/a"))
    write(t, "list", req("GET", "/counters?prefix=user%3A&after=user%3A1&limit=2"))
    write(t, "default", req("POST", "/counter/increment") + req("GET", "/counter"))
    write(t, "idempotent", req("POST", "/counters/a/increment", b'{"by":1}',
                               js + ("Idempotency-Key: abc-123",)) * 2)
    write(t, "pipelined", req("PUT", "/counters/p", b'{"value":1}', js)
          + req("POST", "/counters/p/increment", b'{"by":2}', js)
          + req("GET", "/counters/p", headers=('If-None-Match: "2"',))
          + req("DELETE", "/counters/p") + req("GET", "/counters/p"))
    write(t, "chunked", b"POST /counters/c/increment HTTP/1.1\r\nHost: x\r\n"
          b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
          b"4\r\n{\"by\r\n4\r\n\":3}\r\n0\r\n\r\n")
    write(t, "percent-name", req("GET", "/counters/a%2Fb%00"))
    write(t, "bad-json", req("POST", "/counters/a/increment", b'{"by":1.5,', js))
    write(t, "wrong-type", req("POST", "/counters/a/increment", b'{"by":1}',
                               ("Content-Type: text/plain",)))
    write(t, "method", req("PATCH", "/counters/a"))
    write(t, "http10", b"GET /livez HTTP/1.0\r\n\r\n")
    write(t, "expect", req("PUT", "/counters/e", b'{"value":1}', js + ("Expect: 100-continue",)))
    # With an Authorization header anywhere the harness turns the fuzz
    # tokens file on (see FuzzTokens in http_request_fuzz.cc).
    def bearer(name):
        return (f"Authorization: Bearer {name}-secret",)
    write(t, "auth-scopes",
          req("PUT", "/counters/b:1", b'{"value":1}', js + bearer("fuzz-write-b"))
          + req("POST", "/counter/increment", headers=bearer("fuzz-write-b"))
          + req("GET", "/counters?prefix=a&limit=2", headers=bearer("fuzz-read-a"))
          + req("GET", "/metrics", headers=bearer("fuzz-metrics"))
          + req("GET", "/", headers=bearer("fuzz-all")))
    write(t, "auth-forbidden",
          req("POST", "/counters/a/increment", b'{"by":1}', js + bearer("fuzz-write-b")))
    write(t, "auth-missing", req("GET", "/livez") + req("DELETE", "/counters/a",
                                                        headers=("Authorization: Basic eDp5",)))
    write(t, "auth-unknown", req("GET", "/counter", headers=("Authorization: Bearer not-a-token",)))
    write(t, "auth-idempotent",
          req("POST", "/counters/b:k/increment", b'{"by":1}',
              js + bearer("fuzz-write-b") + ("Idempotency-Key: k1",))
          + req("POST", "/counters/b:k/increment", b'{"by":1}',
                js + bearer("fuzz-all") + ("Idempotency-Key: k1",)))


def main() -> int:
    for target in STORAGE_TARGETS:
        clear_seeds(target)
    journal_seeds()
    snapshot_seeds()
    recovery_seeds()
    http_seeds()
    for target in sorted(os.listdir(CORPUS)):
        n = len(os.listdir(os.path.join(CORPUS, target)))
        print(f"{target}: {n} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
