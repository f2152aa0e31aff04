#!/usr/bin/env bash
# Builds berth-init, which is always a static executable (so the engine can bind-mount it into
# any container), checks that it is, and prints its path as the only line on stdout; cargo's
# output goes to stderr.
#   crates/berth-init/build-static.sh                 release: freestanding (no libc), <= 59 KiB
#   PROFILE=dev crates/berth-init/build-static.sh     unoptimised: glibc static-pie, ~5 MB
# Both are a plain `cargo build -p berth-init [--release]` (build.rs links them; see the
# README): this only checks the result. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")"
profile=${PROFILE:-release}
cargo build -p berth-init --bin berth-init --profile "$profile" 1>&2
target_dir=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}
dir=$profile
[ "$profile" = dev ] && dir=debug
bin="$target_dir/$dir/berth-init"
[ -x "$bin" ] || { echo "berth-init/build-static.sh: $bin was not built" >&2; exit 1; }
# Static: no program interpreter (readelf from binutils, else file).
if command -v readelf >/dev/null; then
    if readelf -lW "$bin" | grep -q INTERP; then
        echo "berth-init/build-static.sh: $bin is not statically linked (it has PT_INTERP)" >&2
        exit 1
    fi
elif command -v file >/dev/null && ! file -b "$bin" | grep -q 'static'; then
    echo "berth-init/build-static.sh: $bin is not statically linked: $(file -b "$bin")" >&2
    exit 1
fi
size=$(stat -c %s "$bin")
max_size=$((59 * 1024)) # tini-static (musl)
if [ "$profile" = release ] && [ "$size" -gt "$max_size" ]; then
    echo "berth-init/build-static.sh: $bin is $size bytes, more than $max_size" >&2
    exit 1
fi
echo "berth-init/build-static.sh: $bin: static, $size bytes" >&2
echo "$bin"
