#!/usr/bin/env bash
# Installs what building and testing the plugin needs, only where missing (Debian/Ubuntu, root).
#   apt: Janus and its headers, libopus, glib, jansson, autotools, pkg-config, iproute2, valgrind;
#        janus.js and adapter.js for the demo page, Chromium for its browser test; mosquitto
#        and its clients, the MQTT broker Janus's event handler reaches in the tests; opus-tools
#        (opusinfo checks the participants' Ogg Opus tracks)
#   pip: aiortc, numpy, pytest, requests, matplotlib (the WebRTC peers, analysis and benchmark
#        charts), playwright (drives the system's Chromium; it never downloads a browser)
# Rust (cargo, 1.85 or newer) must already be installed, e.g. with rustup.
# --no-browser leaves out Chromium and playwright, which only the tests need
# (test/start-janus.sh uses it: a person brings their own browser).
set -euo pipefail

APT_PACKAGES=(janus janus-dev libopus-dev libglib2.0-dev libjansson-dev autoconf automake libtool
              pkg-config make gcc binutils iproute2 python3 python3-pip valgrind gdb
              libjs-janus-gateway libjs-webrtc-adapter mosquitto mosquitto-clients
              e2fsprogs xfsprogs opus-tools)
PIP_PACKAGES=(aiortc numpy pytest requests matplotlib)
if [ "${1:-}" != "--no-browser" ]; then
    APT_PACKAGES+=(chromium)
    PIP_PACKAGES+=(playwright)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing with apt: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
fi
# Debian's janus package starts a system-wide Janus on some setups; we run our own.
# (Only the service itself: Janus processes of tests running meanwhile are left alone.)
if command -v service >/dev/null 2>&1 && [ -z "${AUDIOROOM_KEEP_SYSTEM_JANUS:-}" ] \
        && service janus status >/dev/null 2>&1; then
    service janus stop >/dev/null 2>&1 || true
fi
# Likewise mosquitto's: the tests start their own broker on a free port.
if command -v service >/dev/null 2>&1 && [ -n "${missing[*]}" ] \
        && [[ " ${missing[*]} " == *" mosquitto "* ]] && service mosquitto status >/dev/null 2>&1; then
    service mosquitto stop >/dev/null 2>&1 || true
fi

PYTHON=${PYTHON:-python3}
missing=()
for p in "${PIP_PACKAGES[@]}"; do
    "$PYTHON" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$p') is None)" 2>/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing with pip: ${missing[*]}"
    "$PYTHON" -m pip install -q "${missing[@]}" 2>/dev/null \
        || "$PYTHON" -m pip install -q --break-system-packages "${missing[@]}"
fi

export PATH="$PATH:$HOME/.cargo/bin"
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust 1.85 or newer (https://rustup.rs), then run this again." >&2
    exit 1
fi
