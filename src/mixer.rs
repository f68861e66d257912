//! One room's mixing, one 20 ms tick at a time, with no threads, clocks or locks of its own so
//! tests can step it (DESIGN.md, "The mixer, one tick"):
//!
//! 1. every member who is set up and not muted yields a frame (decoded, recovered, concealed);
//! 2. the frames are summed, volume applied, into 32 bits;
//! 3. a member who contributed hears the sum minus their own part, limited and encoded by their
//!    own encoder; everyone else hears the full mix, encoded once per encoder profile for all of
//!    them, each in their own RTP numbering;
//! 4. the limited full mix is returned for the recording.

use crate::codec::{frame_samples, CodecError, Encoder, EncoderProfile, MAX_OPUS_PACKET};
use crate::downlink::Downlink;
use crate::jitter::JitterQueue;
use crate::limiter::Limiter;
use crate::silence::SilenceGate;
use crate::voice::{Voice, VoiceFrame};
use std::sync::Mutex;

/// Where a member's packets go (a Janus handle, a UDP socket, a test's capture).
pub trait PacketSink {
    fn send(&self, packet: &[u8]);
}

/// One member as the mixer sees it for one tick.
pub struct Member<'a> {
    pub voice: &'a mut Voice,
    pub downlink: &'a mut Downlink,
    pub queue: &'a Mutex<JitterQueue>,
    /// Set up and not muted: their voice is mixed.
    pub speaks: bool,
    /// Set up: they are sent the mix.
    pub listens: bool,
    pub volume_percent: u32,
    pub sink: &'a dyn PacketSink,
}

/// A full-mix stream encoded once per tick for every listener with this profile.
struct SharedStream {
    profile: EncoderProfile,
    encoder: Encoder,
    gate: SilenceGate,
    payload: Vec<u8>,
    len: usize,
    encoded_at: u64,
}

pub struct RoomMix {
    rate: u32,
    tick: u64,
    /// Mix packets flagged silent by their audio level? (They are skipped when true.)
    skip_silent: bool,
    total: Vec<i32>,
    full: Vec<i16>,
    full_silent: bool,
    full_limiter: Limiter,
    shared: Vec<SharedStream>,
    spoke: Vec<bool>,
    pub codec_errors: u64,
}

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickStats {
    pub speakers: usize,
    pub private_encodes: usize,
    pub shared_encodes: usize,
}

impl RoomMix {
    pub fn new(rate: u32) -> Self {
        let frame = frame_samples(rate);
        RoomMix {
            rate,
            tick: 0,
            skip_silent: true,
            total: vec![0; frame],
            full: vec![0; frame],
            full_silent: true,
            full_limiter: Limiter::new(rate),
            shared: Vec::new(),
            spoke: Vec::new(),
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

    pub fn tick(&mut self, members: &mut [Member]) -> TickStats {
        self.tick += 1;
        let mut stats = TickStats::default();
        self.total.fill(0);
        self.spoke.clear();
        for m in members.iter_mut() {
            let spoke =
                m.speaks && m.voice.next_frame(m.queue, self.skip_silent) == VoiceFrame::Audio;
            if spoke {
                add_scaled(&mut self.total, m.voice.frame(), m.volume_percent);
                stats.speakers += 1;
            }
            self.spoke.push(spoke);
        }
        let full_gain_before = self.full_limiter.gain();
        self.full_silent = self.full_limiter.process(&self.total, &mut self.full);

        // A listener who starts talking leaves the shared stream: its own encoder takes over
        // from the shared one as it stood after the last tick, so the switch is seamless.
        let previous = self.tick - 1;
        for (m, &spoke) in members.iter_mut().zip(&self.spoke) {
            if spoke && m.listens && m.downlink.was_shared_at(previous) {
                let profile = m.downlink.profile;
                if let Some(stream) = self
                    .shared
                    .iter()
                    .find(|s| s.profile == profile && s.encoded_at == previous)
                {
                    m.downlink
                        .continue_from(&stream.encoder, &stream.gate, full_gain_before);
                }
            }
        }

        for (m, &spoke) in members.iter_mut().zip(&self.spoke) {
            if !m.listens {
                m.downlink.skip();
                continue;
            }
            let packet = if spoke {
                let own = m.voice.frame();
                for ((out, &sum), &mine) in
                    m.downlink.mix_buffer().iter_mut().zip(&self.total).zip(own)
                {
                    *out = sum - scale(mine, m.volume_percent);
                }
                stats.private_encodes += 1;
                m.downlink.encode_private()
            } else {
                let profile = m.downlink.profile;
                match shared_payload(
                    &mut self.shared,
                    self.rate,
                    self.tick,
                    profile,
                    &self.full,
                    self.full_silent,
                    &mut stats,
                ) {
                    Ok(payload) => Ok(m.downlink.wrap_shared(payload, self.tick)),
                    Err(e) => Err(e),
                }
            };
            match packet {
                Ok(packet) => m.sink.send(packet),
                Err(error) => {
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
        }
        // Streams no listener has used for a while are dropped.
        let tick = self.tick;
        self.shared.retain(|s| tick - s.encoded_at < 500);
        stats
    }
}

/// The payload of the shared stream for `profile`, encoded on first use in this tick.
fn shared_payload<'s>(
    shared: &'s mut Vec<SharedStream>,
    rate: u32,
    tick: u64,
    profile: EncoderProfile,
    full: &[i16],
    full_silent: bool,
    stats: &mut TickStats,
) -> Result<&'s [u8], CodecError> {
    let index = match shared.iter().position(|s| s.profile == profile) {
        Some(i) => i,
        None => {
            shared.push(SharedStream {
                profile,
                encoder: Encoder::new(rate, profile)?,
                gate: SilenceGate::new(rate, profile)?,
                payload: vec![0; MAX_OPUS_PACKET],
                len: 0,
                encoded_at: 0,
            });
            shared.len() - 1
        }
    };
    let stream = &mut shared[index];
    if stream.encoded_at != tick {
        stream.len =
            stream
                .gate
                .encode(&mut stream.encoder, full, full_silent, &mut stream.payload)?;
        stream.encoded_at = tick;
        stats.shared_encodes += 1;
    }
    Ok(&stream.payload[..stream.len])
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
#[path = "mixer_tests.rs"]
mod tests;
