"""Operator controls against the real Janus (issue 14): a muted room, a suspended participant,
kick_all, access lists, recording switched off and on, rooms that survive a restart, and every
error row of the new requests, through a handle and through the Admin API.

Sound is judged as a listener would: aiortc peers send tones and the tones they hear are
measured by Goertzel. The events Janus's event handlers get are in test_event_handlers.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from audioroom_fixtures import PACKAGE
from harness import audio
from harness.peer import TonePeer
from test_live_audio import connect, levels, wait_event
from test_recording import read_wav, wait_for


def room_event(handle, key, value):
    """Waits for the room's `{"audioroom": "event", "id", key: value}` on `handle`."""
    return wait_event(handle, lambda d: d.get("audioroom") == "event" and d.get(key) == value
                      and "participants" not in d)


@pytest.mark.async_timeout(90)
async def test_a_muted_room_mixes_only_its_moderators(audioroom):
    ha, hb, hc = await audioroom.ahandle(), await audioroom.ahandle(), await audioroom.ahandle()
    await ha.arequest({"request": "create", "id": "hush", "secret": "s"})
    a, b, c = TonePeer("a", freq=440), TonePeer("b", freq=1000), TonePeer("c", freq=2000)
    # A gives the room's secret when it joins: a moderator.
    await connect(ha, a, {"request": "join", "id": "hush", "userid": 1, "secret": "s"})
    await connect(hb, b, {"request": "join", "id": "hush", "userid": 2})
    await connect(hc, c, {"request": "join", "id": "hush", "userid": 3})
    await asyncio.gather(a.wait_receiving(), b.wait_receiving(), c.wait_receiving())
    await asyncio.sleep(1.5)
    before = levels(a)
    assert before[1000] > -25 and before[2000] > -25, before

    assert await hb.arequest({"request": "mute_room", "id": "hush", "secret": "s"}) == {"audioroom": "success"}
    for h in (ha, hb, hc):
        assert await room_event(h, "muted", True) == {"audioroom": "event", "id": "hush", "muted": True}
    # Unmuting oneself does not get round the room's mute.
    assert (await hb.arequest({"request": "configure", "muted": False}))["result"] == "ok"
    muted_at = a.mark()
    await asyncio.sleep(1.8)
    la, lb, lc = (levels(p, since=muted_at + 0.8) for p in (a, b, c))
    diag = f"A {la} / B {lb} / C {lc}"
    assert la[1000] < -60 and la[2000] < -60, "the moderator hears silence: " + diag
    assert lb[440] > -25 and lb[2000] < -60, "the moderator is heard, nobody else: " + diag
    assert lc[440] > -25 and lc[1000] < -60, diag
    listed = await ha.arequest({"request": "list"})
    assert listed["list"][0]["muted"] is True
    participants = await ha.arequest({"request": "listparticipants", "id": "hush"})
    assert participants["muted"] is True
    assert [p["muted"] for p in participants["participants"]] == [False, False, False]

    assert await ha.arequest({"request": "unmute_room", "id": "hush", "secret": "s"}) == {"audioroom": "success"}
    assert await room_event(hc, "muted", False) == {"audioroom": "event", "id": "hush", "muted": False}
    unmuted_at = a.mark()
    await asyncio.sleep(1.8)
    after = levels(a, since=unmuted_at + 0.8)
    assert after[1000] > -25 and after[2000] > -25, after


