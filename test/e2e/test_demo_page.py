"""The demo page (demo/) in a real browser, as a person uses it.

Debian's Chromium runs headless through playwright inside the test's network namespace, with a
fake microphone playing a 440 Hz tone from a WAV made here. The page is served by demo/serve.py
and talks to a private Janus over its WebSocket transport, like the main command
(test/start-janus.sh). An aiortc peer with a 1000 Hz tone shares the room, and the test checks
what a person would: the peer hears the page and not itself, the page hears the peer, the list
shows the peer and that it talks, mute silences the page, errors are said in words.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import wave
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from harness import audio
from harness.janus import free_tcp_port
from harness.peer import TonePeer

REPO = Path(__file__).resolve().parents[2]
SERVE = REPO / "demo" / "serve.py"
CHROMIUM = os.environ.get("AUDIOROOM_CHROMIUM", "/usr/bin/chromium")
JANUS_JS = Path("/usr/share/javascript/janus-gateway/janus.js")
ADAPTER_JS = Path("/usr/share/javascript/webrtc-adapter/adapter.js")
PAGE_TONE, PEER_TONE = 440, 1000
RATE = 48000
# Screenshot of the page in a call: kept beside the test's files, and copied where this says
# (docs/demo.png is made that way: AUDIOROOM_DEMO_SCREENSHOT=docs/demo.png).
SCREENSHOT_COPY = os.environ.get("AUDIOROOM_DEMO_SCREENSHOT")

CHROMIUM_ARGS = [
    "--no-sandbox",                       # we are root
    "--disable-gpu", "--disable-quic", "--no-first-run",
    # The namespace has no network: no background connections to wait for.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream",     # grant the microphone without a prompt
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]

# WebAudio in the page: what the remote audio element plays, as the page receives it.
MEASURE_ROOM_JS = """async (seconds) => {
  const stream = document.getElementById('remote-audio').srcObject;
  if (!stream) return null;
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 32768;
  ctx.createMediaStreamSource(stream).connect(analyser);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const samples = new Float32Array(analyser.fftSize);
  analyser.getFloatTimeDomainData(samples);
  const rate = ctx.sampleRate;
  await ctx.close();
  return {rate, samples: Array.from(samples)};
}"""


def require_browser() -> None:
    """Skip (with the fix) when the browser or the page's libraries are missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (test/install-deps.sh does)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is missing: pip install playwright (test/install-deps.sh does)")
    for lib in (JANUS_JS, ADAPTER_JS):
        if not lib.exists():
            pytest.skip(f"{lib} is missing: apt-get install libjs-janus-gateway libjs-webrtc-adapter")


def write_tone_wav(path: Path, freq: float, amplitude: float = 0.3, seconds: float = 5.0) -> Path:
    """The fake microphone: Chromium loops this file (a whole number of cycles: no click)."""
    t = np.arange(int(RATE * seconds)) / RATE
    pcm = (amplitude * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path


class Demo:
    """Janus with the plugin and WebSocket transport, and demo/serve.py pointing at it."""

    def __init__(self, room, url: str):
        self.room = room
        self.url = url


@contextlib.contextmanager
def serve_demo(janus_url: str, log_path: Path):
    """demo/serve.py on a free port, its page naming ``janus_url``; yields the page's URL."""
    port = free_tcp_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, str(SERVE), "--port", str(port), "--janus", janus_url],
                                stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    urllib.request.urlopen(url, timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"demo/serve.py did not start: {log_path.read_text()}")
                    time.sleep(0.05)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture
def demo(audioroom_factory, tmp_path):
    require_browser()
    room = audioroom_factory(websockets=True)
    with serve_demo(room.server.ws_url, tmp_path / "serve.log") as url:
        yield Demo(room, url)


@contextlib.asynccontextmanager
async def browser_page(tmp_path: Path):
    """A fresh headless Chromium (playwright gives it a new, temporary profile) and one page;
    the page's console goes to a log beside the test's files."""
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=10_000)   # 2 busy cores may be compiling beside us
    wav = write_tone_wav(tmp_path / "microphone.wav", PAGE_TONE)
    console = open(tmp_path / "console.log", "w")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS + [f"--use-file-for-fake-audio-capture={wav}"])
        try:
            page = await browser.new_page(viewport={"width": 760, "height": 440})
            page.on("console", lambda m: console.write(f"{m.type}: {m.text}\n"))
            page.on("pageerror", lambda e: console.write(f"pageerror: {e}\n"))
            yield page
        finally:
            await browser.close()
            console.close()


