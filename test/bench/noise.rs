//! Room noise as an open microphone picks it up when its owner is not talking: pink-ish noise
//! (more energy low, like ventilation and traffic) whose level wanders slowly and at random
//! between -60 and -50 dBFS RMS. Browsers send this, not digital silence, so a listener's
//! RFC 6464 level is around 50-60 and never 127.
//!
//! Encoding Opus in real time for a hundred listeners would make the load generator the
//! bottleneck, so `NOISE_VARIANTS` different loops of `NOISE_LOOP_FRAMES` are encoded once at
//! start-up (levels computed from each frame's PCM before encoding) and each listener replays
//! one of them from its own starting frame: no two listeners send the same samples at the same
//! time. Deterministic, like the rest of the benchmark's signals.

#![allow(dead_code)]

use crate::common::{FRAME, Frame, Noise, RATE, encode, sender_profile};
use std::f64::consts::PI;

/// Distinct noise loops (listeners beyond this share a loop, at another offset).
pub const NOISE_VARIANTS: usize = 8;
/// Length of each loop: 4 s.
pub const NOISE_LOOP_FRAMES: usize = 200;
/// Quietest and loudest level of the slow level variation, dBFS RMS.
pub const NOISE_DBFS: (f64, f64) = (-60.0, -50.0);

/// `frames` × 20 ms of room noise for `variant`, at 48 kHz.
pub fn room_noise(variant: usize, frames: usize) -> Vec<i16> {
    let n = frames * FRAME;
    let mut white = Noise::new(1000 + variant as u64);
    // Pink-ish: three one-pole low-pass sections plus some white (Paul Kellett's "economy"
    // pink filter), about -3 dB per octave over the voice band.
    let (mut b0, mut b1, mut b2) = (0.0f64, 0.0f64, 0.0f64);
    let mut pink: Vec<f64> = (0..n)
        .map(|_| {
            let w = white.next();
            b0 = 0.99765 * b0 + w * 0.099_046;
            b1 = 0.963 * b1 + w * 0.296_516_4;
            b2 = 0.57 * b2 + w * 1.052_691_3;
            b0 + b1 + b2 + w * 0.1848
        })
        .collect();
    let rms = (pink.iter().map(|x| x * x).sum::<f64>() / n as f64).sqrt();
    // Slow level variation: a new random target every 0.6-1.6 s, reached along a raised
    // cosine (in dB), so the level drifts rather than steps.
    let mut dice = Noise::new(2000 + variant as u64);
    let mut uniform = move || (dice.next() + 1.0) / 2.0;
    let (low, high) = NOISE_DBFS;
    let mut from_db = low + (high - low) * uniform();
    let mut to_db = low + (high - low) * uniform();
    let mut segment = ((0.6 + uniform()) * RATE as f64) as usize;
    let mut t = 0usize;
    for x in pink.iter_mut() {
        if t == segment {
            from_db = to_db;
            to_db = low + (high - low) * uniform();
            segment = ((0.6 + uniform()) * RATE as f64) as usize;
            t = 0;
        }
        let blend = 0.5 - 0.5 * (PI * t as f64 / segment as f64).cos();
        let db = from_db + (to_db - from_db) * blend;
        *x *= 10f64.powf(db / 20.0) / rms;
        t += 1;
    }
    pink.iter()
        .map(|x| (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// One pre-encoded loop of room noise, levels computed per frame.
pub fn noise_frames(variant: usize) -> Vec<Frame> {
    encode(&room_noise(variant, NOISE_LOOP_FRAMES), sender_profile())
}
