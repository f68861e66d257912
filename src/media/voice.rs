//! What one participant says, one 20 ms frame per mixer tick: packets from the jitter queue
//! decoded, a single loss recovered from the next packet's FEC, longer losses concealed, and
//! packets the mixer will not mix (quiet ones from a participant who is not speaking) skipped
//! without leaving the decoder stale: the last skipped packet is decoded just before the next
//! one that counts, so a word's onset plays from a decoder that is up to date. A packet without
//! a level from someone who is not speaking is decoded to be measured, unless its own encoder
//! flags it as without voice.

use crate::locks::OrderedMutex;
use crate::media::audio_codec::AudioCodec;
use crate::media::codec::{CodecError, MAX_PACKET_MS, frame_samples};
use crate::media::jitter::{JitterQueue, Playout, PlayoutHint};
use crate::media::played::PlayedPackets;
use crate::media::rtp::SILENT_AUDIO_LEVEL;
use crate::media::speech::frame_level;
use crate::media::voice_decoder::VoiceDecoder;

/// Digitally silent packets still decoded in a row (mixing everyone), so the decoder's state
/// has decayed to the silence it will resume from.
const SILENT_PACKETS_DECODED: u32 = 2;

/// Which packets the mixer needs decoded this tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeRule {
    /// Packets at least this loud (RFC 6464 level, -dBov) are decoded.
    pub threshold: u8,
    /// The participant was speaking as of the last frame: everything is decoded (and losses
    /// concealed), since its frames are mixed whatever their level.
    pub speaking: bool,
    /// Every participant is mixed (AudioBridge's way): everything is decoded but runs of
    /// digital silence.
    pub mix_all: bool,
}

impl DecodeRule {
    /// Whether a packet of this level is decoded.
    fn decodes(&self, level: u8, silent_run: u32) -> bool {
        if self.mix_all {
            level != SILENT_AUDIO_LEVEL || silent_run <= SILENT_PACKETS_DECODED
        } else {
            self.speaking || level <= self.threshold
        }
    }

    /// For a packet without a level: digital silence's level when the participant is not
    /// speaking and the packet's own encoder flags it as without voice (SILK and hybrid frames,
    /// `media::opus_vad`), so it need not be decoded to be measured.
    fn quiet_by_its_encoder(&self, voice_activity: Option<bool>) -> Option<u8> {
        let unneeded = !self.speaking && !self.mix_all && voice_activity == Some(false);
        unneeded.then_some(SILENT_AUDIO_LEVEL)
    }

