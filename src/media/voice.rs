//! What one participant says, one 20 ms frame per mixer tick: packets from the jitter queue
//! decoded, a single loss recovered from the next packet's FEC, longer losses concealed, and
//! packets flagged silent by their audio level skipped without leaving the decoder stale.

use crate::locks::OrderedMutex;
use crate::media::codec::{CodecError, Decoder, MAX_PACKET_MS, frame_samples};
use crate::media::jitter::{JitterQueue, Playout};
use crate::media::rtp::SILENT_AUDIO_LEVEL;

/// Silent packets decoded before decoding stops, so the decoder's state has decayed to the
/// silence it will resume from.
const SILENT_PACKETS_DECODED: u32 = 2;

#[derive(Debug, PartialEq, Eq)]
pub enum VoiceFrame {
    /// A frame of audio (decoded, recovered or concealed) is in [`Voice::frame`].
    Audio,
    /// The sender flagged this packet silent: nothing to mix.
    Silent,
    /// No packet to play this tick (pre-buffering, muted, or the sender stopped).
    Nothing,
}

pub struct Voice {
    decoder: Decoder,
    frame: Vec<i16>,
    /// Decoded samples not yet played (packets longer than 20 ms).
    pending: Vec<i16>,
    decoded: Vec<i16>,
    packet: Vec<u8>,
    silent_run: u32,
    /// The RFC 6464 levels of the packets played since the last call to `take_levels`.
    levels: Vec<u8>,
    pub errors: u64,
}

impl Voice {
    pub fn new(rate: u32) -> Result<Self, CodecError> {
        let frame = frame_samples(rate);
        Ok(Voice {
            decoder: Decoder::new(rate)?,
            frame: vec![0; frame],
            pending: Vec::with_capacity(frame * 6),
            decoded: vec![0; frame * MAX_PACKET_MS / 20],
            packet: Vec::with_capacity(256),
            silent_run: 0,
            levels: Vec::with_capacity(4),
            errors: 0,
        })
    }

    /// The frame produced by the last `next_frame` that returned `Audio`.
    pub fn frame(&self) -> &[i16] {
        &self.frame
    }

    /// Starts afresh: the decoder forgets its history (`resetdecoder`, unmute).
    pub fn reset(&mut self) {
        self.decoder.reset();
        self.pending.clear();
        self.silent_run = 0;
    }

