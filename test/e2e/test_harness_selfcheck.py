"""Self-check of the e2e harness against Janus's stock AudioBridge plugin.

Why: our own plugin (janus.plugin.cm.audioroom) is developed in parallel, so
the harness is proven against a known-good mixer first.  If these tests pass,
a failure in an audioroom test points at the plugin, not at the harness.

AudioBridge behaves as a mix-minus conference: every participant receives
the mix of everybody else.  Peer A sends 440 Hz, peer B 1000 Hz; A must hear
1000 Hz far louder than 440 Hz and B the reverse.
"""

from __future__ import annotations

import asyncio

import pytest

from harness import audio
from harness.client import JanusError, admin_call, admin_request

AUDIOBRIDGE = "janus.plugin.audiobridge"
AUDIOBRIDGE_CFG = {"janus.plugin.audiobridge.jcfg": "general: {\n}\n"}
RATE = 48000
ROOM = 1234


@pytest.fixture
def audiobridge(janus_factory, stock_plugin_path):
    """A private Janus with only the stock AudioBridge (no static rooms)."""
    return janus_factory([stock_plugin_path("audiobridge")], AUDIOBRIDGE_CFG)


def test_audio_analysis_self_check():
    """The measurement helpers read synthetic tones correctly."""
    audio.self_check()


def test_private_janus_instance(audiobridge, janus_session_factory):
    """Only the plugin/transport we asked for are loaded; the API works."""
    session = janus_session_factory(audiobridge)
    info = session.info()
    assert list(info["plugins"]) == [AUDIOBRIDGE]
    assert list(info["transports"]) == ["janus.transport.http"]
    assert info["log-path"] == str(audiobridge.log_path)
    assert "AudioBridge plugin initialized" in audiobridge.log_text()

    h = session.attach(AUDIOBRIDGE)
    assert h.request({"request": "exists", "room": ROOM}) == {
        "audiobridge": "success", "room": ROOM, "exists": False}
    with pytest.raises(JanusError):
        session.attach("janus.plugin.does.not.exist")


def test_admin_api_message_plugin(audiobridge, janus_session_factory):
    """admin_request() reaches the plugin through Admin API message_plugin."""
    session = janus_session_factory(audiobridge)
    h = session.attach(AUDIOBRIDGE)
    assert h.request({"request": "create", "room": ROOM, "sampling_rate": RATE})["audiobridge"] == "created"

    resp = admin_request(audiobridge.admin_url, audiobridge.admin_secret, AUDIOBRIDGE, {"request": "list"})
    assert resp["audiobridge"] == "success"
    assert [r["room"] for r in resp["list"]] == [ROOM]
    assert resp["list"][0]["sampling_rate"] == RATE

    # generic Admin API calls work too, and the secret is enforced
    sessions = admin_call(audiobridge.admin_url, audiobridge.admin_secret, {"janus": "list_sessions"})
    assert session.id in sessions["sessions"]
    with pytest.raises(JanusError):
        admin_call(audiobridge.admin_url, "wrong-secret", {"janus": "list_sessions"})


@pytest.mark.async_timeout(45)
async def test_audiobridge_mix_minus(audiobridge, janus_session_factory, e2e_net):
    """Two tone peers in one AudioBridge room hear each other, not themselves;
    a vanished peer is noticed by Janus; a closed peer gets hung up."""
    from harness.peer import TonePeer

    session = janus_session_factory(audiobridge)
    ha = await session.aattach(AUDIOBRIDGE)
    hb = await session.aattach(AUDIOBRIDGE)
    created = await ha.arequest({"request": "create", "room": ROOM, "sampling_rate": RATE})
    assert created["audiobridge"] == "created", created

    a = TonePeer("a", freq=440, amplitude=0.3)
    b = TonePeer("b", freq=1000, amplitude=0.3)
    offer_a, offer_b = await a.create_offer(), await b.create_offer()
    for peer in (a, b):
        cands = peer.local_candidates()
        assert cands and all(f" {e2e_net.peer_addr} " in c for c in cands), cands

    data_a, answer_a = await ha.arequest_full({"request": "join", "room": ROOM, "display": "a"}, offer_a)
    data_b, answer_b = await hb.arequest_full({"request": "join", "room": ROOM, "display": "b"}, offer_b)
    assert data_a["audiobridge"] == "joined" and data_b["audiobridge"] == "joined"
    janus_cands = [l for l in answer_a["sdp"].splitlines() if l.startswith("a=candidate:")]
    assert janus_cands and all(f" {e2e_net.janus_addr} " in c for c in janus_cands), janus_cands

    await asyncio.gather(a.set_answer(answer_a), b.set_answer(answer_b))
    await asyncio.gather(a.wait_connected(), b.wait_connected())
    await asyncio.gather(ha.await_janus("webrtcup"), hb.await_janus("webrtcup"))
    await asyncio.gather(a.wait_receiving(), b.wait_receiving())

    await asyncio.sleep(3.0)
    heard_a = a.received(last_seconds=1.5)
    heard_b = b.received(last_seconds=1.5)
    assert len(heard_a) > RATE and len(heard_b) > RATE, (a, b)
    lv_a = audio.tone_levels(heard_a, RATE, [440, 1000])
    lv_b = audio.tone_levels(heard_b, RATE, [440, 1000])
    diag = f"A hears {lv_a} peaks {audio.fft_peaks(heard_a, RATE, 3)}; " \
           f"B hears {lv_b} peaks {audio.fft_peaks(heard_b, RATE, 3)}"
    assert lv_a[1000] - lv_a[440] >= 20, diag
    assert lv_b[440] - lv_b[1000] >= 20, diag
    assert lv_a[1000] > -30 and lv_b[440] > -30, diag      # sent at 0.3 = -10.5 dBFS

    # B vanishes without signalling: Janus reports B's media stopped, and
    # after a moment A no longer hears B's tone.
    await b.vanish()
    t_gone = a.mark()
    await hb.await_janus("media", timeout=5, predicate=lambda m: m.get("receiving") is False)
    await asyncio.sleep(1.0)
    after = a.received(since=t_gone + 0.5)
    assert audio.goertzel_db(after, RATE, 1000) < lv_a[1000] - 20, audio.tone_levels(after, RATE, [440, 1000])

    # A leaves gracefully: DTLS close_notify makes Janus hang up A's handle.
    await a.close()
    hangup = await ha.await_janus("hangup", timeout=5)
    assert hangup.get("reason")
