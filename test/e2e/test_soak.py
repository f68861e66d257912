"""Churn soak: rooms and participants coming and going for a long time leave nothing behind.

Each cycle creates two rooms, joins a WebRTC peer and a plain-RTP talker (audio flowing), moves
the peer to the other room, kicks the talker, has the peer leave and its handle detach, puts a
signalling-only participant in each room and destroys both with people inside. Afterwards
Janus still answers; its resident memory, threads and open files are back to where they were
after the first cycles (printed); and every room that had someone in it left exactly one WAV
and one job file.

`AUDIOROOM_SOAK_CYCLES` sets the number of cycles (the test command runs a short soak;
`make check-soak` runs 500). With `AUDIOROOM_SOAK_VALGRIND=1` Janus runs under valgrind's
memcheck (fewer cycles by default): no memory error and no definite leak anywhere in the
process. (Debian's Janus 1.1.2 with glib and libnice reports none of its own, so no
suppressions are needed; "possibly lost" blocks are glib's thread pools and are not counted.)
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
import wave
from pathlib import Path

import pytest

from harness.peer import TonePeer
from harness.rtp_peer import PlainRtpPeer
from test_live_audio import connect

VALGRIND = os.environ.get("AUDIOROOM_SOAK_VALGRIND", "") not in ("", "0")
CYCLES = int(os.environ.get("AUDIOROOM_SOAK_CYCLES", "6" if VALGRIND else "25"))
WARMUP = 2


def http_sockets(pid: int, ports: set[int]) -> set[str]:
    """Inodes of Janus's TCP connections on its HTTP ports: the clients' long polls, which
    Janus keeps for up to 30 s after a client went away; not the plugin's."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) in ports:
                inodes.add(fields[9])
    return inodes


def process_usage(pid: int, http_ports: set[int]) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    skip = http_sockets(pid, http_ports)
    fds = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if not (target.startswith("socket:[") and target[8:-1] in skip):
            fds += 1
    return {"rss_mb": rss_kb / 1024, "threads": len(os.listdir(f"/proc/{pid}/task")), "fds": fds}


async def settle_usage(pid: int, ports: set[int], baseline: dict | None,
                       seconds: float = 10.0) -> dict:
    """Usage once the threads and sockets of the last cycle are gone (they go asynchronously:
    Janus frees a handle after its DTLS and ICE have stopped)."""
    deadline = time.monotonic() + seconds
    usage = process_usage(pid, ports)
    while baseline and time.monotonic() < deadline and (
            usage["threads"] > baseline["threads"] or usage["fds"] > baseline["fds"]):
        await asyncio.sleep(0.25)
        usage = process_usage(pid, ports)
    return usage


async def cycle(room, n: int) -> None:
    a, b = f"soak {n} a", f"soak {n} b"
    admin = await room.ahandle()
    for name in (a, b):
        await admin.arequest({"request": "create", "id": name, "allow_rtp_participants": True})
    web = await room.ahandle()
    peer = TonePeer(f"p{n}", freq=400 + n % 20 * 50)
    await connect(web, peer, {"request": "join", "id": a})
    talker = PlainRtpPeer(freq=700)
    plain = await room.ahandle()
    joined = await plain.arequest({"request": "join", "id": a, "userid": 7, "rtp": talker.rtp_request()})
    talker.start(joined["rtp"]["ip"], joined["rtp"]["port"])
    await asyncio.sleep(0.5)
    moved = await web.arequest({"request": "changeroom", "id": b})
    assert moved["audioroom"] == "roomchanged", moved
    kicked = await admin.arequest({"request": "kick", "id": a, "userid": 7})
    assert kicked["audioroom"] == "success", kicked
    await talker.stop()
    left = await web.arequest({"request": "leave"})
    assert left["audioroom"] == "left", left
    await peer.close()
    await web.adetach()
    await plain.adetach()
    # (Each handle came with a Janus session of its own: end them, or their long polls stay.)
    await web.session.adestroy()
    await plain.session.adestroy()
    # Destroyed with people inside (signalling-only participants).
    other = await room.ahandle()
    await admin.arequest({"request": "join", "id": a})
    await other.arequest({"request": "join", "id": b})
    for name in (a, b):
        destroyed = await admin.arequest({"request": "destroy", "id": name})
        assert destroyed["audioroom"] == "destroyed", destroyed
    for handle in (admin, other):
        await handle.adetach()
        await handle.session.adestroy()


@pytest.mark.async_timeout(3600)
async def test_churn_leaves_nothing_behind(audioroom_factory, tmp_path):
    kwargs = {}
    if VALGRIND:
        if shutil.which("valgrind") is None:
            pytest.skip("valgrind is not installed")
        kwargs = {
            "wrapper": ["valgrind", "--tool=memcheck", "--leak-check=full",
                        "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite",
                        "--num-callers=30",
                        f"--log-file={tmp_path / 'valgrind.log'}"],
            "startup_timeout": 180.0,
        }
    room = audioroom_factory(config={"local_ip": "127.0.0.1", "rtp_port_range": "35000-35999"},
                             check_exit=False, **kwargs)
    pid = room.server.proc.pid
    ports = {room.server.port, room.server.admin_port}
    baseline = None
    started = time.monotonic()
    for n in range(CYCLES):
        await cycle(room, n)
        if n == WARMUP - 1:
            baseline = await settle_usage(pid, ports, None)
        elif (n + 1) % 100 == 0:
            # The trend, for long soaks: a leak keeps climbing, the allocator's pools level off.
            print(f"after {n + 1} cycles: {process_usage(pid, ports)}", flush=True)
    after = await settle_usage(pid, ports, baseline)
    took = time.monotonic() - started
    print(f"{CYCLES} cycles in {took:.0f} s; Janus after {WARMUP}: {baseline}; after {CYCLES}: {after}")

    listed = await (await room.ahandle()).arequest({"request": "list"})
    assert listed["list"] == [], "every room is gone and Janus answers"
    assert after["threads"] <= baseline["threads"], (baseline, after)
    assert after["fds"] <= baseline["fds"], (baseline, after)
    if not VALGRIND:
        assert after["rss_mb"] - baseline["rss_mb"] < 20, (baseline, after)

    # Every room had someone in it: two WAVs and two job files a cycle, one job per WAV.
    jobs = room.jobs_json()
    assert len(jobs) == 2 * CYCLES and len(room.wavs()) == 2 * CYCLES, (len(jobs), len(room.wavs()))
    assert sorted(j["data"]["audio"] for j in jobs) == sorted(str(w) for w in room.wavs())
    assert len({j["data"]["uid"] for j in jobs}) == 2 * CYCLES
    for w in room.wavs():
        with wave.open(str(w)) as f:
            assert f.getnchannels() == 1 and f.getsampwidth() == 2

    code = room.server.stop(timeout=120 if VALGRIND else 15)
    assert code == 0, f"Janus exited with {code}"
    if VALGRIND:
        log = (tmp_path / "valgrind.log").read_text()
        summary = re.findall(r"ERROR SUMMARY: (\d+) errors", log)
        assert summary and summary[-1] == "0", log[-5000:]
        definite = re.findall(r"definitely lost: ([\d,]+) bytes", log)
        assert not definite or definite[-1] == "0", log[-5000:]
        print(f"valgrind: {summary[-1]} errors; definitely lost {definite[-1] if definite else '0'} bytes")