    /// Whether a lost packet is concealed (nobody needs a concealed frame of a participant
    /// who is not mixed).
    fn conceals(&self) -> bool {
        self.mix_all || self.speaking
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum VoiceFrame {
    /// A frame of audio (decoded, recovered or concealed) is in [`Voice::frame`], with its
    /// level: the packet's, or measured from the frame when the sender gives none.
    Audio { level: u8 },
    /// A packet came but was not decoded: the mixer does not need it. Its level.
    Quiet { level: u8 },
    /// Nothing to play this tick (pre-buffering, the sender stopped, or a loss while the
    /// participant is not mixed).
    Nothing,
}

pub struct Voice {
    decoder: VoiceDecoder,
    frame: Vec<i16>,
    /// Decoded samples not yet played (packets longer than 20 ms).
    pending: Vec<i16>,
    /// The level of the packet `pending` came from.
    pending_level: Option<u8>,
    decoded: Vec<i16>,
    packet: Vec<u8>,
    /// The last packet skipped, kept to bring the decoder up to date before the next decode.
    skipped: Vec<u8>,
    skipped_since_decode: bool,
    silent_run: u32,
    pub errors: u64,
    /// Packets decoded only to prime the decoder at an onset (how often skipping cost extra).
    pub primes: u64,
    /// Every packet that began to play, decoded or skipped, when its caller asks for them
    /// (the participant's own track); `start_tick` is the caller's.
    pub played: PlayedPackets,
}

impl Voice {
    /// An Opus voice.
    pub fn new(rate: u32) -> Result<Self, CodecError> {
        Self::with_codec(rate, AudioCodec::Opus)
    }

    /// A voice in `codec`, decoded to `rate`.
    pub fn with_codec(rate: u32, codec: AudioCodec) -> Result<Self, CodecError> {
        let frame = frame_samples(rate);
        Ok(Voice {
            decoder: VoiceDecoder::new(rate, codec)?,
            frame: vec![0; frame],
            pending: Vec::with_capacity(frame * 6),
            pending_level: None,
            decoded: vec![0; frame * MAX_PACKET_MS / 20],
            packet: Vec::with_capacity(256),
            skipped: Vec::with_capacity(256),
            skipped_since_decode: false,
            silent_run: 0,
            errors: 0,
            primes: 0,
            played: PlayedPackets::default(),
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
        self.skipped_since_decode = false;
        self.silent_run = 0;
    }

    /// Produces this tick's frame from `queue`, locking it only to pull packets.
    pub fn next_frame(
        &mut self,
        queue: &OrderedMutex<JitterQueue>,
        rule: DecodeRule,
        now_us: u64,
    ) -> VoiceFrame {
        let n = self.frame.len();
        let hint = PlayoutHint {
            quiet: !rule.speaking && !rule.mix_all,
            quiet_level: rule.threshold,
        };
        while self.pending.len() < n {
            let playout = queue.lock().pop(&mut self.packet, now_us, hint);
            let decoded = match playout {
                Playout::Packet { audio_level } => {
                    self.played.push(&self.packet);
                    // Without a level, the sender's own encoder may still say nobody speaks.
                    let level = audio_level.or_else(|| {
                        rule.quiet_by_its_encoder(self.decoder.voice_activity(&self.packet))
                    });
                    if let Some(level) = level {
                        if level == SILENT_AUDIO_LEVEL {
                            self.silent_run += 1;
                        } else {
                            self.silent_run = 0;
                        }
                        if !rule.decodes(level, self.silent_run) {
                            std::mem::swap(&mut self.skipped, &mut self.packet);
                            self.skipped_since_decode = true;
                            self.pending.clear();
                            return VoiceFrame::Quiet { level };
                        }
                    }
                    self.pending_level = audio_level;
                    self.prime();
                    self.decoder.decode(&self.packet, &mut self.decoded)
                }
                Playout::LostBeforeNext | Playout::Lost | Playout::Stretch if !rule.conceals() => {
                    self.pending.clear();
                    return VoiceFrame::Nothing;
                }
                // The buffer grows by a frame: a concealed one, as for a loss.
                Playout::Stretch => {
                    self.pending_level = None;
                    self.decoder.conceal(&mut self.decoded)
                }
                Playout::LostBeforeNext => {
                    self.pending_level = None;
                    self.prime();
                    self.decoder.decode_fec(&self.packet, &mut self.decoded)
                }
                Playout::Lost => {
                    self.pending_level = None;
                    self.decoder.conceal(&mut self.decoded)
                }
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
        let level = self
            .pending_level
            .unwrap_or_else(|| frame_level(&self.frame));
        VoiceFrame::Audio { level }
    }

    /// After packets were skipped, decodes the last of them (output unused) so the decoder
    /// continues from the sound just before the packet that is about to be decoded.
    fn prime(&mut self) {
        if std::mem::take(&mut self.skipped_since_decode) {
            self.primes += 1;
            let _ = self.decoder.decode(&self.skipped, &mut self.decoded);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::test_signals::*;
    use crate::media::codec::{Decoder, Encoder, EncoderProfile, MAX_OPUS_PACKET};
    use crate::media::jitter::{Mode, PacketHeader};

    const RATE: u32 = 48000;
    const FRAME: usize = 960;
    /// Everything decoded but runs of digital silence, as when mixing everyone.
    const ALL: DecodeRule = DecodeRule {
        threshold: 45,
        speaking: false,
        mix_all: true,
    };

    fn header(sequence: impl TryInto<u16>) -> PacketHeader {
        let sequence = sequence.try_into().ok().expect("a sequence number");
        PacketHeader {
            ssrc: 1,
            sequence,
            timestamp: sequence as u32 * 960,
        }
    }

    fn is_audio(frame: &VoiceFrame) -> bool {
        matches!(frame, VoiceFrame::Audio { .. })
    }

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
                queue.lock().push(header(i as u16), p, None, 0);
            }
            let kind = voice.next_frame(queue, ALL, 0);
            if is_audio(&kind) {
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
        let queue = OrderedMutex::leaf("queue", JitterQueue::new(Mode::Fixed(2)));
        let mut voice = Voice::new(RATE).unwrap();
        let (out, kinds) = play_arriving(&mut voice, &queue, &packets, |i| i != 30);
        // Pre-buffering holds the first tick back; every later tick has audio.
        assert!(kinds[1..].iter().all(is_audio), "{kinds:?}");
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
        let queue = OrderedMutex::leaf("queue", JitterQueue::new(Mode::Fixed(6)));
        let mut voice = Voice::new(RATE).unwrap();
        let (out, kinds) = play_arriving(&mut voice, &queue, &packets, |i| !(20..25).contains(&i));
        assert!(kinds[5..].iter().all(is_audio), "{kinds:?}");
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
        let queue = OrderedMutex::leaf("queue", JitterQueue::new(Mode::Fixed(1)));
        let mut voice = Voice::new(RATE).unwrap();
        let mut reference = Decoder::new(RATE).unwrap();
        let mut ref_pcm = vec![0i16; FRAME * 6];
        let mut skipped = 0;
        let mut worst_late_speech_error = f64::NEG_INFINITY;
        for (i, (p, level)) in packets.iter().enumerate() {
            queue.lock().push(header(i as u16), p, Some(*level), 0);
            let kind = voice.next_frame(&queue, ALL, 0);
            reference.decode(p, &mut ref_pcm).unwrap();
            if matches!(kind, VoiceFrame::Quiet { level: 127 }) {
                skipped += 1;
                continue;
            }
            assert!(is_audio(&kind));
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
        let queue = OrderedMutex::leaf("queue", JitterQueue::new(Mode::Fixed(1)));
        let mut voice = Voice::new(RATE).unwrap();
        let mut out = Vec::new();
        for tick in 0..20 {
            if tick % 2 == 0 {
                let i = tick / 2;
                let mut p = [0u8; MAX_OPUS_PACKET];
                let len = enc
                    .encode(&tone(RATE, 440.0, 8000.0, i * 2 * FRAME, 2 * FRAME), &mut p)
                    .unwrap();
                queue.lock().push(header(i as u16), &p[..len], None, 0);
            }
            assert!(is_audio(&voice.next_frame(&queue, ALL, 0)), "tick {tick}");
            out.extend_from_slice(voice.frame());
        }
        assert!(goertzel_db(&out[4 * FRAME..], RATE, 440.0) > -15.0);
    }

    #[test]
    fn garbage_payloads_are_concealed() {
        let queue = OrderedMutex::leaf("queue", JitterQueue::new(Mode::Fixed(1)));
        queue.lock().push(header(1), &[0xff, 0xff, 0xff], None, 0);
        let mut voice = Voice::new(RATE).unwrap();
        assert!(is_audio(&voice.next_frame(&queue, ALL, 0)));
        assert_eq!(voice.errors, 1);
        // Then the sender is silent: two slots concealed, then nothing.
        assert!(is_audio(&voice.next_frame(&queue, ALL, 0)));
        assert!(is_audio(&voice.next_frame(&queue, ALL, 0)));
        assert_eq!(voice.next_frame(&queue, ALL, 0), VoiceFrame::Nothing);
    }

    /// Room noise, then a word: the onset frame of a participant whose quiet packets were not
    /// decoded, against a decoder that decoded everything.
    fn onset_error_db(prime: bool) -> f64 {
        let mut enc = Encoder::new(RATE, EncoderProfile::default()).unwrap();
        let mut packets = Vec::new();
        for i in 0..80 {
            let pcm = if i < 60 {
                noise(i as u64, -55.0, FRAME)
            } else {
                tone(RATE, 600.0, 6000.0, i * FRAME, FRAME)
            };
            let mut p = [0u8; MAX_OPUS_PACKET];
            let len = enc.encode(&pcm, &mut p).unwrap();
            packets.push((p[..len].to_vec(), crate::media::speech::frame_level(&pcm)));
        }
        let queue = OrderedMutex::leaf("queue", JitterQueue::new(Mode::Fixed(1)));
        let mut voice = Voice::new(RATE).unwrap();
        let mut reference = Decoder::new(RATE).unwrap();
        let mut ref_pcm = vec![0i16; FRAME * 6];
        let rule = DecodeRule {
            threshold: 45,
            speaking: false,
            mix_all: false,
        };
        let mut worst = f64::NEG_INFINITY;
        for (i, (p, level)) in packets.iter().enumerate() {
            queue.lock().push(header(i as u16), p, Some(*level), 0);
            if !prime {
                voice.skipped_since_decode = false;
            }
            let kind = voice.next_frame(&queue, rule, 0);
            reference.decode(p, &mut ref_pcm).unwrap();
            if i < 60 {
                assert!(matches!(kind, VoiceFrame::Quiet { .. }), "{i}: {kind:?}");
                continue;
            }
            assert!(is_audio(&kind));
            let err: Vec<i16> = voice
                .frame()
                .iter()
                .zip(&ref_pcm[..FRAME])
                .map(|(a, b)| a.saturating_sub(*b))
                .collect();
            worst = worst.max(rms_db(&err) - rms_db(&ref_pcm[..FRAME]));
        }
        worst
    }

    #[test]
    fn quiet_packets_are_not_decoded_and_the_onset_after_them_is_clean() {
        let primed = onset_error_db(true);
        let unprimed = onset_error_db(false);
        // Decoding the last skipped packet first leaves the onset indistinguishable from a
        // decoder that heard everything; without it the first frames of the word differ.
        assert!(primed < -30.0, "primed onset error {primed:.1} dB");
        assert!(unprimed > primed, "{unprimed:.1} vs {primed:.1}");
        eprintln!("onset error: primed {primed:.1} dB, not primed {unprimed:.1} dB");
    }

    #[test]
    fn losses_of_a_participant_who_is_not_mixed_are_not_concealed() {
        let queue = OrderedMutex::leaf("queue", JitterQueue::new(Mode::Fixed(1)));
        let mut voice = Voice::new(RATE).unwrap();
        let quiet = DecodeRule {
            threshold: 45,
            speaking: false,
            mix_all: false,
        };
        let packets = encode_tone(500.0, 5, false);
        queue.lock().push(header(0), &packets[0], Some(60), 0);
        assert_eq!(
            voice.next_frame(&queue, quiet, 0),
            VoiceFrame::Quiet { level: 60 }
        );
        queue.lock().push(header(2), &packets[2], Some(60), 0);
        // Slot 1 is lost: not concealed for a participant nobody mixes.
        assert_eq!(voice.next_frame(&queue, quiet, 0), VoiceFrame::Nothing);
        let speaking = DecodeRule {
            speaking: true,
            ..quiet
        };
        assert_eq!(
            voice.next_frame(&queue, speaking, 0),
            VoiceFrame::Audio { level: 60 },
            "a speaker's quiet packets are mixed, with their level"
        );
        // Without a level the frame's own is measured.
        queue.lock().push(header(3), &packets[3], None, 0);
        let VoiceFrame::Audio { level } = voice.next_frame(&queue, quiet, 0) else {
            panic!("decoded");
        };
        assert!(
            (10..20).contains(&level),
            "a 8000-amplitude tone is about -15 dBov: {level}"
        );
    }

    /// A steady 440 Hz tone from a speaker, through the adaptive queue on a path with
    /// `extra(k)` µs of delay on top of 30 ms; returns each played frame's tone level and
    /// residual (dB), the ticks at which the queue stretched or skipped, and the queue's stats.
    fn tone_through_adaptive_queue(
        extra: impl Fn(u64) -> Option<u64>,
    ) -> (
        Vec<(f64, f64)>,
        Vec<usize>,
        crate::media::jitter::JitterStats,
    ) {
        let packets = encode_tone(440.0, 1500, false);
        let queue = OrderedMutex::leaf("queue", JitterQueue::new(Mode::Adaptive));
        let mut voice = Voice::new(RATE).unwrap();
        let speaking = DecodeRule {
            threshold: 45,
            speaking: true,
            mix_all: false,
        };
        let mut arrivals: Vec<(u64, usize)> = (0..packets.len())
            .filter_map(|k| extra(k as u64).map(|e| (k as u64 * 20_000 + 30_000 + e, k)))
            .collect();
        arrivals.sort();
        let (mut next, mut frames, mut events) = (0, Vec::new(), Vec::new());
        let mut last = (0, 0);
        for tick in 0..packets.len() {
            let now = tick as u64 * 20_000 + 8_000;
            while next < arrivals.len() && arrivals[next].0 <= now {
                let (at, k) = arrivals[next];
                queue.lock().push(header(k), &packets[k], Some(20), at);
                next += 1;
            }
            let frame = voice.next_frame(&queue, speaking, now);
            let stats = queue.lock().stats;
            if (stats.stretched, stats.skipped) != last {
                events.push(frames.len());
                last = (stats.stretched, stats.skipped);
            }
            if is_audio(&frame) {
                frames.push(tone_and_residual_db(voice.frame(), RATE, 440.0));
            }
        }
        (frames, events, queue.lock().stats)
    }

    #[test]
    fn a_tone_through_an_adapting_buffer_is_never_worse_than_one_lost_packet() {
        // The yardstick: one packet lost on a clean path, concealed.
        let (lossy, _, stats) = tone_through_adaptive_queue(|k| (k != 700).then_some(0));
        assert_eq!(stats.lost, 1);
        let worst_loss = lossy[650..750].iter().map(|f| f.1).fold(f64::MIN, f64::max);
        // Jitter (uniform 0-40 ms) and a 200 ms spike at 15 s make the buffer grow and shrink
        // in the middle of the tone (it never falls quiet, so the queue cannot wait for a pause).
        let path = |k: u64| {
            let sent = k * 20_000;
            Some(if (15_000_000..15_200_000).contains(&sent) {
                15_200_000 - sent
            } else {
                (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17) % 41 * 1000
            })
        };
        let (frames, events, stats) = tone_through_adaptive_queue(path);
        assert!(
            stats.stretched > 0 && stats.skipped > 0,
            "it adapted: {stats:?}"
        );
        let mut worst = f64::MIN;
        // (The first frames are the decoder's start, not adaptation.)
        for &at in events.iter().filter(|&&at| at >= 10) {
            for f in &frames[at.saturating_sub(1)..(at + 3).min(frames.len())] {
                worst = worst.max(f.1);
            }
        }
        assert!(
            worst <= worst_loss + 3.0,
            "an adaptation left a residual of {worst:.1} dB; one concealed loss {worst_loss:.1} dB"
        );
    }
}
