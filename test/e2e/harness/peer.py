"""aiortc WebRTC peer that sends a test tone and records what it hears.

Why: a conference mixer can only be tested end to end by real WebRTC
participants: ICE + DTLS-SRTP + Opus, exactly like browsers.  ``TonePeer`` is
such a participant with a *known* outgoing signal (a sine of chosen
frequency/amplitude, or silence) and a recorder for the decoded incoming
audio, so tests can assert "A hears B's tone but not its own".

Design notes

* One ``sendrecv`` audio transceiver, codec preferences restricted to Opus
  (48 kHz).  The outgoing track produces 20 ms frames (960 samples, mono
  s16, pts in 1/48000 time base) paced against the event loop's clock; the
  sine phase is continuous across frames and across frequency changes.
* Everything received is decoded by aiortc, converted to mono float32
  48 kHz and stored with its arrival time (``time.monotonic()``).  Only audio
  that really arrived is stored: if the remote stops sending RTP there are no
  samples (no zero fill), so ``received_seconds`` / ``frames_received`` tell
  "silence" apart from "no media".
* ICE: aiortc's defaults would (a) contact stun.l.google.com and (b) offer
  host candidates on every local interface.  We pass
  ``RTCConfiguration(iceServers=[])`` (no STUN/TURN traffic at all) and
  replace ``aioice.ice.get_host_addresses`` -- the single function aioice
  0.13 (used by aiortc 1.16) calls in ``Connection.gather_candidates`` to
  enumerate local addresses -- with a filter that only returns the
  addresses given to ``restrict_ice_addresses()``.  ``TonePeer`` does that
  with its ``address`` (default ``$JANUS_E2E_ADDR_B``, the peer end of the
  veth pair made by netns-run.sh).  The offer therefore has exactly one
  host candidate, on that address.
* aiortc gathers candidates during ``setLocalDescription``, so the offer
  returned by ``create_offer()`` is complete (no trickle needed; Janus is
  happy with candidates inside the SDP).
* ``vanish()`` simulates a participant that disappears without a goodbye
  (browser tab killed, network gone): outgoing frames stop and the ICE
  sockets are closed, so no RTCP BYE, no DTLS close_notify and no STUN
  consent replies ever reach Janus.  ``close()`` is the graceful variant
  (RTCP BYE + DTLS close_notify via ``RTCPeerConnection.close``).

All methods must be called from the asyncio loop that owns the peer.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import os
import time
import weakref
from typing import Iterable, Optional

import aioice.ice
import numpy as np
from av import AudioFrame, AudioResampler
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960          # 20 ms at 48 kHz
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE

# Every TonePeer ever created and not yet closed; the pytest async runner in
# conftest.py closes leftovers after each test so no sockets/tasks leak.
_live_peers: "weakref.WeakSet[TonePeer]" = weakref.WeakSet()

# ----------------------------------------------------------------- ICE filter
_orig_get_host_addresses = aioice.ice.get_host_addresses
_allowed_addresses: Optional[set[str]] = None


def _filtered_get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    addrs = _orig_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    if _allowed_addresses is None:
        return addrs
    picked = [a for a in addrs if a in _allowed_addresses]
    if not picked:
        raise RuntimeError(
            f"none of the allowed ICE addresses {sorted(_allowed_addresses)} is configured on a "
            f"local interface (found {addrs}); are we inside the harness netns?")
    return picked


def restrict_ice_addresses(addresses: Optional[Iterable[str]]) -> None:
    """Make aioice gather host candidates only on ``addresses`` (process
    wide; ``None`` restores the default of all interfaces)."""
    global _allowed_addresses
    _allowed_addresses = None if addresses is None else set(addresses)
    aioice.ice.get_host_addresses = _filtered_get_host_addresses


def default_peer_address() -> str:
    addr = os.environ.get("JANUS_E2E_ADDR_B")
    if not addr:
        raise RuntimeError("JANUS_E2E_ADDR_B is not set: run inside test/e2e/netns-run.sh "
                           "(conftest.py does that automatically) or pass address=")
    return addr


# -------------------------------------------------------------- tone source
class ToneTrack(MediaStreamTrack):
    """Audio track producing a sine (or silence) in real-time-paced 20 ms frames."""

    kind = "audio"

    def __init__(self, freq: float = 440.0, amplitude: float = 0.3,
                 noise_dbfs: Optional[float] = None):
        super().__init__()
        self.freq = float(freq)
        self.amplitude = float(amplitude)
        # An open microphone's room noise (white, this RMS in dBFS), added to the tone.
        self.noise_dbfs = noise_dbfs
        self._rng = np.random.default_rng(int(freq * 1000 + amplitude * 1e6) & 0xFFFFFFFF)
        self.paused = False          # True: produce no frames (-> no RTP at all)
        self._phase = 0.0
        self._pts = 0
        self._t0: Optional[float] = None
        self._resume = asyncio.Event()
        self._resume.set()
        self.frames_sent = 0

    def set_tone(self, freq: Optional[float] = None, amplitude: Optional[float] = None) -> None:
        if freq is not None:
            self.freq = float(freq)
        if amplitude is not None:
            self.amplitude = float(amplitude)

    def pause(self) -> None:
        self.paused = True
        self._resume.clear()

    def stop(self) -> None:
        super().stop()
        self._resume.set()           # wake a paused recv() so it can end

    def resume(self) -> None:
        self.paused = False
        self._t0 = None              # restart pacing; pts keep increasing
        self._resume.set()

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        while self.paused:
            await self._resume.wait()
            if self.readyState != "live":
                raise MediaStreamError
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._t0 is None:
            self._t0 = now - self._pts / SAMPLE_RATE
        due = self._t0 + self._pts / SAMPLE_RATE
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > 0.2:
            # the loop stalled badly: do not burst, just re-anchor the clock
            self._t0 = now - self._pts / SAMPLE_RATE

        step = 2.0 * math.pi * self.freq / SAMPLE_RATE
        phases = self._phase + step * np.arange(FRAME_SAMPLES)
        self._phase = float((self._phase + step * FRAME_SAMPLES) % (2.0 * math.pi))
        pcm = self.amplitude * np.sin(phases)
        if self.noise_dbfs is not None:
            pcm = pcm + self._rng.normal(0.0, 10 ** (self.noise_dbfs / 20), FRAME_SAMPLES)
        pcm = np.clip(pcm, -1.0, 1.0)
        data = (pcm * 32767.0).astype("<i2").reshape(1, -1)

        frame = AudioFrame.from_ndarray(data, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._pts += FRAME_SAMPLES
        self.frames_sent += 1
        return frame


# --------------------------------------------------------------------- peer
class TonePeer:
    """A WebRTC participant: sends a tone, records what it receives.

    >>> peer = TonePeer("a", freq=440, amplitude=0.3)
    >>> offer = await peer.create_offer()          # {"type": "offer", "sdp": ...}
    >>> data, jsep = handle.request_full({"request": "join", ...}, offer)
    >>> await peer.set_answer(jsep)
    >>> await peer.wait_connected()
    >>> await asyncio.sleep(3)
    >>> pcm = peer.received(last_seconds=1.0)       # float32 mono 48 kHz
    >>> await peer.close()
    """

    def __init__(self, name: str = "peer", freq: float = 440.0, amplitude: float = 0.3,
                 address: Optional[str] = None, silent: bool = False,
                 noise_dbfs: Optional[float] = None, codec: str = "opus"):
        self.name = name
        self.address = address or default_peer_address()
        restrict_ice_addresses([self.address])
        self.track = ToneTrack(freq, 0.0 if silent else amplitude, noise_dbfs)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.transceiver = self.pc.addTransceiver(self.track, direction="sendrecv")
        # One codec in the offer: Opus (a browser), or PCMU/PCMA only (a phone behind a gateway).
        offered = [c for c in RTCRtpSender.getCapabilities("audio").codecs
                   if c.mimeType.lower() == f"audio/{codec.lower()}"]
        self.transceiver.setCodecPreferences(offered)
        self._chunks: list[tuple[float, np.ndarray]] = []   # (arrival time, mono float32)
        # Every RTP packet received: (arrival time, sequence number, timestamp).
        self.rtp_arrivals: list[tuple[float, int, int]] = []
        self._record_rtp_arrivals(self.transceiver.receiver)
        self.frames_received = 0
        self.first_frame_at: Optional[float] = None
        self.last_frame_at: Optional[float] = None
        self.remote_track: Optional[MediaStreamTrack] = None
        self._recv_task: Optional[asyncio.Task] = None
        self._resampler = AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        self._connected = asyncio.Event()
        self._failed = asyncio.Event()
        self.closed = False
        self.vanished = False
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)
        _live_peers.add(self)

    def _record_rtp_arrivals(self, receiver) -> None:
        """Notes each RTP packet's numbering as aiortc's receiver gets it (its private
        ``_handle_rtp_packet``, looked up on the instance for every packet in aiortc 1.16)."""
        handle = receiver._handle_rtp_packet

        async def noted(packet, arrival_time_ms):
            self.rtp_arrivals.append((time.monotonic(), packet.sequence_number, packet.timestamp))
            return await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = noted

    # ------------------------------------------------------------ signalling
    async def create_offer(self) -> dict:
        """Create the offer, set it locally (gathers ICE), return the JSEP."""
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        return {"type": self.pc.localDescription.type, "sdp": self.pc.localDescription.sdp}

    async def set_answer(self, jsep: dict) -> None:
        """Apply the remote answer (``{"type": "answer", "sdp": ...}``)."""
        if not jsep or "sdp" not in jsep:
            raise ValueError(f"{self.name}: no SDP answer in {jsep!r}")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type=jsep["type"]))

    async def create_answer(self, offer_jsep: dict) -> dict:
        """For plugins that send the offer: apply it and return our answer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_jsep["sdp"], type=offer_jsep["type"]))
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        return {"type": self.pc.localDescription.type, "sdp": self.pc.localDescription.sdp}

    def local_candidates(self) -> list[str]:
        """``a=candidate`` lines of our local description (for assertions)."""
        sdp = self.pc.localDescription.sdp if self.pc.localDescription else ""
        return [l[2:] for l in sdp.splitlines() if l.startswith("a=candidate:")]

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait until ICE+DTLS are up (connectionState == "connected")."""
        waiter = asyncio.ensure_future(self._connected.wait())
        failer = asyncio.ensure_future(self._failed.wait())
        try:
            done, _ = await asyncio.wait({waiter, failer}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            failer.cancel()
        if self._connected.is_set():
            return
        raise TimeoutError(f"{self.name}: connection not established within {timeout}s "
                           f"(state {self.pc.connectionState}, ice {self.pc.iceConnectionState})")

    def _on_state(self) -> None:
        st = self.pc.connectionState
        if st == "connected":
            self._connected.set()
        elif st in ("failed", "closed"):
            self._failed.set()

    # -------------------------------------------------------------- sending
    def set_tone(self, freq: Optional[float] = None, amplitude: Optional[float] = None) -> None:
        """Change the outgoing tone at runtime (takes effect on the next frame)."""
        self.track.set_tone(freq, amplitude)

    def set_silence(self) -> None:
        """Keep sending frames, but digital silence."""
        self.track.set_tone(amplitude=0.0)

    def pause_sending(self) -> None:
        """Stop producing frames (no RTP at all) while staying connected."""
        self.track.pause()

    def resume_sending(self) -> None:
        self.track.resume()

    # ------------------------------------------------------------ receiving
    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio":
            return
        self.remote_track = track
        self._recv_task = asyncio.ensure_future(self._recv_loop(track))

    async def _recv_loop(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except (MediaStreamError, asyncio.CancelledError):
                return
            now = time.monotonic()
            pcm = []
            for f in self._resampler.resample(frame):
                pcm.append(f.to_ndarray().reshape(-1).astype(np.float32, copy=False))
            if not pcm:
                continue
            samples = np.concatenate(pcm)
            self._chunks.append((now, samples))
            self.frames_received += 1
            if self.first_frame_at is None:
                self.first_frame_at = now
            self.last_frame_at = now

    @staticmethod
    def now() -> float:
        """A time mark on the clock used for received audio (time.monotonic)."""
        return time.monotonic()

    def mark(self) -> float:
        """Alias of ``now()``: ``t0 = peer.mark(); ...; peer.received(since=t0)``."""
        return time.monotonic()

    def received(self, last_seconds: Optional[float] = None, since: Optional[float] = None,
                 until: Optional[float] = None) -> np.ndarray:
        """Received audio as mono float32 at 48 kHz.

        ``last_seconds``: audio that arrived within the last N seconds;
        ``since``/``until``: arrival-time window in ``time.monotonic()``
        seconds (see ``mark()``).  No arguments: everything.
        """
        lo = since if since is not None else -math.inf
        hi = until if until is not None else math.inf
        if last_seconds is not None:
            lo = max(lo, time.monotonic() - last_seconds)
        parts = [s for (t, s) in self._chunks if lo <= t <= hi]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def received_chunks(self) -> list[tuple[float, np.ndarray]]:
        """Raw recording: ``[(arrival time.monotonic(), float32 samples), ...]``,
        one entry per decoded frame (normally 20 ms each)."""
        return list(self._chunks)

    def received_seconds(self, **window) -> float:
        """Duration of received audio in a window (same args as ``received``)."""
        return self.received(**window).size / SAMPLE_RATE

    def clear_received(self) -> None:
        self._chunks.clear()

    async def wait_receiving(self, timeout: float = 10.0, min_frames: int = 10) -> None:
        """Wait until at least ``min_frames`` frames have been received."""
        deadline = time.monotonic() + timeout
        while self.frames_received < min_frames:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: received only {self.frames_received} frames "
                                   f"in {timeout}s (state {self.pc.connectionState})")
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------- teardown
    async def close(self) -> None:
        """Graceful close: RTCP BYE + DTLS close_notify, then stop tasks."""
        if self.closed:
            return
        self.closed = True
        try:
            await self.pc.close()
        finally:
            await self._stop_recv()
            self.track.stop()
            _live_peers.discard(self)

    async def vanish(self) -> None:
        """Disappear abruptly: no more packets of any kind, no signalling.

        Stops the tone source and closes every ICE UDP socket under aiortc,
        so Janus sees the peer fall silent exactly as if its host died.
        Call ``close()`` later to release local resources (it then cannot
        send anything any more).
        """
        self.vanished = True
        self.track.pause()
        for transceiver in self.pc.getTransceivers():
            dtls = transceiver.sender.transport
            if dtls is None:
                continue
            conn = dtls.transport._connection          # aioice.Connection (private API)
            # A dead host sends no consent checks either; left running, aioice's consent task
            # would write to the aborted sockets and die noisily when the loop closes.
            consent = getattr(conn, "_query_consent_task", None)
            if consent is not None and not consent.done():
                consent.cancel()
                conn._query_consent_task = None
            for proto in list(getattr(conn, "_protocols", [])):
                t = getattr(proto, "transport", None)
                if t is not None:
                    t.abort() if hasattr(t, "abort") else t.close()
        await asyncio.sleep(0)

    async def _stop_recv(self) -> None:
        if self._recv_task is not None:
            self._recv_task.cancel()
            try:
                await self._recv_task
            except (asyncio.CancelledError, Exception):
                pass
            self._recv_task = None

    def __repr__(self) -> str:
        return (f"<TonePeer {self.name} {self.track.freq:g}Hz@{self.track.amplitude:g} "
                f"state={self.pc.connectionState} rx_frames={self.frames_received}>")


async def close_all_peers() -> None:
    """Close every TonePeer that is still open (used after each async test)."""
    for peer in list(_live_peers):
        try:
            await asyncio.wait_for(peer.close(), timeout=5)
        except Exception:
            pass
