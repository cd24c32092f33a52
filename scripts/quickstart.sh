#!/usr/bin/env bash
# From a fresh Debian 12 machine to `oxcart run`: installs what is needed, builds the
# release binaries, installs them in /usr/local/bin, makes a busybox image from
# Debian's busybox-static (no registry, no internet) and runs a container from it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

# The engine, its per-container monitor and the runtime, each one static executable
# (scripts/build-release.sh says why).
bin=$(scripts/build-release.sh)
install -m 0755 "$bin/oxcart" "$bin/oxcart-monitor" "$bin/oxcart-runtime" /usr/local/bin/

# Restart policies across reboots: the unit runs `oxcart system boot` at startup.
if [ -d /run/systemd/system ]; then
    install -m 0644 contrib/systemd/oxcart-boot.service /etc/systemd/system/
    systemctl daemon-reload
    systemctl enable oxcart-boot.service >/dev/null 2>&1
fi

# A busybox image: the static binary, its applets as links, root's passwd entry.
if ! oxcart inspect --type image busybox >/dev/null 2>&1; then
    rootfs="$(mktemp -d /tmp/oxcart-quickstart.XXXXXX)"
    trap 'rm -rf "$rootfs"' EXIT
    mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/root" "$rootfs/tmp"
    chmod 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
    echo 'root:x:0:' >"$rootfs/etc/group"
    tar -C "$rootfs" -cf "$rootfs.tar" .
    oxcart import "$rootfs.tar" busybox >/dev/null
    rm -f "$rootfs.tar"
fi

oxcart run --rm --network none busybox sh -c 'echo "hello from oxcart: $(hostname), pid $$, uid $(id -u)"; ls /'