@pytest.mark.async_timeout(90)
async def test_a_suspended_participant_neither_hears_nor_is_heard_and_resumes_seamlessly(audioroom):
    ha, hb = await audioroom.ahandle(), await audioroom.ahandle()
    await ha.arequest({"request": "create", "id": "hold", "secret": "s"})
    a, b = TonePeer("a", freq=440), TonePeer("b", freq=1000)
    await connect(ha, a, {"request": "join", "id": "hold", "userid": 1})
    await connect(hb, b, {"request": "join", "id": "hold", "userid": 2})
    await asyncio.gather(a.wait_receiving(), b.wait_receiving())
    await asyncio.sleep(1.5)
    assert levels(a)[1000] > -25 and levels(b)[440] > -25

    suspend = {"request": "suspend", "id": "hold", "userid": 2, "secret": "s"}
    assert await ha.arequest(suspend) == {"audioroom": "success"}
    suspended_at = b.mark()
    for h in (ha, hb):
        assert await room_event(h, "suspended", 2) == {"audioroom": "event", "id": "hold", "suspended": 2}
    await asyncio.sleep(2.0)
    quiet_from = suspended_at + 0.3   # a tick already on its way
    assert [t for t, _, _ in b.rtp_arrivals if t > quiet_from] == [], "B is sent nothing"
    assert levels(a, since=suspended_at + 0.8)[1000] < -60, "nobody hears B"
    listed = await ha.arequest({"request": "listparticipants", "id": "hold"})
    # Still listed, marked; and no longer talking (A, with its tone, is).
    assert [(p["userid"], p["talking"], p.get("suspended")) for p in listed["participants"]] == [
        (1, True, None), (2, False, True)]

    assert await ha.arequest({**suspend, "request": "resume"}) == {"audioroom": "success"}
    resumed_at = b.mark()
    assert await room_event(hb, "resumed", 2) == {"audioroom": "event", "id": "hold", "resumed": 2}
    await asyncio.sleep(2.0)
    assert levels(b, since=resumed_at + 0.8)[440] > -25, "B hears again"
    assert levels(a, since=resumed_at + 0.8)[1000] > -25, "B is heard again"
    # One stream throughout: the sequence numbers go on by one, the clock kept running.
    last = [(s, ts) for t, s, ts in b.rtp_arrivals if t <= quiet_from][-1]
    first = [(s, ts) for t, s, ts in b.rtp_arrivals if t > resumed_at][0]
    assert (first[0] - last[0]) & 0xFFFF == 1, (last, first)
    assert (first[1] - last[1]) & 0xFFFFFFFF >= 48000 * 1.5, "the RTP clock ran while suspended"


@pytest.mark.async_timeout(60)
async def test_kick_all_empties_the_room_and_keeps_it(audioroom):
    ha, hb, hc = await audioroom.ahandle(), await audioroom.ahandle(), await audioroom.ahandle()
    await ha.arequest({"request": "create", "id": "out", "secret": "s"})
    a, b = TonePeer("a", freq=440), TonePeer("b", freq=1000)
    await connect(ha, a, {"request": "join", "id": "out", "userid": 1})
    await connect(hb, b, {"request": "join", "id": "out", "userid": 2})
    await hc.arequest({"request": "join", "id": "out", "userid": 3})   # signalling only
    assert audioroom.admin({"request": "kick_all", "id": "out", "secret": "s"}) == {"audioroom": "success"}
    for h, userid in ((ha, 1), (hb, 2), (hc, 3)):
        kicked = await wait_event(h, lambda d: "kicked" in d)
        assert kicked == {"audioroom": "event", "id": "out", "kicked": userid, "kicked_all": userid}
    await ha.await_janus("hangup", timeout=5)
    await hb.await_janus("hangup", timeout=5)
    listed = await hc.arequest({"request": "listparticipants", "id": "out"})
    assert listed["participants"] == []
    assert (await hc.arequest({"request": "exists", "id": "out"}))["exists"] is True
    assert (await hc.arequest({"request": "leave"}))["error_code"] == 487


