"""The synchronous room API over the real Janus HTTP and Admin APIs (SPEC §3 and §7).

What an operator checks with tester.py: rooms named by any string, exact replies, exact error
codes, a thousand rooms, garbage that never takes Janus down, and a plugin that exports only
`create`.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests

from audioroom_fixtures import PACKAGE
from harness.client import JanusError
from harness.janus import JanusServer, JanusStartupError

IDS = ["café ☕", "r" * 200, "../../etc/passwd", "a/b", ".hidden", "日本語 ルーム"]


@pytest.mark.parametrize("room_id", IDS)
def test_room_lifecycle_with_any_string_id(audioroom, room_id):
    h = audioroom.handle()
    assert h.request({"request": "create", "id": room_id, "description": "d", "sampling": 16000}) == {
        "audioroom": "created", "id": room_id}
    assert h.request({"request": "exists", "id": room_id}) == {"audioroom": "success", "id": room_id, "exists": True}
    listed = h.request({"request": "list"})
    assert listed["audioroom"] == "success"
    assert {"id": room_id, "description": "d", "sampling_rate": 16000, "record": True,
            "pin_required": False, "muted": False, "num_participants": 0} in listed["list"]
    assert h.request({"request": "listparticipants", "id": room_id}) == {
        "audioroom": "participants", "id": room_id, "muted": False, "record": True, "participants": []}
    assert h.request({"request": "destroy", "id": room_id}) == {"audioroom": "destroyed", "id": room_id}
    assert h.request({"request": "exists", "id": room_id})["exists"] is False
    # A room that never had a participant leaves no recording and no job.
    assert audioroom.wavs() == [] and audioroom.job_files() == []


def test_the_same_requests_work_through_the_admin_api(audioroom):
    assert audioroom.admin({"request": "create", "id": "café ☕", "is_private": True}) == {
        "audioroom": "created", "id": "café ☕"}
    # Operators see private rooms; clients do not.
    assert [r["id"] for r in audioroom.admin({"request": "list"})["list"]] == ["café ☕"]
    assert audioroom.handle().request({"request": "list"})["list"] == []
    assert audioroom.admin({"request": "exists", "id": "café ☕"})["exists"] is True
    assert audioroom.admin({"request": "listparticipants", "id": "café ☕"})["participants"] == []
    assert audioroom.admin({"request": "join", "id": "café ☕"})["error_code"] == 482
    assert audioroom.admin({"request": "destroy", "id": "café ☕"})["audioroom"] == "destroyed"
    assert audioroom.admin({"request": "exists", "id": 5}) == {
        "audioroom": "event", "error_code": 484, "error": "Invalid element (id should be a string)"}


def test_create_defaults_and_options(audioroom):
    h = audioroom.handle()
    made = h.request({"request": "create"})
    assert made["audioroom"] == "created" and isinstance(made["id"], str) and made["id"]
    room = next(r for r in h.request({"request": "list"})["list"] if r["id"] == made["id"])
    assert room["sampling_rate"] == 48000 and room["record"] is True
    h.request({"request": "create", "id": "quiet", "record": False, "sampling": 8000})
    room = next(r for r in h.request({"request": "list"})["list"] if r["id"] == "quiet")
    assert room == {"id": "quiet", "description": "Room quiet", "sampling_rate": 8000, "record": False,
                    "pin_required": False, "muted": False, "num_participants": 0}
    assert h.request({"request": "edit", "id": "quiet", "new_description": "hush"})["audioroom"] == "edited"
    assert next(r for r in h.request({"request": "list"})["list"] if r["id"] == "quiet")["description"] == "hush"


ERRORS = [
    ({}, 483, "Missing element (request)"),
    ({"request": 5}, 484, "Invalid element (request should be a string)"),
    ({"request": "bogus"}, 482, "Unknown request (bogus)"),
    ({"request": "create", "id": 5}, 484, "Invalid element (id should be a string)"),
    ({"request": "create", "id": ""}, 484, "Invalid element (id should be a string of 1 to 256 bytes without control characters)"),
    ({"request": "create", "id": "x" * 257}, 484, None),
    ({"request": "create", "id": "tab\there"}, 484, None),
    ({"request": "create", "id": "ok", "sampling": 44100}, 484, "Invalid element (sampling should be 8000, 12000, 16000, 24000 or 48000)"),
    ({"request": "create", "id": "ok", "sampling": "48000"}, 484, None),
    ({"request": "create", "id": "ok", "is_private": "yes"}, 484, "Invalid element (is_private should be a boolean)"),
    ({"request": "create", "id": "ok", "description": 1}, 484, "Invalid element (description should be a string)"),
    ({"request": "create", "id": "taken"}, 486, None),
    ({"request": "destroy"}, 483, "Missing element (id)"),
    ({"request": "destroy", "id": "nope"}, 485, None),
    ({"request": "destroy", "id": "locked", "secret": "wrong"}, 489, None),
    ({"request": "destroy", "id": "locked"}, 489, None),
    ({"request": "edit", "id": "locked", "new_description": "x"}, 489, None),
    ({"request": "exists"}, 483, "Missing element (id)"),
    ({"request": "exists", "id": ["x"]}, 484, "Invalid element (id should be a string)"),
    ({"request": "listparticipants", "id": "nope"}, 485, None),
    ({"request": "listparticipants", "id": 1.5}, 484, None),
    ({"request": "resetdecoder"}, 487, None),
    ({"request": "kick", "id": "taken", "userid": 5}, 492, None),
    ({"request": "mute", "id": "taken", "userid": 0}, 484, "Invalid element (userid should be a positive integer below 2^53)"),
    ({"request": "unmute", "id": "taken"}, 483, "Missing element (userid)"),
    # Asynchronous requests answer with the error as their event.
    ({"request": "join", "id": "nope"}, 485, None),
    ({"request": "join"}, 483, "Missing element (id)"),
    ({"request": "join", "id": "taken", "muted": 1}, 484, "Invalid element (muted should be a boolean)"),
    ({"request": "join", "id": "taken", "quality": 11}, 484, "Invalid element (quality should be an integer from 0 to 10)"),
    ({"request": "join", "id": "taken", "rtp": {"ip": "127.0.0.1", "port": 5000}}, 489, None),
    ({"request": "join", "id": "locked", "pin": "wrong"}, 489, None),
    ({"request": "configure", "muted": True}, 487, None),
    ({"request": "changeroom", "id": "taken"}, 487, None),
    ({"request": "leave"}, 487, None),
]


@pytest.mark.parametrize("body,code,reason", ERRORS, ids=[f"{b.get('request')}-{c}" for b, c, _ in ERRORS])
def test_every_error_row(audioroom, body, code, reason):
    h = audioroom.handle()
    h.request({"request": "create", "id": "taken"})
    h.request({"request": "create", "id": "locked", "secret": "s3cret", "pin": "1234"})
    reply = h.request(body)
    assert reply["audioroom"] == "event" and reply["error_code"] == code, reply
    if reason is not None:
        assert reply["error"] == reason
    # The failed request disturbed nothing.
    assert sorted(r["id"] for r in h.request({"request": "list"})["list"]) == ["locked", "taken"]


def test_join_errors_that_need_a_participant(audioroom):
    a, b = audioroom.handle(), audioroom.handle()
    a.request({"request": "create", "id": "room"})
    assert a.request({"request": "join", "id": "room", "userid": 7})["audioroom"] == "joined"
    assert a.request({"request": "join", "id": "room"})["error_code"] == 491
    assert b.request({"request": "join", "id": "room", "userid": 7})["error_code"] == 490
    # Janus itself refuses SDP it cannot parse; valid SDP the plugin cannot mix is 493.
    with pytest.raises(JanusError):
        b.request({"request": "join", "id": "room"}, jsep={"type": "offer", "sdp": "this is not SDP"})
    # (PCMU and PCMA are taken since issue 15; G.722 is not.)
    reply = b.request({"request": "join", "id": "room"}, jsep={"type": "offer", "sdp": offer_sdp("9", "G722/8000")})
    assert reply["error_code"] == 493 and reply["error"] == "The SDP offer has no Opus, PCMU or PCMA audio", reply
    assert a.request({"request": "listparticipants", "id": "room"})["participants"][0]["userid"] == 7
    assert a.request({"request": "changeroom", "id": "room"})["error_code"] == 491
    assert a.request({"request": "changeroom", "id": "nope"})["error_code"] == 485
    assert a.request({"request": "kick", "id": "room", "userid": 8})["error_code"] == 492
    assert a.request({"request": "listparticipants", "id": "room"})["participants"] == [
        {"userid": 7, "setup": False, "muted": False, "talking": False}]


def offer_sdp(payload_types: str, rtpmap: str) -> str:
    """A minimal WebRTC audio offer with the given payload types (the first one's rtpmap)."""
    lines = [
        "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
        f"m=audio 9 UDP/TLS/RTP/SAVPF {payload_types}", "c=IN IP4 0.0.0.0", "a=mid:0", "a=sendrecv",
        "a=rtcp-mux", f"a=rtpmap:{payload_types.split()[0]} {rtpmap}", "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx", "a=setup:actpass",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
    ]
    return "\r\n".join(lines) + "\r\n"


def test_admin_key_guards_create(audioroom_factory):
    room = audioroom_factory(config={"admin_key": "k3y"})
    h = room.handle()
    assert h.request({"request": "create", "id": "x"})["error_code"] == 483
    assert h.request({"request": "create", "id": "x", "admin_key": "nope"})["error_code"] == 489
    assert h.request({"request": "create", "id": "x", "admin_key": "k3y"})["audioroom"] == "created"
    # The Admin API is authenticated by Janus already.
    assert room.admin({"request": "create", "id": "y"})["audioroom"] == "created"


def test_legacy_cfg_is_read_when_no_jcfg_exists(audioroom_factory):
    room = audioroom_factory(config={"admin_key": "legacy", "recording_enabled": False}, legacy=True)
    h = room.handle()
    assert h.request({"request": "create", "id": "x"})["error_code"] == 483
    h.request({"request": "create", "id": "x", "admin_key": "legacy"})
    assert h.request({"request": "list"})["list"][0]["record"] is False


def test_a_thousand_rooms(audioroom):
    h = audioroom.handle()
    http = requests.Session()
    for n in range(1000):
        body = {"janus": "message", "transaction": f"t{n}", "body": {"request": "create", "id": f"room-{n:04d}"}}
        reply = http.post(h.url, json=body, timeout=10).json()
        assert reply["plugindata"]["data"]["audioroom"] == "created", reply
    listed = h.request({"request": "list"})["list"]
    assert [r["id"] for r in listed] == [f"room-{n:04d}" for n in range(1000)]


def test_a_burst_of_malformed_messages_leaves_janus_answering(audioroom):
    h = audioroom.handle()
    h.request({"request": "create", "id": "survivor"})
    junk = [
        {"request": None}, {"request": ["create"]}, {"request": {"x": 1}}, {"request": "create", "id": None},
        {"request": "create", "id": "\u0000"}, {"request": "create", "id": "x" * 100000},
        {"request": "create", "id": "ok", "sampling": -1}, {"request": "create", "id": "ok", "sampling": 1e308},
        {"request": "join", "id": "survivor", "userid": -5}, {"request": "join", "id": "survivor", "userid": 2 ** 64},
        {"request": "join", "id": "survivor", "rtp": "x"}, {"request": "kick", "id": "survivor", "userid": "1"},
        {"request": "configure", "volume": "loud"}, {"request": "\ud83d\ude00" * 50},
        {"request": "list", "nested": {"deep": [[[[[[[[[[]]]]]]]]]]}},
        {"request": "destroy", "id": "survivor", "secret": 12},
    ]
    http = requests.Session()
    for n in range(200):
        body = {"janus": "message", "transaction": f"junk{n}", "body": junk[n % len(junk)]}
        http.post(h.url, json=body, timeout=10)
    # Raw garbage that is not even JSON reaches Janus's parser, not ours, but must not hurt.
    for n in range(20):
        http.post(h.url, data=b"{\"janus\":\"message\",\"body\":{\"request\":" + bytes([n]) * 10, timeout=10)
    assert audioroom.server.alive()
    assert h.request({"request": "exists", "id": "survivor"})["exists"] is True
    assert audioroom.handle().request({"request": "create", "id": "after"})["audioroom"] == "created"


def test_sessions_ending_right_after_their_room_is_destroyed(audioroom):
    """Regression: a handle reference taken in create_session (before Janus initialises the
    count) once made Janus free handles early and crash here."""
    admin = audioroom.handle()
    for n in range(30):
        session = audioroom.session_factory(audioroom.server)
        handle = session.attach(PACKAGE)
        admin.request({"request": "create", "id": f"r{n}"})
        handle.request({"request": "join", "id": f"r{n}"})
        admin.request({"request": "destroy", "id": f"r{n}"})
        session.destroy()
        assert audioroom.server.alive(), f"Janus died in round {n}"


def test_only_create_is_exported(audioroom_plugin_path):
    out = subprocess.run(["nm", "-D", "--defined-only", str(audioroom_plugin_path)],
                         capture_output=True, text=True, check=True).stdout
    symbols = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert symbols == ["create"], symbols


def test_an_unusable_archive_folder_fails_init_with_a_clear_log_line(tmp_path, audioroom_plugin_path, e2e_net):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the archive folder should be")
    config = ("general: {\n"
              f"\tarchive_path = \"{blocker}/recordings\"\n"
              f"\tjob_path = \"{tmp_path}/jobs\"\n"
              "}\n")
    server = JanusServer([audioroom_plugin_path], {f"{PACKAGE}.jcfg": config}, ice_address=e2e_net.janus_addr)
    try:
        with pytest.raises(JanusStartupError, match="only 0 of 1 plugins loaded"):
            server.start(attempts=1)
        assert f"archive_path {blocker}/recordings cannot be used" in server.log_text()
    finally:
        server.cleanup()


def test_stats_show_rooms_and_mixer_punctuality_to_operators_only(audioroom):
    h = audioroom.handle()
    assert h.request({"request": "stats"})["error_code"] == 482
    h.request({"request": "create", "id": "busy"})
    h.request({"request": "join", "id": "busy"})
    audioroom.handle().request({"request": "create", "id": "idle"})
    time.sleep(1.0)
    stats = audioroom.admin({"request": "stats"})
    assert (stats["audioroom"], stats["rooms"], stats["participants"]) == ("success", 2, 1)
    assert stats["recorder"] == {"dropped_frames": 0}
    threads = stats["mixer"]["threads"]
    busy = [t for t in threads if t["rooms"] == 1]
    assert len(busy) == 1 and sum(t["rooms"] for t in threads) == 1, "the empty room is not ticked"
    assert 40 <= busy[0]["ticks"] <= 70, busy
    assert 0 <= busy[0]["lateness_us"]["p50"] <= busy[0]["lateness_us"]["p99"] <= busy[0]["lateness_us"]["max"]
    assert busy[0]["work_us"]["p50"] < 20_000
