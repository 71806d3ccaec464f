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


def put_counter(name: str, value: int, version: int) -> bytes:
    return b"\x01" + s(name) + struct.pack("<qQ", value, version)


def delete_counter(name: str) -> bytes:
    return b"\x02" + s(name)


def put_idempotency(key: str, fingerprint: str, created_ms: int, code: int,
                    message: str, counter=None, created=False) -> bytes:
    flags = (1 if counter else 0) | (2 if created else 0)
    out = (b"\x03" + s(key) + s(fingerprint) + struct.pack("<q", created_ms)
           + bytes([code]) + s(message) + bytes([flags]))
    if counter:
        out += put_counter(*counter)[1:]
    return out


def record(seq: int, effects: list[bytes]) -> bytes:
    payload = struct.pack("<I", len(effects)) + b"".join(effects)
    body = struct.pack("<IQ", len(payload), seq) + payload
    return struct.pack("<I", crc32c(body)) + body


def journal_name(first_seq: int) -> str:
    return f"journal-{first_seq:020d}.log"


def sample_journal(first: int = 1, n: int = 3) -> bytes:
    out = b""
    for i in range(n):
        seq = first + i
        out += record(seq, [put_counter("orders", seq * 10, seq)])
    return out


# --- Snapshots (docs/storage-format.md, "Snapshot") ------------------------


def snapshot_body(last_seq: int, counters: list[tuple[str, int, int]],
                  idem: list[dict]) -> bytes:
    """Everything before the crc32c line, byte for byte as EncodeSnapshot
    (src/storage/snapshot_codec.cc) writes it."""
    out = ('{"format":"counterd-snapshot","version":1,"last_seq":%d,\n'
           % last_seq)
    out += '"counters":[\n'
    out += ",\n".join(
        json.dumps({"name": n, "value": v, "version": ver}, separators=(",", ":"))
        for n, v, ver in counters)
    out += "\n],\n" if counters else "],\n"
    out += '"idempotency":[\n'
    out += ",\n".join(json.dumps(r, separators=(",", ":")) for r in idem)
    out += "\n],\n" if idem else "],\n"
    return out.encode()


def snapshot(last_seq, counters, idem) -> bytes:
    body = snapshot_body(last_seq, counters, idem)
    return body + b'"crc32c":"%08x"}\n' % crc32c(body)


IDEM = [{"key": "k-1", "fingerprint": "POST /counters/orders/increment by=1",
         "created_at_ms": 1763683200000,
         "outcome": {"code": 0, "message": "", "created": False,
                     "counter": {"name": "orders", "value": 1042, "version": 1042}}},
        {"key": "k-2", "fingerprint": "POST /counters/x/increment by=9",
         "created_at_ms": 1763683200001,
         "outcome": {"code": 4, "message": "overflow", "created": False}}]


def write(target: str, name: str, data: bytes):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def journal_seeds():
    t = "journal_fuzz"
    write(t, "empty", b"")
    write(t, "one-put", record(1, [put_counter("orders", 1, 1)]))
    write(t, "three", sample_journal())
    write(t, "all-effects", record(7, [
        put_counter("user:42:logins", -5, 3),
        delete_counter("gone"),
        put_idempotency("k-1", "POST /counters/a/increment by=1", 1763683200000,
                        0, "", ("a", 1, 1), True),
        put_idempotency("k-2", "POST /counters/b/increment by=1", 1763683200000,
                        4, "would overflow"),
    ]) + record(8, [put_counter("a", 2, 2)]))
    j = sample_journal()
    write(t, "torn-tail", j[:-5])
    write(t, "zero-tail", j + b"\0" * 40)
    bad = bytearray(j)
    bad[20] ^= 0xFF
    write(t, "bad-crc-first", bytes(bad))
    write(t, "seq-gap", record(1, [put_counter("a", 1, 1)])
          + record(3, [put_counter("a", 2, 2)]))
    write(t, "huge-length", struct.pack("<IIQ", 0, 0xFFFFFFFF, 1) + b"x" * 8)
    write(t, "int64-edges", record(1, [put_counter("min", -2**63, 2**64 - 1),
                                      put_counter("max", 2**63 - 1, 1)]))


