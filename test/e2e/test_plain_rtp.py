"""Plain-RTP participants (SIP gateways, load generators) beside WebRTC peers (SPEC §4 [ext])."""

from __future__ import annotations

import asyncio

import pytest

from harness import audio
from harness.peer import TonePeer
from harness.rtp_peer import PlainRtpPeer
from test_live_audio import connect

RATE = 48000


@pytest.mark.async_timeout(60)
async def test_plain_rtp_and_webrtc_participants_hear_each_other(audioroom_factory):
    room = audioroom_factory(config={"local_ip": "127.0.0.1", "rtp_port_range": "30000-30100"})
    hx, hy, hw = await room.ahandle(), await room.ahandle(), await room.ahandle()
    await hx.arequest({"request": "create", "id": "mixed", "allow_rtp_participants": True})
    x, y = PlainRtpPeer(freq=440, audio_level_ext=1), PlainRtpPeer(freq=1000)
    joined_x = await hx.arequest({"request": "join", "id": "mixed", "userid": 1, "rtp": x.rtp_request()})
    assert joined_x["audioroom"] == "joined" and joined_x["userid"] == 1, joined_x
    rtp = joined_x["rtp"]
    assert rtp["ip"] == "127.0.0.1" and 30000 <= rtp["port"] <= 30100 and rtp["payload_type"] == 111
    x.start(rtp["ip"], rtp["port"])
    joined_y = await hy.arequest({"request": "join", "id": "mixed", "userid": 2, "rtp": y.rtp_request()})
    y.start(joined_y["rtp"]["ip"], joined_y["rtp"]["port"])
    assert joined_y["rtp"]["port"] != rtp["port"]
    # A plain-RTP participant is set up by its first packet, and the room hears of it.
    await hx.await_event(lambda d: d.get("participants", [{}])[0].get("userid") == 2
                         and d["participants"][0].get("setup") is True, timeout=5)
    w = TonePeer("w", freq=2000)
    joined_w = await connect(hw, w, {"request": "join", "id": "mixed", "userid": 3})
    assert {p["userid"]: p["setup"] for p in joined_w["participants"]} == {1: True, 2: True}
    await w.wait_receiving()
    await asyncio.sleep(2.5)

    lx = audio.tone_levels(x.received(1.5), RATE, [440, 1000, 2000])
    ly = audio.tone_levels(y.received(1.5), RATE, [440, 1000, 2000])
    lw = audio.tone_levels(w.received(last_seconds=1.5), RATE, [440, 1000, 2000])
    diag = f"X {lx} / Y {ly} / W {lw}"
    assert lx[1000] > -25 and lx[2000] > -25 and lx[440] < lx[1000] - 20, diag
    assert ly[440] > -25 and ly[2000] > -25 and ly[1000] < ly[440] - 20, diag
    assert lw[440] > -25 and lw[1000] > -25 and lw[2000] < lw[440] - 20, diag

    # The plugin sends 50 packets a second with continuous numbering.
    arrivals = [a for a in x.arrivals if a[0] > x.arrivals[-1][0] - 1.0]
    assert 45 <= len(arrivals) <= 55, len(arrivals)
    seqs = [s for _, s, _ in arrivals]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:]))

    listed = await hw.arequest({"request": "listparticipants", "id": "mixed"})
    assert {p["userid"]: p["setup"] for p in listed["participants"]} == {1: True, 2: True, 3: True}
    assert (await hx.arequest({"request": "leave"}))["audioroom"] == "left"
    await asyncio.gather(x.stop(), y.stop())


