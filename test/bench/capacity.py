"""Capacity run of the Janus benchmark (`test/bench/run.sh --capacity`, test/bench/README.md):
how many participants each plugin carries on this machine.

Rooms of 10 open-mic participants (2 talkers, 8 listeners sending room noise with its audio
level) are added one at a time to one running load generator; after each room's joins and a
short warm-up, one window (10 s) is measured. A step passes when every participant received at
least 49.5 mixes a second and the pooled spacing p99 stayed at or under 25 ms. A failing step is
measured once more before it counts (one hiccup of a shared VM should not end the run). The run
per plugin ends at the first confirmed failure, at `--capacity-max-rooms`, or when its share of
`--capacity-time` is spent, so it always ends.

The load generator must not be what fails: each step records its send lateness, CPU and
socket drops. A step in which it was late by `--capacity-loadgen-late-ms` or more at p99, or
dropped datagrams, is reported as the load generator's limit, not the plugin's.
"""

from __future__ import annotations

import json
import subprocess
import time

import bench
from bench import LABEL, OURS, LineReader, Session, log


fmt = bench.fmt_plain_ms  # one decimal, "–" for a figure the load generator could not give


def room_id(plugin: str, r: int):
    return f"capacity-{r}" if plugin == OURS else 200000 + r


def measure(janus, lg_out: LineReader, lg, args) -> dict:
    """One window on the running load generator, with Janus's CPU over it."""
    lg.stdin.write(f"measure {args.capacity_warmup} {args.capacity_window}\n")
    lg.stdin.flush()
    line = lg_out.get(args.capacity_warmup + 60)
    assert line == "window-start", line
    cpu0, _ = janus.cpu()
    w0 = time.monotonic()
    line = lg_out.get(args.capacity_window + 60)
    cpu1, threads = janus.cpu()
    w1 = time.monotonic()
    assert line == "window-end", line
    load = json.loads(lg_out.get(30))
    load.pop("per_participant", None)  # the pooled figures are what the verdict uses
    return {
        "janus_core_percent": 100 * (cpu1 - cpu0) / (w1 - w0),
        "janus_threads": threads,
        "load": load,
    }


def verdict(step: dict, args) -> tuple[bool, bool, str]:
    """(the plugin kept up, the load generator kept up, what went wrong)."""
    ld = step["load"]
    plugin_faults = []
    pps, p99 = ld["pps"]["min"], ld["spacing_ms"]["p99"]
    if pps is None or pps < args.capacity_min_pps:
        plugin_faults.append(f"a participant got {fmt(pps)} packets/s (< {args.capacity_min_pps:g})")
    if p99 is None or p99 > args.capacity_p99_ms:
        plugin_faults.append(f"spacing p99 {fmt(p99)} ms (> {args.capacity_p99_ms:g})")
    lg_ok = (ld["send_late_ms"]["p99"] < args.capacity_loadgen_late_ms and not ld.get("loadgen_socket_drops")
             and not ld.get("send_errors"))
    faults = plugin_faults + ([] if lg_ok else [
        f"load generator sent {ld['send_late_ms']['p99']:.1f} ms late at p99 with "
        f"{ld.get('loadgen_socket_drops')} socket drops"])
    return not plugin_faults, lg_ok, "; ".join(faults)


