"""Small, dependency-light audio analysis helpers for the end-to-end tests.

Why this exists: the e2e tests judge a mixer by *listening* to what each
WebRTC peer receives ("does A hear B's 1 kHz tone, and not its own 440 Hz
tone?").  Decoded Opus is not bit-exact, so tests must compare tone *levels*
with generous margins instead of comparing samples.  These helpers turn a
block of PCM into a few numbers that are easy to assert on.

Conventions (used consistently by every function here):

* ``samples`` is a 1-D sequence of mono PCM.  Floating point input is taken
  as-is (full scale = 1.0); integer input is scaled by its dtype's range, so
  int16 32767 == 1.0.
* Tone levels (``goertzel_db``, ``tone_levels``, ``fft_peaks``) are the
  *peak amplitude of that sinusoid* in dB relative to full scale: a sine of
  amplitude 1.0 reads 0 dB, amplitude 0.5 reads -6.02 dB.  So a tone sent
  with ``amplitude=a`` should come back near ``20*log10(a)``.
* ``rms_db`` is plain ``20*log10(rms)``; a full-scale sine reads -3.01 dB.
* Nothing returns ``-inf``: levels are floored at ``FLOOR_DB`` so they can be
  subtracted and compared safely.

Run ``python3 -m harness.audio`` (from test/e2e) for a quick self-check; the
same checks run as a pytest test in test_harness_selfcheck.py.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

FLOOR_DB = -240.0


def as_float(samples: Sequence[float] | np.ndarray) -> np.ndarray:
    """Return ``samples`` as a 1-D float64 array with full scale 1.0."""
    a = np.asarray(samples)
    if a.ndim != 1:
        a = a.reshape(-1)
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        return a.astype(np.float64) / float(max(abs(info.min), info.max))
    return a.astype(np.float64, copy=False)


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else FLOOR_DB


def rms_db(samples) -> float:
    """RMS level in dB (20*log10(rms)); ``FLOOR_DB`` for empty/silent input."""
    x = as_float(samples)
    if x.size == 0:
        return FLOOR_DB
    return max(_db(float(np.sqrt(np.mean(x * x)))), FLOOR_DB)


def goertzel_db(samples, rate: float, freq: float) -> float:
    """Level (dB re full-scale sine amplitude) of the ``freq`` Hz component.

    This is the Goertzel algorithm's result, i.e. a single DFT bin evaluated
    at an arbitrary (not necessarily integer-bin) frequency, computed with a
    vectorised dot product.  A Hann window keeps leakage from other strong
    tones low (side lobes fall off quickly), and the result is normalised by
    the window's coherent gain so a pure sine of amplitude ``a`` at ``freq``
    reads ``20*log10(a)`` (within a fraction of a dB for >= ~50 ms blocks).
    """
    x = as_float(samples)
    n = x.size
    if n < 2:
        return FLOOR_DB
    w = np.hanning(n)
    k = np.arange(n)
    phasor = np.exp(-2j * np.pi * (float(freq) / float(rate)) * k)
    acc = np.dot(x * w, phasor)
    amplitude = 2.0 * abs(acc) / float(w.sum())
    return max(_db(amplitude), FLOOR_DB)


def band_db(samples, rate: float, low: float, high: float) -> float:
    """Power of ``samples`` between ``low`` and ``high`` Hz, in dB relative to a full-scale
    signal (Hann-windowed FFT): how much noise there is away from the test tones."""
    x = as_float(samples)
    if len(x) == 0:
        return FLOOR_DB
    window = np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x * window)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    band = spectrum[(freqs >= low) & (freqs < high)].sum()
    # Parseval with the window's power: a full-scale white signal over the whole band reads 0 dB.
    total = band * 2.0 / (np.sum(window ** 2) * len(x))
    return _db(math.sqrt(total))


def tone_levels(samples, rate: float, freqs: Iterable[float]) -> dict[float, float]:
    """``{freq: goertzel_db(samples, rate, freq)}`` for every requested freq."""
    x = as_float(samples)
    return {f: goertzel_db(x, rate, f) for f in freqs}


def fft_peaks(
    samples,
    rate: float,
    count: int = 5,
    min_db: float = -90.0,
    min_separation_hz: float = 20.0,
) -> list[tuple[float, float]]:
    """The strongest spectral peaks as ``[(freq_hz, level_db), ...]``.

    Sorted loudest first, at most ``count`` entries, only peaks louder than
    ``min_db`` and at least ``min_separation_hz`` apart.  Frequencies are
    refined by parabolic interpolation of the log-magnitude spectrum; levels
    use the same scale as ``goertzel_db``.  Useful for "what do I actually
    hear?" diagnostics in assertion messages.
    """
    x = as_float(samples)
    n = x.size
    if n < 16:
        return []
    w = np.hanning(n)
    spec = np.abs(np.fft.rfft(x * w)) * 2.0 / float(w.sum())
    mag_db = 20.0 * np.log10(np.maximum(spec, 1e-12))
    # local maxima (strictly greater than left, >= right neighbour)
    inner = mag_db[1:-1]
    is_peak = (inner > mag_db[:-2]) & (inner >= mag_db[2:]) & (inner > min_db)
    idx = np.nonzero(is_peak)[0] + 1
    idx = idx[np.argsort(mag_db[idx])[::-1]]
    bin_hz = float(rate) / n
    peaks: list[tuple[float, float]] = []
    for i in idx:
        a, b, c = mag_db[i - 1], mag_db[i], mag_db[i + 1]
        denom = a - 2 * b + c
        off = 0.5 * (a - c) / denom if denom != 0 else 0.0
        freq = (i + off) * bin_hz
        if any(abs(freq - f) < min_separation_hz for f, _ in peaks):
            continue
        # re-measure the level at the refined frequency (avoids scalloping)
        peaks.append((float(freq), goertzel_db(x, rate, freq)))
        if len(peaks) >= count:
            break
    return peaks


def sine(freq: float, amplitude: float, seconds: float, rate: int = 48000, phase: float = 0.0) -> np.ndarray:
    """A float64 sine wave; handy for tests of the analysis helpers."""
    t = np.arange(int(round(seconds * rate))) / float(rate)
    return amplitude * np.sin(2 * np.pi * freq * t + phase)


def self_check() -> None:
    """Assert the helpers measure synthetic signals correctly (raises on error)."""
    rate = 48000
    rng = np.random.default_rng(1234)
    sig = sine(440, 0.5, 1.0, rate) + sine(1000, 0.05, 1.0, rate, 0.3)
    sig += rng.normal(0, 1e-4, sig.size)
    lv = tone_levels(sig, rate, [440, 1000, 2500])
    assert abs(lv[440] - _db(0.5)) < 0.2, lv
    assert abs(lv[1000] - _db(0.05)) < 0.3, lv
    assert lv[2500] < -60, lv
    # integer input is scaled to full scale 1.0
    pcm16 = np.round(sine(1000, 0.25, 0.5, rate) * 32767).astype(np.int16)
    assert abs(goertzel_db(pcm16, rate, 1000) - _db(0.25)) < 0.2
    # short blocks (one 20 ms frame) still give a sensible reading
    assert abs(goertzel_db(sine(1000, 1.0, 0.1, rate), rate, 1000)) < 0.5
    assert abs(rms_db(sine(1000, 1.0, 1.0, rate)) - _db(math.sqrt(0.5))) < 0.05
    assert rms_db(np.zeros(100)) == FLOOR_DB and rms_db([]) == FLOOR_DB
    peaks = fft_peaks(sig, rate, count=2)
    assert len(peaks) == 2, peaks
    assert abs(peaks[0][0] - 440) < 1 and abs(peaks[1][0] - 1000) < 1, peaks
    assert abs(peaks[0][1] - _db(0.5)) < 0.3, peaks


if __name__ == "__main__":
    self_check()
    print("harness.audio self-check OK")