async def connect_peer(handle, peer: TonePeer, body: dict) -> dict:
    data, answer = await handle.arequest_full(body, await peer.create_offer())
    assert data.get("audioroom") == "joined", data
    await peer.set_answer(answer)
    await peer.wait_connected()
    return data


def tones(samples, rate=RATE) -> dict:
    return audio.tone_levels(samples, rate, [PAGE_TONE, PEER_TONE])


async def page_hears(page, seconds: float = 1.0) -> dict:
    got = await page.evaluate(MEASURE_ROOM_JS, seconds)
    assert got is not None, "the page has no remote audio"
    return tones(np.asarray(got["samples"], dtype=np.float32), got["rate"])


@pytest.mark.async_timeout(90)
async def test_a_person_on_the_demo_page_hears_the_room_and_is_heard(demo, tmp_path):
    from playwright.async_api import expect

    room_id = "café ☕"
    async with browser_page(tmp_path) as page:
        # Opened by link: the room is filled in.
        await page.goto(f"{demo.url}?room={quote(room_id)}")
        status = page.get_by_role("status")
        await expect(status).to_have_text("Connected to Janus.")
        await expect(page.get_by_role("combobox", name="Room")).to_have_value(room_id)
        await page.get_by_label("Your name").fill("Zoë")
        await page.get_by_role("button", name="Join").click()
        # The room did not exist: the page created it, joined, and its audio is up.
        await expect(status).to_have_text(f"In the room “{room_id}”.", timeout=15000)
        assert page.url.endswith(f"?room={quote(room_id, safe='').replace('%20', '+')}")

        handle = await demo.room.ahandle()
        peer = TonePeer("peer", freq=PEER_TONE, amplitude=0.3)
        joined = await connect_peer(handle, peer, {"request": "join", "id": room_id, "display": "Peer"})
        assert [(p.get("display"), p["setup"]) for p in joined["participants"]] == [("Zoë", True)]
        page_userid = joined["participants"][0]["userid"]

        # The list shows the peer, then that it talks (its RFC 6464 levels: a loud tone).
        peer_row = page.locator("#participants li", has_text="Peer")
        await expect(peer_row).to_be_visible()
        await expect(peer_row.locator(".badge.talking")).to_have_text("talking", timeout=5000)
        me_row = page.locator("#participants li.me")
        await expect(me_row).to_contain_text("Zoë (you)")
        # Chromium sends levels too: the page's own tone shows as talking.
        await expect(me_row.locator(".badge.talking")).to_be_visible(timeout=5000)

        # The peer hears the page's tone, not its own; the page hears the peer, not itself.
        await peer.wait_receiving()
        await asyncio.sleep(2.0)
        heard = tones(peer.received(last_seconds=1.5))
        # (Chromium's audio processing brings the fake microphone's steady tone from -10.5 dB
        # down to about -30 dB within 3 s.)
        assert heard[PAGE_TONE] > -40 and heard[PEER_TONE] < heard[PAGE_TONE] - 20, f"peer hears {heard}"
        on_page = await page_hears(page)
        assert on_page[PEER_TONE] > -30 and on_page[PAGE_TONE] < on_page[PEER_TONE] - 20, f"page hears {on_page}"
        assert await page.locator("#mic-level").evaluate("m => m.value") > 0.2, "own input level shown"

        shot = tmp_path / "demo.png"
        await page.screenshot(path=str(shot), full_page=True)
        if SCREENSHOT_COPY:
            shutil.copyfile(shot, SCREENSHOT_COPY)

        # Mute: the peer stops hearing the page within a second, and the room is told.
        await page.get_by_role("button", name="Mute").click()
        await expect(page.get_by_role("button", name="Unmute")).to_have_attribute("aria-pressed", "true")
        muted_at = peer.mark()
        await handle.await_event(lambda d: any(p.get("userid") == page_userid and p.get("muted")
                                               for p in d.get("participants", [])), timeout=5)
        await expect(page.locator("#participants li.me .badge.muted")).to_be_visible()
        await expect(page.locator("#mic-level")).to_have_js_property("value", 0)
        await asyncio.sleep(1.8)
        assert tones(peer.received(since=muted_at + 1.0))[PAGE_TONE] < -60, "muted page is silent"

        await page.get_by_role("button", name="Unmute").click()
        unmuted_at = peer.mark()
        await asyncio.sleep(1.8)
        assert tones(peer.received(since=unmuted_at + 1.0))[PAGE_TONE] > -40, "unmuted page is heard"

        # The peer mutes itself: the page shows it at once, and it no longer talks.
        await handle.arequest({"request": "configure", "muted": True})
        await expect(peer_row.locator(".badge.muted")).to_have_text("muted", timeout=3000)
        await expect(peer_row.locator(".badge.talking")).to_have_count(0, timeout=3000)

        # A moderator mutes the page: its button and microphone follow.
        await handle.arequest({"request": "mute", "id": room_id, "userid": page_userid})
        await expect(page.get_by_role("button", name="Unmute")).to_have_attribute("aria-pressed", "true")
        await expect(page.locator("#mic-level")).to_have_js_property("value", 0)

        # Leave: the room is told at once and the form comes back.
        await page.get_by_role("button", name="Leave").click()
        await handle.await_event(lambda d: d.get("leaving") == page_userid, timeout=5)
        await expect(page.get_by_role("button", name="Join")).to_be_visible()

        # Join again, then close the tab: the page leaves on pagehide, not at the session timeout.
        await page.get_by_role("button", name="Join").click()
        again, _ = await handle.await_event(lambda d: d.get("audioroom") == "joined" and
                                            d["participants"][0].get("display") == "Zoë", timeout=10)
        rejoined = again["participants"][0]["userid"]
        await expect(status).to_have_text(f"In the room “{room_id}”.", timeout=15000)
        await page.close(run_before_unload=True)
        await handle.await_event(lambda d: d.get("leaving") == rejoined, timeout=5)


