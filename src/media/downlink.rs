//! What one participant hears: its RTP numbering (continuous for the participant's whole
//! life, across rooms), its limiter and encoder for the mixes made for it alone, and the packet
//! it is sent each tick, which may instead carry a payload encoded once for many listeners.
//!
//! A listener's decoder follows whichever encoder made its last packet, so every change of
//! source is made where the two encoders agree: moving to its own stream, its encoder takes
//! the shared one's state over; moving back, it either hands its state to a shared stream that
//! nobody else is using, or keeps its own encoder on the shared stream's very input for a few
//! frames (converging), until the two states agree, and only then joins.

use crate::media::codec::{CodecError, Encoder, EncoderProfile, MAX_OPUS_PACKET};
use crate::media::limiter::Limiter;
use crate::media::rtp::{OutboundStream, RTP_HEADER_LEN};
use crate::media::silence::SilenceGate;

pub struct Downlink {
    pub payload_type: u8,
    pub profile: EncoderProfile,
    stream: OutboundStream,
    encoder: Encoder,
    limiter: Limiter,
    gate: SilenceGate,
    mix: Vec<i32>,
    pcm: Vec<i16>,
    packet: Vec<u8>,
    /// Where the last packet came from.
    last: Source,
    /// The room tick in which this listener was last sent the shared stream.
    shared_at: Option<u64>,
}

/// Frames a listener's own encoder runs on the full mix before it joins a shared stream that
/// others are using: long enough for two Opus encoders on the same input to agree.
pub const CONVERGING_FRAMES: u32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Nothing,
    /// Its own mix (the room minus its own voice), from its own encoder.
    Own,
    /// The full mix from its own encoder, with so many frames left before it joins the shared
    /// stream.
    Converging(u32),
    Shared,
}

impl Downlink {
    pub fn new(rate: u32, profile: EncoderProfile, payload_type: u8) -> Result<Self, CodecError> {
        let frame = crate::media::codec::frame_samples(rate);
        Ok(Downlink {
            payload_type,
            profile,
            stream: OutboundStream::new(),
            encoder: Encoder::new(rate, profile)?,
            limiter: Limiter::new(rate),
            gate: SilenceGate::new(rate, profile)?,
            mix: vec![0; frame],
            pcm: vec![0; frame],
            packet: vec![0; RTP_HEADER_LEN + MAX_OPUS_PACKET],
            last: Source::Nothing,
            shared_at: None,
        })
    }

    /// Moves to a room with another sampling rate: new codec state, same RTP numbering.
    pub fn set_rate(&mut self, rate: u32) -> Result<(), CodecError> {
        if rate != self.encoder.rate() {
            let frame = crate::media::codec::frame_samples(rate);
            self.encoder = Encoder::new(rate, self.profile)?;
            self.limiter = Limiter::new(rate);
            self.gate = SilenceGate::new(rate, self.profile)?;
            self.mix = vec![0; frame];
            self.pcm = vec![0; frame];
        }
        self.shared_at = None;
        Ok(())
    }

    pub fn set_profile(&mut self, profile: EncoderProfile) -> Result<(), CodecError> {
        if profile != self.profile {
            self.encoder.apply(profile)?;
            self.gate = SilenceGate::new(self.encoder.rate(), profile)?;
            self.profile = profile;
        }
        Ok(())
    }

    /// The buffer the mixer fills with this listener's own 32-bit mix.
    pub fn mix_buffer(&mut self) -> &mut [i32] {
        &mut self.mix
    }

    /// Limits and encodes the mix in `mix_buffer` with this listener's encoder; returns the
    /// RTP packet.
    pub fn encode_private(&mut self) -> Result<&[u8], CodecError> {
        let silent = self.limiter.process(&self.mix, &mut self.pcm);
        let payload = &mut self.packet[RTP_HEADER_LEN..];
        let len = self
            .gate
            .encode(&mut self.encoder, &self.pcm, silent, payload)?;
        self.last = Source::Own;
        Ok(self.finish(len))
    }

    /// Whether the last packet came from this listener's own encoder.
    pub fn private_last_tick(&self) -> bool {
        matches!(self.last, Source::Own | Source::Converging(_))
    }

    /// Whether the last packet carried its own mix (it was mixed).
    pub fn own_mix_last_tick(&self) -> bool {
        self.last == Source::Own
    }

    /// Whether it is converging towards the shared stream (see the module's comment).
    pub fn converging(&self) -> bool {
        matches!(self.last, Source::Converging(left) if left > 0)
    }

    /// It stopped being mixed and others use the shared stream: converge first.
    pub fn start_converging(&mut self) {
        self.last = Source::Converging(CONVERGING_FRAMES);
    }

    /// Encodes the full mix (limited, as the shared stream gets it) with its own encoder.
    pub fn encode_converging(&mut self, full: &[i16], silent: bool) -> Result<&[u8], CodecError> {
        let payload = &mut self.packet[RTP_HEADER_LEN..];
        let len = self.gate.encode(&mut self.encoder, full, silent, payload)?;
        if let Source::Converging(left) = self.last {
            self.last = Source::Converging(left.saturating_sub(1));
        }
        Ok(self.finish(len))
    }

    /// Its encoder and silence gate, for a shared stream to take over (see the module's
    /// comment).
    pub fn encoder_state(&self) -> (&Encoder, &SilenceGate) {
        (&self.encoder, &self.gate)
    }

    /// Wraps a payload encoded for many listeners (in room tick `tick`) in this listener's
    /// RTP header.
    pub fn wrap_shared(&mut self, payload: &[u8], tick: u64) -> &[u8] {
        self.packet[RTP_HEADER_LEN..RTP_HEADER_LEN + payload.len()].copy_from_slice(payload);
        self.last = Source::Shared;
        self.shared_at = Some(tick);
        self.finish(payload.len())
    }

    /// Whether this listener was sent the shared stream in room tick `tick`.
    pub fn was_shared_at(&self, tick: u64) -> bool {
        self.shared_at == Some(tick)
    }

    /// Takes over from the shared stream this listener has been hearing: its own encoder,
    /// silence gate and limiter continue exactly where the shared ones are, so the listener's
    /// decoder cannot tell that the stream changed.
    pub fn continue_from(&mut self, encoder: &Encoder, gate: &SilenceGate, limiter_gain: f32) {
        self.encoder.copy_state_from(encoder);
        self.gate = gate.clone();
        self.limiter.set_gain(limiter_gain);
    }

    /// Keeps the RTP clock running through a tick in which nothing is sent.
    pub fn skip(&mut self) {
        self.stream.skip_frame();
    }

    fn finish(&mut self, payload_len: usize) -> &[u8] {
        self.stream
            .next_header(&mut self.packet[..RTP_HEADER_LEN], self.payload_type);
        &self.packet[..RTP_HEADER_LEN + payload_len]
    }
}
