# Shared by scripts/demo and scripts/test: install what is missing, with apt.
# shellcheck shell=bash

# Packages needed to build Berth and run a container.
BUILD_PACKAGES=(gcc libc6-dev pkg-config libseccomp-dev busybox-static jq procps)
# Peers and tools the test suite runs against.
TEST_PACKAGES=(runc crun containerd podman tini iproute2 util-linux file docker-registry apache2-utils openssl e2fsprogs nftables busybox-static)
TEST_PACKAGES+=(qemu-system-x86 linux-image-amd64)  # tests/vm/run-cgroup-v2-tests: a pure cgroup-v2 guest
TEST_PACKAGES+=(passt slirp4netns)  # --network pasta|slirp4netns (tests/integration/tests/network_user.rs)

install_missing() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

require_cargo() {
    command -v cargo >/dev/null && return 0
    [ -x "$HOME/.cargo/bin/cargo" ] && { export PATH="$HOME/.cargo/bin:$PATH"; return 0; }
    echo "cargo not found: install Rust >= 1.82 with rustup (https://rustup.rs), then rerun" >&2
    exit 1
}
