#!/usr/bin/env bash
# Runs the fuzz targets (all, or those named) for a short time each, from their committed seeds:
# what `make check-fuzz` does. Needs the nightly toolchain and cargo-fuzz; without them it says
# so and succeeds. A crash fails it, with the input saved under the artifacts folder.
#
#   AUDIOROOM_FUZZ_SECONDS  seconds per target (default 30)
#   AUDIOROOM_FUZZ_RUNS     stop a target after this many executions instead (a campaign:
#                           AUDIOROOM_FUZZ_RUNS=10000000 AUDIOROOM_FUZZ_SECONDS=36000)
#   AUDIOROOM_FUZZ_WORK     where the build, the grown corpora and the crash inputs go
#                           (default test/fuzz/work, ignored by git)
#   AUDIOROOM_FUZZ_SANITIZER  address (default), or none for 2-10 times the executions
#   AUDIOROOM_FUZZ_FORK     run N fuzzing processes at once (libFuzzer's -fork=N: one per core;
#                           executions are counted over all of them); any crash, timeout or
#                           out-of-memory in a child still stops the run and fails it
#   CARGO                   the cargo to use (default cargo; it must be rustup's, for +nightly)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seconds="${AUDIOROOM_FUZZ_SECONDS:-30}"
work="${AUDIOROOM_FUZZ_WORK:-$here/work}"
sanitizer="${AUDIOROOM_FUZZ_SANITIZER:-address}"
cargo="${CARGO:-cargo}"
export PATH="$PATH:$HOME/.cargo/bin"

if ! "$cargo" +nightly --version >/dev/null 2>&1; then
    echo "fuzz: skipped: no nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi
if ! "$cargo" +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: skipped: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
    exit 0
fi

targets=("$@")
build=("${targets[@]}")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(requests rtp_voice plain_rtp opus_vad names)
    build=("")  # cargo fuzz build without a name builds them all at once
fi

# Longest input per target: long enough for a scenario, short enough to keep executions quick.
max_len() {
    case "$1" in
        requests | rtp_voice) echo 512 ;;
        *) echo 4096 ;;
    esac
}

fuzz=("$cargo" +nightly fuzz)
common=(--fuzz-dir "$here" --target-dir "$work/target" --sanitizer "$sanitizer")
started=$(date +%s)
mkdir -p "$work"
for target in "${build[@]}"; do
    if ! "${fuzz[@]}" build "${common[@]}" $target >"$work/build.log" 2>&1; then
        cat "$work/build.log"
        exit 1
    fi
done
echo "fuzz: built ($sanitizer sanitizer) in $(($(date +%s) - started)) s"

# Files the requests target's plugin writes (recordings, job files) stay in the work folder.
export TMPDIR="$work/tmp/$$"  # per run: two runs may share the work folder
failed=()
for target in "${targets[@]}"; do
    mkdir -p "$work/corpus/$target" "$work/artifacts/$target" "$TMPDIR"
    args=(-max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=20
          -print_final_stats=1 -artifact_prefix="$work/artifacts/$target/")
    if [ -f "$here/$target.dict" ]; then
        args+=(-dict="$here/$target.dict")
    fi
    if [ -n "${AUDIOROOM_FUZZ_RUNS:-}" ]; then
        args+=(-runs="$AUDIOROOM_FUZZ_RUNS")
    fi
    if [ -n "${AUDIOROOM_FUZZ_FORK:-}" ]; then
        # Fork mode ignores timeouts and OOMs by default: here they count as failures.
        args+=(-fork="$AUDIOROOM_FUZZ_FORK" -ignore_timeouts=0 -ignore_ooms=0)
    fi
    log="$work/$target.log"
    if "${fuzz[@]}" run "${common[@]}" "$target" "$work/corpus/$target" "$here/seeds/$target" \
        -- "${args[@]}" >"$log" 2>&1; then
        # The last status line: executions, coverage (cov: edges, ft: features), speed.
        summary="$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -E 's/ (lim|rss|L|MS):.*//')"
        echo "fuzz: $target: ok: $summary"
    else
        echo "fuzz: $target: FAILED; its output ($log) ends:"
        tail -n 40 "$log"
        failed+=("$target")
    fi
done
rm -rf "$TMPDIR"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in ${failed[*]}; inputs in $work/artifacts/<target>/"
    echo "fuzz: replay one with: cargo +nightly fuzz run --fuzz-dir test/fuzz <target> <input>"
    exit 1
fi
