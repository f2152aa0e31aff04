#!/usr/bin/env bash
# Builds berth-init as a static executable (glibc with crt-static), so the engine can
# bind-mount it into any container, and prints its path as the only line on stdout;
# cargo's output goes to stderr.
#   crates/berth-init/build-static.sh                 release build
#   PROFILE=dev crates/berth-init/build-static.sh     unoptimised, faster to build
# Honours CARGO_TARGET_DIR. Needs glibc's static libc.a (Debian: libc6-dev).
set -euo pipefail
cd "$(dirname "$0")"
host=$(rustc -vV | sed -n 's/^host: //p')
case "$host" in
    *-linux-gnu) ;;
    *) echo "berth-init/build-static.sh: host $host is not *-linux-gnu" >&2; exit 1 ;;
esac
profile=${PROFILE:-release}
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros: only berth-init is static.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build -p berth-init --bin berth-init --profile "$profile" --target "$host" 1>&2
target_dir=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}
dir=$profile
[ "$profile" = dev ] && dir=debug
bin="$target_dir/$host/$dir/berth-init"
[ -x "$bin" ] || { echo "berth-init/build-static.sh: $bin was not built" >&2; exit 1; }
if command -v file >/dev/null && ! file -b "$bin" | grep -q 'static'; then
    echo "berth-init/build-static.sh: $bin is not statically linked: $(file -b "$bin")" >&2
    exit 1
fi
echo "$bin"
