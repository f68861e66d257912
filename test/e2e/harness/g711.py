"""G.711 (µ-law and A-law) for the tests' own peers and receivers, in numpy: what a phone or a
SIP gateway would send and decode. Written from ITU-T G.711's segment tables, independently of
the plugin's implementation (src/media/g711.rs)."""

from __future__ import annotations

import numpy as np

_MU_BIAS, _MU_CLIP = 0x84, 32635


def mu_encode(pcm: np.ndarray) -> bytes:
    x = np.asarray(pcm, dtype=np.int32)
    sign = np.where(x < 0, 0x80, 0)
    mag = np.minimum(np.abs(x), _MU_CLIP) + _MU_BIAS
    exponent = np.floor(np.log2(np.maximum(mag >> 7, 1))).astype(np.int32)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def mu_decode(codes: bytes) -> np.ndarray:
    u = ~np.frombuffer(codes, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent, mantissa = (u >> 4) & 7, u & 0x0F
    mag = (((mantissa << 3) + _MU_BIAS) << exponent) - _MU_BIAS
    return np.where(u & 0x80, -mag, mag).astype(np.int16)


def a_encode(pcm: np.ndarray) -> bytes:
    x = np.asarray(pcm, dtype=np.int32) >> 3
    mask = np.where(x >= 0, 0xD5, 0x55)
    mag = np.where(x >= 0, x, -x - 1)
    ends = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
    seg = np.searchsorted(ends, mag)
    shift = np.where(seg < 2, 1, seg)
    code = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | ((mag >> shift) & 0x0F))
    return ((code ^ mask) & 0xFF).astype(np.uint8).tobytes()


def a_decode(codes: bytes) -> np.ndarray:
    a = np.frombuffer(codes, dtype=np.uint8).astype(np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, np.where(seg == 1, t + 0x108, (t + 0x108) << np.maximum(seg - 1, 0)))
    return np.where(a & 0x80, t, -t).astype(np.int16)


ENCODE = {"pcmu": mu_encode, "pcma": a_encode}
DECODE = {"pcmu": mu_decode, "pcma": a_decode}
PAYLOAD_TYPE = {"pcmu": 0, "pcma": 8}


def self_check() -> None:
    t = np.arange(8000)
    tone = (10000 * np.sin(2 * np.pi * 1000 * t / 8000)).astype(np.int16)
    for codec in ("pcmu", "pcma"):
        back = DECODE[codec](ENCODE[codec](tone))
        err = back.astype(np.float64) - tone
        snr = 10 * np.log10(np.mean(tone.astype(np.float64) ** 2) / np.mean(err ** 2))
        assert snr > 33, (codec, snr)
    assert mu_encode(np.array([0])) == b"\xff" and a_encode(np.array([0])) == b"\xd5"
