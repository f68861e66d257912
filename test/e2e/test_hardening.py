"""What the plugin survives from the network (docs/API.md, sections 3.7 and 3.8).

- A UDP flood at one plain-RTP participant's port never delays another room served by the same
  mixer thread: its listener still gets a mix every 20 ms.
- A plain-RTP port speaks only for its participant: another address sending to it is not heard;
  in a room with `rtp_symmetric` the first sender is latched and gets the mix.
- A JSON value as deep as Janus accepts gets the error its content deserves.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import socket
import struct
import time

import numpy as np
import pytest

from harness import audio
from harness.rtp_peer import PlainRtpPeer

RATE = 48000


def flood(port: int, seconds: float, counter) -> None:
    """Valid RTP (payload type 111, from the declared address) as fast as one core sends it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = bytes([0xF8, 0xFF, 0xFE]) * 20
    sent, seq = 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(1000):
            header = struct.pack("!BBHII", 0x80, 111, seq & 0xFFFF, seq * 960 & 0xFFFFFFFF, 0x1234)
            try:
                sock.sendto(header + payload, ("127.0.0.1", port))
            except OSError:
                pass
            seq += 1
        sent += 1000
    counter.value = sent


@pytest.mark.async_timeout(60)
async def test_a_flood_at_one_port_does_not_delay_another_room(audioroom_factory):
    room = audioroom_factory(config={"local_ip": "127.0.0.1", "rtp_port_range": "33000-33100",
                                     "mixer_threads": 1})
    h = [await room.ahandle() for _ in range(3)]
    for name in ("flooded", "calm"):
        await h[0].arequest({"request": "create", "id": name, "allow_rtp_participants": True})
    victim = PlainRtpPeer(freq=500)
    joined = await h[0].arequest({"request": "join", "id": "flooded", "userid": 1, "rtp": victim.rtp_request()})
    flooded_port = joined["rtp"]["port"]
    talker, listener = PlainRtpPeer(freq=700), PlainRtpPeer(freq=300, amplitude=0.0)
    for handle, peer, userid in ((h[1], talker, 2), (h[2], listener, 3)):
        j = await handle.arequest({"request": "join", "id": "calm", "userid": userid, "rtp": peer.rtp_request()})
        peer.start(j["rtp"]["ip"], j["rtp"]["port"])
    await asyncio.sleep(2.0)

    sent = multiprocessing.Value("q", 0)
    flooder = multiprocessing.Process(target=flood, args=(flooded_port, 5.0, sent))
    started = time.monotonic()
    flooder.start()
    await asyncio.sleep(5.0)
    flooder.join(5)
    rate = sent.value / (time.monotonic() - started)

    window = [a for a in listener.arrivals if started + 1.0 <= a[0] <= started + 4.5]
    gaps = np.diff([a[0] for a in window]) * 1000
    p99 = float(np.percentile(gaps, 99))
    heard = audio.tone_levels(listener.received(1.0), RATE, [700])
    # The one mixer thread's work per tick: the flood costs it 8 datagrams a tick. (On loopback
    # the kernel's default receive buffer drops most of a flood before anyone reads it, so
    # even an unbounded read would find a few hundred; the unit test of media::plain_rtp is
    # what proves the bound itself.)
    thread = room.admin({"request": "stats"})["mixer"]["threads"][0]
    work, lateness = thread["work_us"], thread["lateness_us"]
    print(f"flood: {rate:,.0f} packets/s; calm room: {len(window) / 3.5:.1f} packets/s, "
          f"spacing p99 {p99:.1f} ms, max {gaps.max():.1f} ms; mixer work per tick {work}, "
          f"tick lateness {lateness}")
    assert work["p99"] < 5000, f"the flood costs the mixer thread {work} µs a tick"
    # Every tick of the one mixer thread started on time (the plugin's own clock), and what the
    # listener measured agrees (its own process shares two cores with Janus and the flooder,
    # so its spacing gets some slack).
    assert lateness["p99"] < 10_000, f"ticks started late during the flood: {lateness} µs"
    assert rate > 50_000, f"the flood was only {rate:.0f} packets/s"
    assert len(window) / 3.5 >= 48, f"{len(window) / 3.5:.1f} packets/s during the flood"
    assert p99 < 60, f"spacing p99 {p99:.1f} ms during the flood"
    assert heard[700] > -25, heard
    # The flooded participant's own packets were dropped, and counted, not queued without end.
    info = room.admin({"request": "listparticipants", "id": "flooded"})
    playout = info["participants"][0]["playout"]
    assert playout["rate_drops"] > 0 and playout["queued"] <= 21, playout
    await asyncio.gather(talker.stop(), listener.stop())