@pytest.mark.async_timeout(60)
async def test_the_demo_page_says_what_went_wrong(demo, tmp_path):
    from playwright.async_api import expect

    handle = await demo.room.ahandle()
    await handle.arequest({"request": "create", "id": "locked", "pin": "1234"})
    async with browser_page(tmp_path) as page:
        await page.goto(demo.url)
        status, alert = page.get_by_role("status"), page.get_by_role("alert")
        await expect(status).to_have_text("Connected to Janus.")
        await page.get_by_label("Your name").fill("Ann")
        join = page.get_by_role("button", name="Join")

        await page.get_by_role("combobox", name="Room").fill("nowhere")
        await page.get_by_label("Create the room if it does not exist").uncheck()
        await join.click()
        await expect(alert).to_have_text("There is no room named “nowhere”. "
                                         "Tick “Create the room if it does not exist” to create it.")

        await page.get_by_role("combobox", name="Room").fill("locked")
        await join.click()
        await expect(alert).to_have_text("The room “locked” needs a PIN.")
        await page.get_by_label("PIN").fill("0000")
        await join.click()
        await expect(alert).to_have_text("Wrong PIN for the room “locked”.")

        await page.get_by_label("PIN").fill("1234")
        await join.click()
        await expect(status).to_have_text("In the room “locked”.", timeout=15000)
        await expect(alert).to_be_hidden()
        listed = await handle.arequest({"request": "listparticipants", "id": "locked"})
        assert [(p.get("display"), p["setup"]) for p in listed["participants"]] == [("Ann", True)]

        # The room is destroyed under the page: it says so and offers to join again.
        await handle.arequest({"request": "destroy", "id": "locked"})
        await expect(alert).to_have_text("The room “locked” was closed.")
        await expect(join).to_be_visible()

        # A page whose Janus is not running says so.
        dead = f"ws://127.0.0.1:{free_tcp_port()}"
        with serve_demo(dead, tmp_path / "serve-dead.log") as url:
            await page.goto(url)
            await expect(alert).to_contain_text(f"Cannot reach Janus at {dead}")
            await expect(status).to_have_text("Not connected to Janus.")
