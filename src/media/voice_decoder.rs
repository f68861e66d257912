//! The decoder behind a participant's voice: Opus at the room's rate, or G.711 at 8 kHz brought
//! to the room's rate by a proper filter (`media::resample`). Both give the calls `media::voice`
//! makes: a whole packet, a frame recovered from the next packet (Opus FEC; G.711 has none and
//! conceals), a concealed frame, and whether a packet's own encoder says nobody speaks.

use crate::media::audio_codec::AudioCodec;
use crate::media::codec::{CodecError, Decoder, MAX_PACKET_MS, frame_samples};
use crate::media::g711::Law;
use crate::media::opus_vad::voice_activity;
use crate::media::resample::FrameResampler;

/// G.711 samples in one 20 ms frame.
const G711_FRAME: usize = 160;

pub enum VoiceDecoder {
    Opus(Decoder),
    G711(G711Decoder),
}

impl VoiceDecoder {
    pub fn new(rate: u32, codec: AudioCodec) -> Result<Self, CodecError> {
        Ok(match codec.law() {
            None => VoiceDecoder::Opus(Decoder::new(rate)?),
            Some(law) => VoiceDecoder::G711(G711Decoder::new(rate, law)?),
        })
    }

    /// Decodes a whole packet into `out` (room for 120 ms); returns the samples written.
    pub fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        match self {
            VoiceDecoder::Opus(d) => d.decode(packet, out),
            VoiceDecoder::G711(d) => d.decode(packet, out),
        }
    }

    /// The 20 ms lost before `next_packet`, from its in-band FEC (Opus), else concealed.
    pub fn decode_fec(&mut self, next_packet: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        match self {
            VoiceDecoder::Opus(d) => d.decode_fec(next_packet, out),
            VoiceDecoder::G711(d) => Ok(d.conceal(out)),
        }
    }

    /// One concealed 20 ms frame.
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError> {
        match self {
            VoiceDecoder::Opus(d) => d.conceal(out),
            VoiceDecoder::G711(d) => Ok(d.conceal(out)),
        }
    }

    pub fn reset(&mut self) {
        match self {
            VoiceDecoder::Opus(d) => d.reset(),
            VoiceDecoder::G711(d) => d.reset(),
        }
    }

    /// What the packet's own encoder says of voice in it, when it says anything (SILK and
    /// hybrid Opus frames; G.711 says nothing).
    pub fn voice_activity(&self, packet: &[u8]) -> Option<bool> {
        match self {
            VoiceDecoder::Opus(_) => voice_activity(packet),
            VoiceDecoder::G711(_) => None,
        }
    }
}

/// G.711 at 8 kHz to 20 ms frames at the room's rate. Packets of any whole number of samples
/// up to 120 ms are taken; samples wait here until they make a frame.
pub struct G711Decoder {
    law: Law,
    up: FrameResampler,
    /// Decoded 8 kHz samples not yet resampled.
    pending: Vec<i16>,
    /// One room-rate frame.
    frame: Vec<i16>,
}

impl G711Decoder {
    fn new(rate: u32, law: Law) -> Result<Self, CodecError> {
        Ok(G711Decoder {
            law,
            up: FrameResampler::new(8000, rate)?,
            pending: Vec::with_capacity(G711_FRAME * MAX_PACKET_MS / 20),
            frame: vec![0; frame_samples(rate)],
        })
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let frame = self.frame.len();
        let frames = (self.pending.len() + payload.len()) / G711_FRAME;
        if payload.is_empty() || frames * frame > out.len() {
            return Err(CodecError(format!(
                "a G.711 payload of {} bytes",
                payload.len()
            )));
        }
        let start = self.pending.len();
        self.pending.resize(start + payload.len(), 0);
        self.law.decode(payload, &mut self.pending[start..]);
        let mut written = 0;
        for chunk in self.pending.chunks_exact(G711_FRAME) {
            self.up.process(chunk, &mut out[written..written + frame]);
            written += frame;
        }
        self.pending.drain(..frames * G711_FRAME);
        Ok(written)
    }

    /// Silence for a lost frame: G.711 has no concealment of its own, and a repeated frame of
    /// speech sounds worse than a 20 ms gap. The resampler hears it too, so the next frame
    /// starts from silence.
    fn conceal(&mut self, out: &mut [i16]) -> usize {
        let frame = self.frame.len();
        self.pending.clear();
        self.up.process(&[0; G711_FRAME], &mut out[..frame]);
        frame
    }

    fn reset(&mut self) {
        self.pending.clear();
        self.up.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::test_signals::{goertzel_db, tone};

    #[test]
    fn g711_packets_of_any_length_come_out_as_room_frames() {
        for codec in [AudioCodec::Pcmu, AudioCodec::Pcma] {
            let mut decoder = VoiceDecoder::new(16000, codec).unwrap();
            let law = codec.law().unwrap();
            let pcm = tone(8000, 1000.0, 9000.0, 0, 8000);
            let mut out = vec![0i16; 320 * 6];
            let mut heard = Vec::new();
            // 10 ms, then 30 ms, then 20 ms packets.
            let mut at = 0;
            for (i, len) in [80, 240]
                .into_iter()
                .chain(std::iter::repeat(160))
                .enumerate()
            {
                if at + len > pcm.len() {
                    break;
                }
                let mut payload = vec![0u8; len];
                law.encode(&pcm[at..at + len], &mut payload);
                at += len;
                let n = decoder.decode(&payload, &mut out).unwrap();
                assert_eq!(n % 320, 0, "packet {i}: whole frames only");
                heard.extend_from_slice(&out[..n]);
            }
            assert_eq!(heard.len(), at * 2);
            assert!(goertzel_db(&heard[3200..], 16000, 1000.0) > -13.0);
            assert_eq!(decoder.voice_activity(&[0x0b, 0x80]), None);
            assert!(decoder.decode(&[], &mut out).is_err());
            assert!(decoder.decode(&[0xff; 2000], &mut out).is_err());
        }
    }
}
