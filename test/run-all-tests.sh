#!/usr/bin/env bash
# Every test of the project, from a fresh checkout (root, Debian): installs what is missing,
# builds, then runs the Rust unit tests and the C ABI check (make check), a short run of every
# fuzz target when the nightly toolchain is there (make check-fuzz), the end-to-end
# tests against the real Janus with WebRTC peers (make check-e2e, in a private network
# namespace), tester.py's own tests and a few seconds of the benchmark (packets must flow).
# Set AUDIOROOM_DISTCHECK=1 to add `make distcheck`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
"$here/install-deps.sh"
export PATH="$PATH:$HOME/.cargo/bin"
plugin="$("$here/build.sh")"
echo "== make check (cargo test, C ABI check)"
make -C build check
# The fuzz targets need nightly (test/fuzz/README.md): a short run of each where it is present,
# 15 s each here (make check-fuzz's own default is 30 s; AUDIOROOM_FUZZ_SECONDS sets it). Most of
# the cost is the sanitizer build: about 4.5 min on 2 busy cores, plus 1 min for cargo-fuzz.
if cargo +nightly --version >/dev/null 2>&1; then
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        echo "== installing cargo-fuzz"
        cargo install cargo-fuzz --locked
    fi
    export AUDIOROOM_FUZZ_SECONDS="${AUDIOROOM_FUZZ_SECONDS:-15}"
    echo "== fuzz targets, $AUDIOROOM_FUZZ_SECONDS s each (make check-fuzz)"
    make -C build check-fuzz
fi
echo "== tester.py tests and the benchmark's smoke run"
python3 -m pytest -q -p no:cacheprovider test/test_tester.py test/bench/test_bench_smoke.py
echo "== end-to-end tests against Janus $(janus --version 2>/dev/null | sed -n 's/Janus version: .*(\(.*\))/\1/p')"
AUDIOROOM_PLUGIN="$plugin" python3 -m pytest -q -p no:cacheprovider test/e2e
if [ -n "${AUDIOROOM_DISTCHECK:-}" ]; then
    echo "== make distcheck"
    make -C build distcheck
fi
