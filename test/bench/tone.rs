//! The latency probe's test signal and its detector (`latency_probe.rs`).
//!
//! The talker sends, every period, a burst of `frames` × 20 ms of tone starting exactly on a
//! frame boundary, and a -60 dBFS noise floor in between (so its RFC 6464 level never says
//! "silence" and both plugins decode it all the time, as they would an open microphone).
//! Burst frame i is a tone of `1000 + 200·i` Hz, phase-continuous: frame 0 is the 1 kHz onset,
//! and each later frame has its own frequency, so that a frame the plugin concealed (Opus
//! concealment continues the previous frame's waveform, which for a steady tone would be
//! nearly perfect and invisible) shows up as the wrong frequency where the next one belongs.
//!
//! Detection in the listener's decoded mix: the onset is where the 1 ms mean square first
//! reaches that of a tone at half the burst's amplitude (-6 dB), minus half the window; each
//! burst frame is then checked over its central 15 ms with a Hann-windowed Goertzel at every
//! burst frequency: it is intact when its own frequency is the strongest and at least half the
//! burst's amplitude.

use crate::common::{FRAME, Noise, RATE};
use std::f64::consts::PI;

/// Peak amplitude of the burst tones, full scale = 1 (-12 dBFS).
pub const AMPLITUDE: f64 = 0.25;
/// RMS of the noise floor between bursts, full scale = 1 (-60 dBFS).
const FLOOR_RMS: f64 = 0.001;
/// Mean-square window of the onset detector: one period of 1 kHz.
const ONSET_WINDOW: usize = 48;
/// After an onset, the signal must stay 12 dB below the onset threshold this long before the
/// next onset counts (one burst gives one onset even if a frame in it is lost).
const REARM_SAMPLES: usize = RATE as usize / 10;
/// Margin at each end of a frame left out of the per-frame check (codec overlap, onset error).
const CHECK_MARGIN: usize = 120;

/// Frequency of burst frame `i`.
pub fn frequency(i: usize) -> f64 {
    1000.0 + 200.0 * i as f64
}

/// One period of the talker's signal: `burst` frames of tone, then the noise floor, `period`
/// frames in all, at 48 kHz.
pub fn talker_period(burst: usize, period: usize, seed: u64) -> Vec<i16> {
    let mut noise = Noise::new(seed);
    let floor = FLOOR_RMS * 3f64.sqrt(); // uniform noise of this peak has FLOOR_RMS
    let mut phase = 0.0f64;
    let mut out = Vec::with_capacity(period * FRAME);
    for f in 0..period {
        for _ in 0..FRAME {
            let x = if f < burst {
                let x = AMPLITUDE * phase.sin();
                phase += 2.0 * PI * frequency(f) / RATE as f64;
                x
            } else {
                floor * noise.next()
            };
            out.push((x * 32767.0).round() as i16);
        }
    }
    out
}

/// Sample indices where bursts start in `pcm` (see the module comment).
pub fn onsets(pcm: &[i16]) -> Vec<usize> {
    let half = AMPLITUDE / 2.0;
    let on = half * half / 2.0;
    let off = on / 16.0;
    let mut found = Vec::new();
    let mut sum = 0.0f64;
    let mut armed = true;
    let mut quiet = 0;
    for n in 0..pcm.len() {
        let x = pcm[n] as f64 / 32768.0;
        sum += x * x;
        if n >= ONSET_WINDOW {
            let y = pcm[n - ONSET_WINDOW] as f64 / 32768.0;
            sum -= y * y;
        }
        let ms = sum.max(0.0) / ONSET_WINDOW as f64;
        if armed {
            if ms >= on && n >= ONSET_WINDOW {
                found.push(n + 1 - ONSET_WINDOW / 2);
                armed = false;
                quiet = 0;
            }
        } else if ms < off {
            quiet += 1;
            armed = quiet >= REARM_SAMPLES;
        } else {
            quiet = 0;
        }
    }
    found
}

/// Amplitude (full scale = 1) of `freq` in `x`, Hann-windowed Goertzel.
fn tone_amplitude(x: &[i16], freq: f64) -> f64 {
    let n = x.len();
    let w = 2.0 * PI * freq / RATE as f64;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2, mut gain) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in x.iter().enumerate() {
        let hann = 0.5 - 0.5 * (2.0 * PI * i as f64 / (n - 1) as f64).cos();
        gain += hann;
        let s = v as f64 / 32768.0 * hann + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0);
    2.0 * power.sqrt() / gain
}

/// Which burst frame the 20 ms of `pcm` from `start` hold: the strongest burst frequency
/// among `burst` and its amplitude; `None` past the end of `pcm`.
pub fn frame_tone(pcm: &[i16], start: usize, burst: usize) -> Option<(usize, f64)> {
    let x = pcm.get(start + CHECK_MARGIN..start + FRAME - CHECK_MARGIN)?;
    (0..burst)
        .map(|i| (i, tone_amplitude(x, frequency(i))))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Is the frame from `start` burst frame `expected`, intact?
pub fn frame_intact(pcm: &[i16], start: usize, burst: usize, expected: usize) -> bool {
    frame_tone(pcm, start, burst)
        .is_some_and(|(i, amplitude)| i == expected && amplitude >= AMPLITUDE / 2.0)
}
