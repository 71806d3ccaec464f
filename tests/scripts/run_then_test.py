#!/usr/bin/env python3
"""The README's two commands, in order: `scripts/run` then `scripts/test`.

Once, scripts/run configured build/ with COUNTERD_BUILD_TESTS=OFF and
scripts/test reused that CMake cache: its last phase printed "No tests were
found!!!" and the run passed having tested nothing. This test replays the
sequence in a copy of the source tree:

  1. scripts/run --version (extra arguments go to counterd, and --version
     exits at once) must configure and build its own directory and exec the
     binary it built there;
  2. scripts/test --list --only tests_dev then configures what scripts/test
     would test (without building) and must find the whole suite there,
     in another directory, leaving scripts/run's cache as it was.

To stay cheap the copy's compiler and linker are stand-ins
(CMAKE_CXX_COMPILER_LAUNCHER / CMAKE_CXX_LINKER_LAUNCHER, which CMake reads
from the environment): every source compiles as an empty file and counterd
links as a script that prints its arguments. What runs for real is all that
this is about: the scripts, their presets, CMake's configure and the build
tool's invocation, and ctest.

    python3 tests/scripts/run_then_test.py          # (CTest: scripts.run_then_test)
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

SOURCE = os.path.abspath(os.environ.get(
    "COUNTERD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")))
# Every test of the suite that CTest knows without a build (the gtest cases
# are discovered from the built executables): integration, torture,
# container, k8s, scripts. Fewer than this means tests went missing.
MIN_TESTS = 15

COMPILE_STUB = r'''#!/usr/bin/env python3
# Compiles an empty file in place of each of counterd's sources: a real
# object, no code. Anything else (CMake's own compiler checks, which it also
# runs through the launcher) is compiled for real.
import os, subprocess, sys
TREE = @TREE@
args = sys.argv[1:]
empty = os.path.join(os.path.dirname(os.path.abspath(__file__)), "empty.cc")
if "-c" in args:
    i = args.index("-c") + 1
    if os.path.abspath(args[i]).startswith((os.path.join(TREE, "src") + os.sep,
                                            os.path.join(TREE, "tests") + os.sep)):
        args[i] = empty
sys.exit(subprocess.call(args))
'''

LINK_STUB = r'''#!/usr/bin/env python3
# "Links" counterd as a script that prints its arguments; links anything
# else (CMake's compiler checks) for real.
import os, subprocess, sys
args = sys.argv[1:]
out = args[args.index("-o") + 1]
if os.path.basename(out) != "counterd":
    sys.exit(subprocess.call(args))
with open(out, "w") as f:
    f.write('#!/bin/sh\necho "stub counterd: $*"\n')
os.chmod(out, 0o755)
'''


def fail(msg: str) -> None:
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def copy_tree(dst: str) -> None:
    """The source tree as git sees it (tracked and new files), or, outside
    a checkout, everything but build dirs and data."""
    try:
        files = subprocess.run(
            ["git", "-C", SOURCE, "ls-files", "-co", "--exclude-standard", "-z"],
            check=True, capture_output=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        files = None
    if files:
        for rel in filter(None, files):
            src = os.path.join(SOURCE, rel)
            if not os.path.isfile(src):
                continue  # deleted in the work tree
            os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dst, rel))
        return
    shutil.copytree(SOURCE, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
        "build", "build-*", "data", ".git", "__pycache__"))


def caches(tree: str) -> dict:
    """{build dir relative to the tree: sha256 of its CMakeCache.txt}."""
    out = {}
    for root, dirs, files in os.walk(tree):
        dirs[:] = [d for d in dirs if d not in (".git", "CMakeFiles", "src", "tests")]
        if "CMakeCache.txt" in files:
            with open(os.path.join(root, "CMakeCache.txt"), "rb") as f:
                out[os.path.relpath(root, tree)] = hashlib.sha256(f.read()).hexdigest()
    return out


def cache_value(tree: str, build_dir: str, key: str) -> str:
    with open(os.path.join(tree, build_dir, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split("=", 1)[1].strip()
    return ""


def run(cmd: list[str], cwd: str, env: dict, timeout: int) -> subprocess.CompletedProcess:
    print(f"$ {' '.join(cmd)}", flush=True)
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    print(p.stdout[-3000:], p.stderr[-3000:], sep="", flush=True)
    return p


def main() -> int:
    work = tempfile.mkdtemp(prefix="counterd-scripts-test-")
    try:
        tree = os.path.join(work, "counterd")
        tools = os.path.join(work, "tools")
        os.makedirs(tools)
        copy_tree(tree)
        for name, text in (("compile", COMPILE_STUB.replace("@TREE@", repr(tree))),
                           ("link", LINK_STUB)):
            path = os.path.join(tools, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
        open(os.path.join(tools, "empty.cc"), "w").close()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("COUNTERD_", "CMAKE_", "CTEST_"))}
        env["CMAKE_CXX_COMPILER_LAUNCHER"] = os.path.join(tools, "compile")
        env["CMAKE_CXX_LINKER_LAUNCHER"] = os.path.join(tools, "link")

        # 1. scripts/run --version
        p = run(["scripts/run", "--version"], tree, env, 600)
        if p.returncode != 0:
            fail(f"scripts/run --version exited {p.returncode}")
        m = re.search(r"^stub counterd: (.*)$", p.stdout, re.M)
        if not m or not m.group(1).endswith("--version"):
            fail("scripts/run did not exec the counterd it built with the extra "
                 f"argument: {p.stdout!r}")
        after_run = caches(tree)
        if len(after_run) != 1:
            fail(f"scripts/run should configure one build dir, found {sorted(after_run)}")
        (run_dir,) = after_run
        print(f"scripts/run built in {run_dir} "
              f"(COUNTERD_BUILD_TESTS={cache_value(tree, run_dir, 'COUNTERD_BUILD_TESTS')})")

        # 2. what scripts/test would test, right after that.
        p = run(["scripts/test", "--list", "--only", "tests_dev"], tree, env, 600)
        if p.returncode != 0:
            fail(f"scripts/test --list exited {p.returncode}")
        counts = [(int(n), d) for n, d in
                  re.findall(r"^tests: .*?: (\d+) tests in (\S+)$", p.stdout, re.M)]
        if not counts:
            fail("scripts/test --list named no test phase")
        total = sum(n for n, _ in counts)
        test_dirs = {os.path.relpath(d, tree) for _, d in counts}
        print(f"scripts/test would run {total} tests (before any build) in "
              f"{sorted(test_dirs)}")
        problems = []
        if total < MIN_TESTS:
            problems.append(f"scripts/test would run {total} tests after scripts/run, "
                            f"expected at least {MIN_TESTS}")
        if run_dir in test_dirs:
            problems.append(f"scripts/run and scripts/test share the build dir {run_dir}")
        after_test = caches(tree)
        if after_test.get(run_dir) != after_run[run_dir]:
            problems.append(f"scripts/test changed scripts/run's CMake cache in {run_dir}")
        for d in sorted(test_dirs):
            if cache_value(tree, d, "COUNTERD_BUILD_TESTS") != "ON":
                problems.append(f"{d}: COUNTERD_BUILD_TESTS is not ON")
        if problems:
            fail("; ".join(problems))
        print(f"PASS: scripts/run built in {run_dir}; scripts/test then finds "
              f"{total} tests in {', '.join(sorted(test_dirs))}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
