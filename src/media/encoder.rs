//! A mono Opus encoder whose state can be copied from another one.
//!
//! libopus keeps an encoder's whole state in one position-independent block ("only a shallow
//! copy is sufficient to copy it", opus.h), so the encoder is allocated here with
//! `opus_encoder_init` instead of through audiopus, which hides the block. Copying lets a
//! listener who starts talking take over the shared stream's encoder exactly where the
//! listener's decoder left it: the switch to a private stream is seamless.

use crate::media::codec::{CodecError, EncoderProfile};
use audiopus::ffi;
use std::ffi::c_int;

pub struct Encoder {
    /// The OpusEncoder block, in u64 words so it is suitably aligned.
    state: Box<[u64]>,
    profile: EncoderProfile,
    rate: u32,
}

// The state is plain memory owned by this value; libopus encoders may move between threads.
unsafe impl Send for Encoder {}

fn check(code: c_int, what: &str) -> Result<c_int, CodecError> {
    if code < 0 {
        Err(CodecError(format!("libopus {what} failed ({code})")))
    } else {
        Ok(code)
    }
}

impl Encoder {
    pub fn new(rate: u32, profile: EncoderProfile) -> Result<Self, CodecError> {
        if !crate::media::codec::SAMPLING_RATES.contains(&rate) {
            return Err(CodecError(format!("unsupported sampling rate {rate}")));
        }
        let bytes = unsafe { ffi::opus_encoder_get_size(1) };
        check(bytes, "opus_encoder_get_size")?;
        let words = (bytes as usize).div_ceil(8);
        let mut encoder = Encoder {
            state: vec![0u64; words].into_boxed_slice(),
            profile,
            rate,
        };
        let init = unsafe {
            ffi::opus_encoder_init(encoder.raw(), rate as i32, 1, ffi::OPUS_APPLICATION_VOIP)
        };
        check(init, "opus_encoder_init")?;
        encoder.apply(profile)?;
        Ok(encoder)
    }

    fn raw(&mut self) -> *mut ffi::OpusEncoder {
        self.state.as_mut_ptr().cast()
    }

    fn ctl(&mut self, request: i32, value: i32) -> Result<(), CodecError> {
        let code = unsafe { ffi::opus_encoder_ctl(self.raw(), request, value) };
        check(code, "opus_encoder_ctl").map(|_| ())
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    pub fn profile(&self) -> EncoderProfile {
        self.profile
    }

    /// Changes the profile in place; the stream continues without a reset.
    pub fn apply(&mut self, profile: EncoderProfile) -> Result<(), CodecError> {
        self.ctl(
            ffi::OPUS_SET_COMPLEXITY_REQUEST,
            profile.complexity.min(10) as i32,
        )?;
        let bitrate = profile
            .bitrate
            .map_or(ffi::OPUS_AUTO, |bits| bits.clamp(500, 512_000) as i32);
        self.ctl(ffi::OPUS_SET_BITRATE_REQUEST, bitrate)?;
        self.ctl(ffi::OPUS_SET_INBAND_FEC_REQUEST, profile.fec as i32)?;
        self.ctl(
            ffi::OPUS_SET_PACKET_LOSS_PERC_REQUEST,
            profile.expected_loss.min(100) as i32,
        )?;
        self.profile = profile;
        Ok(())
    }

    /// Encodes `pcm` (one Opus frame: 2.5 to 60 ms; the mixer always gives 20 ms) into `out`;
    /// returns the packet's length.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        let unit = self.rate as usize / 400; // 2.5 ms
        if pcm.is_empty() || pcm.len() % unit != 0 || pcm.len() > 24 * unit {
            return Err(CodecError(format!(
                "{} samples are not an Opus frame at {} Hz",
                pcm.len(),
                self.rate
            )));
        }
        let frame = pcm.len() as c_int;
        let capacity = out.len().min(i32::MAX as usize) as i32;
        let len = unsafe {
            ffi::opus_encode(self.raw(), pcm.as_ptr(), frame, out.as_mut_ptr(), capacity)
        };
        check(len, "opus_encode").map(|n| n as usize)
    }

    /// Continues from exactly where `other` is: same history, same settings.
    pub fn copy_state_from(&mut self, other: &Encoder) {
        debug_assert_eq!(self.state.len(), other.state.len());
        self.state.copy_from_slice(&other.state);
        self.profile = other.profile;
        self.rate = other.rate;
    }

    /// Forgets the history (settings stay).
    pub fn reset(&mut self) {
        unsafe {
            ffi::opus_encoder_ctl(self.raw(), ffi::OPUS_RESET_STATE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::test_signals::{goertzel_db, tone};
    use crate::media::codec::{Decoder, MAX_OPUS_PACKET};

    #[test]
    fn a_copied_encoder_continues_the_stream_bit_for_bit() {
        let mut original = Encoder::new(48000, EncoderProfile::default()).unwrap();
        let mut packet = [0u8; MAX_OPUS_PACKET];
        for i in 0..20 {
            original
                .encode(&tone(48000, 500.0, 9000.0, i * 960, 960), &mut packet)
                .unwrap();
        }
        let mut copy = Encoder::new(
            48000,
            EncoderProfile {
                complexity: 9,
                ..Default::default()
            },
        )
        .unwrap();
        copy.copy_state_from(&original);
        let mut a = [0u8; MAX_OPUS_PACKET];
        let mut b = [0u8; MAX_OPUS_PACKET];
        for i in 20..40 {
            let pcm = tone(48000, 500.0, 9000.0, i * 960, 960);
            let la = original.encode(&pcm, &mut a).unwrap();
            let lb = copy.encode(&pcm, &mut b).unwrap();
            assert_eq!(a[..la], b[..lb], "frame {i}");
        }
        assert_eq!(copy.profile(), original.profile());
    }

    #[test]
    fn settings_apply_and_bad_frames_are_refused() {
        let mut encoder = Encoder::new(
            16000,
            EncoderProfile {
                bitrate: Some(12000),
                fec: true,
                expected_loss: 10,
                complexity: 10,
            },
        )
        .unwrap();
        let mut decoder = Decoder::new(16000).unwrap();
        let mut packet = [0u8; MAX_OPUS_PACKET];
        let mut pcm = vec![0i16; 320 * 6];
        let mut total = 0;
        let mut heard = Vec::new();
        for i in 0..50 {
            let len = encoder
                .encode(&tone(16000, 300.0, 9000.0, i * 320, 320), &mut packet)
                .unwrap();
            total += len;
            let n = decoder.decode(&packet[..len], &mut pcm).unwrap();
            heard.extend_from_slice(&pcm[..n]);
        }
        assert!(
            total * 8 < 20000,
            "about 12 kbit/s: {} bytes in a second",
            total
        );
        assert!(goertzel_db(&heard[8000..], 16000, 300.0) > -18.0);
        assert!(encoder.encode(&[0; 100], &mut packet).is_err());
        assert!(Encoder::new(44100, EncoderProfile::default()).is_err());
    }
}
