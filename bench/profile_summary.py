#!/usr/bin/env python3
"""Sorts perf samples of counterd into cost categories by their call stack.

    perf script -i perf.data -F tid,ip,sym,dso --no-inline | bench/profile_summary.py

perf's symbol tables of Beast/Asio code are template soup; this says where
the CPU goes in the terms of counterd's request path: per thread kind (I/O
threads, committer, others), then per category, each sample counted once,
by the first rule its stack (leaf first) matches.
"""
import collections
import re
import sys

# Samples whose leaf is in the kernel are sorted by the kernel rules over
# the kernel frames (first rule that matches any frame). The rest: first the
# INCLUSIVE rules over all user frames (a malloc called from the JSON
# encoder counts as JSON encoding), then the LEAF rules by the frame nearest
# the leaf that any of them matches.
KERNEL_RULES = [
    ("fdatasync", r"fdatasync|ext4_sync_file|jbd2|blkdev_issue_flush|file_write_and_wait"),
    ("write() to the journal", r"ext4_buffered_write|ext4_file_write_iter"),
    ("TCP send", r"tcp_sendmsg|sock_sendmsg|__sys_sendmsg|sock_write_iter"),
    ("TCP receive", r"tcp_recvmsg|sock_recvmsg|__sys_recvmsg|sock_read_iter"),
    ("epoll_wait", r"epoll_wait|do_epoll"),
    ("futex (mutex/condvar sleep and wake)", r"futex"),
    ("eventfd / timerfd (asio wake-ups)", r"eventfd|timerfd"),
    ("other syscalls", r"entry_SYSCALL|do_syscall_64"),
    ("interrupts, softirq, scheduler", r"."),
]
INCLUSIVE_RULES = [
    ("JSON encode/decode (nlohmann)", r"nlohmann|EncodeCounter|DecodeDeltaBody|json_codec"),
    ("metrics / histograms", r"Histogram|Metrics|metrics"),
    ("logging (spdlog/fmt)", r"spdlog|fmt::v"),
    ("HTTP parse (beast parser)", r"basic_parser|header_parser|beast::http::parser"),
    ("commit: plan + apply + encode", r"CommitBatch|EncodeRecord|StoreState|BatchView|CounterService"),
]
LEAF_RULES = [
    ("malloc / free", r"^(_int_malloc|_int_free|malloc|cfree|free|operator new|operator delete|malloc_consolidate|unlink_chunk)"),
    ("mutex / condvar (user side)", r"pthread_mutex|pthread_cond|__lll_lock"),
    ("memcpy / memmove / strings", r"memmove|memcpy|memset|strlen|basic_string"),
    ("HTTP serialize (beast serializer)", r"serializer|buffers_cat|chunk_crlf|field_range|buffers_prefix|buffers_ref"),
    ("beast fields / message", r"basic_fields|http::message|basic_string_body"),
    ("asio executors / strands / shared_ptr / std::function", r"boost::asio|any_executor|strand|_Sp_counted|std::function|_Function_handler|mp_with_index"),
    ("counterd http code (handlers, session, routing)", r"counterd::http::"),
]
KERNEL = [(n, re.compile(r)) for n, r in KERNEL_RULES]
INCLUSIVE = [(n, re.compile(r)) for n, r in INCLUSIVE_RULES]
LEAF = [(n, re.compile(r)) for n, r in LEAF_RULES]


def thread_kind(stack):
    joined = "\n".join(stack)
    if "CommitterLoop" in joined:
        return "committer"
    if "scheduler::run" in joined or "StartThreads" in joined:
        return "I/O threads"
    if "WriteSnapshot" in joined or "compact" in joined.lower():
        return "compactor"
    return "other"


def classify(stack):
    """stack: [(symbol, is_kernel)], leaf first."""
    if stack[0][1]:
        frames = [sym for sym, k in stack if k]
        for name, rx in KERNEL:
            if any(rx.search(f) for f in frames):
                return "kernel: " + name
    frames = [sym for sym, k in stack if not k]
    for name, rx in INCLUSIVE:
        if any(rx.search(f) for f in frames):
            return name
    for f in frames:
        for name, rx in LEAF:
            if rx.search(f):
                return name
    return "other user code"


def main():
    samples = []
    stack = []
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line.strip():
            if stack:
                samples.append(stack)
            stack = []
            continue
        if not line.startswith(("\t", " ")):
            stack = []  # a sample's header line
            continue
        # "addr symbol (dso)"
        m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\(([^)]*)\)\s*$", line)
        if not m:
            continue
        sym, dso = m.group(1), m.group(2)
        stack.append((sym, "kernel" in dso or dso.startswith("[")))
    if stack:
        samples.append(stack)
    total = len(samples)
    if total == 0:
        print("no samples")
        return
    by_thread = collections.Counter()
    by_cat = collections.defaultdict(collections.Counter)
    for s in samples:
        kind = thread_kind([sym for sym, _ in s])
        by_thread[kind] += 1
        by_cat[kind][classify(s)] += 1
    print(f"{total} samples; % of all of counterd's samples")
    for kind, n in by_thread.most_common():
        print(f"\n{kind}: {100.0 * n / total:.1f}%")
        for cat, m in by_cat[kind].most_common():
            if 100.0 * m / total >= 0.5:
                print(f"  {100.0 * m / total:5.1f}%  {cat}")


if __name__ == "__main__":
    main()
