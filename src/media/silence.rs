//! Digital silence costs no encoding: after a couple of real encodes (so the receiver's decoder
//! settles on silence) a stream repeats a cached silent Opus frame, and when sound returns the
//! encoder starts from a clean state, matching the silence the receiver has been decoding.

use crate::media::codec::{CodecError, Encoder, EncoderProfile, MAX_OPUS_PACKET, frame_samples};

/// Silent frames still encoded before the cached frame takes over.
const ENCODED_SILENT_FRAMES: u32 = 2;

#[derive(Clone)]
pub struct SilenceGate {
    cached: Vec<u8>,
    silent_run: u32,
}

impl SilenceGate {
    pub fn new(rate: u32, profile: EncoderProfile) -> Result<Self, CodecError> {
        let mut encoder = Encoder::new(rate, profile)?;
        let zeros = vec![0i16; frame_samples(rate)];
        let mut packet = [0u8; MAX_OPUS_PACKET];
        let mut len = 0;
        for _ in 0..3 {
            len = encoder.encode(&zeros, &mut packet)?;
        }
        Ok(SilenceGate {
            cached: packet[..len].to_vec(),
            silent_run: 0,
        })
    }

    /// Whether the last frame was the cached one (the encoder was skipped).
    pub fn skipping(&self) -> bool {
        self.silent_run > ENCODED_SILENT_FRAMES
    }

    /// Encodes `pcm` into `out`, or copies the cached frame when it is a run of silence.
    pub fn encode(
        &mut self,
        encoder: &mut Encoder,
        pcm: &[i16],
        silent: bool,
        out: &mut [u8],
    ) -> Result<usize, CodecError> {
        if silent {
            self.silent_run = self.silent_run.saturating_add(1);
            if self.skipping() {
                out[..self.cached.len()].copy_from_slice(&self.cached);
                return Ok(self.cached.len());
            }
        } else {
            if self.skipping() {
                encoder.reset();
            }
            self.silent_run = 0;
        }
        encoder.encode(pcm, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::Decoder;
    use crate::media::codec::test_signals::*;

    #[test]
    fn silence_is_cached_and_sound_resumes_cleanly() {
        let rate = 48000;
        let frame = 960;
        let mut gate = SilenceGate::new(rate, EncoderProfile::default()).unwrap();
        let mut enc = Encoder::new(rate, EncoderProfile::default()).unwrap();
        let mut dec = Decoder::new(rate).unwrap();
        let mut out = [0u8; MAX_OPUS_PACKET];
        let mut pcm = vec![0i16; frame * 6];
        let mut cached = 0;
        let mut decoded = Vec::new();
        for i in 0..150 {
            let silent = (50..100).contains(&i);
            let input = if silent {
                vec![0; frame]
            } else {
                tone(rate, 440.0, 8000.0, i * frame, frame)
            };
            let len = gate.encode(&mut enc, &input, silent, &mut out).unwrap();
            cached += gate.skipping() as u32;
            let n = dec.decode(&out[..len], &mut pcm).unwrap();
            decoded.push(pcm[..n].to_vec());
        }
        assert_eq!(cached, 48);
        for (i, f) in decoded.iter().enumerate().skip(53).take(46) {
            assert!(rms_db(f) < -80.0, "frame {i} of silence decodes silent");
        }
        for (i, f) in decoded.iter().enumerate().skip(101) {
            assert!(
                goertzel_db(f, rate, 440.0) > -24.0,
                "frame {i} carries the tone again"
            );
        }
    }
}
