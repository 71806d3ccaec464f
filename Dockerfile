# counterd container image.
#
#   docker build -t counterd:dev --build-arg VERSION=0.1.0 .
#   docker run -d -p 8080:8080 -v counterd-data:/data counterd:dev
#
# Two stages. "build" compiles a Release binary on Debian bookworm (the only
# base image this project relies on) and runs the unit tests. The runtime
# stage is FROM scratch: no shell, no package manager, only the binary, what
# it loads at run time (nothing when it is linked statically), a passwd entry
# for uid 65532 and an empty /data owned by it. docs/container.md explains
# how to run it; tests/container/image_test.py proves it.

ARG BUILDER_IMAGE=debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS build

# The build dependencies, from Debian's own packages (no other registry).
# python3-minimal only because configuring the test tree looks for Python.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake g++ make python3-minimal \
      libboost1.81-dev libboost-program-options1.81-dev \
      nlohmann-json3-dev libspdlog-dev libgtest-dev libgmock-dev libssl-dev \
      libpq-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what the build reads (see .dockerignore), so that a change to the
# docs or the manifests does not invalidate the compile layer.
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY include/ include/
COPY src/ src/
COPY tests/ tests/

# LINK_STATIC=ON links the executable statically (-DCOUNTERD_STATIC; the
# runtime stage is then the binary alone). By default it is dynamic, and the
# staging step below copies exactly the shared libraries and the loader it
# needs. Build args are in the environment of every RUN, and counterd
# rejects unknown COUNTERD_* variables: no build arg may be named COUNTERD_*.
ARG LINK_STATIC=OFF
# RUN_UNIT_TESTS=OFF skips building and running the unit tests (faster).
ARG RUN_UNIT_TESTS=ON
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
      -DCOUNTERD_STATIC="${LINK_STATIC}" \
      -DCOUNTERD_BUILD_TESTS="${RUN_UNIT_TESTS}" \
 && cmake --build /build --parallel "$(nproc)" \
 && if [ "${RUN_UNIT_TESTS}" = ON ]; then \
      ctest --test-dir /build --label-regex '^unit$' --no-tests=error --output-on-failure \
            --parallel "$(nproc)"; \
    fi

# Stage the runtime file system in /rootfs: the stripped binary, and for a
# dynamic build every library ldd resolves plus the loader, each at the path
# the binary looks for it (the scratch stage has no ld.so.cache, so the
# loader's built-in directories must hold them). libpq is not linked: the
# postgres backend loads libpq.so.5 with dlopen when it first connects, so
# it and the libraries it needs are copied the same way.
RUN set -eu; \
    mkdir -p /rootfs/usr/local/bin /rootfs/etc /data-skeleton; \
    install -m 0755 /build/counterd /rootfs/usr/local/bin/counterd; \
    strip --strip-unneeded /rootfs/usr/local/bin/counterd; \
    if ldd /rootfs/usr/local/bin/counterd >/tmp/ldd 2>&1; then \
      libpq=$(ldconfig -p | awk '$1 == "libpq.so.5" {print $NF; exit}'); \
      test -n "$libpq"; \
      { echo "$libpq"; ldd "$libpq"; } >>/tmp/ldd; \
      awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' /tmp/ldd \
        | sort -u | while read -r lib; do cp -L --parents "$lib" /rootfs; done; \
    else \
      grep -q 'not a dynamic executable' /tmp/ldd; \
    fi; \
    echo 'counterd:x:65532:65532:counterd:/nonexistent:/sbin/nologin' > /rootfs/etc/passwd; \
    echo 'counterd:x:65532:' > /rootfs/etc/group; \
    /rootfs/usr/local/bin/counterd --help >/dev/null

FROM scratch

ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE_URL=https://example.invalid/counterd
# The licence is the one in LICENSE at the repository root (Apache-2.0, as
# an SPDX identifier); tests/container/image_test.py checks they agree.
LABEL org.opencontainers.image.title="counterd" \
      org.opencontainers.image.description="Named int64 counters over HTTP, kept durably on disk" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="scratch"

COPY --from=build /rootfs/ /
# An empty /data owned by the runtime user: a new named volume is seeded from
# it (owner included), so a non-root process can write a fresh volume.
COPY --from=build --chown=65532:65532 /data-skeleton /data

USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
# The image has no curl: the binary asks its own /readyz. The start period
# covers journal recovery; failures in it do not count. With TLS on
# (COUNTERD_TLS_CERT_FILE set) it probes over HTTPS, presenting that pair
# if the server requires client certificates.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/counterd", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/counterd"]
