"""Every room event reaches a real broker through Janus's own MQTT event handler.

The test runs Debian's mosquitto on a free loopback port (inside the test's network
namespace), loads Janus's `libjanus_mqttevh.so` pointed at it, subscribes with
`mosquitto_sub`, drives a room through its life and checks that each event arrives, wrapped by
Janus as a plugin event (type 64), with the right room id, user id and kind.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from audioroom_fixtures import PACKAGE
from harness.janus import free_tcp_port
from harness.rtp_peer import PlainRtpPeer

MQTTEVH = Path(os.environ.get("JANUS_EVENTS_DIR", "/usr/lib/x86_64-linux-gnu/janus/events")) / "libjanus_mqttevh.so"
TOPIC = "/janus/events"


class Broker:
    """mosquitto on 127.0.0.1:<port>, and a mosquitto_sub collecting every message."""

    def __init__(self, folder: Path):
        for tool in ("mosquitto", "mosquitto_sub"):
            if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
                pytest.skip(f"{tool} is not installed (test/install-deps.sh installs it)")
        self.port = free_tcp_port()
        config = folder / "mosquitto.conf"
        config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                          "persistence false\nuser root\nlog_dest stderr\n")
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.log = open(folder / "mosquitto.log", "wb")
        self.broker = subprocess.Popen([mosquitto, "-c", str(config)], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.broker.poll() is not None:
                    raise RuntimeError(f"mosquitto did not start: {(folder / 'mosquitto.log').read_text()}")
                time.sleep(0.05)
        self.messages: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self.sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.port),
                                     "-t", "#", "-v", "-q", "1"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.sub.stdout:
            topic, _, payload = line.rstrip("\n").partition(" ")
            try:
                message = json.loads(payload)
            except ValueError:
                continue
            with self._lock:
                # Janus may hand a handler several events at once, as an array.
                for m in message if isinstance(message, list) else [message]:
                    self.messages.append((topic, m))

    def plugin_events(self) -> list[dict]:
        with self._lock:
            return [m for _, m in self.messages if is_ours(m)]

    def wait(self, predicate, timeout: float = 10.0, what: str = "a message"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                messages = [m for _, m in self.messages]
            found = [m for m in messages if predicate(m)]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no {what} within {timeout} s; got {self.messages}")

    def stop(self) -> None:
        for process in (self.sub, self.broker):
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
        self.log.close()


def is_ours(message: dict) -> bool:
    """A plugin event (type 64) of this plugin, as Janus wraps it."""
    event = message.get("event")
    return message.get("type") == 64 and isinstance(event, dict) and event.get("plugin") == PACKAGE


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    yield b
    b.stop()


def mqttevh_config(port: int) -> str:
    return ("general: {\n\tenabled = true\n\tevents = \"plugins\"\n\tjson = \"compact\"\n"
            f"\turl = \"tcp://127.0.0.1:{port}\"\n\tclient_id = \"janus-e2e\"\n"
            f"\ttopic = \"{TOPIC}\"\n}}\n")


@pytest.mark.async_timeout(90)
async def test_every_room_event_reaches_the_broker(audioroom_factory, broker):
    if not MQTTEVH.exists():
        pytest.skip(f"Janus's MQTT event handler is not installed: {MQTTEVH}")
    room = audioroom_factory(config={"local_ip": "127.0.0.1"}, event_handlers=[MQTTEVH],
                             extra_configs={"janus.eventhandler.mqttevh.jcfg": mqttevh_config(broker.port)})
    # The handler announces itself on its status topic once connected to the broker.
    await asyncio.to_thread(broker.wait, lambda m: m.get("eventhandler") == "janus.eventhandler.mqttevh"
                            or "connected" in json.dumps(m), 15, "the handler's status message")
    ha, hb = await room.ahandle(), await room.ahandle()
    await ha.arequest({"request": "create", "id": "evh", "secret": "s", "allow_rtp_participants": True,
                       "audiolevel_event": True, "audio_active_packets": 10, "audio_level_average": 40})
    await ha.arequest({"request": "edit", "id": "evh", "secret": "s", "new_description": "events"})
    a = PlainRtpPeer(freq=440, audio_level_ext=1)
    joined = await ha.arequest({"request": "join", "id": "evh", "userid": 1, "display": "A", "rtp": a.rtp_request()})
    a.start(joined["rtp"]["ip"], joined["rtp"]["port"])
    try:
        await hb.arequest({"request": "join", "id": "evh", "userid": 2})
        talking = lambda d: d.get("audioroom") == "talking" and d.get("userid") == 1
        await hb.await_event(talking, timeout=5)
        a.amplitude = 0.0
        await hb.await_event(lambda d: d.get("audioroom") == "stopped-talking", timeout=5)
        await hb.arequest({"request": "configure", "muted": True})
        moderate = {"id": "evh", "secret": "s", "userid": 1}
        for request in ("mute", "unmute", "suspend", "resume"):
            assert (await ha.arequest({"request": request, **moderate}))["audioroom"] == "success"
        for request in ("mute_room", "unmute_room"):
            assert (await ha.arequest({"request": request, "id": "evh", "secret": "s"}))["audioroom"] == "success"
        for record in (False, True):
            await ha.arequest({"request": "enable_recording", "id": "evh", "secret": "s", "record": record})
        await ha.arequest({"request": "kick", **moderate, "userid": 2})
        await ha.arequest({"request": "leave"})
        await ha.arequest({"request": "destroy", "id": "evh", "secret": "s"})
    finally:
        await a.stop()

    # (kind, userid or None for room events): each arrives with the room's id.
    expected = [("created", None), ("edited", None), ("joined", 1), ("joined", 2),
                ("recording-started", None), ("talking", 1), ("stopped-talking", 1),
                ("configured", 2), ("muted", 1), ("unmuted", 1), ("suspended", 1), ("resumed", 1),
                ("room-muted", None), ("room-unmuted", None), ("recording-stopped", None),
                ("kicked", 2), ("left", 1), ("destroyed", None)]
    for kind, userid in expected:
        def match(m, kind=kind, userid=userid):
            data = m["event"].get("data", {}) if is_ours(m) else {}
            return data.get("event") == kind and data.get("id") == "evh" and data.get("userid") == userid
        message = await asyncio.to_thread(broker.wait, match, 10, f"{kind} event")
        # Events about a participant name its Janus handle; room events name none.
        assert ("handle_id" in message) == (userid is not None), message
    joined_a = next(m for m in broker.plugin_events()
                    if m["event"]["data"] == {"event": "joined", "id": "evh", "userid": 1, "display": "A"})
    assert joined_a["session_id"] and joined_a["handle_id"]
    # The job of each of the two recordings (stopped, then finished by destroy).
    finished = lambda: [m for m in broker.plugin_events()
                        if m["event"]["data"].get("event") == "archive-finished"
                        and m["event"]["data"]["data"]["id"] == "evh"]
    await asyncio.to_thread(broker.wait, lambda m: len(finished()) == 2, 10, "two archive-finished events")
    jobs = sorted(room.jobs_json(), key=lambda j: j["data"]["started"])
    assert sorted((m["event"]["data"] for m in finished()), key=lambda d: d["data"]["started"]) == jobs
