# syntax=docker/dockerfile:1
#
# floodgate/target: `floodgate-target`, a lean HTTP server to aim tests at (/ping, /metrics,
# /reset, /arrivals).
#
# Build from the workspace root (BuildKit is required for the cache mounts):
#   docker build -f docker/target.Dockerfile -t floodgate/target:0.1.0 .

ARG RUST_VERSION=1
# The runtime base. Offline CI (scripts/k8s/images.sh) passes a local equivalent, and replaces
# the builder stage with host-built binaries (`--build-context builder=DIR`, DIR holding out/):
# the runtime stage below is the same either way.
ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:nonroot

# ---------------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder

WORKDIR /src
COPY . .

# Careful: target/ is the SOURCE of this crate; Cargo builds into build/ (.cargo/config.toml),
# which is a cache mount, so the binary is copied out in the same step.
RUN --mount=type=cache,id=floodgate-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=floodgate-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=floodgate-build,target=/src/build,sharing=locked \
    cargo build --release --locked -p floodgate-target --bin floodgate-target \
 && mkdir -p /out/bin \
 && cp build/release/floodgate-target /out/bin/floodgate-target \
 && strip --strip-debug /out/bin/floodgate-target

# ---------------------------------------------------------------------------------------------
# Same Debian release as the builder (glibc 2.36); the binary needs only libc and libgcc.
FROM ${RUNTIME_BASE}

COPY --from=builder /out/bin/floodgate-target /usr/local/bin/floodgate-target
# Every flag also reads FLOODGATE_TARGET_<FLAG>; listen on all interfaces in a container.
ENV FLOODGATE_TARGET_LISTEN=0.0.0.0:8080

USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/floodgate-target"]
