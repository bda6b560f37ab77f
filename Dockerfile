# A small image with the userload binary, for Kubernetes (contrib/kubernetes) or any
# container scheduler. Build it from the repository root:
#
#   docker build -t userload .
#   docker run --rm userload --version
#
# The first stage builds with the `dist` profile (link-time optimisation, stripped); the
# second holds only the binary, the shipped mappings (to copy and edit: the binary carries
# its own copy) and the CA certificates, and runs as an unprivileged user whose home,
# /var/lib/userload, is where the state file belongs.

FROM rust:1.95-slim-bookworm AS build
# A C toolchain for the bundled SQLite, mimalloc and the TLS library.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --locked --profile dist --bin userload

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/userload --create-home userload
COPY --from=build /src/target/dist/userload /usr/local/bin/userload
COPY mappings /usr/share/userload/mappings
USER userload
WORKDIR /var/lib/userload
ENTRYPOINT ["userload"]
CMD ["run", "--config", "/etc/userload/userload.ini"]
