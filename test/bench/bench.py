#!/usr/bin/env python3
"""Janus CPU benchmark: janus.plugin.cm.audioroom against Janus's AudioBridge.

Run it through test/bench/run.sh, which builds what it needs; test/bench/README.md explains
what is measured and how to read the numbers. This file:

* starts Debian's Janus once, with both plugins and only the HTTP transport, all on 127.0.0.1;
* for every scenario (R rooms × P participants, T of them talking), runs the same load against
  each plugin in turn, alternating which goes first: rooms at 48 kHz, plain-RTP participants
  joined with the same Opus complexity (`quality`), driven by the `loadgen` cargo example, and
  Janus's CPU (utime+stime of all its threads, /proc/<pid>/stat) read at the start and end of
  a steady-state window after a warm-up; rooms are destroyed between runs;
* measures the codec floor of each scenario in the same run (the `mixer_bench` example,
  libopus only) and the mixer alone (same example, no Janus);
* prints the table and writes results/latest.{md,json,png}; a full run also refreshes the
  figures in test/bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OURS = "janus.plugin.cm.audioroom"
AB = "janus.plugin.audiobridge"
LABEL = {OURS: "audioroom", AB: "AudioBridge"}
STOCK_PLUGINS = Path(os.environ.get("JANUS_PLUGINS_DIR", "/usr/lib/x86_64-linux-gnu/janus/plugins"))
STOCK_TRANSPORTS = Path(os.environ.get("JANUS_TRANSPORTS_DIR", "/usr/lib/x86_64-linux-gnu/janus/transports"))
ADMIN_SECRET = "bench"  # Admin API on loopback only, for our plugin's stats
LOOPBACK = "127.0.0.1"
RATE = 48000
OUR_PORTS = "41000-41999"
AB_PORTS = "42000-43998"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Scenario:
    key: str
    name: str
    rooms: int
    size: int  # participants per room
    talkers: int  # talkers per room

    @property
    def participants(self) -> int:
        return self.rooms * self.size

    @property
    def empty(self) -> bool:
        return self.size == 0


SCENARIOS = [
    Scenario("1x2", "1×2/1", 1, 2, 1),
    Scenario("1x10", "1×10/2", 1, 10, 2),
    Scenario("1x30", "1×30/3", 1, 30, 3),
    Scenario("10x3", "10×3/1", 10, 3, 1),
    Scenario("1x100", "1×100/3", 1, 100, 3),
    Scenario("empty", "1,000 empty rooms", 1000, 0, 0),
]
SMOKE = Scenario("smoke", "smoke 1×3/1", 1, 3, 1)

# Load profiles (profiles.rs): what participants who do not talk send. Reported in this order.
PROFILES = {
    "open-mic": "listeners send room noise at -60 to -50 dBFS (RFC 6464 levels about 47-62), as a browser with an "
                "open microphone does",
    "sip": "listeners send the same room noise, and no packet carries an audio level (no `audiolevel_ext` in the "
           "joins), as a SIP gateway sends",
    "silence": "listeners send encoded digital silence flagged level 127 (the ideal case; the only profile before "
               "profiles existed)",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Janus process


def proc_cpu(pid: int) -> tuple[float, int]:
    """(utime+stime of every thread, in seconds; number of threads) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime is field 14, stime 15, num_threads 20.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[17])


def machine_times() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs from /proc/stat: time the hypervisor gave elsewhere."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    return (values[7] if len(values) > 7 else 0), sum(values[:8])


