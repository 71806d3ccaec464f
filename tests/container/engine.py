"""Shared plumbing for the container and Kubernetes tests (stdlib only).

- skip_or_fail(): exit 77 (CTest SKIP_RETURN_CODE) when something the test
  needs is missing, or 1 where these tests are required (CI=true, or
  COUNTERD_TEST_REQUIRE_ENGINE=1, which scripts/test sets once it has set up
  an engine).
- require_docker(): a working `docker` CLI (any engine behind it; here it
  is Podman via ../shared/tools/container-engine).
- ensure_image(): the image built from the repository's Dockerfile, shared by
  tests/container/image_test.py and tests/k8s/pod_test.py.
- run(): a subprocess call that echoes the command, for readable logs.

Environment:
  CI=true                   missing engine/tools fail instead of skipping.
  COUNTERD_TEST_REQUIRE_ENGINE=1  the same, without claiming to be CI.
  COUNTERD_SOURCE_DIR       the repository root (CTest sets it).
  COUNTERD_TEST_IMAGE       image tag to build and use (default counterd:test).
  COUNTERD_TEST_IMAGE_PREBUILT=1  use COUNTERD_TEST_IMAGE as it is, no build.
"""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from typing import NoReturn, Optional, Sequence

SKIP = 77
SOURCE_DIR = os.path.abspath(os.environ.get(
    "COUNTERD_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")))
DEFAULT_IMAGE = "counterd:test"
# Cold build on 2 shared cores: apt (about a minute) plus the compile.
BUILD_TIMEOUT = float(os.environ.get("COUNTERD_TEST_BUILD_TIMEOUT", "900"))


def is_required() -> bool:
    """True where a missing engine or tool is a failure, not a skip."""
    ci = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
    return ci or os.environ.get("COUNTERD_TEST_REQUIRE_ENGINE", "") not in ("", "0")


def log(msg: str) -> None:
    print(msg, flush=True)


def skip_or_fail(reason: str) -> NoReturn:
    """Skips the test (exit 77), or fails it (exit 1) where required."""
    if is_required():
        log(f"FAIL: {reason}\n(this test is required here and may not skip)")
        sys.exit(1)
    log(f"SKIP: {reason}")
    sys.exit(SKIP)


def run(cmd: Sequence[str], *, check: bool = True, timeout: float = 120,
        quiet: bool = False, input: Optional[str] = None) -> subprocess.CompletedProcess:
    """Runs |cmd|, capturing text output. Echoes the command (and, unless
    |quiet|, its output). Raises AssertionError if |check| and it fails."""
    log("$ " + shlex.join(cmd))
    p = subprocess.run(list(cmd), capture_output=True, text=True, errors="replace",
                       timeout=timeout, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL)
    if not quiet:
        for line in (p.stdout + p.stderr).rstrip("\n").splitlines()[-40:]:
            log("  " + line)
    if check and p.returncode != 0:
        raise AssertionError(f"command failed with exit code {p.returncode}: "
                             f"{shlex.join(cmd)}\n{p.stdout}\n{p.stderr}")
    return p


def require_docker() -> None:
    """Skips (or fails under CI) unless `docker` reaches a running engine."""
    if not shutil.which("docker"):
        skip_or_fail("no container engine: the docker CLI is not installed "
                     "(here: eval \"$(../shared/tools/container-engine)\")")
    try:
        p = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                           capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        skip_or_fail("no container engine: `docker version` timed out")
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or [""])[-1]
        skip_or_fail("no container engine: `docker version` cannot reach a server "
                     f"(DOCKER_HOST={os.environ.get('DOCKER_HOST', '')!r}): {last}")
    log(f"container engine: docker CLI -> server {p.stdout.strip()} "
        f"(DOCKER_HOST={os.environ.get('DOCKER_HOST', '(default)')})")


def project_version() -> str:
    """The version in the top-level CMakeLists.txt project() call."""
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"project\s*\(\s*counterd\s+VERSION\s+([0-9][0-9A-Za-z.+-]*)", f.read())
    return m.group(1) if m else "0.0.0-dev"


def prebuilt() -> bool:
    return os.environ.get("COUNTERD_TEST_IMAGE_PREBUILT", "") not in ("", "0")


def image_tag() -> str:
    return os.environ.get("COUNTERD_TEST_IMAGE", DEFAULT_IMAGE)


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True,
                          stdin=subprocess.DEVNULL).returncode == 0


def ensure_image() -> str:
    """Builds the image from the repository root and returns its tag.

    The build always runs, so the image matches the current sources; with
    nothing changed every step is a cache hit and it takes seconds, which is
    how the pod test reuses the image the container test just built. A lock
    file keeps two test processes from building at once."""
    tag = image_tag()
    if prebuilt():
        if not image_exists(tag):
            raise AssertionError(f"COUNTERD_TEST_IMAGE_PREBUILT is set but {tag} does not exist")
        log(f"using prebuilt image {tag}")
        return tag
    lock_path = os.path.join(tempfile.gettempdir(), "counterd-test-image.lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = image_exists(tag)
        log(f"building {tag} from {SOURCE_DIR} ({'tag exists, expecting cache hits' if cached else 'cold'})")
        start = time.monotonic()
        # The unit tests run in this suite already (ctest -L unit); building
        # them again in the builder stage would only cost time. The runtime
        # stage is the same either way.
        cmd = ["docker", "build", "-t", tag,
               "--build-arg", f"VERSION={project_version()}",
               "--build-arg", f"REVISION={git_revision()}",
               "--build-arg", "RUN_UNIT_TESTS=OFF",
               SOURCE_DIR]
        log("$ " + shlex.join(cmd))
        with tempfile.TemporaryFile("w+") as out:
            p = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, text=True,
                               timeout=BUILD_TIMEOUT, stdin=subprocess.DEVNULL)
            out.seek(0)
            lines = out.read().splitlines()
        took = time.monotonic() - start
        if p.returncode != 0:
            raise AssertionError(f"docker build failed (exit {p.returncode}) after {took:.0f}s:\n"
                                 + "\n".join(lines[-80:]))
        steps = [l for l in lines if re.match(r"^(\[\d+/\d+\] )?STEP \d+/\d+|^Step \d+/\d+", l)]
        hits = sum(1 for l in lines if "Using cache" in l)
        log(f"built {tag} in {took:.1f}s ({len(steps)} steps, {hits} cache hits)")
    return tag


def git_revision() -> str:
    try:
        p = subprocess.run(["git", "-C", SOURCE_DIR, "rev-parse", "--short=12", "HEAD"],
                           capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        return p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def proc_status(pid: int) -> Optional[dict]:
    """/proc/<pid>/status as a dict, or None when the process is not visible
    from here (a remote engine)."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except OSError:
        return None
