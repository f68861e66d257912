#!/usr/bin/env python3
"""Cascade benchmark: one room across linked Janus servers (`test/bench/run.sh --cascade`;
test/bench/README.md, "Cascade").

Every server is Debian's Janus with our plugin alone and the HTTP transport on 127.0.0.1, each in
its own folder; rooms are linked by test/tester.py's own `link_servers` (what `tester.py link`
does), the edge's link upstream. Two measurements:

* **Latency per hop.** Three servers in a chain, A <- B <- C (B's room linked upstream to A's,
  C's to B's). The `latency_probe` example's talker is on A, and it has a listener on each
  server; every listener sends room noise and decodes its mix. The bursts' onsets reach the
  listener on A, then B (one hop), then C (two hops): per burst, the difference between
  neighbours is what the hop added (a link's encode at 64 kbit/s, the UDP hop, its 2-packet
  queue, the far room's tick, one more Opus pass). The rooms and links are made afresh for each
  of several runs (what a hop adds is set when its link starts); reported: each run's median,
  and the median, lowest and highest of those.
* **CPU with listeners split.** The same room (`1x10/2`, `1x30/3`, `1x100/3`: R x P/T as in
  bench.py), loaded by the `loadgen` example with the `open-mic` profile (listeners send room
  noise with its level: every one is decoded, as real browsers make it), on one server, and on
  two linked servers with the talkers on the origin and the listeners split between the origin
  and the edge. Janus CPU (utime+stime of every Janus process involved) over the window, per
  participant-second (the links are not participants); the order alternates between the two.

Writes results/cascade.{md,json}; a run with the defaults also refreshes the figures in
test/bench/README.md. No figure is asserted anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench
from bench import OURS, Janus, LineReader, Session, log

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import tester  # noqa: E402  (test/tester.py: the links are made as an operator makes them)

SCENARIOS = {s.key: s for s in bench.SCENARIOS if s.key in ("1x10", "1x30", "1x100")}
README_BEGIN, README_END = "<!-- cascade:begin -->", "<!-- cascade:end -->"


def start_servers(count: int, args) -> list[Janus]:
    servers = []
    for i in range(count):
        janus = Janus(Path(tempfile.mkdtemp(prefix=f"audioroom-cascade-{'abc'[i]}-")), args.plugin_so,
                      args.debug_level, plugins=(OURS,))
        janus.start()
        servers.append(janus)
    return servers


def link(origin: Janus, edge: Janus, room: str, link_id: str, prebuffering: int | None) -> dict:
    """`tester.py link --from origin --to edge room --link-id link_id --record none`; the rooms
    exist already. Its report (stdout and stderr) is kept out of the benchmark's output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        summary = tester.link_servers(origin.url, edge.url, room, link_id=link_id, record="none",
                                      prebuffering=prebuffering)
    if summary.get("audioroom") != "linked":
        raise bench.JanusError(f"link {link_id}: {summary}\n{err.getvalue()}")
    return summary


class Rooms:
    """One room of the same id on several servers, each with a session, destroyed at the end."""

    def __init__(self, servers: list[Janus], room: str):
        self.room = room
        self.servers = servers
        self.sessions: list[Session] = []
        self.admins: list[int] = []
        for janus in servers:
            session = Session(janus.url)
            self.sessions.append(session)
            admin = session.attach(OURS)
            self.admins.append(admin)
            bench.check_reply(OURS, session.request(admin, bench.create_body(OURS, room, rtp=True)), "created")

    def join(self, server: int, index: int, quality: int, port: int) -> dict:
        """A plain-RTP participant on server `server`, whose packets come from `port`."""
        session = self.sessions[server]
        handle = session.attach(OURS)
        data = Session.wait(session.send_async(handle, bench.join_body(OURS, self.room, index, quality, port)))
        bench.check_reply(OURS, data, "joined")
        return data["rtp"]

    def close(self, result: dict) -> None:
        for janus, session, admin in zip(self.servers, self.sessions, self.admins):
            if janus.alive():
                bench.destroy_rooms(session, admin, OURS, [self.room], result)
                session.close()