def steal_percent(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return 100.0 * (after[0] - before[0]) / total if total > 0 else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class Janus:
    """Debian's Janus with both plugins (or `plugins`: ours alone, for the cascade run) and the
    HTTP transport, in a private folder."""

    def __init__(self, workdir: Path, plugin_so: Path, debug_level: int, plugins: tuple = (OURS, AB)):
        self.dir = workdir
        self.plugin_so = plugin_so
        self.debug_level = debug_level
        self.plugins = plugins
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / "janus.log"
        self.log_offset = 0
        self.starts = 0

    def write_config(self) -> None:
        d = self.dir
        for sub in ("conf", "plugins", "transports", "events", "loggers", "recordings", "jobs"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        # A copy, so that a rebuild during the run does not swap the library under Janus.
        shutil.copy2(self.plugin_so, d / "plugins" / "libjanus_audioroom.so")
        link = d / "plugins" / "libjanus_audiobridge.so"
        if AB in self.plugins and not link.exists():
            link.symlink_to(STOCK_PLUGINS / "libjanus_audiobridge.so")
        link = d / "transports" / "libjanus_http.so"
        if not link.exists():
            link.symlink_to(STOCK_TRANSPORTS / "libjanus_http.so")
        self.port = free_port()
        self.admin_port = free_port()
        (d / "conf" / "janus.jcfg").write_text(f"""general: {{
	configs_folder = "{d}/conf"
	plugins_folder = "{d}/plugins"
	transports_folder = "{d}/transports"
	events_folder = "{d}/events"
	loggers_folder = "{d}/loggers"
	debug_level = {self.debug_level}
	session_timeout = 0
	admin_secret = "{ADMIN_SECRET}"
}}
nat: {{
	ice_ignore_list = "vmnet"
}}
""")
        (d / "conf" / "janus.transport.http.jcfg").write_text(f"""general: {{
	json = "plain"
	base_path = "/janus"
	http = true
	port = {self.port}
	ip = "{LOOPBACK}"
	https = false
}}
admin: {{
	admin_base_path = "/admin"
	admin_http = true
	admin_port = {self.admin_port}
	admin_ip = "{LOOPBACK}"
}}
""")
        (d / "conf" / "janus.plugin.cm.audioroom.jcfg").write_text(self.our_config())
        if AB in self.plugins:
            (d / "conf" / "janus.plugin.audiobridge.jcfg").write_text(self.ab_config())

    def our_config(self) -> str:
        return f"""general: {{
	local_ip = "{LOOPBACK}"
	rtp_port_range = "{OUR_PORTS}"
	archive_path = "{self.dir}/recordings"
	job_path = "{self.dir}/jobs"
	recording_enabled = false
}}
"""

    def ab_config(self) -> str:
        return f"""general: {{
	local_ip = "{LOOPBACK}"
	rtp_port_range = "{AB_PORTS}"
}}
"""

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/janus"

    def our_stats(self) -> dict | None:
        """Our plugin's `stats` (Admin API): how punctual its mixer threads were."""
        try:
            r = requests.post(f"http://{LOOPBACK}:{self.admin_port}/admin", timeout=5, json={
                "janus": "message_plugin", "transaction": "stats", "admin_secret": ADMIN_SECRET,
                "plugin": OURS, "request": {"request": "stats"}})
            return r.json().get("response")
        except (requests.RequestException, ValueError):
            return None

    def handle_info(self, session_id: int, handle_id: int) -> dict | None:
        """The plugin's part of a handle's Admin API `handle_info` (its queue counters, for
        example), or None."""
        try:
            r = requests.post(f"http://{LOOPBACK}:{self.admin_port}/admin/{session_id}/{handle_id}", timeout=5,
                              json={"janus": "handle_info", "transaction": uuid.uuid4().hex,
                                    "admin_secret": ADMIN_SECRET})
            return r.json().get("info", {}).get("plugin_specific")
        except (requests.RequestException, ValueError):
            return None

    def start(self) -> None:
        self.write_config()
        self.starts += 1
        logf = open(self.dir / "janus.stdout", "ab")
        self.proc = subprocess.Popen(
            ["janus", "-C", str(self.dir / "conf" / "janus.jcfg"), "-F", str(self.dir / "conf"),
             "-N", "-o", "-D", "-L", str(self.log_path)],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Janus exited at start:\n{self.log_tail()}")
            try:
                info = requests.get(f"{self.url}/info", timeout=1).json()
                plugins = info.get("plugins", {})
                missing = [p for p in self.plugins if p not in plugins]
                if missing:
                    raise RuntimeError(f"Janus did not load {missing}:\n{self.log_tail()}")
                self.info = info
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"Janus did not answer:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu(self) -> tuple[float, int]:
        return proc_cpu(self.pid)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def new_log(self) -> list[str]:
        """Log lines written since the last call."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                data = f.read()
                self.log_offset = f.tell()
        except OSError:
            return []
        return data.decode(errors="replace").splitlines()


def kill_if_failed(proc: subprocess.Popen | None, failed: bool) -> None:
    """A failed run's load generator or probe is killed at once, so that it stops sending before
    its rooms are taken down (`stop_child` then only reaps it)."""
    if failed and proc is not None and proc.poll() is None:
        proc.kill()


def stop_child(proc: subprocess.Popen | None) -> None:
    """Ends a load generator or probe: its stdin closes (it finishes its run), else it is killed."""
    if proc is None:
        return
    try:
        proc.stdin.close()
        proc.wait(10)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()


def log_problems(lines: list[str]) -> dict:
    """Errors and warnings in Janus log lines, counted, with a few distinct examples."""
    out = {"errors": 0, "warnings": 0, "examples": []}
    seen = set()
    for line in lines:
        if "[ERR]" in line or "[FATAL]" in line:
            out["errors"] += 1
        elif "[WARN]" in line:
            out["warnings"] += 1
        else:
            continue
        text = re.sub(r"^\[[^\]]*\d\] ", "", line)  # timestamp
        key = re.sub(r"\d+", "N", text)
        if key not in seen and len(out["examples"]) < 6:
            seen.add(key)
            out["examples"].append(text[:200])
    return out


# ---------------------------------------------------------------------------------------------
# Janus HTTP API


class JanusError(RuntimeError):
    pass


class Session:
    """One Janus session over HTTP, with a long-poll thread collecting events."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()
        r = self._post(url, {"janus": "create"})
        self.id = r["data"]["id"]
        self.surl = f"{url}/{self.id}"
        self.waiting: dict[str, queue.Queue] = {}
        self.lock = threading.Lock()
        self.closed = False
        self.events_seen = 0
        self.handles: list[int] = []
        self.poller = threading.Thread(target=self._poll, daemon=True)
        self.poller.start()

    def _post(self, url: str, body: dict, http=None) -> dict:
        body = dict(body, transaction=body.get("transaction") or uuid.uuid4().hex)
        r = (http or self.http).post(url, json=body, timeout=30).json()
        if r.get("janus") == "error":
            raise JanusError(f"{body}: {r['error']}")
        return r

    def _poll(self) -> None:
        http = requests.Session()
        while not self.closed:
            try:
                r = http.get(f"{self.surl}?maxev=100", timeout=40).json()
            except (requests.RequestException, ValueError):
                if self.closed:
                    return
                time.sleep(0.1)
                continue
            for ev in r if isinstance(r, list) else [r]:
                self.events_seen += 1
                tx = ev.get("transaction")
                with self.lock:
                    q = self.waiting.get(tx) if tx else None
                if q is not None and ev.get("janus") == "event":
                    q.put(ev)

    def attach(self, plugin: str) -> int:
        handle = self._post(self.surl, {"janus": "attach", "plugin": plugin})["data"]["id"]
        self.handles.append(handle)
        return handle

    def request(self, handle: int, body: dict) -> dict:
        """A synchronous plugin request: the plugin's reply (plugindata.data)."""
        r = self._post(f"{self.surl}/{handle}", {"janus": "message", "body": body})
        if r.get("janus") != "success":
            raise JanusError(f"{body}: unexpected {r}")
        return r["plugindata"]["data"]

    def send_async(self, handle: int, body: dict) -> queue.Queue:
        tx = uuid.uuid4().hex
        q: queue.Queue = queue.Queue()
        with self.lock:
            self.waiting[tx] = q
        r = self._post(f"{self.surl}/{handle}", {"janus": "message", "body": body, "transaction": tx})
        if r.get("janus") == "success":  # answered at once (an error, usually)
            q.put({"plugindata": r["plugindata"]})
        return q

    @staticmethod
    def wait(q: queue.Queue, timeout: float = 20) -> dict:
        return q.get(timeout=timeout)["plugindata"]["data"]

    def close(self) -> None:
        """Detaches every handle (their `detached` events end the long poll in flight), waits
        for the poller, then destroys the session: no poll reaches Janus after the session is
        gone (which Janus would log as an error)."""
        self.closed = True
        for handle in self.handles:
            try:
                self._post(f"{self.surl}/{handle}", {"janus": "detach"})
            except (requests.RequestException, JanusError):
                pass
        self.poller.join(45)
        try:
            self._post(self.surl, {"janus": "destroy"})
        except (requests.RequestException, JanusError):
            pass


# ---------------------------------------------------------------------------------------------
# The two plugins' vocabularies


def room_name(plugin: str, scenario: Scenario, r: int):
    if plugin == OURS:
        return f"bench-{scenario.key}-{r}"
    return 100000 + r


def create_body(plugin: str, room, rtp: bool, recording: str = "off") -> dict:
    """`recording` (ours only): off, mix (the room's WAV and speech timeline) or tracks (also
    every participant's own Ogg Opus track)."""
    if plugin == OURS:
        body = {"request": "create", "id": room, "sampling": RATE, "record": recording != "off"}
        if recording == "tracks":
            body["record_participants"] = True
    else:
        body = {"request": "create", "room": room, "sampling_rate": RATE, "record": False}
    if rtp:
        body["allow_rtp_participants"] = True
    return body


def destroy_body(plugin: str, room) -> dict:
    return {"request": "destroy", ("id" if plugin == OURS else "room"): room}


def join_body(plugin: str, room, index: int, quality: int, port: int, audio_level: bool = True,
              prebuffer: int | None = None) -> dict:
    """A plain-RTP join, the same for both plugins. Without `audio_level` (the sip profile) the
    participant announces no RFC 6464 extension, as a SIP gateway would not."""
    rtp = {"ip": LOOPBACK, "port": port, "payload_type": 111}
    if audio_level:
        rtp["audiolevel_ext"] = 1
    body = {
        "request": "join",
        ("id" if plugin == OURS else "room"): room,
        "display": f"p{index}",
        "quality": quality,
        "rtp": rtp,
    }
    if prebuffer is not None:
        body["prebuffer"] = prebuffer
    return body


def check_reply(plugin: str, data: dict, kind: str) -> None:
    key = "audioroom" if plugin == OURS else "audiobridge"
    if data.get(key) != kind:
        raise JanusError(f"{LABEL[plugin]}: expected {kind}, got {data}")


# ---------------------------------------------------------------------------------------------
# Runs


class LineReader:
    def __init__(self, stream):
        self.q: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def get(self, timeout: float) -> str:
        line = self.q.get(timeout=timeout)
        if line is None:
            raise RuntimeError("loadgen exited")
        return line


class ForwardSink:
    """Where --forwarders sends each room's mix: a loopback UDP socket drained by a thread that
    counts the packets (proof that forwarding ran during the window)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.packets = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                self.sock.recv(2048)
                self.packets += 1
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def forward_body(plugin: str, room, port: int) -> dict:
    """An Opus forwarder of the room's mix to LOOPBACK:port, the same request for both plugins."""
    return {"request": "rtp_forward", ("id" if plugin == OURS else "room"): room, "host": LOOPBACK,
            "port": port, "codec": "opus"}


def create_rooms(session, admin, plugin: str, rooms: list, rtp: bool, recording: str = "off") -> None:
    for room in rooms:
        check_reply(plugin, session.request(admin, create_body(plugin, room, rtp, recording)), "created")


def destroy_rooms(session, admin, plugin: str, rooms: list, result: dict) -> None:
    """Teardown: a failure is recorded in the result; after the first one the rest are left to Janus."""
    for room in rooms:
        try:
            session.request(admin, destroy_body(plugin, room))
        except Exception as e:  # noqa: BLE001
            result.setdefault("teardown_errors", []).append(str(e))
            break


def run_load(janus: Janus, plugin: str, sc: Scenario, args, profile: str) -> dict:
    """One plugin, one scenario with participants, one load profile: returns the measurements."""
    janus.new_log()
    lg = None
    session = admin = None
    rooms = [room_name(plugin, sc, r) for r in range(sc.rooms)]
    result: dict = {"plugin": plugin, "scenario": sc.key, "profile": profile}
    sink = ForwardSink() if args.forwarders else None
    try:
        session = Session(janus.url)
        admin = session.attach(plugin)
        create_rooms(session, admin, plugin, rooms, rtp=True, recording=args.recording)
        lg = subprocess.Popen(
            realtime_prefix() + [str(args.loadgen), "--profile", profile, "--talkers", str(sc.rooms * sc.talkers),
                                 "--warmup", str(args.warmup), "--window", str(args.window), "--ext-id", "1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        out = LineReader(lg.stdout)
        port = int(out.get(60).split()[1])
        t0 = time.monotonic()
        pending = []
        listener_handle = None
        for r, room in enumerate(rooms):
            for i in range(sc.size):
                h = session.attach(plugin)
                talker = r * sc.talkers + i if i < sc.talkers else -1
                if talker < 0 and listener_handle is None:
                    listener_handle = h
                q = session.send_async(h, join_body(plugin, room, r * sc.size + i, args.quality, port,
                                                    audio_level=profile != "sip"))
                pending.append((talker, q))
        lines = []
        for talker, q in pending:
            data = Session.wait(q)
            check_reply(plugin, data, "joined")
            rtp = data.get("rtp")
            if not rtp:
                raise JanusError(f"{LABEL[plugin]}: join without rtp in the answer: {data}")
            lines.append(f"p {talker} {rtp['ip']} {rtp['port']}\n")
        result["join_s"] = time.monotonic() - t0
        if sink is not None:
            for room in rooms:
                for _ in range(args.forwarders):
                    data = session.request(admin, forward_body(plugin, room, sink.port))
                    check_reply(plugin, data, "success")
            result["forwarders_per_room"] = args.forwarders
        lg.stdin.write("".join(lines) + "go\n")
        lg.stdin.flush()
        line = out.get(args.warmup + 60)
        assert line == "window-start", line
        cpu0, threads0 = janus.cpu()
        m0 = machine_times()
        w0 = time.monotonic()
        forwarded0 = sink.packets if sink else 0
        line = out.get(args.window + 30)
        cpu1, threads1 = janus.cpu()
        if sink is not None:
            result["forwarded_packets_per_s"] = (sink.packets - forwarded0) / (time.monotonic() - w0)
        if plugin == OURS:
            result["mixer_stats"] = janus.our_stats()
        w1 = time.monotonic()
        if listener_handle is not None:
            # One listener's handle_info (queue counters and the like), kept in the JSON.
            result["listener_info"] = janus.handle_info(session.id, listener_handle)
        result["steal_percent"] = steal_percent(m0, machine_times())
        assert line == "window-end", line
        load = json.loads(out.get(30))
        window = w1 - w0
        cpu = cpu1 - cpu0
        result.update({
            "window_s": window,
            "janus_cpu_s": cpu,
            "janus_threads": threads1,
            "cpu_s_per_participant_s": cpu / (sc.participants * window),
            "core_percent": 100 * cpu / window,
            "load": load,
        })
    except Exception as e:  # reported, never hidden
        result["error"] = f"{type(e).__name__}: {e}"
        log(f"    !! {LABEL[plugin]} {sc.name}: {result['error']}")
    finally:
        if sink is not None:
            sink.close()
        kill_if_failed(lg, "error" in result)
        if janus.alive() and admin is not None:
            destroy_rooms(session, admin, plugin, rooms, result)
        if session is not None and janus.alive():
            session.close()
        stop_child(lg)
        note_janus_after_run(janus, result, args)
    return result


def realtime_prefix() -> list[str]:
    """SCHED_FIFO for the load generator when we may (root): a saturated Janus then cannot
    delay its sends or its receive timestamps. It sleeps in ppoll (10-30 % of a core at 100 participants)."""
    if os.geteuid() == 0 and shutil.which("chrt"):
        return ["chrt", "-f", "10"]
    return []


def run_empty(janus: Janus, plugin: str, sc: Scenario, args) -> dict:
    janus.new_log()
    session = admin = None
    rooms = [room_name(plugin, sc, r) for r in range(sc.rooms)]
    result: dict = {"plugin": plugin, "scenario": sc.key}
    try:
        session = Session(janus.url)
        admin = session.attach(plugin)
        t0 = time.monotonic()
        create_rooms(session, admin, plugin, rooms, rtp=False)
        result["create_s"] = time.monotonic() - t0
        time.sleep(args.warmup)
        cpu0, _ = janus.cpu()
        m0 = machine_times()
        w0 = time.monotonic()
        time.sleep(args.window)
        cpu1, threads = janus.cpu()
        w1 = time.monotonic()
        result["steal_percent"] = steal_percent(m0, machine_times())
        result.update({
            "window_s": w1 - w0,
            "janus_cpu_s": cpu1 - cpu0,
            "janus_threads": threads,
            "core_percent": 100 * (cpu1 - cpu0) / (w1 - w0),
        })
    except Exception as e:  # noqa: BLE001
        result["error"] = f"{type(e).__name__}: {e}"
        log(f"    !! {LABEL[plugin]} {sc.name}: {result['error']}")
    finally:
        if janus.alive() and admin is not None:
            t0 = time.monotonic()
            destroy_rooms(session, admin, plugin, rooms, result)
            result["destroy_s"] = time.monotonic() - t0
        if session is not None and janus.alive():
            session.close()
        note_janus_after_run(janus, result, args)
    return result


def note_janus_after_run(janus: Janus, result: dict, args) -> None:
    """After a run settles: the warnings and errors Janus logged, and whether it is still up."""
    time.sleep(args.settle)
    result["log"] = log_problems(janus.new_log())
    if not janus.alive():
        result["crashed"] = True
        result.setdefault("error", "Janus died")
        result["log_tail"] = janus.log_tail()


def idle(janus: Janus, seconds: float) -> dict:
    cpu0, threads = janus.cpu()
    w0 = time.monotonic()
    time.sleep(seconds)
    cpu1, _ = janus.cpu()
    w1 = time.monotonic()
    return {"window_s": w1 - w0, "janus_cpu_s": cpu1 - cpu0, "janus_threads": threads,
            "core_percent": 100 * (cpu1 - cpu0) / (w1 - w0)}




def mixer_timing(stats: dict | None) -> str:
    """The busiest mixer thread's wake-up lateness and work time, p99, from our `stats`."""
    threads = [t for t in ((stats or {}).get("mixer") or {}).get("threads", []) if t.get("ticks")]
    if not threads:
        return "–"
    busiest = max(threads, key=lambda t: t["work_us"]["p50"] or 0)
    return f"{busiest['lateness_us']['p99'] / 1e3:.1f} / {busiest['work_us']['p99'] / 1e3:.1f}"

def fmt_plain_ms(value) -> str:
    """Milliseconds as they come, one decimal."""
    return "–" if value is None else f"{value:.1f}"

def mixer_bench(args, sc: Scenario, floor_only: bool, paced: bool) -> dict:
    """`mixer_bench` for one room of the scenario. Paced: one tick per 20 ms of real time, as a
    mixer thread in Janus runs (caches go cold between ticks); otherwise back to back."""
    ticks = args.paced_ticks if paced else args.floor_ticks
    cmd = [str(args.mixer_bench), "--json", "-n", str(sc.size), "-t", str(sc.talkers),
           "--complexity", str(args.quality), "--ticks", str(ticks)]
    if floor_only:
        cmd.append("--floor-only")
    if paced:
        cmd.append("--paced")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Report


def fmt_ms(x) -> str:
    """CPU-seconds as milliseconds, three significant digits (the measurement is not finer)."""
    return "–" if x is None else f"{x * 1e3:.3g}"


def load_cells(r: dict | None) -> tuple[str, str]:
    if not r or "load" not in r:
        return ("**error**" if r else "–", "–")
    ld = r["load"]
    pps = f"{fmt_plain_ms(ld['pps']['mean'])} (min {fmt_plain_ms(ld['pps']['min'])})"
    sp = ld["spacing_ms"]
    return pps, f"{fmt_plain_ms(sp['p50'])} / {fmt_plain_ms(sp['p99'])}"


def median_of(runs: list[dict], key: str):
    vals = [r[key] for r in runs if key in r and "error" not in r]
    return statistics.median(vals) if vals else None


def build_table(results: dict, plugins: list[str]) -> list[str]:
    head = ["scenario", "participants"]
    for p in plugins:
        head.append(f"{LABEL[p]} CPU ms / participant-s")
    if len(plugins) == 2:
        head.append("ratio AB ÷ ours")
    for p in plugins:
        head += [f"{LABEL[p]} pkts/s per participant", f"{LABEL[p]} spacing p50 / p99 ms"]
    head.append("codec floor ms / participant-s")
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, entry in results.items():
        sc = entry["scenario"]
        cells = [sc["name"], str(sc["rooms"] * sc["size"])]
        if sc["size"] == 0:
            vals = {}
            for p in plugins:
                v = median_of(entry["runs"].get(p, []), "core_percent")
                vals[p] = v
                cells.append("**error**" if v is None else f"{v:.2f} % of a core")
            if len(plugins) == 2:
                a, o = vals.get(AB), vals.get(OURS)
                cells.append(f"{a / o:.0f}" if a and o else ("∞" if a and o == 0 else "–"))
            for p in plugins:
                cells += ["–", "–"]
            cells.append("–")
        else:
            vals = {}
            for p in plugins:
                v = median_of(entry["runs"].get(p, []), "cpu_s_per_participant_s")
                vals[p] = v
                cells.append("**error**" if v is None else fmt_ms(v))
            if len(plugins) == 2:
                a, o = vals.get(AB), vals.get(OURS)
                cells.append(f"{a / o:.2f}" if a and o else "–")
            for p in plugins:
                runs = entry["runs"].get(p, [])
                cells += list(load_cells(runs[-1] if runs else None))
            fl = entry.get("floor", {}).get("floor_cpu_s_per_participant_s")
            cells.append(fmt_ms(fl))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def entries_of(results: dict, empty: dict):
    """(profile or None, entry) for every scenario run: the loaded ones per profile, then the
    empty rooms (no participants, so no profile)."""
    for profile, entries in results.items():
        for e in entries.values():
            yield profile, e
    for e in empty.values():
        yield None, e


def profile_heading(profile: str) -> str:
    return f"Profile `{profile}`: {PROFILES[profile]}."


def build_tables(results: dict, empty: dict, plugins: list[str]) -> list[str]:
    """Every profile's table (open-mic, sip, silence), then the empty rooms'."""
    lines: list[str] = []
    for profile, entries in results.items():
        lines += [profile_heading(profile), ""] + build_table(entries, plugins) + [""]
    if empty:
        lines += ["Without participants (the same in every profile):", ""] + build_table(empty, plugins) + [""]
    return lines


def build_markdown(meta: dict, results: dict, empty: dict, plugins: list[str], idle_run: dict | None) -> str:
    lines = [f"# Janus benchmark: audioroom vs AudioBridge ({meta['date']})", ""]
    lines += build_tables(results, empty, plugins)
    lines += [
        "CPU: Janus process utime+stime (all threads, /proc/<pid>/stat, 10 ms resolution) over "
        f"the window, ÷ (participants × window). Ratio > 1: AudioBridge uses more CPU. "
        "Packets/s: mixes received per participant (mean, and the lowest participant); 50 is "
        "right. Spacing: time between consecutive mix packets at the receiver, all participants "
        "pooled. Codec floor: libopus alone decoding every talker and encoding talkers+1 mixes "
        "per 20 ms, same complexity, one tick per 20 ms of real time like a mixer thread, measured in this run "
        "(`mixer_bench --paced`); the same in every profile, it is what a plugin that neither decodes nor "
        "encodes privately for quiet listeners would pay. "
        "1,000 empty rooms: Janus CPU in % of one core.",
        "",
    ]
    cores = os.cpu_count() or 1
    for profile, e in entries_of(results, empty):
        for p, runs in e["runs"].items():
            for r in runs:
                if r.get("core_percent", 0) > 80 * cores:
                    consequence = ("everything else on the machine was starved meanwhile" if e["scenario"]["size"] == 0
                                   else "that figure is a lower bound (see packets/s and spacing)")
                    where = f"{e['scenario']['name']}" + (f" ({profile})" if profile else "")
                    lines.append(f"**Saturated:** {LABEL[p]} in {where} kept Janus at "
                                 f"{r['core_percent']:.0f} % of one core, of the {100 * cores} % this machine has: "
                                 f"{consequence}.")
                    lines.append("")
    if idle_run:
        lines.append(f"Janus idle with both plugins loaded and no rooms: {idle_run['core_percent']:.2f} % "
                     f"of a core ({idle_run['janus_threads']} threads); included in every figure above.")
        lines.append("")
    # Details per run.
    lines += ["## Runs", "",
              "| profile | scenario | plugin | order | window s | Janus CPU s | % core | threads | join s | loadgen CPU % | "
              "send late p99 ms | loadgen socket drops | lost | vCPU steal % | audioroom mixer: tick late / work p99 ms | "
              "Janus log ERR / WARN |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for profile, entry in entries_of(results, empty):
        for p, runs in entry["runs"].items():
            for r in runs:
                ld = r.get("load", {})
                lost = sum(x["lost"] for x in ld.get("per_participant", [])) if ld else "–"
                lg_cpu = f"{100 * ld['loadgen_cpu_s'] / ld['window_s']:.1f}" if ld else "–"
                late = f"{ld['send_late_ms']['p99']:.2f}" if ld else "–"
                err = r.get("error", "")
                lines.append(
                    f"| {profile or '–'} | {entry['scenario']['name']} | {LABEL[p]} | {r.get('order', '')} | "
                    f"{r.get('window_s', 0):.1f} | {r.get('janus_cpu_s', 0):.2f} | "
                    f"{r.get('core_percent', 0):.2f} | {r.get('janus_threads', '–')} | "
                    f"{r.get('join_s', r.get('create_s', 0)):.2f} | {lg_cpu} | {late} | "
                    f"{ld.get('loadgen_socket_drops', '–') if ld else '–'} | {lost} | "
                    f"{r.get('steal_percent', 0):.1f} | {mixer_timing(r.get('mixer_stats'))} | "
                    f"{r['log']['errors']} / {r['log']['warnings']}{(' — ' + err) if err else ''} |")
    problems = [(profile, e["scenario"]["name"], p, r) for profile, e in entries_of(results, empty)
                for p, runs in e["runs"].items()
                for r in runs if r["log"]["errors"] or r["log"]["warnings"] or "error" in r]
    if problems:
        lines += ["", "Janus log lines at WARN or ERR during the runs:", ""]
        for profile, name, p, r in problems:
            where = f"{name}" + (f" ({profile})" if profile else "")
            for ex in r["log"]["examples"]:
                lines.append(f"- {where}, {LABEL[p]}: `{ex}`")
            if "error" in r:
                lines.append(f"- {where}, {LABEL[p]}: benchmark error: {r['error']}")
    first = next(iter(results.values()), {})
    mixer_rows = [(e["scenario"], e["mixer"], e["floor"]) for e in first.values() if e.get("mixer")]
    if mixer_rows:
        lines += ["", "## Mixer only (no Janus): `mixer_bench`", "",
                  "One room's `RoomMix::tick` fed the same packets (talkers' speech, listeners' silence), CPU time of "
                  "the mixing thread, and the codec "
                  "floor (libopus alone: decode every talker, encode talkers+1 mixes). *Paced*: one tick per 20 ms of "
                  "real time, as in Janus (the codec floor column of the main table); *back to back*: ticks in a "
                  "tight loop, warm caches (what callgrind sees). *Spacing, paced*: the time between the ends of "
                  "consecutive paced ticks, i.e. the packet spacing the mixer alone gets from this machine's timers "
                  "and scheduler with no Janus and no sockets: the floor for the spacing columns above.", "",
                  "| room | mixer µs / tick, paced | floor µs / tick, paced | mixer ÷ floor, paced | "
                  "mixer µs / tick, back to back | floor µs / tick, back to back | mixer ms / participant-s, paced | "
                  "voices decoded / private encodes / shared encodes per tick | spacing p50 / p99 ms, paced |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for sc, m, p in mixer_rows:
            lines.append(
                f"| {sc['size']} participants, {sc['talkers']} talking | {p['mixer_us_per_tick']:.0f} | "
                f"{p['floor_us_per_tick']:.0f} | {p['mixer_over_floor']:.2f} | {m['mixer_us_per_tick']:.0f} | "
                f"{m['floor_us_per_tick']:.0f} | {p['mixer_cpu_s_per_participant_s'] * 1e3:.3f} | "
                f"{m['speakers_per_tick']:.1f} / {m['private_encodes_per_tick']:.1f} / "
                f"{m['shared_encodes_per_tick']:.1f} | "
                f"{fmt_plain_ms(p.get('paced_spacing_p50_ms'))} / {fmt_plain_ms(p.get('paced_spacing_p99_ms'))} |")
    lines += ["", "## Settings", ""]
    for k, v in meta["settings"].items():
        lines.append(f"- {k}: {v}")
    lines += ["", "## Machine", ""]
    for k, v in meta["machine"].items():
        lines.append(f"- {k}: {v}")
    lines.append("")
    return "\n".join(lines)


def build_chart(results: dict, empty: dict, plugins: list[str], idle_run: dict | None, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    panels = len(results) + (1 if empty else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * len(results) + (3 if empty else 0), 4.8), squeeze=False,
                             gridspec_kw={"width_ratios": [3] * len(results) + ([1.2] if empty else [])})
    colors = {"audioroom": "#2a7ab9", "AudioBridge": "#d9822b", "codec floor": "#888888"}
    for ax, (profile, entries) in zip(axes[0], results.items()):
        loaded = list(entries.values())
        series = [(LABEL[p], [median_of(e["runs"].get(p, []), "cpu_s_per_participant_s") for e in loaded])
                  for p in plugins]
        series.append(("codec floor", [e.get("floor", {}).get("floor_cpu_s_per_participant_s") for e in loaded]))
        x = np.arange(len(loaded))
        width = 0.8 / len(series)
        for i, (name, vals) in enumerate(series):
            v = [np.nan if a is None else a * 1e3 for a in vals]
            bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, v, width, label=name, color=colors[name])
            for b, val in zip(bars, v):
                if not np.isnan(val):
                    ax.annotate(f"{val:.2g}", (b.get_x() + b.get_width() / 2, val), ha="center", va="bottom",
                                fontsize=7)
        ax.set_xticks(x, [e["scenario"]["name"] for e in loaded])
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        shown = [a * 1e3 for _, vals in series for a in vals if a]
        if shown:
            ax.set_ylim(min(shown) / 3, max(shown) * 2)
        ax.set_ylabel("Janus CPU ms per participant-second")
        ax.set_title(f"profile {profile}: CPU per participant")
        ax.legend(fontsize=8)
        ax.grid(axis="y", which="both", alpha=0.3)
    if empty:
        ax = axes[0][-1]
        e = next(iter(empty.values()))
        names, vals = [], []
        if idle_run:
            names.append("idle Janus")
            vals.append(idle_run["core_percent"])
        for p in plugins:
            names.append(LABEL[p])
            v = median_of(e["runs"].get(p, []), "core_percent")
            vals.append(np.nan if v is None else v)
        bars = ax.bar(names, vals, color=["#bbbbbb"] * (len(names) - len(plugins)) + [colors[LABEL[p]] for p in plugins])
        for b, val in zip(bars, vals):
            ax.annotate(f"{val:.2f}%", (b.get_x() + b.get_width() / 2, val), ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("Janus CPU, % of one core")
        ax.set_title("1,000 empty rooms")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_summary(results: dict, empty: dict, plugins: list[str]) -> None:
    print()
    for row in build_tables(results, empty, plugins):
        print(row)


def machine_info() -> dict:
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001
            return "?"
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    return {
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "kernel": platform.release(),
        "Janus": sh("janus --version 2>/dev/null | head -1"),
        "libopus": sh("dpkg-query -W -f '${Version}' libopus0 2>/dev/null"),
        "plugin source": sh(f"git -C {ROOT} describe --always --dirty 2>/dev/null") + " (dirty = uncommitted changes)",
        "plugin library": "{so}",
        "load average at start": " ".join(open("/proc/loadavg").read().split()[:3]),
    }


def hold_cpu_dma_latency() -> int:
    """Asks the kernel's PM QoS for 0 µs CPU wake-up latency until the returned descriptor is
    closed: idle CPUs then poll rather than halt (on KVM, waking a halted vCPU for a timer
    delayed a 20 ms thread's wake-up by 2-4 ms at p99 on the VM these figures come from)."""
    fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
    os.write(fd, struct.pack("i", 0))
    return fd


def update_readme(markdown_table: list[str], meta: dict, stem: str) -> None:
    """Replaces the README block between `<!-- {stem}:begin -->` and `<!-- {stem}:end -->`."""
    readme = HERE / "README.md"
    if not readme.exists():
        return
    text = readme.read_text()
    start, end = f"<!-- {stem}:begin -->", f"<!-- {stem}:end -->"
    if start not in text or end not in text:
        return
    idle_states = " with `--low-latency`" if stem == "low-latency" else ""
    block = "\n".join([start, "", f"Latest full run{idle_states} ({meta['date']}, {meta['machine']['CPU']}; "
                       f"details in [results/{stem}.md](results/{stem}.md)):", ""]
                      + markdown_table + ["", f"![chart](results/{stem}.png)", "", end])
    text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    readme.write_text(text)


# ---------------------------------------------------------------------------------------------


def parse_profiles(text: str, ap: argparse.ArgumentParser) -> list[str]:
    wanted = [w for w in text.split(",") if w]
    unknown = set(wanted) - set(PROFILES)
    if unknown or not wanted:
        ap.error(f"unknown profiles {sorted(unknown)} (choose from {', '.join(PROFILES)})")
    return [p for p in PROFILES if p in wanted]  # always open-mic, sip, silence


def main() -> int:
    # capacity.py and latency.py `import bench`: let them share this module, not load a copy.
    sys.modules.setdefault("bench", sys.modules[__name__])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plugin-so", type=Path, required=True, help="our libjanus_audioroom.so")
    ap.add_argument("--loadgen", type=Path, required=True)
    ap.add_argument("--mixer-bench", type=Path, required=True)
    ap.add_argument("--latency-probe", type=Path, help="the latency_probe example (for --smoke's burst check)")
    ap.add_argument("--scenarios", default=",".join(s.key for s in SCENARIOS),
                    help="comma-separated subset of: " + ", ".join(s.key for s in SCENARIOS))
    ap.add_argument("--profiles", default=",".join(PROFILES),
                    help="comma-separated load profiles, reported in the order open-mic, sip, silence "
                         "(default: all three): " + "; ".join(f"{k}: {v}" for k, v in PROFILES.items()))
    ap.add_argument("--plugins", default="both", choices=["both", "ours", "audiobridge"])
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds before the window (default 5)")
    ap.add_argument("--window", type=float, default=20.0, help="measured seconds (default 20)")
    ap.add_argument("--reps", type=int, default=1, help="runs per plugin and scenario, order alternating (median)")
    ap.add_argument("--quality", type=int, default=4, help="Opus complexity for both plugins (default 4)")
    ap.add_argument("--forwarders", type=int, default=0,
                    help="Opus RTP forwarders per room, to a loopback socket (default 0): what forwarding costs")
    ap.add_argument("--debug-level", type=int, default=4, help="Janus debug level (default 4, info)")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between runs")
    ap.add_argument("--floor-ticks", type=int, default=1000, help="ticks of the back-to-back mixer_bench run")
    ap.add_argument("--paced-ticks", type=int, default=250,
                    help="ticks of the real-time-paced mixer_bench run that gives the codec floor (default 250 = 5 s)")
    ap.add_argument("--no-mixer", action="store_true", help="skip the mixer-only benchmark")
    ap.add_argument("--recording", default="off", choices=["off", "mix", "tracks"],
                    help="audioroom's rooms (not AudioBridge's) record: off (default), mix (the room's WAV and "
                         "speech timeline) or tracks (also each participant's own Ogg Opus track)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--smoke", action="store_true",
                    help="a few seconds per profile, 1 room × 3 participants on audioroom only, then one clean-path "
                         "latency burst; fails unless every participant receives >= 45 packets/s in every profile "
                         "and the burst is detected")
    ap.add_argument("--keep", action="store_true", help="keep Janus's folder (config, log)")
    ap.add_argument("--low-latency", action="store_true",
                    help="hold /dev/cpu_dma_latency at 0 for the run (both plugins), as tuned's latency-performance "
                         "profile does; writes results/low-latency.* instead of results/latest.*")
    capacity_options(ap)
    args = ap.parse_args()
    profiles = parse_profiles(args.profiles, ap)

    if args.smoke:
        scenarios = [SMOKE]
        plugins = [OURS]
        args.warmup = min(args.warmup, 1.0)
        args.window = min(args.window, 2.0)
        args.settle = 0.3
    else:
        wanted = args.scenarios.split(",")
        unknown = set(wanted) - {s.key for s in SCENARIOS}
        if unknown:
            ap.error(f"unknown scenarios {sorted(unknown)}")
        scenarios = [s for s in SCENARIOS if s.key in wanted]
        plugins = {"both": [OURS, AB], "ours": [OURS], "audiobridge": [AB]}[args.plugins]
    if shutil.which("janus") is None:
        log("janus is not installed (apt-get install janus)")
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="audioroom-bench-"))
    janus = Janus(workdir, args.plugin_so, args.debug_level)
    started = time.time()
    machine = machine_info()
    import hashlib
    machine["plugin library"] = (f"{args.plugin_so} (sha256 "
                                 f"{hashlib.sha256(args.plugin_so.read_bytes()).hexdigest()[:16]}…)")
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine,
        "settings": {
            "rooms": f"{RATE} Hz mono in both plugins, " + (
                "no recording (audioroom `record: false` and `recording_enabled = false`; AudioBridge "
                "`record: false`)" if args.recording == "off" else
                f"audioroom recording ({'the mix and every participant’s track' if args.recording == 'tracks' else 'the mix'}"
                ", `--recording " + args.recording + "`), AudioBridge `record: false`") +
                ", plain-RTP participants allowed",
            "Opus complexity": f"{args.quality} for both (`quality` in every join); both plugins' default is 4; "
                               "encoder bitrate left to libopus (neither join sets `bitrate`), no FEC",
            "participants": "plain RTP on 127.0.0.1, payload type 111; RFC 6464 audio level extension id 1 in the "
                            "open-mic and silence profiles, none in the sip profile; "
                            "talkers send speech-like Opus (RFC 6464 levels 12-65, median about 27; pauses hold a -63 dBFS noise floor, never level 127); "
                            "listeners per profile: " + "; ".join(f"{k}: {v}" for k, v in PROFILES.items() if k in profiles) + "; "
                            "load generator Opus: 32 kbit/s, complexity 10, 20 ms frames, no FEC/DTX, pre-encoded loops; one thread, one socket, "
                            "participants spread over 20 × 1 ms send slots, socket drained at each slot (never waited on), "
                            "arrivals timed by the kernel (SO_TIMESTAMPNS), "
                            + ("SCHED_FIFO priority 10" if realtime_prefix() else "normal priority (not root)"),
            "audioroom config": "local_ip 127.0.0.1, rtp_port_range " + OUR_PORTS +
                                ", recording_enabled false, mixer_prebuffering 6 (default), mixer_threads 0 (one per core)",
            "AudioBridge config": f"local_ip 127.0.0.1, rtp_port_range {AB_PORTS}; rooms: default_prebuffering 6, "
                                  "default_expectedloss 0 (defaults)",
            "Janus": f"one process with both plugins + HTTP transport only, debug_level {args.debug_level}, "
                     "no event handlers",
            "CPU idle states": ("/dev/cpu_dma_latency held at 0 µs for the whole run (`--low-latency`): idle "
                                "vCPUs poll instead of halting, so timer wake-ups are not delayed by the "
                                "hypervisor's halt exit" if args.low_latency else
                                "the machine's default (idle vCPUs halt; waking one can take milliseconds on a VM)"),
            "timing": f"warm-up {args.warmup:g} s, window {args.window:g} s, {args.reps} run(s) per plugin, "
                      "order alternating per scenario and profile",
        },
    }
    results: dict = {p: {} for p in profiles}
    empty: dict = {}
    idle_run = None
    capacity_result = None
    latency_smoke = None
    rc = 0
    latency_hold = hold_cpu_dma_latency() if args.low_latency else None
    try:
        log(f"Janus in {workdir} (log: {janus.log_path})")
        janus.start()
        meta["machine"]["Janus threads at start"] = janus.cpu()[1]
        if args.capacity:
            import capacity
            capacity_result = capacity.run(janus, plugins, args)
            return 0
        if not args.smoke:
            log("idle Janus (no rooms) ...")
            idle_run = idle(janus, min(args.window, 10.0))
        turn = 0
        for sc in scenarios:
            if sc.empty:
                entry = {"scenario": sc.__dict__, "runs": {p: [] for p in plugins}}
                empty[sc.key] = entry
                for rep in range(args.reps):
                    order = plugins if (turn + rep) % 2 == 0 else list(reversed(plugins))
                    for k, plugin in enumerate(order):
                        log(f"[{sc.name}] {LABEL[plugin]} (run {rep + 1}/{args.reps}) ...")
                        r = run_empty(janus, plugin, sc, args)
                        r["order"] = k + 1
                        entry["runs"][plugin].append(r)
                        if "core_percent" in r:
                            log(f"    {r['core_percent']:.2f} % of a core, {r['janus_threads']} threads")
                        rc |= restart_if_crashed(janus, r)
                turn += 1
                continue
            floor = mixer = None
            if not args.smoke:
                log(f"[{sc.name}] codec floor and mixer alone ...")
                floor = mixer_bench(args, sc, floor_only=args.no_mixer, paced=True)
                if not args.no_mixer:
                    mixer = mixer_bench(args, sc, floor_only=False, paced=False)
            for profile in profiles:
                entry = {"scenario": sc.__dict__, "profile": profile, "runs": {p: [] for p in plugins}}
                if floor:
                    entry["floor"] = floor
                if mixer:
                    entry["mixer"] = mixer
                results[profile][sc.key] = entry
                for rep in range(args.reps):
                    order = plugins if (turn + rep) % 2 == 0 else list(reversed(plugins))
                    for k, plugin in enumerate(order):
                        log(f"[{sc.name}, {profile}] {LABEL[plugin]} (run {rep + 1}/{args.reps}) ...")
                        r = run_load(janus, plugin, sc, args, profile)
                        r["order"] = k + 1
                        entry["runs"][plugin].append(r)
                        if "load" in r:
                            ld = r["load"]
                            log(f"    CPU {r['cpu_s_per_participant_s'] * 1e3:.3f} ms/participant-s "
                                f"({r['core_percent']:.1f} % core), {fmt_plain_ms(ld['pps']['mean'])} pkt/s "
                                f"(min {fmt_plain_ms(ld['pps']['min'])}), spacing p50/p99 "
                                f"{fmt_plain_ms(ld['spacing_ms']['p50'])}/{fmt_plain_ms(ld['spacing_ms']['p99'])} ms, "
                                f"log ERR/WARN {r['log']['errors']}/{r['log']['warnings']}")
                        rc |= restart_if_crashed(janus, r)
                turn += 1
        if args.smoke and args.latency_probe:
            import latency
            log("[smoke] latency probe, clean path, audioroom ...")
            latency_smoke = latency.smoke_run(janus, args)
    finally:
        janus.stop()
        if latency_hold is not None:
            os.close(latency_hold)
        meta["machine"]["load average at end"] = " ".join(open("/proc/loadavg").read().split()[:3])
        meta["duration_s"] = round(time.time() - started)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"kept {workdir}")
        if capacity_result is not None:
            import capacity
            capacity.report(capacity_result, meta, args)

    if args.smoke:
        return smoke_verdict(results, latency_smoke)

    print_summary(results, empty, plugins)
    args.out.mkdir(parents=True, exist_ok=True)
    md = build_markdown(meta, results, empty, plugins, idle_run)
    stem = "low-latency" if args.low_latency else "latest"
    (args.out / f"{stem}.md").write_text(md)
    (args.out / f"{stem}.json").write_text(json.dumps(
        {"meta": meta, "idle": idle_run, "results": results, "empty": empty}, indent=1, default=str))
    build_chart(results, empty, plugins, idle_run, args.out / f"{stem}.png")
    log(f"wrote {args.out / stem}.md, {stem}.json, {stem}.png ({meta['duration_s']} s)")
    full = ({s.key for s in SCENARIOS} <= set(results[profiles[0]]) | set(empty) and len(plugins) == 2
            and profiles == list(PROFILES) and args.out == HERE / "results")
    if full:
        update_readme(build_tables(results, empty, plugins), meta, stem)
    for _, e in entries_of(results, empty):
        for runs in e["runs"].values():
            if any("error" in r for r in runs):
                rc = 1
    return rc


def restart_if_crashed(janus: Janus, r: dict) -> int:
    if not r.get("crashed"):
        return 0
    log("    Janus died; log tail:\n" + r.get("log_tail", ""))
    janus.start()
    return 1


def smoke_verdict(results: dict, latency_smoke: dict | None) -> int:
    """Packets flow in every profile (>= 45/s to every participant) and, when the probe ran,
    one burst was detected: no timing is asserted."""
    ok = True
    for profile, entries in results.items():
        r = entries[SMOKE.key]["runs"][OURS][0]
        if "load" not in r:
            log(f"smoke {profile}: FAILED: {r.get('error')}")
            ok = False
            continue
        per = [round(x["pps"], 1) for x in r["load"]["per_participant"]]
        good = r["load"]["pps"]["min"] >= 45 and not r.get("crashed")
        ok &= good
        log(f"smoke {profile}: packets/s per participant {per}; Janus CPU {r['core_percent']:.1f} % of a core; "
            f"log ERR/WARN {r['log']['errors']}/{r['log']['warnings']} -> {'ok' if good else 'FAILED'}")
    if latency_smoke is not None:
        import latency
        good, message = latency.smoke_verdict(latency_smoke)
        ok &= good
        log(f"smoke latency: {message} -> {'ok' if good else 'FAILED'}")
    log(f"smoke: {'-> ok' if ok else 'FAILED'}")
    return 0 if ok else 1


def capacity_options(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("capacity run (--capacity; capacity.py)")
    g.add_argument("--capacity", action="store_true",
                   help="add rooms of 10 open-mic participants (2 talkers) one at a time until a plugin misses "
                        "50 packets/s or spacing p99; prints how many participants each plugin carried")
    g.add_argument("--capacity-room-size", type=int, default=10, help="participants per room (default 10)")
    g.add_argument("--capacity-talkers", type=int, default=2, help="talkers per room (default 2)")
    g.add_argument("--capacity-window", type=float, default=10.0, help="measured seconds per step (default 10)")
    g.add_argument("--capacity-warmup", type=float, default=3.0,
                   help="seconds after a room's joins before its step is measured (default 3)")
    g.add_argument("--capacity-max-rooms", type=int, default=40, help="rooms at most per plugin (default 40)")
    g.add_argument("--capacity-time", type=float, default=1200.0,
                   help="seconds at most for the whole capacity run, shared equally by the plugins (default 1200)")
    g.add_argument("--capacity-min-pps", type=float, default=49.5,
                   help="a step passes when every participant got at least this many packets/s (default 49.5)")
    g.add_argument("--capacity-p99-ms", type=float, default=25.0,
                   help="... and the pooled spacing p99 is at most this (default 25 ms)")
    g.add_argument("--capacity-loadgen-late-ms", type=float, default=5.0,
                   help="a step whose load generator sent this late at p99 (or dropped datagrams) measures the "
                        "load generator, not the plugin (default 5 ms)")


if __name__ == "__main__":
    sys.exit(main())
