#!/usr/bin/env python3
"""Latency benchmark: janus.plugin.cm.audioroom against Janus's AudioBridge, in one Janus.

Run it through `test/bench/run.sh --latency` (which builds what it needs); test/bench/README.md,
"Latency", explains what is measured and how to read it. For each plugin and path, a room with
one plain-RTP talker and one plain-RTP listener, driven by the `latency_probe` cargo example:

* the talker sends tone bursts starting exactly on frame boundaries (200 ms every second, a
  -60 dBFS noise floor between them), with its RFC 6464 levels; the listener sends room noise;
* paths: `clean`; `jitter` (each talker packet delayed by a uniform 0-40 ms in the probe,
  so packets arrive reordered); `spike` (every 10 s the packets of a 200 ms window are held
  back and released together);
* added latency per burst = arrival (kernel timestamp) of the mix packet where the burst starts
  + the onset's offset in it − when the talker's first burst packet was due;
* concealed frames: burst frames missing or wrong in the decoded mix (each burst frame has its
  own frequency, so a concealed frame shows the previous one's); for audioroom also the slots
  its jitter queue concealed (`handle_info` → `queue.lost`), which AudioBridge does not expose.

Prints a table per plugin and path, and for the spike path how long after each spike the
latency came back to within 20 ms of the clean path's median; writes results/latency.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import bench
from bench import AB, LABEL, OURS, Janus, LineReader, Session, log

HERE = Path(__file__).resolve().parent
PATHS = {
    "clean": "no added delay",
    "jitter": "each talker packet delayed by a uniform 0-40 ms (reordering)",
    "spike": "every 10 s the packets of a 200 ms window are held back and released together",
}
DURATION = {"clean": 20.0, "jitter": 30.0, "spike": 40.0}
RECOVERED_WITHIN_MS = 20.0


def room_id(plugin: str, path: str, n: int):
    return f"latency-{path}-{n}" if plugin == OURS else 300000 + n


def run_path(janus: Janus, plugin: str, path: str, opts, n: int = 0) -> dict:
    """One room, one talker and one listener, one path: the probe's measurements."""
    janus.new_log()
    result: dict = {"plugin": plugin, "path": path, "prebuffer": opts.prebuffer}
    session = admin = probe = None
    room = room_id(plugin, path, n)
    try:
        session = Session(janus.url)
        admin = session.attach(plugin)
        bench.check_reply(plugin, session.request(admin, bench.create_body(plugin, room, rtp=True)), "created")
        cmd = bench.realtime_prefix() + [
            str(opts.latency_probe), "--path", path, "--warmup", str(opts.warmup),
            "--duration", str(opts.duration or DURATION[path]), "--burst-period-ms", str(opts.burst_period_ms),
            "--spike-every-s", str(opts.spike_every)]
        probe = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        out = LineReader(probe.stdout)
        port = int(out.get(60).split()[1])
        handles = {}
        lines = []
        for role, index in (("talker", 0), ("listener", -1)):
            h = session.attach(plugin)
            handles[role] = h
            body = bench.join_body(plugin, room, 0 if index == 0 else 1, opts.quality, port,
                                   prebuffer=opts.prebuffer)
            data = Session.wait(session.send_async(h, body))
            bench.check_reply(plugin, data, "joined")
            lines.append(f"p {index} {data['rtp']['ip']} {data['rtp']['port']}\n")
        probe.stdin.write("".join(lines) + "go\n")
        probe.stdin.flush()
        line = out.get(opts.warmup + 60)
        assert line == "window-start", line
        before = janus.handle_info(session.id, handles["talker"])
        w0 = time.monotonic()
        line = out.get((opts.duration or DURATION[path]) + 60)
        assert line == "window-end", line
        after = janus.handle_info(session.id, handles["talker"])
        window_s = time.monotonic() - w0
        result.update(json.loads(out.get(60)))
        result["talker_info"] = after
        result["plugin_concealed"] = concealed_from_stats(before, after, window_s)
    except Exception as e:  # reported, never hidden
        result["error"] = f"{type(e).__name__}: {e}"
        log(f"    !! {LABEL[plugin]} {path}: {result['error']}")
    finally:
        bench.kill_if_failed(probe, "error" in result)
        if janus.alive() and admin is not None:
            bench.destroy_rooms(session, admin, plugin, [room], result)
        if session is not None and janus.alive():
            session.close()
        bench.stop_child(probe)
        time.sleep(opts.settle)
        result["log"] = bench.log_problems(janus.new_log())
        if not janus.alive():
            result["crashed"] = True
            result.setdefault("error", "Janus died")
            janus.start()
    return result


def concealed_from_stats(before: dict | None, after: dict | None, window_s: float) -> dict | None:
    """audioroom's own count of the talker's concealed slots (its jitter buffer's `concealed`,
    `lost` before the adaptive buffer) over the window, as a share of the window's 20 ms slots.
    AudioBridge's handle_info has no such counter; then None."""
    try:
        b, a = before["queue"], after["queue"]
    except (TypeError, KeyError):
        return None
    key = "concealed" if "concealed" in a else "lost"
    slots = window_s * 50
    lost = a[key] - b[key]
    return {"lost": lost, "late": a["late"] - b["late"], "slots": round(slots),
            "share": lost / slots if slots else None}


