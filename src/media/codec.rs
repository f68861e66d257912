//! Opus at a room's rate: the decoder (through audiopus), the encoder profile a participant
//! can turn (complexity, bitrate, FEC, expected loss), and the shared constants. The encoder
//! itself lives in encoder.rs.

use audiopus::coder::{Decoder as OpusDecoder, GenericCtl};
use audiopus::packet::Packet;
use audiopus::{Channels, MutSignals, SampleRate};

pub use crate::media::encoder::Encoder;
use std::fmt;

/// The sampling rates a room may use.
pub const SAMPLING_RATES: [u32; 5] = [8000, 12000, 16000, 24000, 48000];

/// The longest Opus packet lasts 120 ms.
pub const MAX_PACKET_MS: usize = 120;

/// Big enough for any Opus packet (RFC 6716 caps a frame at 1275 bytes).
pub const MAX_OPUS_PACKET: usize = 1500;

/// Samples in one 20 ms frame at `rate`.
pub fn frame_samples(rate: u32) -> usize {
    rate as usize / 50
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<audiopus::Error> for CodecError {
    fn from(e: audiopus::Error) -> Self {
        CodecError(format!("libopus: {e}"))
    }
}

fn sample_rate(rate: u32) -> Result<SampleRate, CodecError> {
    SampleRate::try_from(rate as i32)
        .map_err(|_| CodecError(format!("unsupported sampling rate {rate}")))
}

pub struct Decoder {
    inner: OpusDecoder,
    frame: usize,
}

impl Decoder {
    pub fn new(rate: u32) -> Result<Self, CodecError> {
        Ok(Decoder {
            inner: OpusDecoder::new(sample_rate(rate)?, Channels::Mono)?,
            frame: frame_samples(rate),
        })
    }

    /// Samples per 20 ms frame at this decoder's rate.
    pub fn frame(&self) -> usize {
        self.frame
    }

    /// Decodes a whole packet into `out` (room for 120 ms); returns the samples written.
    pub fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let packet = Packet::try_from(packet)?;
        Ok(self
            .inner
            .decode(Some(packet), MutSignals::try_from(out)?, false)?)
    }

    /// Recovers the 20 ms lost just before `next_packet` from its in-band FEC (when it carries
    /// none, libopus falls back to concealment).
    pub fn decode_fec(&mut self, next_packet: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let packet = Packet::try_from(next_packet)?;
        let frame = &mut out[..self.frame];
        Ok(self
            .inner
            .decode(Some(packet), MutSignals::try_from(frame)?, true)?)
    }

    /// Packet loss concealment for one 20 ms frame.
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError> {
        let frame = &mut out[..self.frame];
        Ok(self
            .inner
            .decode(None, MutSignals::try_from(frame)?, false)?)
    }

    pub fn reset(&mut self) {
        let _ = self.inner.reset_state();
    }
}

/// How a stream is encoded. Listeners with equal profiles can share one encoded stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EncoderProfile {
    /// Opus complexity 0..=10 (the API's `quality`).
    pub complexity: u8,
    /// Bits per second; `None` lets libopus choose.
    pub bitrate: Option<u32>,
    pub fec: bool,
    /// Expected packet loss in percent, which sizes the FEC.
    pub expected_loss: u8,
}

/// Janus's AudioBridge uses complexity 4 by default; so do we, to compare like with like.
pub const DEFAULT_COMPLEXITY: u8 = 4;