@pytest.mark.async_timeout(60)
async def test_only_the_participant_speaks_through_its_port(audioroom_factory):
    room = audioroom_factory(config={"local_ip": "127.0.0.1", "rtp_port_range": "33200-33300"})
    h = [await room.ahandle() for _ in range(4)]
    await h[0].arequest({"request": "create", "id": "strict", "allow_rtp_participants": True})
    await h[0].arequest({"request": "create", "id": "latch", "allow_rtp_participants": True,
                         "rtp_symmetric": True})
    # Strict: the participant declared 127.0.0.1; an intruder on 127.0.0.2 sends its tone to
    # the participant's port and is not heard.
    owner = PlainRtpPeer(freq=500, amplitude=0.0)
    joined = await h[0].arequest({"request": "join", "id": "strict", "userid": 1, "rtp": owner.rtp_request()})
    intruder = PlainRtpPeer(freq=1500, address="127.0.0.2")
    intruder.start(joined["rtp"]["ip"], joined["rtp"]["port"])
    listener = PlainRtpPeer(freq=300, amplitude=0.0)
    j = await h[1].arequest({"request": "join", "id": "strict", "userid": 2, "rtp": listener.rtp_request()})
    listener.start(j["rtp"]["ip"], j["rtp"]["port"])
    owner.start(joined["rtp"]["ip"], joined["rtp"]["port"])
    await asyncio.sleep(2.0)
    heard = audio.tone_levels(listener.received(1.0), RATE, [1500])
    assert heard[1500] < -50, f"the intruder is heard: {heard}"

    # Symmetric: whoever sends first to the port is the participant, and gets the mix there.
    gateway = PlainRtpPeer(freq=1200, address="127.0.0.3")
    other = PlainRtpPeer(freq=900, amplitude=0.0)
    # Declares an address it will not send from (behind NAT, say).
    declared = {"ip": "192.0.2.9", "port": 5004, "payload_type": 111}
    jl = await h[2].arequest({"request": "join", "id": "latch", "userid": 3, "rtp": declared})
    gateway.start(jl["rtp"]["ip"], jl["rtp"]["port"])
    jo = await h[3].arequest({"request": "join", "id": "latch", "userid": 4, "rtp": other.rtp_request()})
    other.start(jo["rtp"]["ip"], jo["rtp"]["port"])
    other.amplitude = 0.3
    await asyncio.sleep(2.5)
    assert audio.tone_levels(other.received(1.0), RATE, [1200])[1200] > -25, "the gateway is heard"
    assert audio.tone_levels(gateway.received(1.0), RATE, [900])[900] > -25, "and gets the mix"
    await asyncio.gather(owner.stop(), intruder.stop(), listener.stop(), gateway.stop(), other.stop())


def test_a_value_as_deep_as_janus_accepts_gets_the_error_its_content_deserves(audioroom):
    h = audioroom.handle()
    deep = "[" * 300 + "]" * 300
    body = json.loads('{"request": "exists", "id": ' + deep + "}")
    reply = h.request(body)
    assert reply == {"audioroom": "event", "error_code": 484,
                     "error": "Invalid element (id should be a string)"}, reply
