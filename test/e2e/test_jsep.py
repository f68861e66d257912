"""How the plugin answers SDP offers (SPEC §4): audio only, Opus with the offer's payload type,
video and data refused, the RFC 6464 audio-level extension and in-band FEC kept when offered.
"""

from __future__ import annotations

import re

import pytest

from harness.peer import TonePeer


def media_sections(sdp: str) -> dict[str, str]:
    """m-line kind -> the whole section text."""
    sections, current = {}, None
    for line in sdp.splitlines():
        if line.startswith("m="):
            current = line[2:].split()[0]
            sections[current] = ""
        if current:
            sections[current] += line + "\n"
    return sections


def opus_pt(section: str) -> int:
    return int(re.search(r"a=rtpmap:(\d+) opus/48000", section).group(1))


def with_fec(offer_sdp: str) -> str:
    """The offer as a browser sends it when it wants in-band FEC (aiortc leaves it out)."""
    pt = opus_pt(media_sections(offer_sdp)["audio"])
    if f"a=fmtp:{pt} " in offer_sdp:
        return re.sub(rf"a=fmtp:{pt} ([^\r\n]*)", rf"a=fmtp:{pt} \1;useinbandfec=1", offer_sdp)
    return offer_sdp.replace(f"a=rtpmap:{pt} opus/48000/2\r\n", f"a=rtpmap:{pt} opus/48000/2\r\na=fmtp:{pt} useinbandfec=1\r\n")


@pytest.mark.async_timeout(60)
async def test_an_offer_with_video_and_data_is_answered_with_opus_audio_only(audioroom):
    h = await audioroom.ahandle()
    await h.arequest({"request": "create", "id": "sdp", "sampling": 16000})
    peer = TonePeer("v", freq=700)
    peer.pc.addTransceiver("video", direction="sendrecv")
    peer.pc.createDataChannel("chat")
    offer = await peer.create_offer()
    offered = media_sections(offer["sdp"])
    assert set(offered) == {"audio", "video", "application"}, offered.keys()
    offer["sdp"] = with_fec(offer["sdp"])

    data, answer = await h.arequest_full({"request": "join", "id": "sdp"}, offer)
    assert data["audioroom"] == "joined", data
    answered = media_sections(answer["sdp"])
    assert answered["video"].startswith("m=video 0 "), answered["video"]
    assert answered["application"].startswith("m=application 0 "), answered["application"]
    audio_section = answered["audio"]
    pt = opus_pt(offered["audio"])
    assert audio_section.split("\n")[0].split()[3:] == [str(pt)], "only Opus, with the offer's payload type"
    assert opus_pt(audio_section) == pt
    assert "a=sendrecv" in audio_section
    assert "urn:ietf:params:rtp-hdrext:ssrc-audio-level" in audio_section, "offered, so kept"
    fmtp = re.search(rf"a=fmtp:{pt} (.*)", audio_section).group(1)
    assert "useinbandfec=1" in fmtp and "maxplaybackrate=16000" in fmtp and "stereo=0" in fmtp, fmtp

    # (aiortc cannot apply an answer with rejected m-lines; browsers can. Audio on an accepted
    # answer is what every other test in this folder checks.)

    # Without useinbandfec=1 in the offer, the answer says 0.
    plain = TonePeer("w", freq=1100)
    h2 = await audioroom.ahandle()
    _, answer2 = await h2.arequest_full({"request": "join", "id": "sdp"}, await plain.create_offer())
    pt2 = opus_pt(media_sections(answer2["sdp"])["audio"])
    assert re.search(rf"a=fmtp:{pt2} .*useinbandfec=0", answer2["sdp"]), answer2["sdp"]
    await plain.set_answer(answer2)
    await plain.wait_connected()


@pytest.mark.async_timeout(60)
async def test_an_offer_without_the_audio_level_extension_gets_none(audioroom):
    h = await audioroom.ahandle()
    await h.arequest({"request": "create", "id": "plain"})
    peer = TonePeer("p")
    offer = await peer.create_offer()
    offer["sdp"] = "\r\n".join(l for l in offer["sdp"].split("\r\n") if "ssrc-audio-level" not in l)
    _, answer = await h.arequest_full({"request": "join", "id": "plain"}, offer)
    assert "ssrc-audio-level" not in answer["sdp"]
    await peer.set_answer(answer)
    await peer.wait_connected()


@pytest.mark.async_timeout(60)
async def test_a_renegotiation_with_configure_keeps_the_session_and_bumps_the_version(audioroom):
    h = await audioroom.ahandle()
    await h.arequest({"request": "create", "id": "again"})
    peer = TonePeer("r")
    _, first = await h.arequest_full({"request": "join", "id": "again"}, await peer.create_offer())
    await peer.set_answer(first)
    await peer.wait_connected()
    offer = await peer.create_offer()
    offer["update"] = True
    data, second = await h.arequest_full({"request": "configure", "muted": False}, offer)
    assert data == {"audioroom": "event", "id": "again", "result": "ok"}
    origin = lambda sdp: re.search(r"o=- (\d+) (\d+)", sdp).groups()
    (sess1, ver1), (sess2, ver2) = origin(first["sdp"]), origin(second["sdp"])
    assert sess1 == sess2 and int(ver2) == int(ver1) + 1
    await peer.set_answer(second)