def snapshot_seeds():
    t = "snapshot_fuzz"
    write(t, "empty-store", b"\0" + snapshot(0, [], []))
    full = snapshot(42016, [("orders", 1042, 1042), ("user:42:logins", 7, 7)], IDEM)
    write(t, "doc-example", b"\0" + full)
    write(t, "fixup-doc-example", b"\1" + snapshot_body(
        42016, [("orders", 1042, 1042), ("user:42:logins", 7, 7)], IDEM))
    write(t, "fixup-empty", b"\1" + snapshot_body(0, [], []))
    write(t, "fixup-int64", b"\1" + snapshot_body(
        9, [("a", -2**63, 1), ("b", 2**63 - 1, 2**64 - 1)], []))
    write(t, "truncated", b"\0" + full[:-10])
    write(t, "fixup-unsorted", b"\1" + snapshot_body(1, [("b", 1, 1), ("a", 1, 1)], []))
    write(t, "fixup-float", b"\1" + snapshot_body(1, [], []).replace(
        b'"last_seq":1', b'"last_seq":1.5'))


def recovery_seeds():
    t = "recovery_fuzz"
    sep = b"\n@@@@\n"

    def files(*pairs):
        return sep.join(name.encode() + b"\n" + data for name, data in pairs)

    write(t, "empty-dir", b"")
    write(t, "journal-only", files((journal_name(1), sample_journal())))
    write(t, "snapshot-and-journal", files(
        ("state.json", snapshot(3, [("orders", 30, 3)], IDEM)),
        (journal_name(1), sample_journal()),
        (journal_name(4), sample_journal(4, 2))))
    write(t, "fixup-snapshot", files(
        ("state.json+", snapshot_body(3, [("orders", 30, 3)], [])),
        (journal_name(4), sample_journal(4, 2))))
    write(t, "torn-tail", files((journal_name(1), sample_journal()[:-3])))
    write(t, "stale-temp", files(
        ("state.json.tmp", b'{"format":"counterd-snap'),
        (journal_name(1), sample_journal())))
    write(t, "missing-snapshot", files((journal_name(4), sample_journal(4, 2))))
    write(t, "empty-new-journal", files(
        ("state.json", snapshot(3, [("orders", 30, 3)], [])),
        (journal_name(1), sample_journal()),
        (journal_name(4), b"")))
    write(t, "damage-mid-file", files(
        (journal_name(1), sample_journal()[:30] + b"X" + sample_journal()[31:])))


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


def http_framing_seeds():
    """Framing cases (issue 10): each carries a smuggled second request
    that must never run, so the framing oracle has both sides to compare."""
    t = "http_request_fuzz"
    post = b"POST /counters/v/increment HTTP/1.1\r\nHost: x\r\n"
    smuggled = b"DELETE /counters/t HTTP/1.1\r\nHost: x\r\n\r\n"
    setup = (b"PUT /counters/t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Content-Length: 11\r\n\r\n{\"value\":5}")
    cases = {
        "te-identity": b"Transfer-Encoding: identity\r\n\r\n",
        "te-chunked-identity": b"Transfer-Encoding: chunked, identity\r\n\r\n",
        "te-gzip-chunked": b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "te-xchunked": b"Transfer-Encoding: xchunked\r\n\r\n",
        "te-chunked-twice": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"0\r\n\r\n",
        "te-upper": b"Transfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n",
        "cl-te": b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "te-cl": b"Transfer-Encoding: identity\r\nContent-Length: 45\r\n\r\n",
        "cl-dup": b"Content-Length: 0\r\nContent-Length: 0\r\n\r\n",
        "cl-list": b"Content-Length: 0, 45\r\n\r\n",
        "obs-fold": b"X-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
        "chunk-ext-trailer": b"Transfer-Encoding: chunked\r\n\r\n2;a=\"b\"\r\n{}\r\n0\r\n"
                             b"X-T: 1\r\n\r\n",
    }
    for name, rest in cases.items():
        write(t, "framing-" + name, setup + post + rest + smuggled)
    write(t, "framing-no-host", b"GET /livez HTTP/1.1\r\n\r\n" + smuggled)
    write(t, "framing-two-hosts", b"GET /livez HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    write(t, "framing-absolute", b"DELETE http://x:80/counters/t?a=1 HTTP/1.1\r\nHost: y\r\n\r\n")
    write(t, "framing-version-12", b"GET /livez HTTP/1.2\r\nHost: x\r\n\r\n" + smuggled)
    write(t, "framing-version-20", b"GET /livez HTTP/2.0\r\nHost: x\r\n\r\n")
    write(t, "framing-bare-lf", b"GET /livez HTTP/1.1\nHost: x\n\n" + smuggled)
    write(t, "framing-unknown-method", b"FOO /counter HTTP/1.1\r\nHost: x\r\n\r\n" + smuggled)


def main() -> int:
    journal_seeds()
    snapshot_seeds()
    recovery_seeds()
    http_seeds()
    http_framing_seeds()
    for target in sorted(os.listdir(CORPUS)):
        n = len(os.listdir(os.path.join(CORPUS, target)))
        print(f"{target}: {n} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
