# perfect-order: multi-stage build, small non-root runtime image.
#   docker build -t perfect-order .
FROM rust:1-bookworm AS build
# librdkafka is built from source (bundled); it needs cmake-free make, a C toolchain and perl.
RUN apt-get update && apt-get install -y --no-install-recommends build-essential perl python3 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked --bin perfect-order \
    && strip target/release/perfect-order

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin perfect-order
COPY --from=build /src/target/release/perfect-order /usr/local/bin/perfect-order
USER 10001:10001
# In a container the HTTP server must listen on all interfaces (the binary defaults to loopback).
ENV PERFECT_ORDER__HTTP__LISTEN=0.0.0.0:9187 \
    PERFECT_ORDER__LOG__FORMAT=json
EXPOSE 9187
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9187/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/perfect-order"]
CMD ["run"]
