# syntax=docker/dockerfile:1
#
# floodgate/node: the `floodgate` binary, i.e. `floodgate driver …`, `floodgate orchestrator …`
# and the CLI (`floodgate nodes`, `floodgate test …`). The operator runs driver pods from it.
#
# Build from the workspace root (BuildKit is required for the cache mounts):
#   docker build -f docker/node.Dockerfile -t floodgate/node:0.1.0 .

ARG RUST_VERSION=1
# The runtime base. Offline CI (scripts/k8s/images.sh) passes a local equivalent, and replaces
# the builder stage with host-built binaries (`--build-context builder=DIR`, DIR holding out/):
# the runtime stage below is the same either way.
ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:nonroot

# ---------------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder

# rdkafka builds its bundled librdkafka with ./configure + make (no cmake; TLS and SCRAM through the
# system OpenSSL, libssl-dev) and links the system zlib; rusqlite builds its bundled SQLite with cc.
# The rust image already ships gcc, g++, make and perl; pkg-config and zlib1g-dev are made sure of.
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
    cargo build --release --locked -p floodgate --bin floodgate \
 && mkdir -p /out/bin /out/lib /out/data \
 && cp build/release/floodgate /out/bin/floodgate \
 && strip --strip-debug /out/bin/floodgate \
 && cp -L "/lib/$(gcc -print-multiarch)/libz.so.1" /out/lib/libz.so.1

# ---------------------------------------------------------------------------------------------
# Same Debian release as the builder (glibc 2.36). distroless/cc has glibc and libgcc but not
# necessarily zlib, which librdkafka needs: it is copied to /usr/lib, on the loader's default path.
FROM ${RUNTIME_BASE}

COPY --from=builder /out/lib/libz.so.1 /usr/lib/libz.so.1
COPY --from=builder /out/bin/floodgate /usr/local/bin/floodgate
# The SQLite stores default to $FLOODGATE_DATA_DIR. Mount an emptyDir here when the root
# filesystem is read-only.
COPY --from=builder --chown=65532:65532 /out/data /data
ENV FLOODGATE_DATA_DIR=/data
WORKDIR /data

USER 65532:65532
# 8090: orchestrator REST API, dashboard and /metrics; 9090: a driver's /healthz and /metrics
# (when started with FLOODGATE_LISTEN=0.0.0.0:9090).
EXPOSE 8090 9090
ENTRYPOINT ["/usr/local/bin/floodgate"]
CMD ["--help"]