# ---------------------------------------------------------------------------------------------
# Latency per hop


def run_latency(servers: list[Janus], args, n: int) -> dict:
    """A chain of len(servers) rooms, linked afresh; the talker and a listener on the first, a
    listener on each of the others."""
    result: dict = {"servers": len(servers), "prebuffering": args.link_prebuffering}
    rooms = probe = None
    try:
        # The probe first: it encodes its loops at real-time priority before it answers, which
        # would starve the servers' mixers, and a link that stalls restarts its queue deeper.
        cmd = bench.realtime_prefix() + [
            str(args.latency_probe), "--path", "clean", "--warmup", str(args.latency_warmup),
            "--duration", str(args.latency_duration)]
        probe = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        out = LineReader(probe.stdout)
        port = int(out.get(60).split()[1])
        rooms = Rooms(servers, f"cascade-latency-{n}")
        for hop in range(1, len(servers)):
            link(servers[hop - 1], servers[hop], rooms.room, f"hop-{hop}", args.link_prebuffering)
        lines = []
        talker = rooms.join(0, 0, args.quality, port)
        lines.append(f"p 0 {talker['ip']} {talker['port']}\n")
        for server in range(len(servers)):
            rtp = rooms.join(server, 1 + server, args.quality, port)
            lines.append(f"p {-1 - server} {rtp['ip']} {rtp['port']}\n")
        probe.stdin.write("".join(lines) + "go\n")
        probe.stdin.flush()
        assert out.get(args.latency_warmup + 60) == "window-start"
        assert out.get(args.latency_duration + 60) == "window-end"
        measured = json.loads(out.get(60))
        listeners = measured.pop("listeners", None) or [measured]
        result["codec_reference_ms"] = measured.get("codec_reference_ms")
        result["talker_send_late_ms"] = measured.get("talker_send_late_ms")
        result["listeners"] = listeners
        result["hops"] = [hop_delta(listeners[h - 1], listeners[h]) for h in range(1, len(listeners))]
    except Exception as e:  # reported, never hidden
        result["error"] = f"{type(e).__name__}: {e}"
        log(f"    !! latency: {result['error']}")
    finally:
        bench.kill_if_failed(probe, "error" in result)
        if rooms is not None:
            rooms.close(result)
        bench.stop_child(probe)
    return result


def summarise_latency(runs: list[dict]) -> dict:
    """Across the runs: per listener its median latency in each run, per hop its median in each
    run and the median, lowest and highest of those."""
    ok = [r for r in runs if "error" not in r]
    out: dict = {"runs": len(runs), "failed": len(runs) - len(ok), "listeners": [], "hops": []}
    if not ok:
        return out
    for j in range(len(ok[0]["listeners"])):
        per_run = [r["listeners"][j]["latency_ms"]["p50"] for r in ok]
        concealed = sum(r["listeners"][j]["concealed_frames"] for r in ok)
        frames = sum(r["listeners"][j]["bursts"] * r["listeners"][j]["burst_frames"] for r in ok)
        detected = sum(r["listeners"][j]["bursts_detected"] for r in ok)
        bursts = sum(r["listeners"][j]["bursts"] for r in ok)
        out["listeners"].append({"p50_per_run": per_run, "median": median_or_none(per_run),
                                 "concealed_frames": concealed, "burst_frames": frames,
                                 "bursts_detected": detected, "bursts": bursts})
    for h in range(len(ok[0]["hops"])):
        per_run = [r["hops"][h]["p50"] for r in ok if r["hops"][h]["p50"] is not None]
        out["hops"].append({"p50_per_run": per_run, "median": median_or_none(per_run),
                            "min": min(per_run, default=None), "max": max(per_run, default=None)})
    return out


