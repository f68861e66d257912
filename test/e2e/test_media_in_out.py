"""Media in and out of a room (issue 15) through the real Janus: RTP forwarders received on a
loopback socket and decoded, announcements (WAV and Ogg Opus) heard by every peer, G.711 peers
(WebRTC with a PCMU-only offer, plain RTP with rtp.codec) and a send-only plain-RTP source.
Every check is what a listener or an operator would check: the tones by FFT, the packets a
socket receives, the events, the exact error."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import wave

import numpy as np
import pytest

from harness import audio
from harness.peer import TonePeer
from harness.rtp_peer import PlainRtpPeer
from test_live_audio import connect

RATE = 48000


def write_wav(path, rate: int, freq: float, seconds: float, channels: int = 1) -> None:
    t = np.arange(int(rate * seconds))
    pcm = (0.3 * 32767 * np.sin(2 * np.pi * freq * t / rate)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(pcm, channels).tobytes())


def write_ogg_opus(path, freq: float, seconds: float) -> None:
    """An Ogg Opus file as operators make them: opusenc (opus-tools) from a WAV."""
    source = path.with_suffix(".src.wav")
    write_wav(source, 48000, freq, seconds)
    subprocess.run([shutil.which("opusenc") or "opusenc", "--quiet", str(source), str(path)], check=True)
    source.unlink()


def tones(samples, rate, freqs) -> dict:
    return audio.tone_levels(samples, rate, freqs)


async def wait_data(handle, predicate, timeout=5.0):
    data, _ = await handle.await_event(predicate, timeout=timeout)
    return data


@pytest.mark.parametrize("codec", ["opus", "pcmu"])
@pytest.mark.async_timeout(60)
async def test_a_forwarders_packets_carry_the_rooms_tones_at_50_a_second(audioroom, codec):
    ha, hb = await audioroom.ahandle(), await audioroom.ahandle()
    await ha.arequest({"request": "create", "id": "fwd", "secret": "s", "sampling": 16000})
    a, b = TonePeer("a", freq=440), TonePeer("b", freq=1000)
    await connect(ha, a, {"request": "join", "id": "fwd", "userid": 1})
    await connect(hb, b, {"request": "join", "id": "fwd", "userid": 2})
    sink = PlainRtpPeer(codec=codec)
    sink.start_receiving()
    try:
        reply = await ha.arequest({"request": "rtp_forward", "id": "fwd", "secret": "s", "host": "127.0.0.1",
                                   "port": sink.port, "codec": codec})
        assert reply["audioroom"] == "success" and reply["host"] == "127.0.0.1" and reply["port"] == sink.port, reply
        await asyncio.sleep(3.0)
        heard = sink.received(2.0)
        levels = tones(heard, sink.rate, [440, 1000, 2000])
        assert levels[440] > -25 and levels[1000] > -25 and levels[2000] < levels[440] - 25, levels
        last = [x for x in sink.arrivals if x[0] > sink.arrivals[-1][0] - 1.0]
        assert 45 <= len(last) <= 55, len(last)
        seqs = [s for _, s, _ in sink.arrivals]
        stamps = [t for _, _, t in sink.arrivals]
        step = 960 if codec == "opus" else 160
        assert all((y - x) & 0xFFFF == 1 for x, y in zip(seqs, seqs[1:])), "continuous sequence numbers"
        assert all((y - x) & 0xFFFFFFFF == step for x, y in zip(stamps, stamps[1:])), "continuous timestamps"
        listed = await ha.arequest({"request": "listforwarders", "id": "fwd", "secret": "s"})
        assert [f["stream_id"] for f in listed["rtp_forwarders"]] == [reply["stream_id"]]
        assert listed["rtp_forwarders"][0]["ptype"] == (100 if codec == "opus" else 0)
        admin = audioroom.admin({"request": "list"})
        assert admin["list"][0]["forwarders"][0]["stream_id"] == reply["stream_id"]
        stop = {"request": "stop_rtp_forward", "id": "fwd", "secret": "s", "stream_id": reply["stream_id"]}
        assert await ha.arequest(stop) == {"audioroom": "success", "id": "fwd", "stream_id": reply["stream_id"]}
        await asyncio.sleep(0.3)
        count = len(sink.arrivals)
        await asyncio.sleep(0.5)
        assert len(sink.arrivals) == count, "nothing after stop_rtp_forward"
    finally:
        await sink.stop()


@pytest.mark.async_timeout(90)
async def test_wav_and_ogg_opus_announcements_are_heard_by_every_peer_and_end_with_the_event(
        audioroom_factory, tmp_path):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    write_wav(prompts / "welcome.wav", 44100, 1500, 2.5, channels=2)
    write_ogg_opus(prompts / "music.opus", 2500, 2.5)
    room = audioroom_factory(config={"announcements_path": str(prompts)})
    ha, hb = await room.ahandle(), await room.ahandle()
    await ha.arequest({"request": "create", "id": "ann", "sampling": 24000})
    a, b = TonePeer("a", freq=440), TonePeer("b", silent=True)
    await connect(ha, a, {"request": "join", "id": "ann", "userid": 1})
    await connect(hb, b, {"request": "join", "id": "ann", "userid": 2})
    await asyncio.gather(a.wait_receiving(), b.wait_receiving())

    for filename, freq, file_id in [("welcome.wav", 1500, "w"), ("music.opus", 2500, "m")]:
        reply = await ha.arequest({"request": "play_file", "id": "ann", "filename": filename, "file_id": file_id})
        assert reply == {"audioroom": "success", "id": "ann", "file_id": file_id}, reply
        started = {"audioroom": "announcement-started", "id": "ann", "file_id": file_id}
        for h in (ha, hb):
            assert await wait_data(h, lambda d: d == started, timeout=3) == started
        t0 = a.mark()
        await asyncio.sleep(1.5)
        la = tones(a.received(since=t0 + 0.4), RATE, [440, 1000, freq])
        lb = tones(b.received(since=t0 + 0.4), RATE, [440, freq])
        # The talker A hears the file too: nobody is excluded from an announcement.
        assert la[freq] > -25 and lb[freq] > -25 and lb[440] > -25, (filename, la, lb)
        listed = await hb.arequest({"request": "listannouncements", "id": "ann"})
        assert listed["announcements"] == [{"file_id": file_id, "filename": filename, "playing": True, "loop": False}]
        stopped = {"audioroom": "announcement-stopped", "id": "ann", "file_id": file_id}
        for h in (ha, hb):
            assert await wait_data(h, lambda d: d == stopped, timeout=4) == stopped
        after = b.mark()
        await asyncio.sleep(1.0)
        assert tones(b.received(since=after + 0.3), RATE, [freq])[freq] < -50, f"{filename} is over"
    assert (await ha.arequest({"request": "listannouncements", "id": "ann"}))["announcements"] == []


@pytest.mark.async_timeout(30)
async def test_a_filename_outside_the_announcements_folder_is_refused(audioroom_factory, tmp_path):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    write_wav(tmp_path / "private.wav", 16000, 700, 1.0)
    (prompts / "escape.wav").symlink_to(tmp_path / "private.wav")
    room = audioroom_factory(config={"announcements_path": str(prompts)})
    h = await room.ahandle()
    await h.arequest({"request": "create", "id": "safe"})
    refused = {"audioroom": "event", "error_code": 484,
               "error": "Invalid element (filename should be a file inside announcements_path)"}
    for filename in ["../private.wav", str(tmp_path / "private.wav"), "escape.wav", "a/../../private.wav"]:
        assert await h.arequest({"request": "play_file", "id": "safe", "filename": filename}) == refused, filename
    missing = await h.arequest({"request": "play_file", "id": "safe", "filename": "nope.wav"})
    assert missing == {"audioroom": "event", "error_code": 499,
                       "error": "Cannot play nope.wav: No such file or directory (os error 2)"}
    assert (await h.arequest({"request": "listannouncements", "id": "safe"}))["announcements"] == []


@pytest.mark.async_timeout(60)
async def test_a_pcmu_only_offer_is_answered_with_pcmu_and_the_peers_hear_each_other(audioroom):
    ha, hp = await audioroom.ahandle(), await audioroom.ahandle()
    await ha.arequest({"request": "create", "id": "phone", "sampling": 16000})
    a = TonePeer("a", freq=440)
    phone = TonePeer("phone", freq=1000, codec="pcmu")
    await connect(ha, a, {"request": "join", "id": "phone", "userid": 1})
    offer = await phone.create_offer()
    offered = next(line for line in offer["sdp"].splitlines() if line.startswith("m=audio"))
    assert offered.split()[3:] == ["0"] and "opus" not in offer["sdp"].lower(), offered
    data, answer = await hp.arequest_full({"request": "join", "id": "phone", "userid": 2}, offer)
    assert data["audioroom"] == "joined", data
    m_line = next(line for line in answer["sdp"].splitlines() if line.startswith("m=audio"))
    assert m_line.split()[3:] == ["0"], m_line
    assert "a=rtpmap:0 PCMU/8000" in answer["sdp"] and "opus" not in answer["sdp"].lower()
    await phone.set_answer(answer)
    await phone.wait_connected()
    await asyncio.gather(a.wait_receiving(), phone.wait_receiving())
    await asyncio.sleep(2.5)
    lp = tones(phone.received(last_seconds=1.5), RATE, [440, 1000])
    la = tones(a.received(last_seconds=1.5), RATE, [440, 1000])
    assert lp[440] > -25 and lp[1000] < lp[440] - 20, f"the phone hears A: {lp}"
    assert la[1000] > -25 and la[440] < la[1000] - 20, f"A hears the phone: {la}"
    # Asking for a codec the offer lacks is an error, not a dead m-line.
    hq = await audioroom.ahandle()
    other = TonePeer("q", codec="pcmu")
    reply = await hq.arequest({"request": "join", "id": "phone", "codec": "pcma"}, await other.create_offer())
    assert reply == {"audioroom": "event", "error_code": 493, "error": "The SDP offer has no PCMA audio"}


@pytest.mark.async_timeout(60)
async def test_a_g711_plain_rtp_participant_and_an_opus_webrtc_peer_hear_each_other(audioroom_factory):
    room = audioroom_factory(config={"local_ip": "127.0.0.1"})
    hx, hw = await room.ahandle(), await room.ahandle()
    await hx.arequest({"request": "create", "id": "sip", "allow_rtp_participants": True})
    x = PlainRtpPeer(freq=1000, codec="pcma")
    joined = await hx.arequest({"request": "join", "id": "sip", "userid": 1, "rtp": x.rtp_request()})
    assert joined["rtp"]["payload_type"] == 8 and joined["rtp"]["codec"] == "pcma", joined
    x.start(joined["rtp"]["ip"], joined["rtp"]["port"])
    w = TonePeer("w", freq=440)
    try:
        await connect(hw, w, {"request": "join", "id": "sip", "userid": 2})
        await w.wait_receiving()
        await asyncio.sleep(2.5)
        lx = tones(x.received(1.5), x.rate, [440, 1000])
        lw = tones(w.received(last_seconds=1.5), RATE, [440, 1000])
        assert lx[440] > -25 and lx[1000] < lx[440] - 20, f"the phone hears W: {lx}"
        assert lw[1000] > -25 and lw[440] < lw[1000] - 20, f"W hears the phone: {lw}"
        last = [s for t, s, _ in x.arrivals if t > x.arrivals[-1][0] - 1.0]
        assert 45 <= len(last) <= 55
    finally:
        await x.stop()


@pytest.mark.async_timeout(60)
async def test_a_send_only_plain_rtp_source_is_heard_and_sent_nothing_until_configured(audioroom_factory):
    room = audioroom_factory(config={"local_ip": "127.0.0.1"})
    hs, hw = await room.ahandle(), await room.ahandle()
    await hs.arequest({"request": "create", "id": "inject", "allow_rtp_participants": True})
    w = TonePeer("w", freq=440)
    await connect(hw, w, {"request": "join", "id": "inject", "userid": 2})
    # An empty rtp object: a send-only Opus source on AudioBridge's default payload type, 100.
    source = PlainRtpPeer(freq=1000, send_only=True, payload_type=100)
    joined = await hs.arequest({"request": "join", "id": "inject", "userid": 1, "rtp": {}})
    assert joined["rtp"]["ip"] == "127.0.0.1" and joined["rtp"]["payload_type"] == 100, joined
    assert joined["rtp"]["codec"] == "opus", joined
    source.start(joined["rtp"]["ip"], joined["rtp"]["port"])
    try:
        await w.wait_receiving()
        await asyncio.sleep(2.0)
        lw = tones(w.received(last_seconds=1.0), RATE, [440, 1000])
        assert lw[1000] > -25, f"W hears the source: {lw}"
        assert source.arrivals == [], "a source that asked for nothing is sent nothing"
        # configure with rtp gives it a destination: the mix goes there from now on.
        reply = await hs.arequest({"request": "configure", "rtp": {"ip": source.address, "port": source.port}})
        assert reply == {"audioroom": "event", "id": "inject", "result": "ok"}
        await asyncio.sleep(1.5)
        assert tones(source.received(1.0), RATE, [440])[440] > -25, "the source now hears W"
        refused = await hw.arequest({"request": "configure", "rtp": {"ip": "127.0.0.1", "port": 4000}})
        assert refused == {"audioroom": "event", "error_code": 484,
                           "error": "Invalid element (rtp should be absent for a WebRTC participant)"}
    finally:
        await source.stop()
