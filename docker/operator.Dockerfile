# syntax=docker/dockerfile:1
#
# floodgate/operator: `floodgate-operator`, which watches LoadTest resources, owns one driver
# Deployment per LoadTest and runs the orchestrator in-process (REST API, dashboard and
# Prometheus /metrics on port 8090).
#
# Build from the workspace root (BuildKit is required for the cache mounts):
#   docker build -f docker/operator.Dockerfile -t floodgate/operator:0.1.0 .

ARG RUST_VERSION=1
# The runtime base. Offline CI (scripts/k8s/images.sh) passes a local equivalent, and replaces
# the builder stage with host-built binaries (`--build-context builder=DIR`, DIR holding out/):
# the runtime stage below is the same either way.
ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:nonroot

# ---------------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder

# The operator links the floodgate library, hence rdkafka: its bundled librdkafka is built with
# ./configure + make (TLS and SCRAM through the system OpenSSL, libssl-dev) and links the system
# zlib. The rust image already ships gcc, g++, make and
# perl; pkg-config and zlib1g-dev are made sure of.
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config zlib1g-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The workspace builds into build/ (.cargo/config.toml), not target/: target/ is the source of
# the floodgate-target crate. build/ is a cache mount, so the binary is copied out in this step.
RUN --mount=type=cache,id=floodgate-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=floodgate-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=floodgate-build,target=/src/build,sharing=locked \
    cargo build --release --locked -p floodgate-operator --bin floodgate-operator \
 && mkdir -p /out/bin /out/lib /out/data \
 && cp build/release/floodgate-operator /out/bin/floodgate-operator \
 && strip --strip-debug /out/bin/floodgate-operator \
 && cp -L "/lib/$(gcc -print-multiarch)/libz.so.1" /out/lib/libz.so.1

# ---------------------------------------------------------------------------------------------
# Same Debian release as the builder (glibc 2.36). distroless/cc has glibc, libgcc, libssl and CA
# certificates but not necessarily zlib: it is copied to /usr/lib, on the loader's default path.
FROM ${RUNTIME_BASE}

COPY --from=builder /out/lib/libz.so.1 /usr/lib/libz.so.1
COPY --from=builder /out/bin/floodgate-operator /usr/local/bin/floodgate-operator
# The orchestrator's SQLite store (FLOODGATE_STORE, e.g. /data/orchestrator.sqlite). The chart
# mounts an emptyDir here because the root filesystem is read-only.
COPY --from=builder --chown=65532:65532 /out/data /data
ENV FLOODGATE_DATA_DIR=/data
WORKDIR /data

USER 65532:65532
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/floodgate-operator"]
