#!/usr/bin/env bash
# Builds the release oxcart-runtime as one static-pie executable and prints its path.
#
# Why static (docs/benchmarks.md): every create, start, exec and delete is a fresh
# process, and a dynamically linked one also maps and relocates libc.so and
# libgcc_s.so first; static, peak RSS of `create` drops from 3.4 to 2.6 MB and the runtime
# needs nothing from the host at run time (libseccomp is linked in; runc's release
# binaries are static for the same reason). Still PIE, so the image is randomised.
# It uses no NSS, dlopen or iconv, the parts of glibc that do not work static.
#
# crt-static must reach only this binary's final link: with an explicit --target,
# cargo keeps target rustflags away from build scripts and proc macros (which must
# stay dynamic), so the binary lands in target/<host triple>/release/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# The flags of every static release executable (build-release.sh asks for them with
# --rustflags). pack-relative-relocs: a static-pie relocates itself at every start,
# and its ~11,000 relative relocations as RELA entries were 263 KB read at each
# `oxcart` verb; as DT_RELR (binutils >= 2.38, glibc >= 2.36) they are 3 KB
# (docs/benchmarks.md, "2026-12-07, evening").
rustflags='"-C", "target-feature=+crt-static", "-C", "link-arg=-Wl,-z,pack-relative-relocs"'
if [ "${1:-}" = "--rustflags" ]; then
    echo "$rustflags"
    exit 0
fi
triple=$(rustc -vV | sed -n 's/^host: //p')
[ -n "$triple" ] || { echo "build-runtime: cannot tell the host triple from rustc -vV" >&2; exit 1; }
cargo build --release -p oxcart-runtime --target "$triple" \
    --config "target.$triple.rustflags = [$rustflags]" >&2
bin="$PWD/target/$triple/release/oxcart-runtime"
# RUSTFLAGS in the environment replaces config rustflags: make sure it really is static.
headers=$(readelf -lW "$bin")
if grep -q 'Requesting program interpreter' <<<"$headers"; then
    echo "build-runtime: $bin is dynamically linked (is RUSTFLAGS set? it overrides crt-static)" >&2
    exit 1
fi
echo "$bin"
