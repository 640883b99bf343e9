# syntax=docker/dockerfile:1
#
# warroom container image.
#   docker build -t warroom .
#   docker run -p 3000:3000 -v warroom-data:/data \
#     -e SLACK_SIGNING_SECRET=... -e SLACK_BOT_TOKEN=xoxb-... warroom
# Config: mount a file at /app/warroom.toml (picked up from the working directory) or set
# WARROOM_CONFIG. Use DATABASE_URL=postgres://... for PostgreSQL (needed for several replicas).

############################ build ############################
FROM rust:1-bookworm AS build
WORKDIR /src
ENV CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0

# 1. Dependencies only, cached until Cargo.toml/Cargo.lock change: build against stub sources.
#    Every `path = "..."` in the manifest ([[bin]], [[bench]], [[test]], ...) gets a stub so cargo
#    can parse it; bench/ and tests/ are never needed for the release binary. Afterwards the
#    stub crate's artifacts are deleted so step 2 always rebuilds it (COPY keeps old mtimes).
COPY Cargo.toml Cargo.lock ./
RUN set -eu; \
    for p in src/main.rs $(sed -n 's/^[[:space:]]*path[[:space:]]*=[[:space:]]*"\([^"]*\.rs\)".*/\1/p' Cargo.toml); do \
        mkdir -p "$(dirname "$p")"; \
        [ -e "$p" ] || echo 'fn main() {}' > "$p"; \
    done; \
    cargo build --release --locked --bin warroom; \
    rm -rf src target/release/warroom* target/release/deps/warroom-* \
        target/release/deps/libwarroom-* target/release/.fingerprint/warroom-*

# 2. The application. Migrations are embedded at compile time by sqlx::migrate!.
COPY build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY message-templates ./message-templates
RUN cargo build --release --locked --bin warroom \
    && mkdir -p /out/data \
    && cp target/release/warroom /out/warroom

############################ runtime ############################
# glibc, libgcc and CA certificates (Slack/Teams HTTPS with native roots); no shell; uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/warroom /usr/local/bin/warroom
COPY --from=build /src/message-templates /app/message-templates
# Writable home for the default SQLite database (distroless has no shell to mkdir/chown).
COPY --from=build --chown=nonroot:nonroot /out/data /data
WORKDIR /app
ENV DATABASE_URL=sqlite:///data/warroom.db \
    WARROOM_BIND=0.0.0.0:3000
EXPOSE 3000
VOLUME /data
USER nonroot
# No HEALTHCHECK: the image has no curl. Probe GET /healthz (liveness) and GET /readyz
# (database reachable, migrations applied) from the orchestrator instead.
ENTRYPOINT ["/usr/local/bin/warroom"]
CMD ["serve"]
