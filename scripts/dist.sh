#!/usr/bin/env bash
# Build a release archive: the `dist` profile's stripped binary, README and docs, plus a SHA-256
# checksum, named for the target triple, e.g. dist/sluice-0.1.0-x86_64-unknown-linux-gnu.tar.gz.
# Users who have no Rust toolchain download the archive (see docs/install.md) instead of compiling.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:-$(rustc -vV | sed -n 's/^host: //p')}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
name="sluice-${version}-${target}"

cargo build --locked --profile dist -p sluice --target "$target"
out="dist/${name}"
rm -rf "$out"
mkdir -p "$out"
cp "${CARGO_TARGET_DIR:-target}/${target}/dist/sluice" "$out/"
cp README.md "$out/"
cp -r docs "$out/docs"
tar -C dist -czf "dist/${name}.tar.gz" "$name"
(cd dist && sha256sum "${name}.tar.gz" > "${name}.tar.gz.sha256")
rm -rf "$out"
ls -l "dist/${name}.tar.gz"
cat "dist/${name}.tar.gz.sha256"
