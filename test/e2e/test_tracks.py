"""Transcription-ready archives (docs/API.md, section 5.8): a track per participant and a speaker
timeline in the job file.

Three WebRTC peers take turns, each with its own tone, one speaking over another once; then one
leaves and comes back. Everything is judged as a consumer would: each `.opus` file is decoded
with ffmpeg's libraries (PyAV), checked with `opusinfo`, placed on the room recording's clock at
its `offset_ms`, and compared with the mixed WAV by Goertzel; the `speech` segments are compared
with when each tone really is in the WAV.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from harness import audio
from harness.peer import TonePeer
from test_live_audio import connect
from test_recording import mounted_tmpfs, wait_for

RATE = 48000
FRAME = RATE // 50          # one 20 ms tick
TONES = {1: 440.0, 2: 1000.0, 3: 2000.0}
LOUD = 0.3


def decode_opus(path: Path) -> np.ndarray:
    """The whole file at 48 kHz mono float, as ffmpeg decodes it (pre-skip applied)."""
    chunks = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == RATE
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def opusinfo_warnings(path: Path) -> list[str]:
    """What opusinfo (libogg and libopus's own checker) finds wrong with a file."""
    result = subprocess.run(["opusinfo", str(path)], capture_output=True, text=True, timeout=30)
    lines = (result.stdout + result.stderr).splitlines()
    return [line.strip() for line in lines if "WARNING" in line or "ERROR" in line]


def frame_levels(pcm: np.ndarray, freq: float) -> np.ndarray:
    """The tone's level (dB) in each 20 ms frame."""
    n = len(pcm) // FRAME
    return np.array([audio.goertzel_db(pcm[i * FRAME:(i + 1) * FRAME], RATE, freq) for i in range(n)])


def runs(loud: np.ndarray, min_gap: int = 10) -> list[tuple[int, int]]:
    """Runs of True frames as (start, end) frame numbers, gaps shorter than `min_gap` bridged."""
    spans: list[tuple[int, int]] = []
    for i, on in enumerate(loud):
        if not on:
            continue
        if spans and i - spans[-1][1] < min_gap:
            spans[-1] = (spans[-1][0], i + 1)
        else:
            spans.append((i, i + 1))
    return spans


def onset_ms(pcm: np.ndarray, freq: float, around_ms: float, window_ms: float = 300) -> float:
    """Where `freq` starts near `around_ms`: the first 10 ms window (5 ms steps) loud with it."""
    lo = max(0, int((around_ms - window_ms) * RATE / 1000))
    hi = min(len(pcm) - 480, int((around_ms + window_ms) * RATE / 1000))
    for i in range(lo, hi, 240):
        if audio.goertzel_db(pcm[i:i + 480], RATE, freq) > -25:
            return i * 1000 / RATE
    raise AssertionError(f"no {freq} Hz onset near {around_ms:.0f} ms")


async def talk(peer: TonePeer, seconds: float) -> None:
    peer.set_tone(amplitude=LOUD)
    await asyncio.sleep(seconds)
    peer.set_silence()


@pytest.mark.async_timeout(120)
async def test_turns_give_one_track_per_membership_and_a_timeline_that_matches_the_mix(audioroom):
    admin = await audioroom.ahandle()
    await admin.arequest({"request": "create", "id": "turns", "record_participants": True})
    peers = {uid: TonePeer(f"p{uid}", freq=freq, amplitude=LOUD) for uid, freq in TONES.items()}
    handles = {}
    for uid, peer in peers.items():
        peer.set_silence()
        handles[uid] = await audioroom.ahandle()
        await connect(handles[uid], peer, {"request": "join", "id": "turns", "userid": uid,
                                           "display": f"P{uid}"})
    await asyncio.gather(*(p.wait_receiving() for p in peers.values()))
    await asyncio.sleep(1.0)

    # Turns (seconds from here): 1 speaks; 2 speaks and 3 starts over its last half second;
    # 1 again; then 2 leaves, comes back (a second track) and speaks.
    await talk(peers[1], 1.5)
    await asyncio.sleep(1.0)
    peers[2].set_tone(amplitude=LOUD)
    await asyncio.sleep(1.0)
    peers[3].set_tone(amplitude=LOUD)
    await asyncio.sleep(0.5)
    peers[2].set_silence()
    await asyncio.sleep(1.0)
    peers[3].set_silence()
    await asyncio.sleep(1.0)
    await talk(peers[1], 1.0)
    await asyncio.sleep(1.0)
    assert (await handles[2].arequest({"request": "leave"}))["audioroom"] == "left"
    await asyncio.sleep(0.5)
    rejoined = await handles[2].arequest({"request": "join", "id": "turns", "userid": 2, "display": "P2"})
    assert rejoined["audioroom"] == "joined", rejoined
    await asyncio.sleep(1.0)
    await talk(peers[2], 1.0)
    await asyncio.sleep(1.0)
    await admin.arequest({"request": "destroy", "id": "turns"})

    job = (await asyncio.to_thread(wait_for, audioroom.jobs_json, 10, "the job file"))[0]["data"]
    assert "incomplete" not in job, job
    wav = read_wav(Path(job["audio"]))
    assert abs(len(wav) * 1000 // RATE - job["duration_ms"]) <= 20

    # One track per membership, in the order they start, each named and readable.
    tracks = job["tracks"]
    assert [(t["userid"], t["display"]) for t in tracks] == [(1, "P1"), (2, "P2"), (3, "P3"), (2, "P2")], tracks
    assert sorted(Path(t["file"]) for t in tracks) == sorted(audioroom.archive.glob("*.opus"))
    assert tracks[3]["offset_ms"] > tracks[1]["offset_ms"] + tracks[1]["duration_ms"], "after the leave"

    # The truth: where each tone is in the mixed WAV.
    truth = {uid: runs(frame_levels(wav, freq) > -30) for uid, freq in TONES.items()}
    assert [len(truth[uid]) for uid in TONES] == [2, 2, 1], truth

    for n, track in enumerate(tracks):
        uid, path = track["userid"], Path(track["file"])
        assert opusinfo_warnings(path) == [], (path, opusinfo_warnings(path))
        pcm = decode_opus(path)
        assert abs(len(pcm) * 1000 / RATE - track["duration_ms"]) <= 20, (len(pcm), track)
        # This peer's tone only: loud in its turns, and no other tone, in its turns (where the
        # mix has the others too) or over the whole track.
        mine = frame_levels(pcm, TONES[uid])
        spans = runs(mine > -30)
        assert spans and mine.max() > -15, (track, mine.max())
        for other, freq in TONES.items():
            if other == uid:
                continue
            assert audio.goertzel_db(pcm, RATE, freq) < -40, (track, other)
            for start, end in spans:
                turn = pcm[start * FRAME:end * FRAME]
                assert audio.goertzel_db(turn, RATE, freq) < audio.goertzel_db(turn, RATE, TONES[uid]) - 40
        # Each of its turns within this track starts where the WAV has it, within 40 ms.
        for start, _ in spans:
            at_in_track = onset_ms(pcm, TONES[uid], start * 20)
            on_clock = track["offset_ms"] + at_in_track
            in_wav = onset_ms(wav, TONES[uid], on_clock)
            assert abs(on_clock - in_wav) <= 40, (track, on_clock, in_wav)

    # One speech segment per turn, within 100 ms of the tone in the mix; 2 and 3 overlap.
    speech = job["speech"]
    for uid in TONES:
        segments = [(s["start_ms"], s["end_ms"]) for s in speech if s["userid"] == uid]
        expected = [(start * 20, end * 20) for start, end in truth[uid]]
        assert len(segments) == len(expected), (uid, segments, expected)
        for (start, end), (true_start, true_end) in zip(segments, expected):
            assert abs(start - true_start) <= 100 and abs(end - true_end) <= 100, (uid, segments, expected)
    second, third = [s for s in speech if s["userid"] == 2][0], [s for s in speech if s["userid"] == 3][0]
    assert third["start_ms"] < second["end_ms"] and second["start_ms"] < third["start_ms"], speech
    assert [s["start_ms"] for s in speech] == sorted(s["start_ms"] for s in speech)


@pytest.mark.async_timeout(90)
async def test_without_tracks_the_timeline_is_still_there_and_a_room_change_starts_a_new_track(audioroom_factory):
    room = audioroom_factory({"record_participants": True})
    ha, hb = await room.ahandle(), await room.ahandle()
    await ha.arequest({"request": "create", "id": "one"})                       # the plugin default: on
    await ha.arequest({"request": "create", "id": "two", "record_participants": False})
    a, b = TonePeer("a", freq=440, amplitude=LOUD), TonePeer("b", freq=1000, amplitude=LOUD)
    await connect(ha, a, {"request": "join", "id": "one", "userid": 1})
    await connect(hb, b, {"request": "join", "id": "one", "userid": 2})
    await a.wait_receiving()
    await asyncio.sleep(2.0)
    assert (await hb.arequest({"request": "changeroom", "id": "two"}))["audioroom"] == "roomchanged"
    await asyncio.sleep(2.0)
    for room_id in ("one", "two"):
        await ha.arequest({"request": "destroy", "id": room_id})
    jobs = await asyncio.to_thread(wait_for, lambda: len(room.jobs_json()) == 2 and room.jobs_json(), 10, "two jobs")
    by_room = {j["data"]["id"]: j["data"] for j in jobs}
    one, two = by_room["one"], by_room["two"]
    assert sorted(t["userid"] for t in one["tracks"]) == [1, 2]
    assert two["tracks"] == [], "tracks off in room two"
    # Both talked all along: one segment each in room one, B's in room two too.
    assert sorted(s["userid"] for s in one["speech"]) == [1, 2], one["speech"]
    assert [s["userid"] for s in two["speech"]] == [2], two["speech"]
    b_track = next(t for t in one["tracks"] if t["userid"] == 2)
    assert 1500 <= b_track["duration_ms"] <= 3000, b_track
    levels = audio.tone_levels(decode_opus(Path(b_track["file"]))[RATE // 2:], RATE, [440, 1000])
    assert levels[1000] > -20 and levels[440] < levels[1000] - 40, levels


@pytest.mark.async_timeout(60)
async def test_sigkill_leaves_every_track_readable(audioroom_factory):
    room = audioroom_factory({"record_participants": True}, check_exit=False)
    ha, hb = await room.ahandle(), await room.ahandle()
    await ha.arequest({"request": "create", "id": "crash"})
    a, b = TonePeer("a", freq=440), TonePeer("b", freq=1000)
    await connect(ha, a, {"request": "join", "id": "crash", "userid": 1})
    await connect(hb, b, {"request": "join", "id": "crash", "userid": 2})
    await asyncio.sleep(5.0)
    room.server.kill()
    tracks = sorted(room.archive.glob("*.opus"))
    assert len(tracks) == 2 and room.job_files() == [], tracks
    for path, (mine, other) in zip(sorted(tracks, key=lambda p: p.name.endswith("-2.opus")),
                                   [(440, 1000), (1000, 440)]):
        # A crash leaves no end-of-stream page; nothing else may be wrong.
        assert [w for w in opusinfo_warnings(path) if "EOS not set" not in w] == [], path
        pcm = decode_opus(path)
        assert len(pcm) / RATE >= 3.0, f"{path.name}: {len(pcm) / RATE:.2f} s readable"
        levels = audio.tone_levels(pcm[-RATE:], RATE, [mine, other])
        assert levels[mine] > -25 and levels[other] < levels[mine] - 40, (path.name, levels)


@pytest.mark.async_timeout(60)
async def test_a_full_disk_leaves_tracks_that_hold_what_the_job_says(audioroom_factory, tmp_path):
    with mounted_tmpfs(tmp_path / "recordings", "size=200k"):
        room = audioroom_factory({"record_participants": True})
        ha, hb = await room.ahandle(), await room.ahandle()
        await ha.arequest({"request": "create", "id": "full"})
        a, b = TonePeer("a", freq=440), TonePeer("b", freq=1000)
        await connect(ha, a, {"request": "join", "id": "full", "userid": 1})
        await connect(hb, b, {"request": "join", "id": "full", "userid": 2})
        await ha.await_event(lambda d: d.get("recording") == "stopped", timeout=10)
        await asyncio.sleep(1.0)
        await ha.arequest({"request": "destroy", "id": "full"})
        job = (await asyncio.to_thread(wait_for, room.jobs_json, 10, "the job file"))[0]["data"]
        assert job["incomplete"] is True and "No space left" in job["error"], job
        assert sorted(t["userid"] for t in job["tracks"]) == [1, 2], job
        for track in job["tracks"]:
            # Whatever the full disk cut, the file is whole pages and holds what the job says.
            path = Path(track["file"])
            assert [w for w in opusinfo_warnings(path) if "EOS not set" not in w] == [], track
            pcm = decode_opus(path)
            assert abs(len(pcm) * 1000 / RATE - track["duration_ms"]) <= 20, (len(pcm), track)


def test_opusinfo_is_installed():
    assert shutil.which("opusinfo"), "test/install-deps.sh installs opus-tools"
