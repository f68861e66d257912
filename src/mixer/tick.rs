//! One room's mixing, one 20 ms tick at a time, with no threads, clocks or locks of its own so
//! tests can step it:
//!
//! 1. every member who is set up and not muted pulls this tick's packet; its speech gate
//!    decides from the packet's level (or the decoded frame's energy) whether it speaks, and
//!    only what will be mixed is decoded (recovered, concealed);
//! 2. the speakers (at most `max_speakers`, the loudest; or everyone when the room mixes all)
//!    are summed, volume applied, into 32 bits;
//! 3. a speaker hears the sum minus their own part, limited and encoded by their own encoder;
//!    everyone else hears the full mix, encoded once per encoder profile for all of them, each
//!    in their own RTP numbering;
//! 4. the limited full mix is kept for the recording.
//!
//! Besides its members a room may have sources that everyone hears and nobody is excluded from
//! (announcements: frames handed in already decoded, at the room's rate) and sinks that get the
//! full mix (RTP forwarders: the shared stream's payload of their encoding, so an Opus forwarder
//! costs no encode of its own when a listener uses the same profile).

use crate::locks::OrderedMutex;
use crate::media::codec::frame_samples;
use crate::media::downlink::{Downlink, StreamKey};
use crate::media::jitter::JitterQueue;
use crate::media::limiter::Limiter;
use crate::media::speech::SpeechGate;
use crate::media::voice::{DecodeRule, Voice, VoiceFrame};
use crate::mixer::shared_stream::{FullMix, SharedStreams};
use crate::mixer::speakers::{Candidate, MixPolicy, choose};

/// Where a member's packets go (a Janus handle, a UDP socket, a test's capture).
pub trait PacketSink {
    fn send(&self, packet: &[u8]);
}

/// Where the room's full mix goes besides its members (an RTP forwarder).
pub trait ForwardSink {
    /// The encoding it wants: the shared stream of this key is sent to it.
    fn key(&self) -> StreamKey;
    /// Sends one payload (without an RTP header: the sink numbers its own stream).
    fn forward(&self, payload: &[u8]);
}

/// One member as the mixer sees it for one tick.
pub struct Member<'a> {
    pub voice: &'a mut Voice,
    pub gate: &'a mut SpeechGate,
    pub downlink: &'a mut Downlink,
    pub queue: &'a OrderedMutex<JitterQueue>,
    /// Set up and not muted: their voice may be mixed.
    pub sends: bool,
    /// Set up: they are sent the mix.
    pub listens: bool,
    /// Mixed whenever they send, with no gate and outside `max_speakers` (a link to another
    /// server: its far side already chose its speakers).
    pub always: bool,
    pub volume_percent: u32,
    pub sink: &'a dyn PacketSink,
    /// Set by the tick: the level of the frame played (RFC 6464 scale), if a packet was.
    pub level: Option<u8>,
    /// Set by the tick: this member's voice is in the mix.
    pub mixed: bool,
}

impl<'a> Member<'a> {
    /// A member as a tick finds it: nothing played yet.
    pub fn new(
        voice: &'a mut Voice,
        gate: &'a mut SpeechGate,
        downlink: &'a mut Downlink,
        queue: &'a OrderedMutex<JitterQueue>,
        sink: &'a dyn PacketSink,
    ) -> Self {
        Member {
            voice,
            gate,
            downlink,
            queue,
            sends: true,
            listens: true,
            always: false,
            volume_percent: 100,
            sink,
            level: None,
            mixed: false,
        }
    }
}

pub struct RoomMix {
    rate: u32,
    tick: u64,
    total: Vec<i32>,
    full: Vec<i16>,
    /// The full mix of the tick before (G.711 streams are primed with it).
    previous_full: Vec<i16>,
    full_silent: bool,
    full_limiter: Limiter,
    shared: SharedStreams,
    candidates: Vec<Candidate>,
    /// Members mixed outside the cap (`Member::always`).
    exempt: Vec<Candidate>,
    pub codec_errors: u64,
}

/// What one tick did, for tests and benchmarks.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickReport {
    /// Members mixed.
    pub speakers: usize,
    /// Frames decoded (or recovered, or concealed).
    pub decoded: usize,
    pub private_encodes: usize,
    pub shared_encodes: usize,
    /// Payloads sent to forwarders.
    pub forwarded: usize,
}

