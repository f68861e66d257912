#!/usr/bin/env bash
# The Janus benchmark: audioroom against AudioBridge (test/bench/README.md).
#   test/bench/run.sh                      full run (about 8 minutes): table on stdout,
#                                          results/latest.{md,json,png}, figures in README.md
#   test/bench/run.sh --scenarios 1x2,1x100 --window 10
#   test/bench/run.sh --smoke              a few seconds, audioroom only; fails unless packets flow
# Every other option: test/bench/run.sh --help. Builds the plugin (test/build.sh) and the cargo
# examples (loadgen, mixer_bench) first. Needs Debian's janus, python3 with requests, numpy,
# matplotlib. Traffic stays on 127.0.0.1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export PATH="$PATH:$HOME/.cargo/bin"
for a in "$@"; do
    if [ "$a" = "-h" ] || [ "$a" = "--help" ]; then
        exec python3 "$here/bench.py" --plugin-so x --loadgen x --mixer-bench x --help
    fi
done
# test/build.sh's autoreconf chatter goes to a file, shown only when the build fails.
buildlog="$(mktemp)"
trap 'rm -f "$buildlog"' EXIT
if ! plugin="$("$root/test/build.sh" 2>"$buildlog")"; then
    cat "$buildlog" >&2
    echo "run.sh: test/build.sh failed" >&2
    exit 1
fi
cargo build --quiet --release --locked --examples --manifest-path "$root/Cargo.toml"
target="$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
python3 "$here/bench.py" --plugin-so "$plugin" \
    --loadgen "$target/release/examples/loadgen" \
    --mixer-bench "$target/release/examples/mixer_bench" "$@"
