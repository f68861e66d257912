"""A plain-RTP participant, as a SIP gateway would be: Opus or G.711 over UDP without ICE or DTLS.

``PlainRtpPeer(freq, amplitude, codec="opus")`` binds a UDP socket on loopback, sends a tone as
20 ms packets (Opus, or ``"pcmu"``/``"pcma"`` at 8 kHz) at real-time pace (absolute deadlines) to
the plugin's socket once ``start(ip, port)`` is called, and decodes everything it receives into
mono float samples at ``peer.rate`` (48 kHz for Opus, 8 kHz for G.711) for analysis, like
TonePeer. ``send_only=True`` leaves ``ip``/``port`` out of its ``rtp`` request: a source that
asks for no mix.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time

import av
import numpy as np

from harness import g711

RATE = 48000
FRAME = 960


class PlainRtpPeer:
    def __init__(self, freq: float = 440.0, amplitude: float = 0.3, payload_type: int | None = None,
                 address: str = "127.0.0.1", audio_level_ext: int | None = None,
                 jitter_ms: float = 0.0, codec: str = "opus", send_only: bool = False):
        self.freq, self.amplitude = freq, amplitude
        self.codec, self.send_only = codec, send_only
        self.rate = RATE if codec == "opus" else 8000
        self.frame = self.rate // 50
        if payload_type is None:
            payload_type = 111 if codec == "opus" else g711.PAYLOAD_TYPE[codec]
        # Each packet leaves up to this much after its time (uniform), as on a jittery path:
        # packets then also arrive out of order.
        self.jitter_ms = jitter_ms
        self._rng = random.Random(int(freq))
        self.payload_type = payload_type
        self.audio_level_ext = audio_level_ext
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.sock.setblocking(False)
        self.address, self.port = self.sock.getsockname()
        self.encoder = av.CodecContext.create("libopus", "w")
        self.encoder.sample_rate = RATE
        self.encoder.layout = "mono"
        self.encoder.format = "s16"
        self.encoder.bit_rate = 48000
        self.decoder = av.CodecContext.create("libopus", "r")
        self.decoder.sample_rate = RATE
        self.decoder.layout = "mono"
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts = random.getrandbits(32)
        self.sent = 0
        self.arrivals: list[tuple[float, int, int]] = []  # (time, seq, timestamp)
        self._chunks: list[tuple[float, np.ndarray]] = []
        self._tasks: list[asyncio.Task] = []
        self._sample = 0

    def rtp_request(self) -> dict:
        """The `rtp` object of the join request."""
        rtp = {"payload_type": self.payload_type}
        if not self.send_only:
            rtp.update(ip=self.address, port=self.port)
        if self.codec != "opus":
            rtp["codec"] = self.codec
        if self.audio_level_ext is not None:
            rtp["audiolevel_ext"] = self.audio_level_ext
        return rtp

    def start_receiving(self) -> None:
        """Only receive (an RTP forwarder's destination, a source nobody answers yet)."""
        self._tasks = [asyncio.get_running_loop().create_task(self._receive_loop())]

    def start(self, remote_ip: str, remote_port: int) -> None:
        self.remote = (remote_ip, remote_port)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._send_loop()), loop.create_task(self._receive_loop())]

    def _encode_frame(self) -> list[bytes]:
        n = np.arange(self._sample, self._sample + self.frame)
        self._sample += self.frame
        pcm = (self.amplitude * 32767 * np.sin(2 * np.pi * self.freq * n / self.rate)).astype(np.int16)
        if self.codec != "opus":
            return [g711.ENCODE[self.codec](pcm)]
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._sample - FRAME
        return [bytes(p) for p in self.encoder.encode(frame)]

    def _packet(self, payload: bytes) -> bytes:
        header = struct.pack("!BBHII", 0x80, self.payload_type, self.seq, self.ts, self.ssrc)
        if self.audio_level_ext is not None:
            level = 127 if self.amplitude == 0 else 30
            header = bytes([0x90]) + header[1:] + struct.pack("!HHBBH", 0xBEDE, 1, self.audio_level_ext << 4, level, 0)
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + self.frame) & 0xFFFFFFFF
        return header + payload

    async def _send_loop(self) -> None:
        deadline = time.monotonic()
        held: list[tuple[float, bytes]] = []   # (when, packet) waiting for their jittered time
        while True:
            for payload in self._encode_frame():
                held.append((deadline + self._rng.uniform(0, self.jitter_ms / 1000), self._packet(payload)))
            deadline += 0.02
            while True:
                held.sort(key=lambda h: h[0])
                now = time.monotonic()
                while held and held[0][0] <= now:
                    self.sock.sendto(held.pop(0)[1], self.remote)
                    self.sent += 1
                wake = min([deadline] + [h[0] for h in held[:1]])
                if wake >= deadline:
                    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
                    break
                await asyncio.sleep(max(0.0, wake - time.monotonic()))

    async def _receive_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 2048)
            if len(data) < 12:
                continue
            _, pt, seq, ts, _ = struct.unpack("!BBHII", data[:12])
            self.arrivals.append((time.monotonic(), seq, ts))
            if self.codec != "opus":
                pcm = g711.DECODE[self.codec](data[12:]).astype(np.float32) / 32768.0
                self._chunks.append((time.monotonic(), pcm))
                continue
            for frame in self.decoder.decode(av.Packet(data[12:])):
                pcm = frame.to_ndarray().reshape(-1)
                if pcm.dtype != np.float32:
                    pcm = pcm.astype(np.float32) / 32768.0
                self._chunks.append((time.monotonic(), pcm))

    def received(self, last_seconds: float) -> np.ndarray:
        since = time.monotonic() - last_seconds
        chunks = [c for t, c in self._chunks if t >= since]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.sock.close()
