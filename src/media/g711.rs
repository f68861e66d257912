//! G.711 (ITU-T G.711, 1988): 16-bit linear PCM to and from 8-bit µ-law (PCMU) and A-law
//! (PCMA), one byte per sample at 8 kHz. A few dozen lines of integer arithmetic, written out
//! here rather than taken from a crate: the algorithm is the standard's segment search, and the
//! tests check it against the standard's own properties (decision and reconstruction levels,
//! the code of silence, monotonicity, every code surviving a round trip).

/// The two companding laws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law (PCMU, RTP payload type 0): North America and Japan.
    Mu,
    /// A-law (PCMA, RTP payload type 8): the rest of the world.
    A,
}

/// µ-law's bias: added before the segment search so that every segment is a power of two.
const MU_BIAS: i32 = 0x84;
/// The largest magnitude µ-law codes (before the bias).
const MU_CLIP: i32 = 32635;

impl Law {
    /// One sample to its code.
    pub fn encode_sample(self, sample: i16) -> u8 {
        match self {
            Law::Mu => mu_encode(sample),
            Law::A => a_encode(sample),
        }
    }

    /// One code to its sample.
    pub fn decode_sample(self, code: u8) -> i16 {
        match self {
            Law::Mu => mu_decode(code),
            Law::A => a_decode(code),
        }
    }

    /// Encodes `pcm` (8 kHz) into `out`, one byte per sample; returns the bytes written.
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) -> usize {
        let n = pcm.len().min(out.len());
        for (code, &sample) in out[..n].iter_mut().zip(pcm) {
            *code = self.encode_sample(sample);
        }
        n
    }

    /// Decodes `payload` into `out` (8 kHz); returns the samples written.
    pub fn decode(self, payload: &[u8], out: &mut [i16]) -> usize {
        let n = payload.len().min(out.len());
        for (sample, &code) in out[..n].iter_mut().zip(payload) {
            *sample = self.decode_sample(code);
        }
        n
    }
}

fn mu_encode(sample: i16) -> u8 {
    let (sign, magnitude) = if sample < 0 {
        (0x80, -(sample as i32))
    } else {
        (0x00, sample as i32)
    };
    let biased = magnitude.min(MU_CLIP) + MU_BIAS;
    // The segment is the position of the highest bit above bit 7 (0..=7).
    let exponent = (31 - (biased >> 7).max(1).leading_zeros()) as i32;
    let mantissa = (biased >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

fn mu_decode(code: u8) -> i16 {
    let code = !code;
    let exponent = ((code >> 4) & 0x07) as i32;
    let mantissa = (code & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + MU_BIAS) << exponent) - MU_BIAS;
    if code & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

fn a_encode(sample: i16) -> u8 {
    // A-law codes 13-bit samples; negative ones are coded from their one's complement.
    let pcm = (sample as i32) >> 3;
    let (mask, magnitude) = if pcm >= 0 {
        (0xd5, pcm)
    } else {
        (0x55, -pcm - 1)
    };
    // Segment ends: 0x1f, 0x3f, 0x7f, ..., 0xfff.
    let segment = (0..8).find(|&s| magnitude < 0x20 << s);
    let code = match segment {
        None => 0x7f,
        Some(s) => {
            let shift = if s < 2 { 1 } else { s };
            ((s << 4) | ((magnitude >> shift) & 0x0f)) as u8
        }
    };
    code ^ mask
}

fn a_decode(code: u8) -> i16 {
    let code = code ^ 0x55;
    let mut magnitude = ((code & 0x0f) as i32) << 4;
    let segment = ((code & 0x70) >> 4) as i32;
    match segment {
        0 => magnitude += 8,
        1 => magnitude += 0x108,
        _ => magnitude = (magnitude + 0x108) << (segment - 1),
    }
    if code & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::test_signals::{goertzel_db, rms_db, tone};

    #[test]
    fn silence_and_the_extremes_have_the_standards_codes() {
        // Silence: 0xff in µ-law (all ones after inversion), 0xd5 in A-law (even bits inverted).
        assert_eq!(Law::Mu.encode_sample(0), 0xff);
        assert_eq!(Law::A.encode_sample(0), 0xd5);
        assert_eq!(Law::Mu.decode_sample(0xff), 0);
        assert_eq!(Law::A.decode_sample(0xd5), 8);
        // Full scale: the largest reconstruction levels, 32124 (µ) and 32256 (A).
        assert_eq!(
            Law::Mu.decode_sample(Law::Mu.encode_sample(i16::MAX)),
            32124
        );
        assert_eq!(
            Law::Mu.decode_sample(Law::Mu.encode_sample(i16::MIN)),
            -32124
        );
        assert_eq!(Law::A.decode_sample(Law::A.encode_sample(i16::MAX)), 32256);
        assert_eq!(Law::A.decode_sample(Law::A.encode_sample(i16::MIN)), -32256);
        // µ-law's smallest step is 8 (2 in its 14-bit scale), A-law's is 16.
        assert_eq!(Law::Mu.decode_sample(0xfe), 8);
        assert_eq!(Law::A.decode_sample(0xd4), 24);
    }

    #[test]
    fn every_code_survives_a_round_trip_and_levels_are_monotonic() {
        for law in [Law::Mu, Law::A] {
            for code in 0..=255u8 {
                let sample = law.decode_sample(code);
                let again = law.encode_sample(sample);
                // µ-law has two codes for zero (+0 and -0); both decode to 0.
                if !(law == Law::Mu && sample == 0) {
                    assert_eq!(again, code, "{law:?} code {code:#04x} -> {sample}");
                }
            }
            let mut last = law.decode_sample(law.encode_sample(i16::MIN));
            for sample in (i16::MIN..=i16::MAX).step_by(7) {
                let level = law.decode_sample(law.encode_sample(sample));
                assert!(level >= last, "{law:?} not monotonic at {sample}");
                // Logarithmic quantisation: the error is within one step of its segment.
                let error = (level as i32 - sample as i32).abs();
                assert!(
                    error <= (sample as i32).abs() / 16 + 16,
                    "{law:?}: {sample} -> {level}"
                );
                last = level;
            }
        }
    }

    #[test]
    fn a_tone_keeps_its_level_with_about_38_db_of_noise_below_it() {
        for law in [Law::Mu, Law::A] {
            let pcm = tone(8000, 1000.0, 10000.0, 0, 8000);
            let mut codes = vec![0u8; pcm.len()];
            let mut back = vec![0i16; pcm.len()];
            assert_eq!(law.encode(&pcm, &mut codes), 8000);
            assert_eq!(law.decode(&codes, &mut back), 8000);
            let noise: Vec<i16> = back.iter().zip(&pcm).map(|(a, b)| a - b).collect();
            let snr = rms_db(&pcm) - rms_db(&noise);
            assert!(snr > 33.0, "{law:?}: SNR {snr:.1} dB");
            let level = goertzel_db(&back, 8000, 1000.0);
            assert!((level - goertzel_db(&pcm, 8000, 1000.0)).abs() < 0.2);
        }
    }
}
