"""Live audio through the real Janus with real WebRTC peers (SPEC §4 and §5).

Each peer sends a tone and records what it hears; the tests measure the tones by Goertzel,
as a listener would judge them: everyone hears everyone but themselves, the muted are not
heard, and moving, leaving and vanishing behave.
"""

from __future__ import annotations

import asyncio

import pytest

from audioroom_fixtures import PACKAGE
from harness import audio
from harness.peer import TonePeer

RATE = 48000  # what the peers decode to, whatever the room's rate


async def connect(handle, peer: TonePeer, body: dict) -> dict:
    """Joins `peer` through `handle` with an offer; returns the joined event."""
    offer = await peer.create_offer()
    data, answer = await handle.arequest_full(body, offer)
    assert data.get("audioroom") in ("joined", "roomchanged"), data
    assert answer is not None and answer["type"] == "answer", answer
    assert "m=video" not in answer["sdp"] or "m=video 0 " in answer["sdp"]
    await peer.set_answer(answer)
    await peer.wait_connected()
    return data


def levels(peer: TonePeer, seconds: float = 1.0, since: float | None = None) -> dict:
    samples = peer.received(since=since) if since is not None else peer.received(last_seconds=seconds)
    assert len(samples) > RATE * min(seconds, 0.5), f"{peer} received only {len(samples)} samples"
    return audio.tone_levels(samples, RATE, [440, 1000, 2000, 3000])


async def wait_event(handle, predicate, timeout=5.0):
    data, _ = await handle.await_event(predicate, timeout=timeout)
    return data


@pytest.mark.parametrize("sampling", [48000, 16000])
@pytest.mark.async_timeout(60)
async def test_everyone_hears_everyone_but_themselves(audioroom, sampling):
    ha, hb, hc = await audioroom.ahandle(), await audioroom.ahandle(), await audioroom.ahandle()
    await ha.arequest({"request": "create", "id": "talk", "sampling": sampling})
    a, b = TonePeer("a", freq=440, amplitude=0.3), TonePeer("b", freq=1000, amplitude=0.3)
    c = TonePeer("c", freq=2000, amplitude=0.3)
    joined_a = await connect(ha, a, {"request": "join", "id": "talk", "display": "A", "userid": 1})
    assert joined_a == {"audioroom": "joined", "id": "talk", "userid": 1, "participants": []}
    joined_b = await connect(hb, b, {"request": "join", "id": "talk", "display": "B", "userid": 2})
    assert [p["userid"] for p in joined_b["participants"]] == [1]
    await connect(hc, c, {"request": "join", "id": "talk", "display": "C", "userid": 3, "muted": True})
    # The room hears B arrive, then set up.
    await wait_event(ha, lambda d: d.get("audioroom") == "joined" and d["participants"][0]["userid"] == 2)
    await wait_event(ha, lambda d: d.get("participants", [{}])[0].get("userid") == 2 and d["participants"][0]["setup"])
    await asyncio.gather(a.wait_receiving(), b.wait_receiving(), c.wait_receiving())
    await asyncio.sleep(2.5)

    la, lb, lc = levels(a, 1.5), levels(b, 1.5), levels(c, 1.5)
    diag = f"A {la} / B {lb} / C {lc}"
    assert la[1000] > -25 and la[1000] - la[440] >= 20, diag
    assert lb[440] > -25 and lb[440] - lb[1000] >= 20, diag
    # Muted C hears both and nobody hears C.
    assert lc[440] > -25 and lc[1000] > -25, diag
    assert la[2000] < la[1000] - 30 and lb[2000] < lb[440] - 30, diag

    listed = await ha.arequest({"request": "listparticipants", "id": "talk"})
    assert {(p["userid"], p["display"], p["setup"], p["muted"]) for p in listed["participants"]} == {
        (1, "A", True, False), (2, "B", True, False), (3, "C", True, True)}


