"""The adaptive jitter buffer, end to end (docs/API.md, section 3.8).

A plain-RTP talker sends its tone over a jittery path (each packet up to 40 ms late, so also out
of order); a WebRTC peer must hear it without a gap, every 20 ms of the window, and the
operator sees the buffer's state through the Admin API: a target that covers the jitter and
(almost) nothing concealed.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from harness import audio
from harness.peer import TonePeer
from harness.rtp_peer import PlainRtpPeer
from test_live_audio import connect

RATE = 48000


@pytest.mark.async_timeout(60)
async def test_a_jittery_talker_is_heard_without_gaps(audioroom_factory):
    room = audioroom_factory(config={"local_ip": "127.0.0.1", "rtp_port_range": "32000-32100"})
    hx, hw = await room.ahandle(), await room.ahandle()
    await hx.arequest({"request": "create", "id": "jitter", "allow_rtp_participants": True})
    x = PlainRtpPeer(freq=700, amplitude=0.3, audio_level_ext=1, jitter_ms=40)
    joined = await hx.arequest({"request": "join", "id": "jitter", "userid": 1, "rtp": x.rtp_request()})
    x.start(joined["rtp"]["ip"], joined["rtp"]["port"])
    w = TonePeer("w", freq=300, amplitude=0.0)
    await connect(hw, w, {"request": "join", "id": "jitter", "userid": 2})
    await w.wait_receiving()
    await asyncio.sleep(6.0)   # the buffer settles on the path's jitter

    heard = w.received(last_seconds=4.0)
    assert len(heard) > 3.5 * RATE, f"only {len(heard) / RATE:.1f} s received"
    frames = heard[: len(heard) // 960 * 960].reshape(-1, 960)
    levels = np.array([audio.goertzel_db(f, RATE, 700) for f in frames])
    gaps = np.flatnonzero(levels < -30)
    assert len(gaps) == 0, f"{len(gaps)} of {len(frames)} frames without the tone: {levels[gaps].round(1)}"

    listed = room.admin({"request": "listparticipants", "id": "jitter"})
    playout = next(p["playout"] for p in listed["participants"] if p["userid"] == 1)
    assert playout["mode"] == "adaptive", playout
    assert 20 <= playout["target_ms"] <= 60, playout      # covers 0-40 ms of jitter
    assert playout["concealed"] <= 0.01 * playout["received"], playout
    stats = room.admin({"request": "stats"})
    assert any(p["userid"] == 1 and p["id"] == "jitter" for p in stats["playout"]), stats
    listed_rooms = room.admin({"request": "list"})
    worst = next(r["worst_playout"] for r in listed_rooms["list"] if r["id"] == "jitter")
    assert worst["userid"] == 1, worst
    await x.stop()