impl RoomMix {
    pub fn new(rate: u32) -> Self {
        let frame = frame_samples(rate);
        RoomMix {
            rate,
            tick: 0,
            total: vec![0; frame],
            full: vec![0; frame],
            previous_full: vec![0; frame],
            full_silent: true,
            full_limiter: Limiter::new(rate),
            shared: SharedStreams::default(),
            candidates: Vec::new(),
            exempt: Vec::new(),
            codec_errors: 0,
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// The limited full mix of the last tick (what the recording gets).
    pub fn full_mix(&self) -> &[i16] {
        &self.full
    }

    /// Mixes one tick at `now_us` (on `media::clock`, the clock packets' arrivals are
    /// stamped with).
    pub fn tick(&mut self, members: &mut [Member], policy: &MixPolicy, now_us: u64) -> TickReport {
        self.tick_with(members, &[], &[], policy, now_us)
    }

    /// Mixes one tick with `sources` (one frame each, at the room's rate, heard by everyone)
    /// and sends the full mix to `forwarders` too.
    pub fn tick_with(
        &mut self,
        members: &mut [Member],
        sources: &[&[i16]],
        forwarders: &[&dyn ForwardSink],
        policy: &MixPolicy,
        now_us: u64,
    ) -> TickReport {
        self.tick += 1;
        let mut stats = TickReport::default();
        self.total.fill(0);
        self.candidates.clear();
        self.exempt.clear();
        for (index, m) in members.iter_mut().enumerate() {
            m.mixed = false;
            m.level = None;
            if !m.sends {
                m.gate.update(None, &policy.speech);
                continue;
            }
            let rule = DecodeRule {
                threshold: policy.speech.threshold,
                speaking: m.gate.is_speaking(),
                mix_all: policy.mix_all || m.always,
            };
            let (level, decoded) = match m.voice.next_frame(m.queue, rule, now_us) {
                VoiceFrame::Audio { level } => (Some(level), true),
                VoiceFrame::Quiet { level } => (Some(level), false),
                VoiceFrame::Nothing => (None, false),
            };
            m.level = level;
            stats.decoded += decoded as usize;
            let speaking = m.gate.update(level, &policy.speech);
            let candidate = Candidate {
                index,
                loudness: m.gate.loudness(),
                incumbent: m.downlink.own_mix_last_tick(),
            };
            if decoded && m.always {
                self.exempt.push(candidate);
            } else if decoded && (speaking || policy.mix_all) {
                self.candidates.push(candidate);
            }
        }
        if !policy.mix_all {
            choose(&mut self.candidates, policy.max_speakers);
        }
        for candidate in self.candidates.iter().chain(&self.exempt) {
            let m = &mut members[candidate.index];
            m.mixed = true;
            add_scaled(&mut self.total, m.voice.frame(), m.volume_percent);
            stats.speakers += 1;
        }
        for frame in sources {
            add_scaled(&mut self.total, frame, 100);
        }
        let full_gain_before = self.full_limiter.gain();
        std::mem::swap(&mut self.full, &mut self.previous_full);
        self.full_silent = self.full_limiter.process(&self.total, &mut self.full);

        // Changes of source are made where the encoders agree (see `media::downlink`): a
        // listener who starts being mixed takes over from the shared stream as it stood after the
        // last tick; one who stops hands its encoder to a shared stream nobody uses, or converges
        // on the full mix for a few frames before joining one that others use.
        let previous = self.tick - 1;
        for m in members.iter_mut() {
            if !m.listens {
                continue;
            }
            let key = m.downlink.key();
            if m.mixed && m.downlink.was_shared_at(previous) {
                if let Some(stream) = self.shared.encoded_at(key, previous) {
                    stream.hand_over(m.downlink, full_gain_before, &self.previous_full);
                }
            } else if !m.mixed && m.downlink.own_mix_last_tick() {
                if self.shared.encoded_at(key, previous).is_some() {
                    m.downlink.start_converging();
                } else if let Err(error) = self.shared.seed(self.rate, previous, key, m.downlink) {
                    self.codec_errors += 1;
                    crate::log!(Error, "Mixer: a shared stream failed ({error})");
                }
            }
        }

        for m in members.iter_mut() {
            if !m.listens {
                m.downlink.skip();
                continue;
            }
            let packet = if m.mixed {
                let own = m.voice.frame();
                for ((out, &sum), &mine) in
                    m.downlink.mix_buffer().iter_mut().zip(&self.total).zip(own)
                {
                    *out = sum - scale(mine, m.volume_percent);
                }
                stats.private_encodes += 1;
                m.downlink.encode_private()
            } else if m.downlink.converging() {
                stats.private_encodes += 1;
                m.downlink.encode_converging(&self.full, self.full_silent)
            } else {
                let full = FullMix {
                    pcm: &self.full,
                    silent: self.full_silent,
                    previous: &self.previous_full,
                };
                match self
                    .shared
                    .payload(self.rate, self.tick, m.downlink.key(), full)
                {
                    Ok((payload, fresh)) => {
                        stats.shared_encodes += fresh as usize;
                        Ok(m.downlink.wrap_shared(payload, self.tick))
                    }
                    Err(e) => Err(e),
                }
            };
            match packet {
                Ok(packet) => m.sink.send(packet),
                Err(error) => self.encoding_failed(&error),
            }
        }
        for forwarder in forwarders {
            let full = FullMix {
                pcm: &self.full,
                silent: self.full_silent,
                previous: &self.previous_full,
            };
            match self
                .shared
                .payload(self.rate, self.tick, forwarder.key(), full)
            {
                Ok((payload, fresh)) => {
                    stats.shared_encodes += fresh as usize;
                    stats.forwarded += 1;
                    forwarder.forward(payload);
                }
                Err(error) => self.encoding_failed(&error),
            }
        }
        self.shared.forget_unused(self.tick);
        stats
    }

    fn encoding_failed(&mut self, error: &crate::media::codec::CodecError) {
        self.codec_errors += 1;
        if self.codec_errors.is_power_of_two() {
            crate::log!(
                Error,
                "Mixer: encoding failed ({error}); {} failures so far in this room",
                self.codec_errors
            );
        }
    }
}

fn scale(sample: i16, volume_percent: u32) -> i32 {
    if volume_percent == 100 {
        sample as i32
    } else {
        sample as i32 * volume_percent as i32 / 100
    }
}

fn add_scaled(total: &mut [i32], frame: &[i16], volume_percent: u32) {
    for (t, &s) in total.iter_mut().zip(frame) {
        *t += scale(s, volume_percent);
    }
}

#[cfg(test)]
#[path = "tick_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "tick_media_tests.rs"]
mod media_tests;
