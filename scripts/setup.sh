#!/usr/bin/env bash
# Install everything oxcart's build and tests need on a fresh Debian 12 machine (as root).
# Idempotent: safe to run again.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: run as root (containers, cgroups and mounts need it)" >&2
    exit 1
fi

PACKAGES=(
    # build
    build-essential pkg-config
    # the runtime's tests: busybox rootfs, runc to compare against, tools the tests call
    busybox-static runc crun strace time jq iproute2 uidmap
    # seccomp: libseccomp-dev's static archive is linked in to compile profiles;
    # podman's default profile
    libseccomp-dev golang-github-containers-common
    # image tests: a real registry, image tools, htpasswd, TLS certificates
    docker-registry skopeo umoci apache2-utils openssl
    # real clients of the runtime (end-to-end tests drive each against oxcart-runtime)
    podman conmon containerd docker.io
    # podman's netavark + aardvark-dns backend: the anchor of bench/network.sh's DNS and
    # published-port figures (Debian's podman picks it when both are installed)
    netavark aardvark-dns
    # podman run --init (the client tests) runs catatonit, only a Recommends of podman
    catatonit
    # the cgroup-v2 lane: a pure-v2 kernel booted under qemu
    qemu-system-x86 linux-image-cloud-amd64 cpio e2fsprogs
    # ...and its SELinux run: compiles the lane's test policy (run.sh --selinux)
    checkpolicy
    # ...and its AppArmor run: apparmor_parser compiles the lane's test profiles
    # (run.sh --apparmor). Safe on these hosts: apparmor.service has
    # ConditionSecurity=apparmor and the postinst loads profiles only if
    # `aa-status --enabled`, so nothing is loaded or started without AppArmor.
    apparmor
    # the CRI suite (crates/cri-tests): the CNI plugins containerd's CRI runs for pod
    # networking (bridge, host-local, loopback, portmap); protoc, which k8s-cri's
    # build script needs to generate the CRI v1 client
    containernetworking-plugins protobuf-compiler
    # gVisor: the engine's runsc tests (crates/oxcart/tests/runsc.rs) run `--runtime runsc`
    runsc
    # benchmarks (bench/pull.sh builds a Debian image with debootstrap)
    hyperfine debootstrap
    # the API service's end-to-end tests drive Debian's docker-compose (1.29) against it
    docker-compose
    # the engine's bridge networks: firewall rules are applied with `nft -f -`;
    # the network tests' UDP echo server and clients are python3 scripts
    nftables python3
    # testcontainers-python (the API service's end-to-end test) lives in a venv
    python3-venv
)

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# docker-registry's Debian package starts a system service on :5000; the tests start their
# own registries on free ports and need nothing else listening.
systemctl disable --now docker-registry >/dev/null 2>&1 || true
# Likewise the host's docker and containerd services: the tests start private daemons.
systemctl disable --now docker.service docker.socket containerd.service >/dev/null 2>&1 || true

# testcontainers-python from PyPI, for crates/oxcart/tests/api.rs and api_podman.rs, in a venv of its own
# (Debian's python stays untouched).
if [ ! -x /opt/oxcart-venv/bin/python ]; then
    /usr/bin/python3 -m venv /opt/oxcart-venv
fi
/opt/oxcart-venv/bin/pip install -q --disable-pip-version-check 'testcontainers==4.15.0'

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "setup.sh: no Rust toolchain found (cargo); install the stable toolchain with rustup" >&2
        exit 1
    fi
fi
echo "setup.sh: ready ($(cargo --version))"