async def test_rtp_is_refused_in_rooms_that_do_not_allow_it(audioroom):
    h = await audioroom.ahandle()
    await h.arequest({"request": "create", "id": "webrtc-only"})
    reply = await h.arequest({"request": "join", "id": "webrtc-only", "rtp": {"ip": "127.0.0.1", "port": 5000}})
    assert reply["error_code"] == 489
    await h.arequest({"request": "create", "id": "open", "allow_rtp_participants": True})
    for rtp, code, reason in [
        ({"port": 5000}, 483, "Missing element (rtp.ip)"),
        ({"ip": "127.0.0.1"}, 483, "Missing element (rtp.port)"),
        ({"ip": "nope", "port": 5000}, 484, "Invalid element (rtp.ip should be an IPv4 or IPv6 address)"),
        ({"ip": "127.0.0.1", "port": 70000}, 484, "Invalid element (rtp.port should be an integer from 1 to 65535)"),
        ({"ip": "127.0.0.1", "port": 5000, "payload_type": 200}, 484, None),
        ({"ip": "127.0.0.1", "port": 5000, "audiolevel_ext": 15}, 484, None),
    ]:
        reply = await h.arequest({"request": "join", "id": "open", "rtp": rtp})
        assert reply["error_code"] == code, reply
        if reason:
            assert reply["error"] == reason


@pytest.mark.parametrize("levels", [True, False], ids=["with-levels", "sip-without-levels"])
@pytest.mark.async_timeout(60)
async def test_talking_events_follow_the_audio_level(audioroom_factory, levels):
    room = audioroom_factory(config={"local_ip": "127.0.0.1"})
    hx, hw = await room.ahandle(), await room.ahandle()
    await hx.arequest({"request": "create", "id": "talk", "allow_rtp_participants": True,
                       "audiolevel_event": True, "audio_active_packets": 10, "audio_level_average": 40})
    await hw.arequest({"request": "join", "id": "talk", "userid": 9})
    # With the extension: level 30 while it sends a tone, 127 when silent. Without (a SIP
    # gateway): the plugin measures the decoded frames instead.
    x = PlainRtpPeer(freq=440, audio_level_ext=1 if levels else None)
    joined = await hx.arequest({"request": "join", "id": "talk", "userid": 1, "rtp": x.rtp_request()})
    x.start(joined["rtp"]["ip"], joined["rtp"]["port"])
    try:
        talking = lambda d: d.get("audioroom") == "talking" and d.get("userid") == 1
        stopped = lambda d: d.get("audioroom") == "stopped-talking" and d.get("userid") == 1
        assert (await hw.await_event(talking, timeout=5))[0] == {"audioroom": "talking", "id": "talk", "userid": 1}
        listed = await hw.arequest({"request": "listparticipants", "id": "talk"})
        assert next(p for p in listed["participants"] if p["userid"] == 1)["talking"] is True
        x.amplitude = 0.0
        await hw.await_event(stopped, timeout=5)
        x.amplitude = 0.3
        await hw.await_event(talking, timeout=5)
        # Muting someone who is talking stops the talking at once.
        await hx.arequest({"request": "configure", "muted": True})
        await hw.await_event(stopped, timeout=2)
        await hx.arequest({"request": "configure", "muted": False})
        await hw.await_event(talking, timeout=5)
        # So does leaving.
        await hx.arequest({"request": "leave"})
        await hw.await_event(stopped, timeout=2)
        await hw.await_event(lambda d: d.get("leaving") == 1, timeout=2)
    finally:
        await x.stop()


@pytest.mark.async_timeout(30)
async def test_a_kicked_plain_rtp_participant_loses_its_socket(audioroom_factory):
    room = audioroom_factory(config={"local_ip": "127.0.0.1"})
    hx, hm = await room.ahandle(), await room.ahandle()
    await hm.arequest({"request": "create", "id": "k", "allow_rtp_participants": True})
    x = PlainRtpPeer(freq=440)
    joined = await hx.arequest({"request": "join", "id": "k", "userid": 1, "rtp": x.rtp_request()})
    x.start(joined["rtp"]["ip"], joined["rtp"]["port"])
    try:
        await asyncio.sleep(1.0)
        assert len(x.arrivals) > 30
        assert await hm.arequest({"request": "kick", "id": "k", "userid": 1}) == {"audioroom": "success"}
        kicked, _ = await hx.await_event(lambda d: "kicked" in d, timeout=2)
        assert kicked == {"audioroom": "event", "id": "k", "kicked": 1}
        await asyncio.sleep(0.3)
        count = len(x.arrivals)
        await asyncio.sleep(1.0)
        assert len(x.arrivals) == count, "nothing more is sent after the kick"
        assert (await hm.arequest({"request": "listparticipants", "id": "k"}))["participants"] == []
    finally:
        await x.stop()
