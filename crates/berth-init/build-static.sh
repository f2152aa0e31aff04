#!/usr/bin/env bash
# Builds berth-init as a static executable, so the engine can bind-mount it into any
# container, and prints its path as the only line on stdout; cargo's output goes to stderr.
#   crates/berth-init/build-static.sh                 release: freestanding (no libc), <= 59 KiB
#   PROFILE=dev crates/berth-init/build-static.sh     unoptimised: glibc with crt-static
# The release build is a plain `cargo build --release -p berth-init` (see build.rs): this
# only checks the result. A dev build cannot be freestanding (the dev profile unwinds on
# panic, which needs std), so it is linked statically against glibc as before (needs
# glibc's static libc.a, Debian: libc6-dev). Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")"
host=$(rustc -vV | sed -n 's/^host: //p')
profile=${PROFILE:-release}
target_dir=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}
max_size=$((59 * 1024)) # tini-static (musl)
if [ "$profile" = release ]; then
    cargo build -p berth-init --bin berth-init --release 1>&2
    bin="$target_dir/release/berth-init"
else
    case "$host" in
        *-linux-gnu) ;;
        *) echo "berth-init/build-static.sh: host $host is not *-linux-gnu" >&2; exit 1 ;;
    esac
    # An explicit --target keeps RUSTFLAGS off build scripts and proc macros: only
    # berth-init is static.
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        cargo build -p berth-init --bin berth-init --profile "$profile" --target "$host" 1>&2
    dir=$profile
    [ "$profile" = dev ] && dir=debug
    bin="$target_dir/$host/$dir/berth-init"
    max_size=
fi
[ -x "$bin" ] || { echo "berth-init/build-static.sh: $bin was not built" >&2; exit 1; }
# No program interpreter: static (readelf from binutils, else file).
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
if [ -n "$max_size" ] && [ "$size" -gt "$max_size" ]; then
    echo "berth-init/build-static.sh: $bin is $size bytes, more than $max_size" >&2
    exit 1
fi
echo "berth-init/build-static.sh: $bin: static, $size bytes" >&2
echo "$bin"