impl Default for EncoderProfile {
    fn default() -> Self {
        EncoderProfile {
            complexity: DEFAULT_COMPLEXITY,
            bitrate: None,
            fec: false,
            expected_loss: 0,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_signals {
    //! Synthetic signals and their analysis, shared by the codec and mixer tests.
    use std::f64::consts::PI;

    pub fn tone(rate: u32, freq: f64, amplitude: f64, start: usize, len: usize) -> Vec<i16> {
        (start..start + len)
            .map(|n| (amplitude * (2.0 * PI * freq * n as f64 / rate as f64).sin()).round() as i16)
            .collect()
    }

    /// Power of `freq` in `samples` relative to a full-scale sine, in dB (Goertzel).
    pub fn goertzel_db(samples: &[i16], rate: u32, freq: f64) -> f64 {
        let n = samples.len() as f64;
        let w = 2.0 * PI * freq / rate as f64;
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &x in samples {
            let s = x as f64 / 32768.0 + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        let amplitude = 2.0 * power.sqrt() / n;
        20.0 * amplitude.max(1e-12).log10()
    }

    /// Deterministic white noise with an RMS of `rms_dbfs` (each `seed` its own).
    pub fn noise(seed: u64, rms_dbfs: f64, len: usize) -> Vec<i16> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Uniform in [-1, 1) has an RMS of 1/sqrt(3).
        let scale = 32768.0 * 10f64.powf(rms_dbfs / 20.0) * 3f64.sqrt();
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let uniform = (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
                (uniform * scale).round() as i16
            })
            .collect()
    }

    /// Level of `freq` in one frame and how far below it everything else is (both in dB): the tone
    /// is fitted by least squares and the rest is what a click or gap would leave.
    pub fn tone_and_residual_db(frame: &[i16], rate: u32, freq: f64) -> (f64, f64) {
        let w = 2.0 * PI * freq / rate as f64;
        let (mut ss, mut cc, mut sc, mut xs, mut xc) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (n, &x) in frame.iter().enumerate() {
            let (s, c, x) = ((w * n as f64).sin(), (w * n as f64).cos(), x as f64);
            ss += s * s;
            cc += c * c;
            sc += s * c;
            xs += x * s;
            xc += x * c;
        }
        let det = ss * cc - sc * sc;
        let (a, b) = ((xs * cc - xc * sc) / det, (xc * ss - xs * sc) / det);
        let (mut tone_energy, mut rest_energy) = (0.0, 0.0);
        for (n, &x) in frame.iter().enumerate() {
            let fit = a * (w * n as f64).sin() + b * (w * n as f64).cos();
            tone_energy += fit * fit;
            rest_energy += (x as f64 - fit).powi(2);
        }
        let level = 10.0
            * (tone_energy / frame.len() as f64 / (32768.0f64 * 32768.0 / 2.0))
                .max(1e-20)
                .log10();
        (
            level,
            10.0 * (rest_energy / tone_energy.max(1e-9)).max(1e-20).log10(),
        )
    }

    pub fn rms_db(samples: &[i16]) -> f64 {
        let sum: f64 = samples.iter().map(|&s| (s as f64 / 32768.0).powi(2)).sum();
        10.0 * (sum / samples.len().max(1) as f64).max(1e-24).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::test_signals::*;
    use super::*;

    #[test]
    fn a_tone_survives_encoding_and_decoding_at_every_rate() {
        for rate in SAMPLING_RATES {
            let frame = frame_samples(rate);
            let mut enc = Encoder::new(rate, EncoderProfile::default()).unwrap();
            let mut dec = Decoder::new(rate).unwrap();
            let mut out = Vec::new();
            let mut packet = [0u8; MAX_OPUS_PACKET];
            let mut pcm = vec![0i16; frame * 6];
            for i in 0..50 {
                let input = tone(rate, 440.0, 10000.0, i * frame, frame);
                let len = enc.encode(&input, &mut packet).unwrap();
                let n = dec.decode(&packet[..len], &mut pcm).unwrap();
                assert_eq!(n, frame);
                out.extend_from_slice(&pcm[..n]);
            }
            let tail = &out[out.len() / 2..];
            let level = goertzel_db(tail, rate, 440.0);
            assert!(
                level > -13.0 && level < -8.0,
                "rate {rate}: 440 Hz at {level:.1} dB"
            );
        }
    }

    #[test]
    fn fec_and_concealment_fill_a_lost_frame() {
        let rate = 48000;
        let frame = frame_samples(rate);
        let profile = EncoderProfile {
            fec: true,
            expected_loss: 20,
            bitrate: Some(32000),
            ..Default::default()
        };
        let mut enc = Encoder::new(rate, profile).unwrap();
        let packets: Vec<Vec<u8>> = (0..30)
            .map(|i| {
                let mut p = [0u8; MAX_OPUS_PACKET];
                let len = enc
                    .encode(&tone(rate, 300.0, 8000.0, i * frame, frame), &mut p)
                    .unwrap();
                p[..len].to_vec()
            })
            .collect();
        let mut dec = Decoder::new(rate).unwrap();
        let mut pcm = vec![0i16; frame * 6];
        for p in &packets[..20] {
            dec.decode(p, &mut pcm).unwrap();
        }
        // Packet 20 is lost; recover it from packet 21's FEC.
        assert_eq!(dec.decode_fec(&packets[21], &mut pcm).unwrap(), frame);
        assert!(goertzel_db(&pcm[..frame], rate, 300.0) > -20.0);
        dec.decode(&packets[21], &mut pcm).unwrap();
        assert_eq!(dec.conceal(&mut pcm).unwrap(), frame);
        assert!(goertzel_db(&pcm[..frame], rate, 300.0) > -30.0);
        // Garbage or empty input is an error, never a panic.
        assert!(dec.decode(&[], &mut pcm).is_err());
        let _ = dec.decode(&[0xff; 7], &mut pcm);
    }
}
