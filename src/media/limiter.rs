//! A peak limiter that brings a 32-bit mix into 16 bits without wrapping and without the
//! harmonics of hard clipping: each 20 ms frame is scanned first (the frame is its own
//! look-ahead), the gain drops just in time for the loudest sample and recovers slowly.

/// Highest output magnitude, about -0.2 dBFS.
const CEILING: f32 = 32_000.0;
/// Time constant of the gain's recovery after a loud passage.
const RELEASE_SECONDS: f32 = 0.25;

#[derive(Clone, Debug)]
pub struct Limiter {
    gain: f32,
    release: f32,
}

impl Limiter {
    pub fn new(rate: u32) -> Self {
        Limiter {
            gain: 1.0,
            release: 1.0 - (-1.0 / (RELEASE_SECONDS * rate as f32)).exp(),
        }
    }

    pub fn gain(&self) -> f32 {
        self.gain
    }

    /// Takes over another limiter's gain (a listener switching to its own stream).
    pub fn set_gain(&mut self, gain: f32) {
        self.gain = gain.clamp(0.0, 1.0);
    }

    /// Writes `input` limited into `out` (same length). Returns true when the output is all
    /// zeros, which lets encoders send a cached silent frame.
    pub fn process(&mut self, input: &[i32], out: &mut [i16]) -> bool {
        debug_assert_eq!(input.len(), out.len());
        let peak = input.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
        if peak == 0 {
            out.fill(0);
            self.recover(input.len());
            return true;
        }
        if self.gain >= 1.0 && peak as f32 <= CEILING {
            for (o, &x) in out.iter_mut().zip(input) {
                *o = x as i16; // |x| <= CEILING < i16::MAX
            }
            return false;
        }
        let needed = (CEILING / peak as f32).min(1.0);
        if needed < self.gain {
            // Attack: glide down until the first sample that would overshoot, then hold.
            let first_loud = input
                .iter()
                .position(|x| x.unsigned_abs() as f32 * self.gain > CEILING)
                .unwrap_or(input.len());
            let start = self.gain;
            for (i, (o, &x)) in out.iter_mut().zip(input).enumerate() {
                let g = if i < first_loud {
                    start + (needed - start) * (i + 1) as f32 / first_loud as f32
                } else {
                    needed
                };
                *o = scale(x, g);
            }
            self.gain = needed;
        } else {
            // Release: recover towards unity, never above what this frame's peak allows.
            for (o, &x) in out.iter_mut().zip(input) {
                self.gain = (self.gain + (1.0 - self.gain) * self.release).min(needed);
                *o = scale(x, self.gain);
            }
        }
        false
    }

    fn recover(&mut self, samples: usize) {
        if self.gain < 1.0 {
            self.gain = 1.0 - (1.0 - self.gain) * (1.0 - self.release).powi(samples as i32);
            if self.gain > 0.9999 {
                self.gain = 1.0;
            }
        }
    }
}

fn scale(x: i32, gain: f32) -> i16 {
    (x as f32 * gain)
        .round()
        .clamp(i16::MIN as f32, i16::MAX as f32) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::test_signals::*;

    #[test]
    fn quiet_signals_pass_unchanged() {
        let mut l = Limiter::new(48000);
        let input: Vec<i32> = (0..960).map(|i| (i % 200) * 100 - 10000).collect();
        let mut out = vec![0i16; 960];
        assert!(!l.process(&input, &mut out));
        assert!(input.iter().zip(&out).all(|(&a, &b)| a == b as i32));
        assert!(l.process(&[0; 960], &mut out));
        assert!(out.iter().all(|&s| s == 0));
    }

    #[test]
    fn two_full_scale_tones_neither_wrap_nor_distort() {
        let rate = 48000;
        let frame = 960;
        let mut l = Limiter::new(rate);
        let mut output = Vec::new();
        for f in 0..100 {
            let a = tone(rate, 440.0, 32767.0, f * frame, frame);
            let b = tone(rate, 1000.0, 32767.0, f * frame, frame);
            let sum: Vec<i32> = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| x as i32 + y as i32)
                .collect();
            let mut out = vec![0i16; frame];
            l.process(&sum, &mut out);
            assert!(out.iter().all(|s| s.unsigned_abs() <= CEILING as u16 + 1));
            output.extend(out);
        }
        let tail = &output[output.len() / 2..];
        let t440 = goertzel_db(tail, rate, 440.0);
        let t1000 = goertzel_db(tail, rate, 1000.0);
        assert!(t440 > -9.0 && t1000 > -9.0, "{t440} {t1000}");
        // Intermodulation and harmonics that clipping or wrapping would create.
        for product in [560.0, 1440.0, 1560.0, 880.0, 2000.0, 1320.0, 3000.0, 120.0] {
            let p = goertzel_db(tail, rate, product);
            assert!(
                p < t440 - 40.0,
                "{product} Hz at {p:.1} dB vs tone {t440:.1} dB"
            );
        }
    }

    #[test]
    fn gain_recovers_after_a_loud_burst() {
        let mut l = Limiter::new(48000);
        let mut out = vec![0i16; 960];
        l.process(&vec![100_000; 960], &mut out);
        assert!(l.gain() < 0.33);
        for _ in 0..100 {
            l.process(&vec![1000; 960], &mut out);
        }
        assert!(l.gain() > 0.99, "{}", l.gain());
        assert!((out[959] as i32 - 1000).abs() <= 10);
    }
}
