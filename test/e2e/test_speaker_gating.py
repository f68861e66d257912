"""Only who speaks is mixed (docs/API.md, section 2.1: speech_level, mix_all).

Two WebRTC peers talk (tones) and three listen with open microphones (room noise, and the
audio levels aiortc computes from it, as browsers send them). Each talker must hear the other's
tone and none of the listeners' noise; with `mix_all` (AudioBridge's way) the noise is there.
"""

from __future__ import annotations

import asyncio

import pytest

from harness import audio
from harness.peer import TonePeer
from test_live_audio import connect

RATE = 48000
NOISE_DBFS = -50.0       # an open microphone in a quiet room (the gate opens at -45 dBov)
BAND = (3000.0, 8000.0)  # away from the tones: where the listeners' white noise shows


async def measure(talkers) -> list[dict]:
    await asyncio.sleep(2.0)
    out = []
    for peer in talkers:
        pcm = peer.received(last_seconds=1.5)
        levels = audio.tone_levels(pcm, RATE, [440, 1000])
        levels["noise"] = audio.band_db(pcm, RATE, *BAND)
        out.append(levels)
    return out


@pytest.mark.async_timeout(90)
async def test_talkers_hear_each_other_and_not_the_open_microphones(audioroom):
    admin = await audioroom.ahandle()
    for room, options in (("gated", {}), ("everyone", {"mix_all": True})):
        created = await admin.arequest({"request": "create", "id": room, **options})
        assert created["audioroom"] == "created", created
    a = TonePeer("a", freq=440, amplitude=0.2)
    b = TonePeer("b", freq=1000, amplitude=0.2)
    listeners = [TonePeer(f"n{i}", freq=100, amplitude=0.0, noise_dbfs=NOISE_DBFS)
                 for i in range(3)]
    handles = []
    for i, peer in enumerate([a, b, *listeners]):
        handle = await audioroom.ahandle()
        await connect(handle, peer, {"request": "join", "id": "gated", "userid": i + 1})
        handles.append(handle)
    for peer in (a, b):
        await peer.wait_receiving()

    gated = await measure([a, b])
    for handle in handles:
        reply = await handle.arequest({"request": "changeroom", "id": "everyone"})
        assert reply["audioroom"] == "roomchanged", reply
    everyone = await measure([a, b])

    diag = f"gated {gated} / mix_all {everyone}"
    # Each talker hears the other, not itself, in both rooms.
    assert gated[0][1000] > -25 and gated[0][440] < gated[0][1000] - 20, diag
    assert gated[1][440] > -25 and gated[1][1000] < gated[1][440] - 20, diag
    assert everyone[0][1000] > -25 and everyone[1][440] > -25, diag
    # The open microphones' noise: there when everyone is mixed, gone when only speakers are.
    for g, e in zip(gated, everyone):
        assert e["noise"] > -60, f"mix_all carries the noise: {diag}"
        assert g["noise"] < e["noise"] - 15, f"gated leaves it out: {diag}"
