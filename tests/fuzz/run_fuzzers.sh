#!/usr/bin/env bash
# Builds counterd's libFuzzer targets with clang (ASan + UBSan, assertions
# on) in build/fuzz/ (the "fuzz" preset of CMakePresets.json) and runs each
# one: first over the kept corpus (seeds and regress-* inputs of fixed
# crashes), then fuzzing for N seconds. Prints the executions per target;
# exits 1 if any target failed.
#
#   tests/fuzz/run_fuzzers.sh                     # 25 s per target (CI)
#   tests/fuzz/run_fuzzers.sh --seconds 600       # a longer run
#   tests/fuzz/run_fuzzers.sh --regress           # only replay the corpus
#   tests/fuzz/run_fuzzers.sh snapshot_fuzz       # one target
#
# Options: --jobs N (build parallelism, default 2), --parallel N (fuzz
# targets at once, default 1), --seconds N,
# --build-only (configure and build, run nothing), --no-build (run what is
# built). A crash leaves its input in build/fuzz/tests/fuzz/artifacts/; to
# keep it as a regression case once fixed, copy it to
# tests/fuzz/corpus/<target>/regress-<what-it-found>. New inputs the fuzzer
# finds go to build/fuzz/tests/fuzz/corpus/<target>/ (the repo's corpus is
# only read; refresh the seeds with tests/fuzz/make_corpus.py).
set -euo pipefail
cd "$(dirname "$0")/../.."

build_dir=build/fuzz  # the fuzz preset's binaryDir
jobs=2
parallel=1
seconds=25
regress=0
do_build=1
do_run=1
targets=()
while (($#)); do
  case "$1" in
    --jobs) jobs=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --regress) regress=1; shift ;;
    --build-only) do_run=0; shift ;;
    --no-build) do_build=0; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done

if ! command -v clang++-14 >/dev/null; then
  echo "run_fuzzers: clang++-14 not found (Debian: apt-get install -y clang-14 libclang-rt-14-dev)" >&2
  exit 2
fi

# The preset: clang++-14, -O1 -g without NDEBUG (assertions, ours and
# Beast's, stay on). The seconds only change the registered test commands.
cmake --preset fuzz -DCOUNTERD_FUZZ_SECONDS="$seconds" >/dev/null
if ((${#targets[@]} == 0)); then
  ((do_build)) && cmake --build --preset fuzz -j"$jobs"
  regex='^fuzz\.'
else
  ((do_build)) && cmake --build "$build_dir" --target "${targets[@]}" -j"$jobs"
  regex="^fuzz\\.($(IFS='|'; echo "${targets[*]}"))(\\.corpus)?\$"
fi
((regress)) && regex="${regex%\$}.*\\.corpus\$"
((do_run)) || exit 0

log="$build_dir/tests/fuzz/last-run.log"
status=0
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
  ctest --preset fuzz --no-tests=error -R "$regex" -j "$parallel" -V >"$log" 2>&1 || status=1

# One summary line per test: what ran, how many inputs, the outcome.
python3 - "$log" <<'EOF'
import re, sys
tests, current = {}, {}
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"\s*(\d+): Test command: \S*/(\w+) (.*)", line)
    if m:
        current[m.group(1)] = m.group(2) + (" corpus" if "-runs=0" in m.group(3) else " fuzz")
        continue
    m = re.match(r"(\d+): (.*)", line)
    if not m:
        m2 = re.search(r"Test\s+#(\d+): (\S+) \.+\**\s*(\w+)", line)
        if m2:
            tests.setdefault(m2.group(1), {})["result"] = m2.group(3)
            tests[m2.group(1)]["name"] = m2.group(2)
        continue
    n, text = m.groups()
    t = tests.setdefault(n, {})
    for key, rx in (("seed", r"INFO: Seed: (\d+)"),
                    ("execs", r"stat::number_of_executed_units: (\d+)"),
                    ("cov", r"#\d+\s+DONE\s+cov: (\d+)"),
                    ("crash", r"(ERROR: \w+Sanitizer.*|ERROR: libFuzzer.*|runtime error.*)"),
                    ("artifact", r"Test unit written to (\S+)")):
        mm = re.search(rx, text)
        if mm and key not in t:
            t[key] = mm.group(1)
for n in sorted(tests, key=int):
    t = tests[n]
    line = f"{t.get('name', n):32s} {t.get('result', '?'):8s} execs={t.get('execs', '?'):>9s}"
    line += f" cov={t.get('cov', '?')} seed={t.get('seed', '?')}"
    if "crash" in t:
        line += f"\n    {t['crash']}\n    input: {t.get('artifact', '?')}"
    print(line)
EOF
echo "full log: $log"
exit $status
