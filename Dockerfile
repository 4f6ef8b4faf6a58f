# syntax=docker/dockerfile:1
#
# One build for the three services, one small runtime image each:
#
#   docker build --target auth-service  -t bookstore/auth-service .
#   docker build --target books-service -t bookstore/books-service .
#   docker build --target gateway       -t bookstore/gateway .
#
# The binaries are the ones `cargo build --release` makes and the tests exercise.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install cargo-chef --locked --version ^0.1
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
# The images talk TLS to PostgreSQL (managed databases require it): see crates/database.
ARG FEATURES="auth-service/postgres-tls,books-service/postgres-tls"
# The dependencies alone: this layer is reused until Cargo.toml or Cargo.lock change.
RUN cargo chef cook --release --locked --recipe-path recipe.json \
        -p auth-service -p books-service -p gateway --features "$FEATURES"
COPY . .
RUN cargo build --release --locked -p auth-service -p books-service -p gateway --features "$FEATURES" \
    && mkdir -p /out/keys \
    && cp target/release/auth-service target/release/books-service target/release/gateway /out/

# glibc and libgcc, no shell, no package manager, runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

FROM runtime AS auth-service
COPY --from=build /out/auth-service /usr/local/bin/auth-service
# Owned by the runtime user, so a named volume mounted here is writable by `keygen`.
COPY --from=build --chown=65532:65532 /out/keys /keys
ENV AUTH__LISTEN_ADDR=0.0.0.0:50051 \
    AUTH__MANAGEMENT__LISTEN_ADDR=0.0.0.0:9465 \
    AUTH__TOKENS__SIGNING_KEY_FILE=/keys/signing.pem \
    AUTH__TELEMETRY__LOG_FORMAT=json
# gRPC; management (/metrics, /healthz, /readyz).
EXPOSE 50051 9465
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/auth-service", "probe"]
ENTRYPOINT ["/usr/local/bin/auth-service"]
CMD ["serve"]

FROM runtime AS books-service
COPY --from=build /out/books-service /usr/local/bin/books-service
ENV BOOKS__LISTEN_ADDR=0.0.0.0:50052 \
    BOOKS__MANAGEMENT__LISTEN_ADDR=0.0.0.0:9466 \
    BOOKS__TELEMETRY__LOG_FORMAT=json
# gRPC; management (/metrics, /healthz, /readyz).
EXPOSE 50052 9466
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/books-service", "probe"]
ENTRYPOINT ["/usr/local/bin/books-service"]
CMD ["serve"]

FROM runtime AS gateway
COPY --from=build /out/gateway /usr/local/bin/gateway
ENV GATEWAY__LISTEN_ADDR=0.0.0.0:8080 \
    GATEWAY__MANAGEMENT__LISTEN_ADDR=0.0.0.0:9464 \
    GATEWAY__TELEMETRY__LOG_FORMAT=json
# HTTP; management (/metrics, /healthz, /readyz).
EXPOSE 8080 9464
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/gateway", "probe"]
ENTRYPOINT ["/usr/local/bin/gateway"]
CMD ["serve"]
