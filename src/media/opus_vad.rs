//! The voice activity flag the sender's own Opus encoder puts in every SILK and hybrid frame
//! (RFC 6716, section 4.2.3: the first bits of the SILK layer are one VAD flag per SILK frame),
//! read without decoding: the first symbol of the range coder (section 4.1). A participant
//! that sends no RFC 6464 levels (a SIP gateway) need not have its packets decoded while its
//! encoder says nobody speaks; CELT-only packets carry no flag and are decoded to be measured.

/// Whether the packet's first Opus frame carries voice, as its encoder judged; `None` when the
/// packet says nothing (CELT-only, a framing this does not read, or too short).
pub fn voice_activity(packet: &[u8]) -> Option<bool> {
    let (&toc, rest) = packet.split_first()?;
    let config = toc >> 3;
    if config >= 16 {
        return None; // CELT only: no SILK layer
    }
    let frame = match toc & 3 {
        // One frame, or two of equal size: the first starts right after the TOC byte.
        0 | 1 => rest,
        // Two frames, the first's length in one or two bytes (section 3.2.1).
        2 => {
            let (&first, after) = rest.split_first()?;
            if first < 252 { after } else { after.get(1..)? }
        }
        _ => return None,
    };
    // SILK frames in this Opus frame: 10 and 20 ms frames hold one, 40 ms two, 60 ms three
    // (hybrid frames are 10 or 20 ms).
    let silk_frames = match config {
        12..=15 => 1,
        _ => match config % 4 {
            2 => 2,
            3 => 3,
            _ => 1,
        },
    };
    let mut decoder = RangeDecoder::new(frame)?;
    let mut active = false;
    for _ in 0..silk_frames {
        active |= decoder.bit_half();
    }
    Some(active)
}

/// Just enough of Opus's range decoder (RFC 6716, section 4.1) for equiprobable bits.
struct RangeDecoder<'a> {
    data: &'a [u8],
    offset: usize,
    rng: u32,
    val: u32,
    rem: u32,
}

impl<'a> RangeDecoder<'a> {
    fn new(data: &'a [u8]) -> Option<Self> {
        if data.is_empty() {
            return None;
        }
        let mut decoder = RangeDecoder {
            data,
            offset: 0,
            rng: 1 << 7,
            val: 0,
            rem: 0,
        };
        decoder.rem = decoder.byte();
        decoder.val = decoder.rng - 1 - (decoder.rem >> 1);
        decoder.normalize();
        Some(decoder)
    }

    /// The next byte, or 0 past the end (as the reference decoder reads).
    fn byte(&mut self) -> u32 {
        let b = self.data.get(self.offset).copied().unwrap_or(0);
        self.offset += 1;
        b as u32
    }

    fn normalize(&mut self) {
        while self.rng <= 1 << 23 {
            self.rng <<= 8;
            let symbol = self.rem;
            self.rem = self.byte();
            let symbol = ((symbol << 8) | self.rem) >> 1;
            self.val = ((self.val << 8) + (255 & !symbol)) & ((1 << 31) - 1);
        }
    }

    /// A bit of probability one half (`ec_dec_bit_logp(1)`): true is the less probable value,
    /// as the encoder codes a set VAD flag.
    fn bit_half(&mut self) -> bool {
        let s = self.rng >> 1;
        let one = self.val < s;
        if one {
            self.rng = s;
        } else {
            self.val -= s;
            self.rng -= s;
        }
        self.normalize();
        one
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::test_signals::{noise, tone};
    use crate::media::codec::{Encoder, EncoderProfile, MAX_OPUS_PACKET};

    fn packets(pcm: impl Fn(usize) -> Vec<i16>, bitrate: u32) -> Vec<Vec<u8>> {
        let profile = EncoderProfile {
            bitrate: Some(bitrate),
            ..Default::default()
        };
        let mut encoder = Encoder::new(48000, profile).unwrap();
        (0..100)
            .map(|i| {
                let mut p = [0u8; MAX_OPUS_PACKET];
                let n = encoder.encode(&pcm(i), &mut p).unwrap();
                p[..n].to_vec()
            })
            .collect()
    }

    #[test]
    fn the_encoders_own_verdict_is_read_from_silk_and_hybrid_frames() {
        for bitrate in [16_000, 32_000] {
            // A steady room noise is not voice; a tone that starts loud is.
            let quiet = packets(|i| noise(i as u64, -55.0, 960), bitrate);
            let loud = packets(
                |i| tone(48000, 300.0 + i as f64, 8000.0, i * 960, 960),
                bitrate,
            );
            let inactive = quiet[20..]
                .iter()
                .filter(|p| voice_activity(p) == Some(false))
                .count();
            let active = loud
                .iter()
                .filter(|p| voice_activity(p) == Some(true))
                .count();
            assert!(
                inactive >= 75,
                "{bitrate} b/s: noise inactive in {inactive} of 80"
            );
            // SILK's detector tires of a sound this steady, so not every frame: the mixer only
            // asks while someone is not speaking, which is when a sound starts.
            assert!(
                active >= 80,
                "{bitrate} b/s: voice active in {active} of 100"
            );
            // From the very first packet of a sound on.
            assert!(loud[..10].iter().all(|p| voice_activity(p) == Some(true)));
        }
    }

    #[test]
    fn what_it_cannot_read_is_unknown_never_a_panic() {
        assert_eq!(voice_activity(&[]), None);
        assert_eq!(voice_activity(&[16 << 3]), None, "CELT only");
        assert_eq!(voice_activity(&[3]), None, "code 3 framing");
        assert_eq!(voice_activity(&[2]), None, "code 2 without its length");
        for toc in 0..=255u8 {
            for len in 0..6 {
                let _ = voice_activity(&[toc, 0xff, 0x00, 0x7f, 0x80, 0x01][..len.max(1)]);
            }
        }
    }
}