    /// Levels seen since the last call, for talking detection.
    pub fn take_levels(&mut self) -> impl Iterator<Item = u8> + '_ {
        self.levels.drain(..)
    }

    /// Produces this tick's frame from `queue`, locking it only to pull packets.
    pub fn next_frame(
        &mut self,
        queue: &OrderedMutex<JitterQueue>,
        skip_silent: bool,
    ) -> VoiceFrame {
        let n = self.frame.len();
        while self.pending.len() < n {
            let playout = queue.lock().pop(&mut self.packet);
            let decoded = match playout {
                Playout::Packet { audio_level } => {
                    if let Some(level) = audio_level {
                        self.levels.push(level);
                    }
                    if audio_level == Some(SILENT_AUDIO_LEVEL) && skip_silent {
                        self.silent_run += 1;
                        if self.silent_run > SILENT_PACKETS_DECODED {
                            self.pending.clear();
                            return VoiceFrame::Silent;
                        }
                    } else {
                        self.silent_run = 0;
                    }
                    self.decoder.decode(&self.packet, &mut self.decoded)
                }
                Playout::LostBeforeNext => self.decoder.decode_fec(&self.packet, &mut self.decoded),
                Playout::Lost => self.decoder.conceal(&mut self.decoded),
                Playout::Nothing if self.pending.is_empty() => return VoiceFrame::Nothing,
                Playout::Nothing => {
                    self.pending.resize(n, 0);
                    break;
                }
            };
            let samples = match decoded {
                Ok(samples) => samples,
                Err(_) => {
                    // Garbage payload: conceal it like a loss rather than let it through.
                    self.errors += 1;
                    self.decoder.conceal(&mut self.decoded).unwrap_or(0)
                }
            };
            self.pending.extend_from_slice(&self.decoded[..samples]);
        }
        self.frame.copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        VoiceFrame::Audio
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::test_signals::*;
    use crate::media::codec::{Encoder, EncoderProfile, MAX_OPUS_PACKET};

    const RATE: u32 = 48000;
    const FRAME: usize = 960;

    fn encode_tone(freq: f64, frames: usize, fec: bool) -> Vec<Vec<u8>> {
        let profile = EncoderProfile {
            fec,
            expected_loss: if fec { 20 } else { 0 },
            bitrate: Some(40000),
            ..Default::default()
        };
        let mut enc = Encoder::new(RATE, profile).unwrap();
        (0..frames)
            .map(|i| {
                let mut p = [0u8; MAX_OPUS_PACKET];
                let len = enc
                    .encode(&tone(RATE, freq, 8000.0, i * FRAME, FRAME), &mut p)
                    .unwrap();
                p[..len].to_vec()
            })
            .collect()
    }

    /// Delivers packet i just before tick i (those `arrives` lets through), one tick each.
    fn play_arriving(
        voice: &mut Voice,
        queue: &OrderedMutex<JitterQueue>,
        packets: &[Vec<u8>],
        arrives: impl Fn(usize) -> bool,
    ) -> (Vec<i16>, Vec<VoiceFrame>) {
        let mut out = Vec::new();
        let mut kinds = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            if arrives(i) {
                queue.lock().push(1, i as u16, p, None);
            }
            let kind = voice.next_frame(queue, true);
            if kind == VoiceFrame::Audio {
                out.extend_from_slice(voice.frame());
            } else {
                out.extend(std::iter::repeat_n(0, FRAME));
            }
            kinds.push(kind);
        }
        (out, kinds)
    }

    #[test]
    fn a_single_loss_is_recovered_from_fec() {
        let packets = encode_tone(500.0, 60, true);
        let queue = OrderedMutex::leaf("queue", JitterQueue::new(2));
        let mut voice = Voice::new(RATE).unwrap();
        let (out, kinds) = play_arriving(&mut voice, &queue, &packets, |i| i != 30);
        // Pre-buffering holds the first tick back; every later tick has audio.
        assert!(
            kinds[1..].iter().all(|k| *k == VoiceFrame::Audio),
            "{kinds:?}"
        );
        let recovered = &out[31 * FRAME..32 * FRAME];
        assert!(
            goertzel_db(recovered, RATE, 500.0) > -20.0,
            "FEC frame carries the tone"
        );
        assert_eq!(queue.lock().stats.lost, 1);
    }

    #[test]
    fn a_burst_loss_is_concealed_and_playout_continues() {
        let packets = encode_tone(500.0, 60, false);
        let queue = OrderedMutex::leaf("queue", JitterQueue::new(6));
        let mut voice = Voice::new(RATE).unwrap();
        let (out, kinds) = play_arriving(&mut voice, &queue, &packets, |i| !(20..25).contains(&i));
        assert!(
            kinds[5..].iter().all(|k| *k == VoiceFrame::Audio),
            "{kinds:?}"
        );
        assert_eq!(queue.lock().stats.lost, 5);
        // The frames after the burst carry the tone again.
        assert!(goertzel_db(&out[40 * FRAME..58 * FRAME], RATE, 500.0) > -15.0);
    }

    #[test]
    fn silent_packets_are_skipped_and_later_speech_is_intact() {
        // Speech, then 50 packets flagged silent (real silence), then speech again.
        let profile = EncoderProfile {
            bitrate: Some(40000),
            ..Default::default()
        };
        let mut enc = Encoder::new(RATE, profile).unwrap();
        let mut packets = Vec::new();
        for i in 0..150 {
            let silent = (50..100).contains(&i);
            let pcm = if silent {
                vec![0; FRAME]
            } else {
                tone(RATE, 700.0, 8000.0, i * FRAME, FRAME)
            };
            let mut p = [0u8; MAX_OPUS_PACKET];
            let len = enc.encode(&pcm, &mut p).unwrap();
            packets.push((p[..len].to_vec(), if silent { 127 } else { 30 }));
        }
        let queue = OrderedMutex::leaf("queue", JitterQueue::new(1));
        let mut voice = Voice::new(RATE).unwrap();
        let mut reference = Decoder::new(RATE).unwrap();
        let mut ref_pcm = vec![0i16; FRAME * 6];
        let mut skipped = 0;
        let mut worst_late_speech_error = f64::NEG_INFINITY;
        for (i, (p, level)) in packets.iter().enumerate() {
            queue.lock().push(1, i as u16, p, Some(*level));
            let kind = voice.next_frame(&queue, true);
            reference.decode(p, &mut ref_pcm).unwrap();
            if kind == VoiceFrame::Silent {
                skipped += 1;
                continue;
            }
            assert_eq!(kind, VoiceFrame::Audio);
            if i >= 105 {
                // After a few frames the skipping decoder matches one that decoded everything.
                let err: Vec<i16> = voice
                    .frame()
                    .iter()
                    .zip(&ref_pcm[..FRAME])
                    .map(|(a, b)| a.saturating_sub(*b))
                    .collect();
                worst_late_speech_error =
                    worst_late_speech_error.max(rms_db(&err) - rms_db(&ref_pcm[..FRAME]));
            }
            if i >= 101 {
                assert!(
                    goertzel_db(voice.frame(), RATE, 700.0) > -20.0,
                    "speech resumes at once (frame {i})"
                );
            }
        }
        assert_eq!(
            skipped, 48,
            "all but the first two silent packets skip decoding"
        );
        assert!(
            worst_late_speech_error < -30.0,
            "resumed speech matches: {worst_late_speech_error:.1} dB"
        );
    }

    #[test]
    fn packets_longer_than_a_frame_are_played_over_several_ticks() {
        // 40 ms packets arrive every other tick.
        let mut enc = Encoder::new(RATE, EncoderProfile::default()).unwrap();
        let queue = OrderedMutex::leaf("queue", JitterQueue::new(1));
        let mut voice = Voice::new(RATE).unwrap();
        let mut out = Vec::new();
        for tick in 0..20 {
            if tick % 2 == 0 {
                let i = tick / 2;
                let mut p = [0u8; MAX_OPUS_PACKET];
                let len = enc
                    .encode(&tone(RATE, 440.0, 8000.0, i * 2 * FRAME, 2 * FRAME), &mut p)
                    .unwrap();
                queue.lock().push(1, i as u16, &p[..len], None);
            }
            assert_eq!(
                voice.next_frame(&queue, true),
                VoiceFrame::Audio,
                "tick {tick}"
            );
            out.extend_from_slice(voice.frame());
        }
        assert!(goertzel_db(&out[4 * FRAME..], RATE, 440.0) > -15.0);
    }

    #[test]
    fn garbage_payloads_are_concealed() {
        let queue = OrderedMutex::leaf("queue", JitterQueue::new(1));
        queue.lock().push(1, 1, &[0xff, 0xff, 0xff], None);
        let mut voice = Voice::new(RATE).unwrap();
        assert_eq!(voice.next_frame(&queue, true), VoiceFrame::Audio);
        assert_eq!(voice.errors, 1);
        // Then the sender is silent: two slots concealed, then nothing.
        assert_eq!(voice.next_frame(&queue, true), VoiceFrame::Audio);
        assert_eq!(voice.next_frame(&queue, true), VoiceFrame::Audio);
        assert_eq!(voice.next_frame(&queue, true), VoiceFrame::Nothing);
    }
}
