#!/usr/bin/env bash
# Builds counterd's libFuzzer targets with clang (ASan + UBSan, assertions
# on) in a build dir of their own and runs each one: first over the kept
# corpus (seeds and regress-* inputs of fixed crashes), then fuzzing for N
# seconds. Prints the executions per target; exits 1 if any target failed.
#
#   tests/fuzz/run_fuzzers.sh                     # 25 s per target (CI)
#   tests/fuzz/run_fuzzers.sh --seconds 600       # a longer run
#   tests/fuzz/run_fuzzers.sh --regress           # only replay the corpus
#   tests/fuzz/run_fuzzers.sh snapshot_fuzz       # one target
#
# Options: --build-dir DIR (default build-fuzz), --jobs N (default 2),
# --seconds N. A crash leaves its input in DIR/tests/fuzz/artifacts/; to
# keep it as a regression case once fixed, copy it to
# tests/fuzz/corpus/<target>/regress-<what-it-found>. New inputs the fuzzer
# finds go to DIR/tests/fuzz/corpus/<target>/ (the repo's corpus is only
# read; refresh the seeds with tests/fuzz/make_corpus.py).
set -euo pipefail
cd "$(dirname "$0")/../.."

build_dir=build-fuzz
jobs=2
seconds=25
regress=0
targets=()
while (($#)); do
  case "$1" in
    --build-dir) build_dir=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --regress) regress=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done

cxx=${CXX_FUZZ:-clang++-14}
if ! command -v "$cxx" >/dev/null; then
  echo "run_fuzzers: $cxx not found (Debian: apt-get install -y clang-14 libclang-rt-14-dev)" >&2
  exit 2
fi

# -O1 -g without NDEBUG: assertions (ours and Beast's) stay on.
cmake -S . -B "$build_dir" -DCMAKE_CXX_COMPILER="$cxx" -DCOUNTERD_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DCOUNTERD_FUZZ_SECONDS="$seconds" >/dev/null
if ((${#targets[@]} == 0)); then
  cmake --build "$build_dir" --target counterd_fuzzers -j"$jobs"
  regex='^fuzz\.'
else
  cmake --build "$build_dir" --target "${targets[@]}" -j"$jobs"
  regex="^fuzz\\.($(IFS='|'; echo "${targets[*]}"))(\\.corpus)?\$"
fi
((regress)) && regex="${regex%\$}.*\\.corpus\$"

log="$build_dir/tests/fuzz/last-run.log"
status=0
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
  ctest --test-dir "$build_dir" -L fuzz -R "$regex" -V >"$log" 2>&1 || status=1

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