def test_allowed_admits_listed_tokens_only(audioroom):
    h, guest = audioroom.handle(), audioroom.handle()
    h.request({"request": "create", "id": "vip", "secret": "s"})
    h.request({"request": "create", "id": "lobby"})
    enabled = audioroom.admin({"request": "allowed", "id": "vip", "secret": "s", "action": "enable"})
    assert enabled == {"audioroom": "success", "id": "vip", "check_tokens": True, "allowed": []}
    added = h.request({"request": "allowed", "id": "vip", "secret": "s", "action": "add",
                       "allowed": ["gold", "silver"]})
    assert added["allowed"] == ["gold", "silver"]
    for body in ({"request": "join", "id": "vip"}, {"request": "join", "id": "vip", "token": "bronze"}):
        refused = guest.request(body)
        assert refused == {"audioroom": "event", "error_code": 489,
                           "error": "Unauthorized (not in the allowed list)"}, refused
    assert guest.request({"request": "join", "id": "lobby"})["audioroom"] == "joined"
    assert guest.request({"request": "changeroom", "id": "vip"})["error_code"] == 489
    moved = guest.request({"request": "changeroom", "id": "vip", "token": "silver"})
    assert moved["audioroom"] == "roomchanged", moved
    listed = audioroom.admin({"request": "list"})["list"]
    vip = next(r for r in listed if r["id"] == "vip")
    assert (vip["check_tokens"], vip["allowed"], vip["num_participants"]) == (True, ["gold", "silver"], 1)
    assert "allowed" not in next(r for r in h.request({"request": "list"})["list"] if r["id"] == "vip")


