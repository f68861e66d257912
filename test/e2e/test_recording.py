"""Every room recorded (docs/API.md, section 5): the WAV a room leaves, the job file that
announces it, and what survives a SIGTERM, a SIGKILL, a full disk, a disk that dies mid-call, a
folder that cannot be written and a job folder that cannot be written.

Signalling-only participants (a `join` without SDP) count as being in the room: their rooms
are recorded (silence) just like rooms with WebRTC peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
import urllib.parse
import wave
from pathlib import Path

import numpy as np
import pytest

from harness import audio
from harness.peer import TonePeer
from harness.rtp_peer import PlainRtpPeer
from test_live_audio import connect

JOB_KEYS = {"id", "audio", "uid", "started", "finished", "duration_ms", "sampling_rate", "tracks", "speech"}


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        frames = w.readframes(w.getnframes())
        return w.getframerate(), np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def mounted_tmpfs(path: Path, options: str):
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.async_timeout(60)
async def test_two_talkers_leave_one_wav_and_an_exact_job(audioroom):
    ha, hb = await audioroom.ahandle(), await audioroom.ahandle()
    await ha.arequest({"request": "create", "id": "rec"})
    a, b = TonePeer("a", freq=440, amplitude=0.3), TonePeer("b", freq=1000, amplitude=0.3)
    occupied_from = time.time()
    joined_a = await connect(ha, a, {"request": "join", "id": "rec"})
    joined_b = await connect(hb, b, {"request": "join", "id": "rec"})
    await asyncio.sleep(5.0)
    assert (await ha.arequest({"request": "destroy", "id": "rec"}))["audioroom"] == "destroyed"
    occupied_until = time.time()

    jobs = await asyncio.to_thread(wait_for, audioroom.jobs_json, 10, "the job file")
    wavs = audioroom.wavs()
    assert len(wavs) == 1 and len(jobs) == 1, (wavs, jobs)
    job = jobs[0]
    assert job["plugin"] == "janus.plugin.cm.audioroom" and job["event"] == "archive-finished"
    data = job["data"]
    assert set(data) == JOB_KEYS, data
    assert data["id"] == "rec" and data["sampling_rate"] == 48000
    # Tracks are off by default; who spoke when is there anyway: both, all along.
    assert data["tracks"] == [] and not list(audioroom.archive.glob("*.opus"))
    assert sorted(s["userid"] for s in data["speech"]) == sorted(p["userid"] for p in [joined_a, joined_b]), data
    assert all(s["end_ms"] - s["start_ms"] >= 3000 for s in data["speech"]), data["speech"]
    assert data["audio"] == str(wavs[0]) and Path(data["audio"]).is_file()
    assert wavs[0].name == f"rec-rec-{data['started']}-audio.wav"
    assert occupied_from * 1e6 - 1e5 <= data["started"] <= data["finished"] <= occupied_until * 1e6 + 1e5

    rate, samples = read_wav(wavs[0])
    assert rate == 48000
    seconds = len(samples) / rate
    occupied = occupied_until - occupied_from
    assert abs(seconds - occupied) <= 0.1 * occupied, f"{seconds:.2f} s recorded for {occupied:.2f} s occupied"
    assert data["duration_ms"] == len(samples) * 1000 // rate
    tail = samples[-2 * rate:]
    levels = audio.tone_levels(tail, rate, [440, 1000])
    assert levels[440] > -25 and levels[1000] > -25, levels


def test_audio_is_written_only_while_someone_is_in_the_room(audioroom):
    h = audioroom.handle()
    h.request({"request": "create", "id": "gaps"})
    h.request({"request": "join", "id": "gaps"})
    time.sleep(2.0)
    h.request({"request": "leave"})
    time.sleep(2.0)  # empty: not recorded
    h.request({"request": "join", "id": "gaps"})
    time.sleep(1.0)
    h.request({"request": "destroy", "id": "gaps"})
    job = wait_for(audioroom.jobs_json, 10, "the job file")[0]
    assert 2700 <= job["data"]["duration_ms"] <= 3500, job
    assert len(audioroom.wavs()) == 1


def test_an_empty_room_leaves_nothing(audioroom):
    h = audioroom.handle()
    h.request({"request": "create", "id": "never"})
    time.sleep(0.5)
    h.request({"request": "destroy", "id": "never"})
    time.sleep(0.5)
    assert audioroom.wavs() == [] and audioroom.job_files() == []


def test_hostile_ids_keep_the_wav_inside_the_archive(audioroom):
    ids = ["../../x", "a/b", ".hidden"]
    for room_id in ids:
        h = audioroom.handle()
        h.request({"request": "create", "id": room_id})
        h.request({"request": "join", "id": room_id})
    time.sleep(0.5)
    for room_id in ids:
        audioroom.handle().request({"request": "destroy", "id": room_id})
    jobs = wait_for(lambda: len(audioroom.jobs_json()) == 3 and audioroom.jobs_json(), 10, "three jobs")
    wavs = audioroom.wavs()
    assert len(wavs) == 3
    for wav in wavs:
        assert wav.parent == audioroom.archive and not wav.name.startswith(".")
    decoded = {urllib.parse.unquote(w.name[len("rec-"):].rsplit("-", 2)[0]) for w in wavs}
    assert decoded == set(ids)
    assert {j["data"]["id"] for j in jobs} == set(ids)
    root = audioroom.archive.parent
    assert not (root / "x.wav").exists() and not list(root.parent.glob("x*.wav"))


@pytest.mark.async_timeout(90)
async def test_sigterm_with_twenty_rooms_mixing_finishes_every_recording(audioroom_factory):
    room = audioroom_factory(config={"local_ip": "127.0.0.1", "rtp_port_range": "34000-34200"},
                             check_exit=False)
    talkers = {}
    for n in range(20):
        room_id, freq = f"room {n}", 300 + 100 * n
        h = await room.ahandle()
        await h.arequest({"request": "create", "id": room_id, "sampling": 16000,
                          "allow_rtp_participants": True})
        peer = PlainRtpPeer(freq=freq)
        joined = await h.arequest({"request": "join", "id": room_id, "rtp": peer.rtp_request()})
        peer.start(joined["rtp"]["ip"], joined["rtp"]["port"])
        talkers[room_id] = (peer, freq)
    await asyncio.sleep(2.5)
    started = time.monotonic()
    assert room.server.stop(signal=signal.SIGTERM, timeout=15) == 0
    assert time.monotonic() - started < 8, "shutdown is bounded"
    jobs = room.jobs_json()
    assert sorted(j["data"]["id"] for j in jobs) == sorted(talkers), "one job per room"
    assert len(room.wavs()) == 20
    for job in jobs:
        rate, samples = read_wav(Path(job["data"]["audio"]))
        assert rate == 16000 and len(samples) / rate >= 1.5
        assert job["data"]["duration_ms"] == len(samples) * 1000 // rate
        assert not job["data"].get("incomplete"), job
        _, freq = talkers[job["data"]["id"]]
        level = audio.tone_levels(samples[-rate:], rate, [freq])[freq]
        assert level > -30, f"{job['data']['id']}: its talker at {level:.1f} dB"
    for peer, _ in talkers.values():
        await peer.stop()


@pytest.mark.async_timeout(60)
async def test_sigkill_leaves_a_readable_wav(audioroom_factory):
    room = audioroom_factory(check_exit=False)
    ha, hb = await room.ahandle(), await room.ahandle()
    await ha.arequest({"request": "create", "id": "crash"})
    a, b = TonePeer("a", freq=440), TonePeer("b", freq=1000)
    await connect(ha, a, {"request": "join", "id": "crash"})
    await connect(hb, b, {"request": "join", "id": "crash"})
    await asyncio.sleep(5.0)
    room.server.kill()
    wavs = room.wavs()
    assert len(wavs) == 1 and room.job_files() == []
    rate, samples = read_wav(wavs[0])
    assert len(samples) / rate >= 3.5, f"{len(samples) / rate:.2f} s readable"
    levels = audio.tone_levels(samples[-rate:], rate, [440, 1000])
    assert levels[440] > -25 and levels[1000] > -25, levels


@pytest.mark.async_timeout(60)
async def test_a_full_disk_stops_the_recording_but_not_the_call(audioroom_factory, tmp_path):
    with mounted_tmpfs(tmp_path / "recordings", "size=160k"):
        room = audioroom_factory()
        ha, hb = await room.ahandle(), await room.ahandle()
        await ha.arequest({"request": "create", "id": "full"})
        a, b = TonePeer("a", freq=440), TonePeer("b", freq=1000)
        await connect(ha, a, {"request": "join", "id": "full"})
        await connect(hb, b, {"request": "join", "id": "full"})
        stopped, _ = await ha.await_event(lambda d: d.get("recording") == "stopped", timeout=10)
        assert stopped["id"] == "full" and "No space left on device" in stopped["reason"], stopped
        assert str(tmp_path / "recordings") in stopped["reason"]
        assert "Recording of room full stopped" in room.server.log_text()
        assert (await ha.arequest({"request": "list"}))["list"][0]["record"] is False
        await asyncio.sleep(2.0)
        levels = audio.tone_levels(a.received(last_seconds=1.0), 48000, [440, 1000])
        assert levels[1000] > -25 and levels[1000] - levels[440] >= 20, levels
        await ha.arequest({"request": "destroy", "id": "full"})
        job = (await asyncio.to_thread(wait_for, room.jobs_json, 10, "the job file"))[0]
        assert job["data"]["incomplete"] is True and "No space left" in job["data"]["error"]
        rate, samples = read_wav(Path(job["data"]["audio"]))
        assert len(samples) > 0 and job["data"]["duration_ms"] == len(samples) * 1000 // rate


@pytest.mark.async_timeout(60)
async def test_an_unwritable_archive_folder_is_reported_and_the_call_goes_on(audioroom_factory, tmp_path):
    room = audioroom_factory()
    with mounted_tmpfs(tmp_path / "recordings", "ro,size=64k"):
        ha, hb = await room.ahandle(), await room.ahandle()
        await ha.arequest({"request": "create", "id": "ro"})
        a, b = TonePeer("a", freq=440), TonePeer("b", freq=1000)
        await connect(ha, a, {"request": "join", "id": "ro"})
        stopped, _ = await ha.await_event(lambda d: d.get("recording") == "stopped", timeout=10)
        assert "Read-only file system" in stopped["reason"], stopped
        assert "Cannot record room ro" in room.server.log_text()
        await connect(hb, b, {"request": "join", "id": "ro"})
        await asyncio.sleep(2.0)
        levels = audio.tone_levels(a.received(last_seconds=1.0), 48000, [440, 1000])
        assert levels[1000] > -25, levels
        assert (await ha.arequest({"request": "list"}))["list"][0]["record"] is False
        await ha.arequest({"request": "destroy", "id": "ro"})
        await asyncio.sleep(0.5)
        assert room.job_files() == [], "no job for a recording that never had a file"


@contextlib.contextmanager
def dying_disk(path: Path, tmp: Path):
    """An ext4 file system on a loop device at `path`, mounted with synchronous writes (what is
    written is on the disk); `kill()` shuts it down as a failing disk would: every later
    write fails with an I/O error. Remounted on exit, so what reached it can be read."""
    image = tmp / "disk.img"
    subprocess.run(["truncate", "-s", "32M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", str(image)], check=True)
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-o", "loop,sync", str(image), str(path)], check=True)

    class Disk:
        @staticmethod
        def kill():
            subprocess.run(["xfs_io", "-x", "-c", "shutdown -f", str(path)], check=True)

    try:
        yield Disk
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "-l", str(path)], check=False)
        subprocess.run(["mount", "-o", "loop", str(image), str(path)], check=True)  # replays the journal


@pytest.mark.async_timeout(60)
async def test_a_disk_that_dies_mid_call_stops_the_recording_not_the_call(audioroom_factory, tmp_path):
    archive = tmp_path / "recordings"
    with dying_disk(archive, tmp_path) as disk:
        room = audioroom_factory()
        ha, hb = await room.ahandle(), await room.ahandle()
        await ha.arequest({"request": "create", "id": "dying"})
        a, b = TonePeer("a", freq=440), TonePeer("b", freq=1000)
        await connect(ha, a, {"request": "join", "id": "dying"})
        await connect(hb, b, {"request": "join", "id": "dying"})
        await asyncio.sleep(3.0)
        disk.kill()
        stopped, _ = await ha.await_event(lambda d: d.get("recording") == "stopped", timeout=10)
        assert "Input/output error" in stopped["reason"] and str(archive) in stopped["reason"], stopped
        await asyncio.sleep(1.5)
        levels = audio.tone_levels(a.received(last_seconds=1.0), 48000, [440, 1000])
        assert levels[1000] > -25, f"the call goes on: {levels}"
        await ha.arequest({"request": "destroy", "id": "dying"})
        job = (await asyncio.to_thread(wait_for, room.jobs_json, 10, "the job file"))[0]
        assert job["data"]["incomplete"] is True and "Input/output error" in job["data"]["error"], job
        wav = Path(job["data"]["audio"])
    try:
        # Remounted: the WAV holds what reached the disk, with a header that says so (as of its
        # last refresh, at most a second before the failure).
        rate, samples = read_wav(wav)
        assert len(samples) / rate >= 1.5, f"{len(samples) / rate:.2f} s"
        assert job["data"]["duration_ms"] >= len(samples) * 1000 // rate
        levels = audio.tone_levels(samples[-rate // 2:], rate, [440, 1000])
        assert levels[440] > -25 and levels[1000] > -25, levels
    finally:
        subprocess.run(["umount", "-l", str(archive)], check=False)


@pytest.mark.async_timeout(60)
async def test_a_job_folder_that_cannot_be_written_is_retried_until_it_can(audioroom_factory, tmp_path):
    with mounted_tmpfs(tmp_path / "jobs", "size=1m") as jobs:
        room = audioroom_factory(check_exit=False)
        h = await room.ahandle()
        await h.arequest({"request": "create", "id": "later"})
        await h.arequest({"request": "join", "id": "later"})
        await asyncio.sleep(1.0)
        subprocess.run(["mount", "-o", "remount,ro", str(jobs)], check=True)
        await h.arequest({"request": "destroy", "id": "later"})
        assert await asyncio.to_thread(
            room.server.wait_for_log, f"Could not write the job file for", 10)
        line = next(l for l in room.server.log_text().splitlines() if "Could not write the job file" in l)
        assert str(jobs) in line and "Read-only file system" in line and "trying again" in line, line
        await asyncio.sleep(2.5)
        assert room.job_files() == []
        subprocess.run(["mount", "-o", "remount,rw", str(jobs)], check=True)
        job = (await asyncio.to_thread(wait_for, room.jobs_json, 10, "the job file, on a later try"))[0]
        assert job["data"]["id"] == "later" and not job["data"].get("incomplete"), job
        # Still unwritable at shutdown: the job is logged in full, never silently dropped.
        await h.arequest({"request": "create", "id": "never"})
        await h.arequest({"request": "join", "id": "never"})
        await asyncio.sleep(1.0)
        subprocess.run(["mount", "-o", "remount,ro", str(jobs)], check=True)
        assert room.server.stop(timeout=15) == 0
        lost = [l for l in room.server.log_text().splitlines() if "its content:" in l]
        assert len(lost) == 1 and '"id":"never"' in lost[0] and '"archive-finished"' in lost[0], lost
