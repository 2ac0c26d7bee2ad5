#!/usr/bin/env bash
# Installs what pull needs to build and test on Debian 12, if anything is missing.
# Runs apt-get as root, or through sudo.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libuv1-dev libsodium-dev libmsgpack-dev liblmdb-dev
      libcmocka-dev libutf8proc-dev libstemmer-dev python3 iproute2 procps)
# The install: libsystemd for READY=1 (optional to build), dpkg-dev for cpack's .deb
# (dpkg-shlibdeps), and for its tests systemd (systemd-analyze, a user manager), man-db and
# the three shells whose completions are checked.
pkgs+=(libsystemd-dev dpkg-dev systemd man-db bash-completion zsh fish)
# Port mapping (daemon/nat.c, optional to build): UPnP-IGD and NAT-PMP clients; for its test
# (tests/integration/test_nat.sh) a router in a namespace: nftables and miniupnpd (the
# nftables flavour, which the miniupnpd package would otherwise leave to a prompt).
pkgs+=(libminiupnpc-dev libnatpmp-dev nftables miniupnpd-nftables miniupnpd iproute2)
if [ "${PULL_WITH_CLANG:-0}" = 1 ]; then pkgs+=(clang libclang-rt-dev); fi
# Node.js runs the Secret Handshake interop suite (tests/shs1); only if no npm is there yet
# (a Node.js from elsewhere, e.g. NodeSource, bundles its own npm).
if [ "${PULL_WITH_NODE:-0}" = 1 ] && ! command -v npm >/dev/null; then pkgs+=(nodejs npm); fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