def climb(janus, plugin: str, args, budget_s: float) -> dict:
    """Adds rooms until the plugin fails a confirmed step; returns every step and the verdict."""
    size, talkers = args.capacity_room_size, args.capacity_talkers
    step_s = args.capacity_warmup + args.capacity_window + 2  # joins and the reply
    t0 = time.monotonic()
    steps: list[dict] = []
    rooms: list = []
    carried = 0
    limit_found = False  # otherwise `carried` is a lower bound
    stop = f"--capacity-max-rooms ({args.capacity_max_rooms}) reached"
    session = admin = lg = None
    janus.new_log()
    try:
        session = Session(janus.url)
        admin = session.attach(plugin)
        lg = subprocess.Popen(
            bench.realtime_prefix() + [str(args.loadgen), "--profile", "open-mic", "--talkers", "6",
                                       "--window", str(args.capacity_window)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        out = LineReader(lg.stdout)
        port = int(out.get(60).split()[1])
        for r in range(args.capacity_max_rooms):
            if time.monotonic() - t0 + step_s > budget_s:
                stop = f"time limit ({budget_s:.0f} s for this plugin)"
                break
            room = room_id(plugin, r)
            bench.check_reply(plugin, session.request(admin, bench.create_body(plugin, room, rtp=True)), "created")
            rooms.append(room)
            pending = []
            for i in range(size):
                h = session.attach(plugin)
                talker = r * talkers + i if i < talkers else -1
                q = session.send_async(h, bench.join_body(plugin, room, r * size + i, args.quality, port))
                pending.append((talker, q))
            lines = []
            for talker, q in pending:
                data = Session.wait(q)
                bench.check_reply(plugin, data, "joined")
                lines.append(f"p {talker} {data['rtp']['ip']} {data['rtp']['port']}\n")
            lg.stdin.write("".join(lines) + "add\n")
            lg.stdin.flush()
            participants = (r + 1) * size
            step = measure(janus, out, lg, args)
            step.update(rooms=r + 1, participants=participants)
            if plugin == OURS:
                step["mixer_stats"] = janus.our_stats()
            ok, lg_ok, why = verdict(step, args)
            step.update(ok=ok, loadgen_ok=lg_ok, why=why)
            steps.append(step)
            log_step(plugin, step)
            if not ok and lg_ok:
                # Confirm: one bad window on a shared machine is not yet the plugin's limit.
                again = measure(janus, out, lg, args)
                again.update(rooms=r + 1, participants=participants, confirmation=True)
                ok, lg_ok, why = verdict(again, args)
                again.update(ok=ok, loadgen_ok=lg_ok, why=why)
                steps.append(again)
                log_step(plugin, again)
            if not janus.alive():
                stop = f"Janus died at {participants} participants"
                break
            if ok:
                carried = participants
            if not lg_ok:
                # Its pps and spacing are still right (kernel timestamps), but adding load now
                # measures the load generator: the plugin's limit is at least `carried`.
                stop = f"load generator fell behind at {participants} participants ({why}); not the plugin's limit"
                break
            if not ok:
                limit_found = True
                stop = f"{why} at {participants} participants"
                break
    except Exception as e:  # reported, never hidden
        stop = f"error: {type(e).__name__}: {e}"
        log(f"    !! {LABEL[plugin]} capacity: {stop}")
    finally:
        bench.kill_if_failed(lg, stop.startswith("error"))
        if janus.alive() and admin is not None:
            bench.destroy_rooms(session, admin, plugin, rooms, {})
        if session is not None and janus.alive():
            session.close()
        bench.stop_child(lg)
    time.sleep(args.settle)
    problems = bench.log_problems(janus.new_log())
    if not janus.alive():
        janus.start()
    return {"plugin": plugin, "carried": carried, "limit_found": limit_found, "stop": stop, "steps": steps,
            "seconds": round(time.monotonic() - t0), "log": problems}


def log_step(plugin: str, step: dict) -> None:
    ld = step["load"]
    log(f"    {LABEL[plugin]} {step['participants']} participants{' (again)' if step.get('confirmation') else ''}: "
        f"min {fmt(ld['pps']['min'])} pkt/s, spacing p99 {fmt(ld['spacing_ms']['p99'])} ms, "
        f"Janus {step['janus_core_percent']:.0f} % core, loadgen late p99 {ld['send_late_ms']['p99']:.2f} ms / "
        f"CPU {100 * ld['loadgen_cpu_s'] / ld['window_s']:.0f} % -> {'ok' if step['ok'] else step['why']}")


def run(janus, plugins: list[str], args) -> dict:
    budget = args.capacity_time / len(plugins)
    out = {}
    for plugin in plugins:
        log(f"[capacity] {LABEL[plugin]}: rooms of {args.capacity_room_size} open-mic participants "
            f"({args.capacity_talkers} talking), {args.capacity_window:g} s per step, at most "
            f"{args.capacity_max_rooms} rooms / {budget:.0f} s ...")
        out[plugin] = climb(janus, plugin, args, budget)
    return out


def table(result: dict) -> list[str]:
    rows = ["| plugin | participants carried | stopped by | last passing step: Janus % core, min pkts/s, "
            "spacing p99 ms | load generator at the last step: late p99 ms, CPU % | Janus log ERR / WARN |",
            "|---|---|---|---|---|---|"]
    for plugin, r in result.items():
        passing = [s for s in r["steps"] if s["ok"]]
        last = passing[-1] if passing else None
        final = r["steps"][-1] if r["steps"] else None
        cells = [LABEL[plugin], ("" if r["limit_found"] else "≥ ") + str(r["carried"]), r["stop"]]
        if last:
            ld = last["load"]
            cells.append(f"{last['janus_core_percent']:.0f} %, {fmt(ld['pps']['min'])}, {fmt(ld['spacing_ms']['p99'])}")
        else:
            cells.append("–")
        if final:
            ld = final["load"]
            cells.append(f"{ld['send_late_ms']['p99']:.2f}, {100 * ld['loadgen_cpu_s'] / ld['window_s']:.0f} %")
        else:
            cells.append("–")
        cells.append(f"{r['log']['errors']} / {r['log']['warnings']}")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def report(result: dict, meta: dict, args) -> None:
    rows = table(result)
    print()
    print(f"Capacity on this machine ({meta['machine']['CPU']}): rooms of {args.capacity_room_size} open-mic "
          f"participants, {args.capacity_talkers} talking; a step passes with >= {args.capacity_min_pps:g} "
          f"packets/s to everyone and spacing p99 <= {args.capacity_p99_ms:g} ms")
    print()
    for row in rows:
        print(row)
    print()
    lines = [f"# Capacity run ({meta['date']})", ""] + rows + ["", "## Steps", "",
             "| plugin | participants | Janus % core | min pkts/s | spacing p50 / p99 ms | loadgen late p99 ms | "
             "loadgen CPU % | loadgen socket drops | audioroom mixer: tick late / work p99 ms | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for plugin, r in result.items():
        for s in r["steps"]:
            ld = s["load"]
            lines.append(
                f"| {LABEL[plugin]} | {s['participants']}{' (again)' if s.get('confirmation') else ''} | "
                f"{s['janus_core_percent']:.0f} | {fmt(ld['pps']['min'])} | {fmt(ld['spacing_ms']['p50'])} / "
                f"{fmt(ld['spacing_ms']['p99'])} | {ld['send_late_ms']['p99']:.2f} | "
                f"{100 * ld['loadgen_cpu_s'] / ld['window_s']:.0f} | {ld.get('loadgen_socket_drops', '–')} | "
                f"{bench.mixer_timing(s.get('mixer_stats'))} | {'ok' if s['ok'] else s['why']} |")
    lines += ["", "## Settings", ""]
    settings = dict(meta["settings"])
    settings["capacity"] = (f"rooms of {args.capacity_room_size} (talkers {args.capacity_talkers}, the rest open-mic "
                            f"listeners), warm-up {args.capacity_warmup:g} s and window {args.capacity_window:g} s per "
                            f"step, at most {args.capacity_max_rooms} rooms and {args.capacity_time:g} s; pass: min "
                            f"packets/s >= {args.capacity_min_pps:g} and spacing p99 <= {args.capacity_p99_ms:g} ms; "
                            f"load generator limit: send late p99 >= {args.capacity_loadgen_late_ms:g} ms or drops")
    for k, v in settings.items():
        lines.append(f"- {k}: {v}")
    lines += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in meta["machine"].items()] + [""]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "capacity-low-latency" if args.low_latency else "capacity"
    (args.out / f"{stem}.md").write_text("\n".join(lines))
    (args.out / f"{stem}.json").write_text(json.dumps({"meta": meta, "capacity": result}, indent=1, default=str))
    log(f"wrote {args.out / stem}.md, {stem}.json")

