//! One room's mixing, one 20 ms tick at a time, with no threads, clocks or locks of its own so
//! tests can step it:
//!
//! 1. every member who is set up and not muted yields a frame (decoded, recovered, concealed);
//! 2. the frames are summed, volume applied, into 32 bits;
//! 3. a member who contributed hears the sum minus their own part, limited and encoded by their
//!    own encoder; everyone else hears the full mix, encoded once per encoder profile for all of
//!    them, each in their own RTP numbering;
//! 4. the limited full mix is returned for the recording.

use crate::locks::OrderedMutex;
use crate::media::codec::frame_samples;
use crate::media::downlink::Downlink;
use crate::media::jitter::JitterQueue;
use crate::media::limiter::Limiter;
use crate::media::voice::{Voice, VoiceFrame};
use crate::mixer::shared_stream::SharedStreams;

/// Where a member's packets go (a Janus handle, a UDP socket, a test's capture).
pub trait PacketSink {
    fn send(&self, packet: &[u8]);
}

/// One member as the mixer sees it for one tick.
pub struct Member<'a> {
    pub voice: &'a mut Voice,
    pub downlink: &'a mut Downlink,
    pub queue: &'a OrderedMutex<JitterQueue>,
    /// Set up and not muted: their voice is mixed.
    pub speaks: bool,
    /// Set up: they are sent the mix.
    pub listens: bool,
    pub volume_percent: u32,
    pub sink: &'a dyn PacketSink,
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
    shared: SharedStreams,
    spoke: Vec<bool>,
    pub codec_errors: u64,
}

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickReport {
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
            shared: SharedStreams::default(),
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

    pub fn tick(&mut self, members: &mut [Member]) -> TickReport {
        self.tick += 1;
        let mut stats = TickReport::default();
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
                if let Some(stream) = self.shared.encoded_at(profile, previous) {
                    stream.hand_over(m.downlink, full_gain_before);
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
                let full = (&self.full[..], self.full_silent);
                match self.shared.payload(self.rate, self.tick, profile, full) {
                    Ok((payload, fresh)) => {
                        stats.shared_encodes += fresh as usize;
                        Ok(m.downlink.wrap_shared(payload, self.tick))
                    }
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
        self.shared.forget_unused(self.tick);
        stats
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
