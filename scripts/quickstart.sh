#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running container: installs what is needed,
# builds oxcart-runtime (static release build), makes a busybox bundle and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
# The release runtime, one static executable (scripts/build-runtime.sh says why).
bin=$(scripts/build-runtime.sh)

bundle="$(mktemp -d /tmp/oxcart-quickstart.XXXXXX)"
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$bundle/rootfs/bin/$applet"
done
cd "$bundle"
"$bin" spec
# A non-interactive hello from inside the container's namespaces.
jq '.process.terminal = false
    | .process.args = ["sh", "-c", "echo hello from $(hostname): pid $$, uid $(id -u); ls /"]' \
    config.json > config.json.new && mv config.json.new config.json
"$bin" run "quickstart-$$"
