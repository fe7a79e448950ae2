# Sluice without a local Rust toolchain: build the image once, run `sluice` anywhere Docker runs.
#
#   docker build -t sluice .
#   docker run --rm -p 8080:8080 -v "$PWD/sluice-demo:/data/sluice-demo" sluice demo --dir /data/sluice-demo --http 0.0.0.0:8080
#
# The build stage compiles the `dist` profile (thin LTO, one codegen unit); the runtime stage holds only
# the stripped binary, CA certificates and an unprivileged user.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY examples ./examples
RUN cargo build --locked --profile dist -p sluice \
 && cp target/dist/sluice /usr/local/bin/sluice

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 sluice
COPY --from=build /usr/local/bin/sluice /usr/local/bin/sluice
USER sluice
WORKDIR /data
# HTTP API and UI (8080), PostgreSQL wire (5433), Arrow Flight SQL (50051): bind them to 0.0.0.0
# inside the container.
EXPOSE 8080 5433 50051
ENTRYPOINT ["sluice"]
CMD ["--help"]
