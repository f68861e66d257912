"""Never freeze, never lose a recording: requests hammered at rooms that are mixing, then SIGTERM.

Talkers keep sending audio while other threads send thousands of `configure` (volume, muted,
display) and `changeroom` between two rooms. The plugin must answer every one of them, keep
mixing, log no lock-order violation, and on SIGTERM exit 0 within a few seconds leaving every
room that had a participant with its WAV and exactly one job file. A hang fails the test with
the stacks of every Janus thread (gdb) instead of stalling CI.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import wave

import pytest

from harness.peer import TonePeer
from harness.rtp_peer import PlainRtpPeer
from test_live_audio import connect

ROOMS = ("one", "two")
CHURN_THREADS = 4
REQUESTS_PER_THREAD = 1500
SHUTDOWN_PATIENCE = 8.0  # the plugin's own bound is 6 s; Janus adds its own teardown


def check_archive(room, expected_rooms) -> None:
    """Exactly one job per room that had a participant, each naming a complete, valid WAV."""
    jobs = room.jobs_json()
    ids = sorted(job["data"]["id"] for job in jobs)
    assert ids == sorted(expected_rooms), f"one job per room: {ids}"
    for job in jobs:
        data = job["data"]
        assert not data.get("incomplete"), job
        with wave.open(data["audio"]) as wav:
            assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
            frames = wav.getnframes()
        assert abs(frames * 1000 / data["sampling_rate"] - data["duration_ms"]) <= 1, job
        assert data["duration_ms"] > 1000, job
    assert len(room.wavs()) == len(expected_rooms)


def stop_in_time(room) -> float:
    started = time.monotonic()
    code = room.server.stop(timeout=30)
    took = time.monotonic() - started
    assert code == 0, f"Janus exited with {code}\n{room.server.log_tail(40)}"
    assert took < SHUTDOWN_PATIENCE, f"shutdown took {took:.1f} s"
    return took


def no_lock_order_violations(room) -> None:
    violations = [l for l in room.server.log_text().splitlines() if "Lock order violation" in l]
    assert not violations, "\n".join(violations[:10])


def churn(handle, index: int, failures: list) -> None:
    """Thousands of configure and changeroom requests from one handle, as fast as Janus takes
    them; then waits for the answer to the last one (the handler thread got through them all)."""
    try:
        last = None
        for i in range(REQUESTS_PER_THREAD):
            if i % 10 == 9:
                body = {"request": "changeroom", "id": ROOMS[(i // 10 + index) % 2]}
            else:
                body = {"request": "configure", "volume": 50 + i % 100, "muted": i % 7 == 0,
                        "display": f"talker {index}.{i}"}
            last = handle.send(body)
        data, _ = handle.wait_transaction(last, timeout=30)
        assert data.get("audioroom") in ("event", "roomchanged"), data
    except Exception as e:  # noqa: BLE001 - reported by the test
        failures.append(f"churn {index}: {str(e)[:300]}")


@pytest.mark.async_timeout(240)
async def test_requests_hammering_plain_rtp_talkers_then_sigterm(audioroom_factory):
    room = audioroom_factory(config={"local_ip": "127.0.0.1", "rtp_port_range": "31000-31200"},
                             check_exit=False)
    admin = await room.ahandle()
    for name in ROOMS:
        await admin.arequest({"request": "create", "id": name, "allow_rtp_participants": True})
    talkers, handles = [], []
    for i in range(CHURN_THREADS):
        peer = PlainRtpPeer(freq=400 + 300 * i, audio_level_ext=1)
        handle = await room.ahandle()
        joined = await handle.arequest({"request": "join", "id": ROOMS[i % 2], "userid": 10 + i,
                                        "rtp": peer.rtp_request()})
        peer.start(joined["rtp"]["ip"], joined["rtp"]["port"])
        talkers.append(peer)
        handles.append(handle)
    await asyncio.sleep(1.0)

    failures: list[str] = []
    threads = [threading.Thread(target=churn, args=(h, i, failures)) for i, h in enumerate(handles)]
    started = time.monotonic()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        await asyncio.sleep(0.2)
        if time.monotonic() - started > 150:
            pytest.fail("requests stopped being answered; threads of Janus:\n"
                        + room.server.dump_stacks())
    assert not failures, "\n".join(failures) + "\n" + room.server.dump_stacks()
    took = time.monotonic() - started
    print(f"{CHURN_THREADS * REQUESTS_PER_THREAD} requests in {took:.1f} s")

    # Still answering, still mixing.
    listed = await admin.arequest({"request": "list"}, timeout=5)
    assert sum(r["num_participants"] for r in listed["list"]) == CHURN_THREADS, listed
    for handle in handles:
        await handle.arequest({"request": "configure", "muted": False})
    await asyncio.sleep(1.0)
    for peer in talkers:
        assert len(peer.received(0.5)) > 0.4 * 48000, "the mix still arrives"
    no_lock_order_violations(room)

    stop_in_time(room)
    check_archive(room, ROOMS)
    await asyncio.gather(*(p.stop() for p in talkers))


@pytest.mark.async_timeout(120)
async def test_sigterm_with_webrtc_peers_connected(audioroom_factory):
    room = audioroom_factory(check_exit=False)
    admin = await room.ahandle()
    peers = []
    for i, name in enumerate(ROOMS):
        await admin.arequest({"request": "create", "id": name})
        peer = TonePeer(f"p{i}", freq=500 + 500 * i)
        handle = await room.ahandle()
        await connect(handle, peer, {"request": "join", "id": name, "userid": 1 + i})
        peers.append((peer, handle))
    for peer, _ in peers:
        await peer.wait_receiving()
    # Requests while the peers are connected and mixed.
    for i in range(200):
        _, handle = peers[i % 2]
        await handle.asend({"request": "configure", "volume": 60 + i % 80, "muted": i % 5 == 0})
    await peers[0][1].arequest({"request": "configure", "muted": False})
    await asyncio.sleep(1.5)
    no_lock_order_violations(room)

    took = stop_in_time(room)
    print(f"shutdown with two connected peers took {took:.2f} s")
    check_archive(room, ROOMS)
    for peer, _ in peers:
        await peer.close()