def recovery(series: list[dict], reference_ms: float | None) -> list[float | None]:
    """For each spike: ms from its release to the first burst whose latency is back within
    20 ms of `reference_ms` (None: not before the next spike)."""
    if reference_ms is None:
        return []
    out: list[float | None] = []
    previous = None
    for b in series:
        since = b.get("ms_since_spike")
        if since is None:
            continue
        if previous is None or since < previous:  # a new spike
            out.append(None)
        previous = since
        lat = b.get("latency_ms")
        if out[-1] is None and lat is not None and abs(lat - reference_ms) <= RECOVERED_WITHIN_MS:
            out[-1] = since
    return out


def fmt(x, digits=1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def summarise(results: list[dict], plugins: list[str], paths: list[str]) -> list[str]:
    """The table: per plugin and path, latency, concealment, spike recovery."""
    clean = {r["plugin"]: r["latency_ms"]["p50"] for r in results
             if r["path"] == "clean" and "error" not in r and r.get("bursts_detected")}
    rows = ["| plugin | path | prebuffer | bursts detected | added latency median / p90 ms | "
            "concealed burst frames (from the mix) | concealed slots (plugin stats) | "
            "spike: back within 20 ms of clean after (per spike) |",
            "|---|---|---|---|---|---|---|---|"]
    for path in paths:
        for plugin in plugins:
            r = next((x for x in results if x["plugin"] == plugin and x["path"] == path), None)
            if r is None:
                continue
            pre = "default" if r.get("prebuffer") is None else str(r["prebuffer"])
            if "error" in r:
                rows.append(f"| {LABEL[plugin]} | {path} | {pre} | **error** | – | – | – | – |")
                continue
            lat = r["latency_ms"]
            stats = r.get("plugin_concealed")
            stats_cell = (f"{100 * stats['share']:.1f} % ({stats['lost']} of {stats['slots']})"
                          if stats and stats.get("share") is not None else "not exposed")
            spike_cell = "–"
            if path == "spike":
                ref = clean.get(plugin)
                times = recovery(r["series"], ref)
                if ref is None:
                    spike_cell = "(no clean-path figure)"
                elif times:
                    spike_cell = ", ".join("not before the next spike" if t is None else f"≤ {t / 1e3:.1f} s" for t in times)
                r["recovery_ms"] = times
            rows.append(
                f"| {LABEL[plugin]} | {path} | {pre} | {r['bursts_detected']} / {r['bursts']} | "
                f"{fmt(lat['p50'])} / {fmt(lat['p90'])} | "
                f"{100 * r['concealed_share']:.1f} % ({r['concealed_frames']} of {r['bursts'] * r['burst_frames']}) | "
                f"{stats_cell} | {spike_cell} |")
    return rows


def spike_series(results: list[dict]) -> list[str]:
    lines = []
    for r in results:
        if r["path"] != "spike" or "error" in r:
            continue
        cells = []
        for b in r["series"]:
            since = b.get("ms_since_spike")
            when = "before the first spike" if since is None else f"{since / 1e3:.1f} s after a spike"
            cells.append(f"{b['t_s']:.0f} s ({when}): {fmt(b['latency_ms'])} ms")
        lines += [f"- {LABEL[r['plugin']]}, latency per burst: " + "; ".join(cells)]
    return lines


def notes(results: list[dict]) -> list[str]:
    ok = [r for r in results if "error" not in r]
    out = []
    codec = [r["codec_reference_ms"] for r in ok if r.get("codec_reference_ms") is not None]
    if codec:
        broken = max(r.get("codec_reference_broken_frames", 0) for r in ok)
        out.append(f"Codec alone (the talker's packets decoded, re-encoded at complexity 4, decoded; no plugin, no "
                   f"network): the onset comes {statistics.median(codec):.1f} ms after it was sent; {broken} burst "
                   "frames misread by the detector. That part of every figure above is Opus, not the plugin.")
    late = [r["talker_send_late_ms"]["p99"] for r in ok if r.get("talker_send_late_ms", {}).get("p99") is not None]
    if late:
        out.append(f"The probe sent the talker's packets late by at most {max(late):.2f} ms at p99 (not counted: "
                   "latency is measured from when each packet was due).")
    lost = [r for r in ok if r.get("mix_packets_lost")]
    for r in lost:
        out.append(f"{LABEL[r['plugin']]}, {r['path']}: {r['mix_packets_lost']} mix packets never reached the listener.")
    return out


def smoke_run(janus: Janus, args) -> dict:
    """The smoke check: one short clean-path run against audioroom."""
    opts = SimpleNamespace(latency_probe=args.latency_probe, warmup=1.5, duration=2.0, burst_period_ms=1000,
                           prebuffer=None, quality=args.quality, settle=0.3, spike_every=10)
    return run_path(janus, OURS, "clean", opts)


def smoke_verdict(r: dict) -> tuple[bool, str]:
    """A burst was detected, with a latency that is a latency (between 0 and 1 s)."""
    if "error" in r:
        return False, r["error"]
    lat = r["latency_ms"]["p50"]
    ok = r.get("bursts_detected", 0) >= 1 and lat is not None and 0 < lat < 1000
    return ok, (f"{r.get('bursts_detected')} of {r.get('bursts')} bursts detected, added latency "
                f"{fmt(lat)} ms, {r.get('mix_packets')} mix packets")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plugin-so", type=Path, required=True, help="our libjanus_audioroom.so")
    ap.add_argument("--latency-probe", type=Path, required=True, help="the latency_probe example")
    ap.add_argument("--paths", default=",".join(PATHS), help="comma-separated subset of: " + ", ".join(PATHS))
    ap.add_argument("--plugins", default="both", choices=["both", "ours", "audiobridge"])
    ap.add_argument("--prebuffer", type=int, default=None,
                    help="send `prebuffer: N` (packets) in both plugins' joins; default: each plugin's default")
    ap.add_argument("--duration", type=float, default=None,
                    help="measured seconds per path (default: clean 20, jitter 30, spike 40)")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds before the first counted burst (default 3)")
    ap.add_argument("--burst-period-ms", type=int, default=1000, help="one burst every ... ms (default 1000)")
    ap.add_argument("--spike-every", type=int, default=10, help="seconds between delay spikes on the spike path (default 10)")
    ap.add_argument("--quality", type=int, default=4, help="Opus complexity of the mixes, both plugins (default 4)")
    ap.add_argument("--debug-level", type=int, default=4)
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between runs")
    ap.add_argument("--smoke", action="store_true",
                    help="one short clean-path run against audioroom; fails unless a burst is detected")
    ap.add_argument("--low-latency", action="store_true", help="hold /dev/cpu_dma_latency at 0 for the run")
    ap.add_argument("--keep", action="store_true", help="keep Janus's folder (config, log)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    paths = [p for p in PATHS if p in args.paths.split(",")]
    if not paths or set(args.paths.split(",")) - set(PATHS):
        ap.error(f"--paths: choose from {', '.join(PATHS)}")
    plugins = {"both": [OURS, AB], "ours": [OURS], "audiobridge": [AB]}[args.plugins]
    if shutil.which("janus") is None:
        log("janus is not installed (apt-get install janus)")
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="audioroom-latency-"))
    janus = Janus(workdir, args.plugin_so, args.debug_level)
    hold = bench.hold_cpu_dma_latency() if args.low_latency else None
    results: list[dict] = []
    meta = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": bench.machine_info()}
    try:
        janus.start()
        if args.smoke:
            args.settle = 0.3
            ok, message = smoke_verdict(smoke_run(janus, args))
            log(f"smoke latency: {message} -> {'ok' if ok else 'FAILED'}")
            return 0 if ok else 1
        n = 0
        for path in paths:
            order = plugins if n % 2 == 0 else list(reversed(plugins))
            for plugin in order:
                log(f"[{path}] {LABEL[plugin]} ({args.duration or DURATION[path]:g} s) ...")
                r = run_path(janus, plugin, path, args, n)
                n += 1
                results.append(r)
                if "error" not in r:
                    log(f"    {r['bursts_detected']}/{r['bursts']} bursts, latency p50/p90 "
                        f"{fmt(r['latency_ms']['p50'])}/{fmt(r['latency_ms']['p90'])} ms, concealed "
                        f"{100 * r['concealed_share']:.1f} %")
    finally:
        janus.stop()
        if hold is not None:
            import os
            os.close(hold)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    rows = summarise(results, plugins, paths)
    extra = notes(results)
    print()
    for row in rows:
        print(row)
    print()
    for line in extra:
        print(line)
    series = spike_series(results)
    md = [f"# Latency: audioroom vs AudioBridge ({meta['date']})", "", *rows, "", *extra, ""]
    if series:
        md += ["## Spike path, latency per burst", "", *series, ""]
    md += ["## Settings", "",
           f"- paths: " + "; ".join(f"{p}: {PATHS[p]}" for p in paths),
           f"- prebuffer: {'each plugin default (6 packets in both)' if args.prebuffer is None else args.prebuffer}",
           f"- bursts: 200 ms (10 frames of 1000, 1200, … 2800 Hz, -12 dBFS) every {args.burst_period_ms} ms; "
           "-60 dBFS noise between; talker and listener plain RTP with RFC 6464 levels (id 1); Opus "
           f"complexity {args.quality} for the mixes; rooms at 48 kHz",
           f"- CPU idle states: {'held at 0 µs latency (--low-latency)' if args.low_latency else 'machine default'}",
           "", "## Machine", "", *[f"- {k}: {v}" for k, v in meta["machine"].items()], ""]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "latency-low-latency" if args.low_latency else "latency"
    (args.out / f"{stem}.md").write_text("\n".join(md))
    (args.out / f"{stem}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str))
    log(f"wrote {args.out / stem}.md, {stem}.json")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