@pytest.mark.async_timeout(60)
async def test_mute_and_unmute_take_effect_within_a_second(audioroom):
    ha, hb = await audioroom.ahandle(), await audioroom.ahandle()
    await ha.arequest({"request": "create", "id": "m"})
    a, b = TonePeer("a", freq=440), TonePeer("b", freq=1000)
    await connect(ha, a, {"request": "join", "id": "m"})
    b_id = (await connect(hb, b, {"request": "join", "id": "m"}))["userid"]
    await a.wait_receiving()
    await asyncio.sleep(1.5)
    assert levels(a)[1000] > -25

    assert await hb.arequest({"request": "configure", "muted": True}) == {"audioroom": "event", "id": "m", "result": "ok"}
    muted_at = a.mark()
    changed = await wait_event(ha, lambda d: "participants" in d and d["participants"][0].get("muted") is True)
    assert changed["id"] == "m"
    await asyncio.sleep(1.8)
    assert levels(a, since=muted_at + 1.0)[1000] < -60, "muted B is silent within 1 s"

    await hb.arequest({"request": "configure", "muted": False})
    unmuted_at = a.mark()
    await asyncio.sleep(1.8)
    assert levels(a, since=unmuted_at + 1.0)[1000] > -25, "unmuted B is heard within 1 s"

    # A moderator can do the same, and the room hears of it.
    assert await ha.arequest({"request": "mute", "id": "m", "userid": b_id}) == {"audioroom": "success"}
    moderated_at = a.mark()
    await asyncio.sleep(1.8)
    assert levels(a, since=moderated_at + 1.0)[1000] < -60


@pytest.mark.async_timeout(60)
async def test_changeroom_moves_a_voice_without_a_new_peerconnection(audioroom):
    ha, hb, hd = await audioroom.ahandle(), await audioroom.ahandle(), await audioroom.ahandle()
    await ha.arequest({"request": "create", "id": "one"})
    await ha.arequest({"request": "create", "id": "two", "sampling": 16000})
    a, b, d = TonePeer("a", freq=440), TonePeer("b", freq=1000), TonePeer("d", freq=3000)
    await connect(ha, a, {"request": "join", "id": "one", "userid": 1})
    await connect(hb, b, {"request": "join", "id": "one", "userid": 2})
    await connect(hd, d, {"request": "join", "id": "two", "userid": 4})
    await asyncio.gather(a.wait_receiving(), b.wait_receiving(), d.wait_receiving())
    await asyncio.sleep(1.5)
    assert levels(a)[1000] > -25 and levels(b)[3000] < -60

    moved = await hb.arequest({"request": "changeroom", "id": "two"})
    assert moved == {"audioroom": "roomchanged", "id": "two", "userid": 2,
                     "participants": [{"userid": 4, "setup": True, "muted": False, "talking": False}]}
    moved_at = a.mark()
    leaving = await wait_event(ha, lambda d: d.get("leaving") == 2)
    assert leaving == {"audioroom": "event", "id": "one", "leaving": 2}
    await wait_event(hd, lambda d: d.get("audioroom") == "joined" and d["participants"][0]["userid"] == 2)
    await asyncio.sleep(1.8)
    assert levels(a, since=moved_at + 1.0)[1000] < -60, "B's voice left room one"
    assert levels(d)[1000] > -25, "B's voice arrived in room two"
    assert levels(b)[3000] > -25 and levels(b)[440] < -60, "B hears room two, on the same PeerConnection"