@pytest.mark.async_timeout(60)
async def test_recording_off_then_on_leaves_two_wavs_with_their_own_tones(audioroom):
    ha = await audioroom.ahandle()
    await ha.arequest({"request": "create", "id": "rec", "secret": "s"})
    a = TonePeer("a", freq=440)
    await connect(ha, a, {"request": "join", "id": "rec"})
    await asyncio.sleep(2.5)
    stop = {"request": "enable_recording", "id": "rec", "secret": "s", "record": False}
    assert await ha.arequest(stop) == {"audioroom": "success", "id": "rec", "record": False}
    assert await room_event(ha, "recording", "stopped") == {"audioroom": "event", "id": "rec", "recording": "stopped"}
    first_jobs = await asyncio.to_thread(wait_for, audioroom.jobs_json, 10, "the first job file")
    assert (await ha.arequest({"request": "list"}))["list"][0]["record"] is False
    a.set_tone(freq=1000)
    await asyncio.sleep(1.0)    # the new tone has reached the mixer
    assert await ha.arequest({**stop, "record": True}) == {"audioroom": "success", "id": "rec", "record": True}
    assert await room_event(ha, "recording", "started") == {"audioroom": "event", "id": "rec", "recording": "started"}
    await asyncio.sleep(2.5)
    await ha.arequest({"request": "destroy", "id": "rec", "secret": "s"})
    jobs = await asyncio.to_thread(wait_for, lambda: len(audioroom.jobs_json()) == 2 and audioroom.jobs_json(),
                                   10, "the second job file")
    jobs.sort(key=lambda j: j["data"]["started"])
    assert jobs[0] == first_jobs[0]
    assert jobs[0]["data"]["uid"] != jobs[1]["data"]["uid"]
    assert len(audioroom.wavs()) == 2
    for job, (tone, other) in zip(jobs, [(440, 1000), (1000, 440)]):
        rate, samples = read_wav(Path(job["data"]["audio"]))
        assert job["data"]["duration_ms"] == len(samples) * 1000 // rate
        assert 2000 <= job["data"]["duration_ms"] <= 8000, job
        heard = audio.tone_levels(samples[rate // 2:], rate, [tone, other])
        assert heard[tone] > -25 and heard[other] < heard[tone] - 30, (job, heard)


def test_a_permanent_room_survives_a_restart_and_a_plain_one_does_not(audioroom):
    h = audioroom.handle()
    made = h.request({"request": "create", "id": "Café ☕", "permanent": True, "sampling": 16000,
                      "description": "Réunion ☕ \"9h\"", "secret": "s", "pin": "1234", "allowed": ["t"]})
    assert made == {"audioroom": "created", "id": "Café ☕", "permanent": True}
    assert h.request({"request": "create", "id": "brief"}) == {"audioroom": "created", "id": "brief"}
    saved = audioroom.server.conf_dir / f"{PACKAGE}.jcfg"
    text = saved.read_text()
    assert "room-_43af_c3_a9_20_e2_98_95" in text and "brief" not in text, text
    assert f'archive_path = "{audioroom.archive}"' in text, "the general section is kept"

    assert audioroom.server.restart() == 0
    h = audioroom.handle()
    listed = {r["id"]: r for r in audioroom.admin({"request": "list"})["list"]}
    assert list(listed) == ["Café ☕"], listed
    assert listed["Café ☕"] == {
        "id": "Café ☕", "description": "Réunion ☕ \"9h\"", "sampling_rate": 16000, "pin_required": True,
        "muted": False, "record": True, "num_participants": 0, "check_tokens": True, "allowed": ["t"],
        "forwarders": []}
    assert h.request({"request": "join", "id": "Café ☕", "pin": "1234"})["error_code"] == 489
    assert h.request({"request": "join", "id": "Café ☕", "pin": "1234", "token": "t"})["audioroom"] == "joined"
    edited = h.request({"request": "edit", "id": "Café ☕", "secret": "s", "new_description": "Retro",
                        "permanent": True})
    assert edited == {"audioroom": "edited", "id": "Café ☕", "permanent": True}
    assert 'description = "Retro"' in saved.read_text()
    gone = h.request({"request": "destroy", "id": "Café ☕", "secret": "s", "permanent": True})
    assert gone == {"audioroom": "destroyed", "id": "Café ☕", "permanent": True}
    assert "room-_43af" not in saved.read_text()


def test_hand_written_room_sections_are_loaded_and_bad_ones_logged(audioroom_factory):
    room = audioroom_factory(extra_configs={})
    config = room.server.conf_dir / f"{PACKAGE}.jcfg"
    config.write_text(config.read_text() + (
        'room-lobby: {\n\tdescription = "Lobby"\n\tsampling_rate = 8000\n\tmix_all = true\n}\n'
        'room-bad: {\n\tsampling_rate = 44100\n}\n'
        'forwarders: {\n\thost = "x"\n}\n'))
    assert room.server.restart() == 0
    listed = room.admin({"request": "list"})["list"]
    assert [(r["id"], r["description"], r["sampling_rate"]) for r in listed] == [("lobby", "Lobby", 8000)]
    log = room.server.log_text()
    assert ("section room-bad ignored: Invalid element (sampling_rate should be 8000, 12000, "
            "16000, 24000 or 48000)") in log
    assert "section forwarders ignored: not a room section" in log


# (request body, code, reason, also through the Admin API)
ERRORS = [
    ({"request": "kick_all"}, 483, "Missing element (id)", True),
    ({"request": "kick_all", "id": 5}, 484, "Invalid element (id should be a string)", True),
    ({"request": "kick_all", "id": "nope"}, 485, "No such room (nope)", True),
    ({"request": "kick_all", "id": "locked"}, 489, "Unauthorized (wrong secret)", True),
    ({"request": "kick_all", "id": "locked", "secret": 5}, 484, "Invalid element (secret should be a string)", True),
    ({"request": "mute_room"}, 483, "Missing element (id)", True),
    ({"request": "mute_room", "id": "nope"}, 485, "No such room (nope)", True),
    ({"request": "mute_room", "id": "locked", "secret": "wrong"}, 489, "Unauthorized (wrong secret)", True),
    ({"request": "unmute_room", "id": "nope"}, 485, "No such room (nope)", True),
    ({"request": "unmute_room", "id": "locked"}, 489, "Unauthorized (wrong secret)", True),
    ({"request": "suspend", "id": "taken"}, 483, "Missing element (userid)", True),
    ({"request": "suspend", "id": "taken", "userid": 0}, 484,
     "Invalid element (userid should be a positive integer below 2^53)", True),
    ({"request": "suspend", "id": "nope", "userid": 1}, 485, "No such room (nope)", True),
    ({"request": "suspend", "id": "locked", "userid": 1}, 489, "Unauthorized (wrong secret)", True),
    ({"request": "suspend", "id": "taken", "userid": 9}, 492, "No such user (9) in room taken", True),
    ({"request": "resume", "id": "taken"}, 483, "Missing element (userid)", True),
    ({"request": "resume", "id": "taken", "userid": 9}, 492, "No such user (9) in room taken", True),
    ({"request": "allowed", "id": "taken"}, 483, "Missing element (action)", True),
    ({"request": "allowed", "id": "taken", "action": 1}, 484, "Invalid element (action should be a string)", True),
    ({"request": "allowed", "id": "taken", "action": "Enable"}, 484,
     "Invalid element (action should be enable, disable, add or remove)", True),
    ({"request": "allowed", "id": "taken", "action": "add"}, 483, "Missing element (allowed)", True),
    ({"request": "allowed", "id": "taken", "action": "add", "allowed": "t"}, 484,
     "Invalid element (allowed should be an array of strings)", True),
    ({"request": "allowed", "id": "taken", "action": "remove", "allowed": [1]}, 484,
     "Invalid element (allowed should be an array of strings)", True),
    ({"request": "allowed", "id": "taken", "action": "enable", "permanent": "yes"}, 484,
     "Invalid element (permanent should be a boolean)", True),
    ({"request": "allowed", "id": "nope", "action": "enable"}, 485, "No such room (nope)", True),
    ({"request": "allowed", "id": "locked", "action": "enable"}, 489, "Unauthorized (wrong secret)", True),
    ({"request": "enable_recording", "id": "taken"}, 483, "Missing element (record)", True),
    ({"request": "enable_recording", "id": "taken", "record": "no"}, 484,
     "Invalid element (record should be a boolean)", True),
    ({"request": "enable_recording", "id": "taken", "record": True, "recording_pattern": 5}, 484,
     "Invalid element (recording_pattern should be a string)", True),
    ({"request": "enable_recording", "id": "taken", "record": True, "recording_pattern": "a/../../x"}, 484,
     "Invalid element (recording_pattern should be a relative file name without .. components or control characters)", True),
    ({"request": "enable_recording", "id": "nope", "record": True}, 485, "No such room (nope)", True),
    ({"request": "enable_recording", "id": "locked", "record": False}, 489, "Unauthorized (wrong secret)", True),
    ({"request": "create", "id": "new", "allowed": "t"}, 484, "Invalid element (allowed should be an array of strings)", True),
    ({"request": "create", "id": "new", "recording_pattern": "/tmp/x"}, 484,
     "Invalid element (recording_pattern should be a relative file name without .. components or control characters)", True),
    ({"request": "create", "id": "new", "permanent": 1}, 484, "Invalid element (permanent should be a boolean)", True),
    ({"request": "edit", "id": "taken", "permanent": "yes"}, 484, "Invalid element (permanent should be a boolean)", True),
    ({"request": "destroy", "id": "taken", "permanent": 0}, 484, "Invalid element (permanent should be a boolean)", True),
    ({"request": "join", "id": "taken", "token": 5}, 484, "Invalid element (token should be a string)", False),
    ({"request": "join", "id": "taken", "secret": 5}, 484, "Invalid element (secret should be a string)", False),
    ({"request": "join", "id": "locked", "secret": "wrong"}, 489, "Unauthorized (wrong secret)", False),
    ({"request": "join", "id": "guarded"}, 489, "Unauthorized (not in the allowed list)", False),
    ({"request": "join", "id": "guarded", "token": "nope"}, 489, "Unauthorized (not in the allowed list)", False),
]


def test_every_error_row_of_the_operator_controls(audioroom):
    h = audioroom.handle()
    h.request({"request": "create", "id": "taken"})
    h.request({"request": "create", "id": "locked", "secret": "s3cret"})
    h.request({"request": "create", "id": "guarded", "allowed": ["t"]})
    h.request({"request": "join", "id": "taken", "userid": 1})
    before = audioroom.admin({"request": "list"})
    for body, code, reason, admin_too in ERRORS:
        replies = [h.request(body)] + ([audioroom.admin(body)] if admin_too else [])
        for reply in replies:
            assert reply == {"audioroom": "event", "error_code": code, "error": reason}, (body, reply)
    # Nothing was disturbed: the same rooms, settings, participants and recordings.
    assert audioroom.admin({"request": "list"}) == before
    assert h.request({"request": "listparticipants", "id": "taken"})["participants"] == [
        {"userid": 1, "setup": False, "muted": False, "talking": False}]
    time.sleep(0.2)
    assert audioroom.job_files() == []
