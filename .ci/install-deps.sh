#!/usr/bin/env bash
# Installs what gale needs on Debian 12. Run as root (or with sudo).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then exec sudo bash "$0" "$@"; fi
packages=(
  build-essential cmake ninja-build pkg-config ccache
  libzmq3-dev cppzmq-dev librdkafka-dev liblmdb-dev capnproto libcapnp-dev libsimdjson-dev
  libgtest-dev libbenchmark-dev lmdb-utils kcat netcat-openbsd
  libxxhash-dev libcli11-dev clang libclang-rt-14-dev
  libcpp-httplib-dev nlohmann-json3-dev prometheus chromium curl
  libhiredis-dev redis-server
  zookeeper libzookeeper-mt-dev default-jre-headless iproute2
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