@pytest.mark.async_timeout(60)
async def test_leave_and_hangup_tell_the_others(audioroom):
    ha, hb, hc = await audioroom.ahandle(), await audioroom.ahandle(), await audioroom.ahandle()
    await ha.arequest({"request": "create", "id": "bye"})
    a, b, c = TonePeer("a", freq=440), TonePeer("b", freq=1000), TonePeer("c", freq=2000)
    await connect(ha, a, {"request": "join", "id": "bye", "userid": 1})
    await connect(hb, b, {"request": "join", "id": "bye", "userid": 2})
    await connect(hc, c, {"request": "join", "id": "bye", "userid": 3})
    await a.wait_receiving()

    assert await hb.arequest({"request": "leave"}) == {"audioroom": "left", "id": "bye", "userid": 2}
    assert await wait_event(ha, lambda d: d.get("leaving") == 2) == {"audioroom": "event", "id": "bye", "leaving": 2}

    await c.close()  # hang-up: the PeerConnection goes, the handle stays
    assert await wait_event(ha, lambda d: d.get("leaving") == 3) == {"audioroom": "event", "id": "bye", "leaving": 3}
    listed = await ha.arequest({"request": "listparticipants", "id": "bye"})
    assert [p["userid"] for p in listed["participants"]] == [1]

    # Destroying the room under A tells A and closes A's PeerConnection.
    assert await hc.arequest({"request": "destroy", "id": "bye"}) == {"audioroom": "destroyed", "id": "bye"}
    assert await wait_event(ha, lambda d: d.get("audioroom") == "destroyed") == {"audioroom": "destroyed", "id": "bye"}
    await ha.await_janus("hangup", timeout=5)


@pytest.mark.async_timeout(60)
async def test_sessions_ending_right_after_their_room_is_destroyed_under_them(audioroom):
    """Destroy closes each PeerConnection; the clients' sessions end at once: Janus stays up."""
    admin = await audioroom.ahandle()
    for n in range(8):
        session = audioroom.session_factory(audioroom.server)
        handle = await session.aattach(PACKAGE)
        await admin.arequest({"request": "create", "id": f"r{n}"})
        peer = TonePeer(f"p{n}")
        await connect(handle, peer, {"request": "join", "id": f"r{n}"})
        await asyncio.sleep(0.2)
        await admin.arequest({"request": "destroy", "id": f"r{n}"})
        await asyncio.to_thread(session.destroy)
        await peer.close()
        assert audioroom.server.alive(), f"Janus died in round {n}"


@pytest.mark.async_timeout(120)
async def test_thirty_peers_vanishing_leave_janus_alive_and_the_room_usable(audioroom_factory):
    room = audioroom_factory(session_timeout=4)
    h = await room.ahandle(keepalive_interval=1.0)
    await h.arequest({"request": "create", "id": "crowd"})
    sessions = [room.session_factory(room.server, keepalive_interval=1.0) for _ in range(30)]
    peers = [TonePeer(f"p{n}", freq=440 + 10 * n, amplitude=0.05) for n in range(30)]

    async def join(n):
        handle = await sessions[n].aattach(PACKAGE)
        await connect(handle, peers[n], {"request": "join", "id": "crowd", "userid": 100 + n})

    for batch in range(0, 30, 10):
        await asyncio.gather(*(join(n) for n in range(batch, batch + 10)))
    listed = await h.arequest({"request": "listparticipants", "id": "crowd"})
    assert len(listed["participants"]) == 30
    await asyncio.sleep(2.0)
    # All vanish mid-stream: no hang-up, no leave, no more keepalives.
    await asyncio.gather(*(p.vanish() for p in peers))
    for session in sessions:
        session.abandon()
    for _ in range(60):
        await asyncio.sleep(0.5)
        listed = await h.arequest({"request": "listparticipants", "id": "crowd"})
        if not listed["participants"]:
            break
    assert listed["participants"] == [], "Janus's session timeout emptied the room"
    assert room.server.alive()

    # The room still works.
    ha, hb = await room.ahandle(keepalive_interval=1.0), await room.ahandle(keepalive_interval=1.0)
    a, b = TonePeer("a", freq=440), TonePeer("b", freq=1000)
    await connect(ha, a, {"request": "join", "id": "crowd"})
    await connect(hb, b, {"request": "join", "id": "crowd"})
    await a.wait_receiving()
    await asyncio.sleep(1.5)
    assert levels(a)[1000] > -25
