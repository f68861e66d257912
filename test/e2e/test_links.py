"""One room across several real Janus servers (issue 18): links made by test/tester.py's own
code (`link_servers`, what `tester.py link --from A --to B` runs) between Janus processes in the
harness namespace, WebRTC peers on each server, and what a user would check: each tone heard on
the other server and never back at its source, a stopped voice gone everywhere (no echo loop),
the links as `listparticipants` and `list` show them, the events when the far server dies, and
the origin's recording holding every server's voices."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from harness import audio
from harness.peer import TonePeer
from test_live_audio import connect
from test_recording import read_wav, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import tester  # noqa: E402  (test/tester.py: the operator's tool under test)

RATE = 48000
HEARD, ABSENT = -25.0, -45.0  # dB re a full-scale sine; the peers send -10.5 dB
A_TONE, B_TONE = 440, 1000


async def link(origin, edge, room: str, link_id: str, **options) -> dict:
    """`tester.py link --from origin --to edge room --link-id link_id` (in a thread: it blocks)."""
    summary = await asyncio.to_thread(tester.link_servers, origin.server.url, edge.server.url, room,
                                      link_id=link_id, **options)
    assert summary["audioroom"] == "linked", summary
    return summary


def levels(peer: TonePeer, since: float, until: float) -> dict:
    samples = peer.received(since=since, until=until)
    assert len(samples) > RATE * 0.5 * (until - since), f"{peer} received only {len(samples)} samples"
    return audio.tone_levels(samples, RATE, [A_TONE, B_TONE])


async def phase(seconds: float) -> tuple[float, float]:
    """Waits `seconds`; returns the window to judge it by (monotonic): its last 60 %, after
    the mixes across the hops have settled."""
    start = time.monotonic()
    await asyncio.sleep(seconds)
    return start + 0.4 * seconds, time.monotonic()


def links_listed(listing: dict) -> list[dict]:
    return [p for p in listing["participants"] if p.get("link")]


@pytest.mark.async_timeout(90)
async def test_two_linked_servers_hear_each_other_never_themselves_and_the_origin_records_both(
        audioroom_factory):
    a_server, b_server = audioroom_factory(), audioroom_factory()
    assert a_server.archive != b_server.archive and a_server.jobs != b_server.jobs
    summary = await link(a_server, b_server, "town", "a-b")
    assert summary["from"]["created"] and summary["to"]["created"], summary
    ha, hb = await a_server.ahandle(), await b_server.ahandle()
    a, b = TonePeer("a", freq=A_TONE), TonePeer("b", freq=B_TONE, silent=True)
    await connect(ha, a, {"request": "join", "id": "town", "display": "A"})
    await connect(hb, b, {"request": "join", "id": "town", "display": "B"})
    await asyncio.gather(a.wait_receiving(), b.wait_receiving())

    # 1. Only A talks: B hears A's tone, A does not hear itself back.
    wall_1 = time.time()
    since, until = await phase(2.5)
    la, lb = levels(a, since, until), levels(b, since, until)
    assert lb[A_TONE] > HEARD, f"B hears A across the link: {lb}"
    assert la[A_TONE] < ABSENT, f"A's tone does not come back to A: {la}"
    # 2. Both talk: each hears the other, and not itself.
    b.set_tone(B_TONE, 0.3)
    wall_2 = time.time()
    since, until = await phase(2.5)
    la, lb = levels(a, since, until), levels(b, since, until)
    assert la[B_TONE] > HEARD and la[A_TONE] < ABSENT, f"A: {la}"
    assert lb[A_TONE] > HEARD and lb[B_TONE] < ABSENT, f"B: {lb}"
    # 3. A stops: its tone is gone everywhere (nothing circulates between the servers).
    a.set_silence()
    wall_3 = time.time()
    since, until = await phase(2.5)
    la, lb = levels(a, since, until), levels(b, since, until)
    assert la[A_TONE] < ABSENT and lb[A_TONE] < ABSENT, f"A's tone lingers: A {la} / B {lb}"
    assert la[B_TONE] > HEARD, f"A still hears B: {la}"

    # Each server lists its end of the link, up, and counts only its people.
    ends = {}
    for server, handle, other, upstream in ((a_server, ha, b_server, False), (b_server, hb, a_server, True)):
        listing = await handle.arequest({"request": "listparticipants", "id": "town"})
        [end] = links_listed(listing)
        assert {k: end[k] for k in ("link", "link_id", "upstream", "setup", "state", "peer")} == {
            "link": True, "link_id": "a-b", "upstream": upstream, "setup": True, "state": "up",
            "peer": other.server.url}, end
        assert [p["display"] for p in listing["participants"] if not p.get("link")] == [
            "A" if server is a_server else "B"]
        rooms = await handle.arequest({"request": "list"})
        assert [(r["id"], r["num_participants"]) for r in rooms["list"]] == [("town", 1)], rooms
        ends[server is a_server] = end
    a_rtp, b_rtp = summary["from"]["rtp"], summary["to"]["rtp"]
    assert ends[True]["rtp"] == {"local": f"{a_rtp['ip']}:{a_rtp['port']}",
                                 "remote": f"{b_rtp['ip']}:{b_rtp['port']}", "payload_type": 100}
    assert ends[False]["rtp"] == {"local": f"{b_rtp['ip']}:{b_rtp['port']}",
                                  "remote": f"{a_rtp['ip']}:{a_rtp['port']}", "payload_type": 100}

    # The origin recorded (the tool's default), the edge did not: A's WAV has both tones,
    # each when it was played.
    assert (await ha.arequest({"request": "destroy", "id": "town"}))["audioroom"] == "destroyed"
    wall_end = time.time()
    assert (await hb.arequest({"request": "destroy", "id": "town"}))["audioroom"] == "destroyed"
    jobs = await asyncio.to_thread(wait_for, a_server.jobs_json, 10, "the origin's job file")
    [job] = jobs
    rate, samples = read_wav(Path(job["data"]["audio"]))
    end = len(samples)

    def recorded(start_wall: float, stop_wall: float) -> dict:
        # Counted back from the WAV's end (the destroy): the room was occupied throughout.
        lo, hi = (end - int((wall_end - t) * rate) for t in (start_wall, stop_wall))
        assert lo >= 0, "the WAV covers the whole call"
        return audio.tone_levels(samples[lo:hi], rate, [A_TONE, B_TONE])

    only_a = recorded(wall_1 + 1.0, wall_2 - 0.2)
    both = recorded(wall_2 + 1.0, wall_3 - 0.2)
    only_b = recorded(wall_3 + 1.0, wall_end - 0.2)
    diag = f"A alone {only_a} / both {both} / B alone {only_b}"
    assert only_a[A_TONE] > HEARD and only_a[B_TONE] < ABSENT, diag
    assert both[A_TONE] > HEARD and both[B_TONE] > HEARD, diag
    assert only_b[B_TONE] > HEARD and only_b[A_TONE] < ABSENT, diag
    await asyncio.sleep(0.5)
    assert b_server.wavs() == [] and b_server.job_files() == [], (b_server.wavs(), b_server.job_files())


@pytest.mark.async_timeout(90)
async def test_a_chain_of_three_servers_carries_each_end_to_the_other(audioroom_factory):
    # A <- B <- C: B's room is upstream-linked to A, C's to B.
    a_server, b_server, c_server = audioroom_factory(), audioroom_factory(), audioroom_factory()
    await link(a_server, b_server, "chain", "a-b")
    second = await link(b_server, c_server, "chain", "b-c")
    assert not second["from"]["created"] and second["to"]["created"], second
    ha, hb, hc = await a_server.ahandle(), await b_server.ahandle(), await c_server.ahandle()
    a, b, c = TonePeer("a", freq=A_TONE), TonePeer("b", silent=True), TonePeer("c", freq=B_TONE)
    await connect(ha, a, {"request": "join", "id": "chain"})
    await connect(hb, b, {"request": "join", "id": "chain"})
    await connect(hc, c, {"request": "join", "id": "chain"})
    await asyncio.gather(a.wait_receiving(), b.wait_receiving(), c.wait_receiving())
    since, until = await phase(3.0)
    la, lb, lc = (levels(p, since, until) for p in (a, b, c))
    diag = f"A {la} / B {lb} / C {lc}"
    assert la[B_TONE] > HEARD and la[A_TONE] < ABSENT, "A hears C two hops away, not itself: " + diag
    assert lc[A_TONE] > HEARD and lc[B_TONE] < ABSENT, "C hears A two hops away, not itself: " + diag
    assert lb[A_TONE] > HEARD and lb[B_TONE] > HEARD, "B, in the middle, hears both: " + diag
    listing = await hb.arequest({"request": "listparticipants", "id": "chain"})
    assert sorted((e["link_id"], e["upstream"], e["state"]) for e in links_listed(listing)) == [
        ("a-b", True, "up"), ("b-c", False, "up")], listing


@pytest.mark.async_timeout(60)
async def test_when_the_far_server_dies_the_room_hears_the_link_stall_then_go(audioroom_factory):
    a_server, b_server = audioroom_factory(), audioroom_factory(check_exit=False)
    ha = await a_server.ahandle()
    await ha.arequest({"request": "create", "id": "r"})
    joined = await ha.arequest({"request": "join", "id": "r", "display": "A"})
    assert joined["audioroom"] == "joined", joined
    await link(a_server, b_server, "r", "x", timeout=2)

    def told(what):
        return lambda d: d.get("link_id") == "x" and d.get("link") == what

    up, _ = await ha.await_event(told("up"), timeout=5)
    assert up == {"audioroom": "event", "id": "r", "link_id": "x", "link": "up"}
    b_server.server.kill()  # SIGKILL: nothing says goodbye
    stalled, _ = await ha.await_event(told("stalled"), timeout=5)
    assert stalled == {"audioroom": "event", "id": "r", "link_id": "x", "link": "stalled"}
    listing = await ha.arequest({"request": "listparticipants", "id": "r"})
    assert [(e["link_id"], e["state"]) for e in links_listed(listing)] == [("x", "stalled")], listing
    removed, _ = await ha.await_event(told("removed"), timeout=5)
    assert removed == {"audioroom": "event", "id": "r", "link_id": "x", "link": "removed", "reason": "timeout"}
    listing = await ha.arequest({"request": "listparticipants", "id": "r"})
    assert links_listed(listing) == [] and [p["display"] for p in listing["participants"]] == ["A"]
    gone = await ha.arequest({"request": "unlink", "id": "r", "link_id": "x"})
    assert gone == {"audioroom": "event", "error_code": 497, "error": "No such link (x) in room r"}
