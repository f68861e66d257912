#!/usr/bin/env bash
# The Janus benchmark: audioroom against AudioBridge (test/bench/README.md).
#   test/bench/run.sh                      full run (all three load profiles): table on stdout,
#                                          results/latest.{md,json,png}, figures in README.md
#   test/bench/run.sh --scenarios 1x2,1x100 --profiles open-mic --window 10
#   test/bench/run.sh --capacity           rooms of 10 open-mic participants added one at a time
#                                          until a plugin falls behind: results/capacity.{md,json}
#   test/bench/run.sh --latency            latency.py: added latency on clean, jittery and spiky
#                                          paths: results/latency.{md,json}
#   test/bench/run.sh --smoke              a few seconds per profile, audioroom only, and one
#                                          latency burst; fails unless packets flow / it is detected
#   test/bench/run.sh --latency --smoke    the latency burst check alone
#   test/bench/run.sh --cascade            cascade.py: one room across linked servers, the latency
#                                          each hop adds and the CPU of two linked servers against
#                                          one: results/cascade.{md,json}
# Every other option: test/bench/run.sh --help (and --latency --help). Builds the plugin
# (test/build.sh) and the cargo examples (loadgen, mixer_bench, latency_probe) first. Needs
# Debian's janus, python3 with requests, numpy, matplotlib. Traffic stays on 127.0.0.1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export PATH="$PATH:$HOME/.cargo/bin"
latency=0
cascade=0
args=()
for a in "$@"; do
    if [ "$a" = "--latency" ]; then
        latency=1
    elif [ "$a" = "--cascade" ]; then
        cascade=1
    else
        args+=("$a")
    fi
done
for a in "${args[@]+"${args[@]}"}"; do
    if [ "$a" = "-h" ] || [ "$a" = "--help" ]; then
        if [ "$latency" = 1 ]; then
            exec python3 "$here/latency.py" --plugin-so x --latency-probe x --help
        fi
        if [ "$cascade" = 1 ]; then
            exec python3 "$here/cascade.py" --plugin-so x --loadgen x --latency-probe x --help
        fi
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
examples="$target/release/examples"
if [ "$cascade" = 1 ]; then
    exec python3 "$here/cascade.py" --plugin-so "$plugin" --loadgen "$examples/loadgen" \
        --latency-probe "$examples/latency_probe" "${args[@]+"${args[@]}"}"
fi
if [ "$latency" = 1 ]; then
    exec python3 "$here/latency.py" --plugin-so "$plugin" --latency-probe "$examples/latency_probe" \
        "${args[@]+"${args[@]}"}"
fi
exec python3 "$here/bench.py" --plugin-so "$plugin" --loadgen "$examples/loadgen" \
    --mixer-bench "$examples/mixer_bench" --latency-probe "$examples/latency_probe" \
    "${args[@]+"${args[@]}"}"