def median_or_none(values: list):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def hop_delta(near: dict, far: dict) -> dict:
    """Per burst heard by both, how much later the far listener heard the onset."""
    deltas = sorted(f["latency_ms"] - n["latency_ms"] for n, f in zip(near["series"], far["series"])
                    if n["latency_ms"] is not None and f["latency_ms"] is not None)
    if not deltas:
        return {"n": 0, "p50": None, "p90": None, "min": None, "max": None}
    return {"n": len(deltas), "p50": statistics.median(deltas), "p90": deltas[int(0.9 * (len(deltas) - 1))],
            "min": deltas[0], "max": deltas[-1]}


# ---------------------------------------------------------------------------------------------
# CPU: one server against two linked servers


def run_cpu(servers: list[Janus], layout: str, sc, args, profile: str, n: int) -> dict:
    """`layout` one: everyone on servers[0]; linked: servers[0] (origin, with the talkers) and
    servers[1] (edge) linked, the listeners split between them."""
    used = servers[:1] if layout == "one" else servers[:2]
    room = f"cascade-{sc.key}-{layout}-{n}"
    result: dict = {"layout": layout, "scenario": sc.key, "profile": profile}
    rooms = lg = None
    for janus in used:
        janus.new_log()
    try:
        rooms = Rooms(used, room)
        lg = subprocess.Popen(
            bench.realtime_prefix() + [str(args.loadgen), "--profile", profile, "--talkers", str(sc.talkers),
                                       "--warmup", str(args.warmup), "--window", str(args.window), "--ext-id", "1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        out = LineReader(lg.stdout)
        port = int(out.get(60).split()[1])  # its loops encoded (at real-time priority): then the link
        if layout == "linked":
            link(used[0], used[1], room, "edge", args.link_prebuffering)
        lines = []
        placed = [0] * len(used)
        listeners_on_origin = (sc.size - sc.talkers + 1) // 2
        for i in range(sc.size):
            talker = i if i < sc.talkers else -1
            server = 0 if layout == "one" or talker >= 0 or i - sc.talkers < listeners_on_origin else 1
            placed[server] += 1
            rtp = rooms.join(server, i, args.quality, port)
            lines.append(f"p {talker} {rtp['ip']} {rtp['port']}\n")
        result["participants_per_server"] = placed
        lg.stdin.write("".join(lines) + "go\n")
        lg.stdin.flush()
        assert out.get(args.warmup + 60) == "window-start"
        cpu0 = [janus.cpu()[0] for janus in used]
        w0 = time.monotonic()
        line = out.get(args.window + 30)
        cpu1 = [janus.cpu()[0] for janus in used]
        window = time.monotonic() - w0
        assert line == "window-end", line
        load = json.loads(out.get(30))
        cpu = [b - a for a, b in zip(cpu0, cpu1)]
        result.update({
            "window_s": window,
            "janus_cpu_s": cpu,
            "core_percent": [100 * c / window for c in cpu],
            "cpu_s_per_participant_s": sum(cpu) / (sc.participants * window),
            "load": {k: v for k, v in load.items() if k != "per_participant"},
        })
    except Exception as e:  # reported, never hidden
        result["error"] = f"{type(e).__name__}: {e}"
        log(f"    !! {sc.name} {layout}: {result['error']}")
    finally:
        bench.kill_if_failed(lg, "error" in result)
        if rooms is not None:
            rooms.close(result)
        bench.stop_child(lg)
        time.sleep(args.settle)
        result["log"] = [bench.log_problems(janus.new_log()) for janus in used]
        if not all(janus.alive() for janus in used):
            result["crashed"] = True
            result.setdefault("error", "Janus died")
    return result


# ---------------------------------------------------------------------------------------------
# Report


def fmt(x, digits=1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def latency_rows(lat: dict) -> list[str]:
    summary = lat["summary"]
    if not summary["listeners"]:
        return [f"Latency runs failed: {[r.get('error') for r in lat['runs']]}"]
    names = ["A (the talker's server)", "B, one hop", "C, two hops"]
    rows = ["| listener on | added latency, median of the runs ms (each run's median) | "
            "this hop added, median of the runs ms (lowest – highest run) | bursts detected | "
            "concealed burst frames |",
            "|---|---|---|---|---|"]
    for j, listener in enumerate(summary["listeners"]):
        hop = summary["hops"][j - 1] if j else None
        hop_cell = "–" if hop is None else f"**{fmt(hop['median'])}** ({fmt(hop['min'])} – {fmt(hop['max'])})"
        each = ", ".join(fmt(x) for x in listener["p50_per_run"])
        rows.append(f"| {names[j] if j < len(names) else j} | {fmt(listener['median'])} ({each}) | {hop_cell} | "
                    f"{listener['bursts_detected']} / {listener['bursts']} | "
                    f"{100 * listener['concealed_frames'] / max(listener['burst_frames'], 1):.1f} % "
                    f"({listener['concealed_frames']} of {listener['burst_frames']}) |")
    return rows


def median_of(runs: list[dict], key: str):
    vals = [r[key] for r in runs if key in r and "error" not in r]
    return statistics.median(vals) if vals else None


def cpu_rows(cpu: dict) -> list[str]:
    rows = ["| scenario | participants (origin + edge when linked) | one server: CPU ms / participant-s | "
            "two linked servers: CPU ms / participant-s | ratio linked ÷ one | the link's cost, % of a core "
            "(linked − one) | linked: origin / edge % of a core | lowest pkts/s (one / linked) | "
            "spacing p99 ms (one / linked) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for key, entry in cpu.items():
        sc = SCENARIOS[key]
        one, linked = entry["one"], entry["linked"]
        a, b = median_of(one, "cpu_s_per_participant_s"), median_of(linked, "cpu_s_per_participant_s")
        ok_linked = [r for r in linked if "error" not in r]
        split = ok_linked[-1]["participants_per_server"] if ok_linked else None
        shares = "–"
        if ok_linked:
            shares = " / ".join(f"{statistics.median(r['core_percent'][i] for r in ok_linked):.1f}" for i in range(2))

        def load_cell(runs, what):
            ok = [r for r in runs if "error" not in r]
            if not ok:
                return "**error**"
            ld = ok[-1]["load"]
            return fmt(ld["pps"]["min"]) if what == "pps" else fmt(ld["spacing_ms"]["p99"])
        rows.append(
            f"| {sc.name} {entry['profile']} | {sc.participants}"
            f"{f' ({split[0]} + {split[1]})' if split else ''} | {bench.fmt_ms(a)} | {bench.fmt_ms(b)} | "
            f"{f'{b / a:.2f}' if a and b else '–'} | {f'{100 * (b - a) * sc.participants:.1f}' if a and b else '–'} | "
            f"{shares} | {load_cell(one, 'pps')} / {load_cell(linked, 'pps')} | "
            f"{load_cell(one, 'p99')} / {load_cell(linked, 'p99')} |")
    return rows


def notes(lat: dict | None) -> list[str]:
    out = []
    ok = [r for r in (lat or {}).get("runs", []) if "error" not in r]
    if ok:
        codec = [r["codec_reference_ms"] for r in ok if r.get("codec_reference_ms") is not None]
        if codec:
            out.append(f"Codec alone (two Opus passes, no plugin): {statistics.median(codec):.1f} ms of the latency on "
                       "A is Opus itself; each hop adds one more decode and encode.")
        late = [r["talker_send_late_ms"]["p99"] for r in ok if (r.get("talker_send_late_ms") or {}).get("p99")]
        if late:
            out.append(f"The probe sent the talker's packets late by at most {max(late):.2f} ms at p99 (not counted).")
    return out


def update_readme(block: list[str]) -> None:
    readme = HERE / "README.md"
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        return
    new = "\n".join([README_BEGIN, "", *block, "", README_END])
    readme.write_text(text[: text.index(README_BEGIN)] + new + text[text.index(README_END) + len(README_END):])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plugin-so", type=Path, required=True, help="our libjanus_audioroom.so")
    ap.add_argument("--loadgen", type=Path, required=True, help="the loadgen example")
    ap.add_argument("--latency-probe", type=Path, required=True, help="the latency_probe example")
    ap.add_argument("--parts", default="latency,cpu", help="latency, cpu or both (default)")
    ap.add_argument("--hops", type=int, default=2, choices=[1, 2],
                    help="links in the latency chain: 1 (A <- B) or 2 (A <- B <- C, default)")
    ap.add_argument("--latency-reps", type=int, default=6,
                    help="latency runs, each with its rooms and links made afresh (default 6)")
    ap.add_argument("--latency-duration", type=float, default=10.0,
                    help="measured seconds of bursts per latency run (default 10)")
    ap.add_argument("--latency-warmup", type=float, default=3.0, help="seconds before the first counted burst")
    ap.add_argument("--link-prebuffering", type=int, default=None,
                    help="`prebuffering` of the links (packets, 1-5; default: the plugin's, 2)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="CPU scenarios: " + ", ".join(SCENARIOS))
    ap.add_argument("--profiles", default="open-mic",
                    help="load profiles of the CPU runs (open-mic, sip; default open-mic)")
    ap.add_argument("--warmup", type=float, default=5.0, help="CPU runs: seconds before the window (default 5)")
    ap.add_argument("--window", type=float, default=15.0, help="CPU runs: measured seconds (default 15)")
    ap.add_argument("--reps", type=int, default=2, help="CPU runs per layout and scenario, order alternating (median)")
    ap.add_argument("--quality", type=int, default=4, help="Opus complexity of the mixes (default 4)")
    ap.add_argument("--debug-level", type=int, default=4)
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between runs")
    ap.add_argument("--keep", action="store_true", help="keep the Janus folders (config, log)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--from-json", type=Path, metavar="CASCADE_JSON",
                    help="measure nothing: write the report (and the README's figures) again from a saved "
                         "cascade.json, with its own settings")
    args = ap.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        vars(args).update(saved["meta"]["args"])
        return report(saved["meta"], saved["latency"], saved["cpu"], args, write_json=False)
    parts = set(args.parts.split(","))
    scenarios = [SCENARIOS[k] for k in args.scenarios.split(",") if k in SCENARIOS]
    profiles = [p for p in args.profiles.split(",") if p in ("open-mic", "sip")]
    if parts - {"latency", "cpu"} or not parts or ("cpu" in parts and (not scenarios or not profiles)):
        ap.error("--parts latency,cpu; --scenarios from " + ", ".join(SCENARIOS) + "; --profiles open-mic or sip")
    if shutil.which("janus") is None:
        log("janus is not installed (apt-get install janus)")
        return 2

    started = time.time()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": bench.machine_info(),
            "args": {k: getattr(args, k) for k in ("hops", "latency_reps", "latency_duration", "link_prebuffering",
                                                   "profiles", "warmup", "window", "reps", "quality")}}
    meta["machine"]["plugin library"] = str(args.plugin_so)
    servers = start_servers(args.hops + 1 if "latency" in parts else 2, args)
    lat = None
    cpu: dict = {}
    try:
        if "latency" in parts:
            lat = {"runs": []}
            for rep in range(args.latency_reps):
                log(f"[latency] chain of {args.hops + 1} servers, talker on A, a listener on each, links made afresh "
                    f"(run {rep + 1}/{args.latency_reps}, {args.latency_duration:g} s) ...")
                r = run_latency(servers[:args.hops + 1], args, rep)
                lat["runs"].append(r)
                if "error" not in r:
                    log("    " + "; ".join(
                        f"{'ABC'[j]} {fmt(listener['latency_ms']['p50'])} ms ({listener['bursts_detected']}/"
                        f"{listener['bursts']} bursts, {listener['concealed_frames']} frames concealed)"
                        + (f", hop +{fmt(r['hops'][j - 1]['p50'])}" if j else "")
                        for j, listener in enumerate(r["listeners"])))
                time.sleep(args.settle)
            lat["summary"] = summarise_latency(lat["runs"])
        if "cpu" in parts:
            n = 0
            for profile in profiles:
                for sc in scenarios:
                    entry = {"profile": profile, "one": [], "linked": []}
                    cpu[sc.key] = entry
                    for rep in range(args.reps):
                        order = ["one", "linked"] if (n + rep) % 2 == 0 else ["linked", "one"]
                        for layout in order:
                            log(f"[{sc.name}, {profile}] {layout} (run {rep + 1}/{args.reps}) ...")
                            r = run_cpu(servers, layout, sc, args, profile, n)
                            n += 1
                            entry[layout].append(r)
                            if "error" not in r:
                                log(f"    CPU {r['cpu_s_per_participant_s'] * 1e3:.3f} ms/participant-s "
                                    f"({' + '.join(f'{c:.1f}' for c in r['core_percent'])} % core), lowest "
                                    f"{fmt(r['load']['pps']['min'])} pkt/s, spacing p99 "
                                    f"{fmt(r['load']['spacing_ms']['p99'])} ms")
                            if r.get("crashed"):
                                for janus in servers:
                                    if not janus.alive():
                                        janus.start()
    finally:
        for janus in servers:
            janus.stop()
            if not args.keep:
                shutil.rmtree(janus.dir, ignore_errors=True)
        meta["duration_s"] = round(time.time() - started)

    return report(meta, lat, cpu, args, write_json=True)


def report(meta: dict, lat: dict | None, cpu: dict, args, write_json: bool) -> int:
    """Prints the tables, writes results/cascade.md (and .json), refreshes the README's figures
    after a run with the defaults; the exit code: 1 when a run failed."""
    profiles = args.profiles.split(",")
    block = [f"Cascade run ({meta['date']}, {meta['machine']['CPU']}; details in "
             "[results/cascade.md](results/cascade.md)):", ""]
    if lat is not None:
        block += [f"Latency: a talker on A, a listener on each server of the chain A <- B <- C, {args.latency_reps} "
                  f"runs of {args.latency_duration:g} s with the rooms and links made afresh each time (links with "
                  f"prebuffering {args.link_prebuffering or 'default, 2'}):", "", *latency_rows(lat), ""]
    if cpu:
        block += [f"CPU: one server against two linked servers (talkers on the origin, listeners split), "
                  f"{args.reps} run(s) each, median:", "", *cpu_rows(cpu), ""]
    block += notes(lat)
    print()
    for line in block:
        print(line)
    md = [f"# Cascade: one room across linked servers ({meta['date']})", "", *block, "",
          "## Settings", "",
          "- servers: Debian's Janus with our plugin alone and the HTTP transport, on 127.0.0.1, each in its own "
          f"folder; plugin: local_ip 127.0.0.1, rtp_port_range {bench.OUR_PORTS}, recording off; rooms at 48 kHz "
          "with plain-RTP participants; links made by test/tester.py's link_servers (the edge's link upstream)",
          f"- latency: latency_probe, clean path, {args.latency_reps} runs of {args.latency_duration:g} s of bursts "
          "(200 ms every second, "
          "-12 dBFS, a -60 dBFS floor between), listeners sending room noise with RFC 6464 levels",
          f"- CPU: loadgen, profile(s) {', '.join(profiles)}, warm-up {args.warmup:g} s, window {args.window:g} s, "
          f"{args.reps} run(s) per layout, order alternating; Opus complexity {args.quality}; CPU of every Janus "
          "involved (utime+stime, /proc) ÷ (participants × window); links are not participants",
          "", "## Machine", "", *[f"- {k}: {v}" for k, v in meta["machine"].items()], ""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cascade.md").write_text("\n".join(md))
    if write_json:
        (args.out / "cascade.json").write_text(json.dumps({"meta": meta, "latency": lat, "cpu": cpu}, indent=1,
                                                          default=str))
    log(f"wrote {args.out / 'cascade.md'}{', cascade.json' if write_json else ''} ({meta.get('duration_s')} s)")
    defaults = (lat is not None and args.hops == 2 and args.link_prebuffering is None
                and list(cpu) == list(SCENARIOS) and args.out == HERE / "results")
    if defaults:
        update_readme(block)
    failed = (lat is not None and any("error" in r for r in lat["runs"])) or any("error" in r for e in cpu.values()
                                                         for runs in (e["one"], e["linked"]) for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
