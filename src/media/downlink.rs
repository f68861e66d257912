//! What one participant hears: its RTP numbering (continuous for the participant's whole
//! life, across rooms), its limiter and encoder for the mixes made for it alone, and the packet
//! it is sent each tick, which may instead carry a payload encoded once for many listeners.
//!
//! A listener's decoder follows whichever encoder made its last packet, so every change of
//! source is made where the two encoders agree: moving to its own stream, its encoder takes
//! the shared one's state over; moving back, it either hands its state to a shared stream that
//! nobody else is using, or keeps its own encoder on the shared stream's very input for a few
//! frames (converging), until the two states agree, and only then joins.
//!
//! A G.711 listener is simpler: its decoder has no state, and the only memory on our side is
//! the resampler's, one frame long (`media::resample`), which is rebuilt exactly from the frame
//! before the switch.

use crate::media::audio_codec::AudioCodec;
use crate::media::codec::{CodecError, Encoder, EncoderProfile, MAX_OPUS_PACKET, frame_samples};
use crate::media::g711::Law;
use crate::media::limiter::Limiter;
use crate::media::resample::FrameResampler;
use crate::media::rtp::{OutboundStream, RTP_HEADER_LEN};
use crate::media::silence::SilenceGate;

/// What a listener's stream is encoded as: listeners with equal keys who are not being mixed
/// share one encode of the full mix (`mixer::shared_stream`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamKey {
    Opus(EncoderProfile),
    G711(Law),
}

impl StreamKey {
    /// The stream a codec is sent as: Opus with `profile`, or G.711 of the codec's law.
    pub fn of(codec: AudioCodec, profile: EncoderProfile) -> StreamKey {
        match codec.law() {
            None => StreamKey::Opus(profile),
            Some(law) => StreamKey::G711(law),
        }
    }
}

/// G.711 samples in one 20 ms frame.
pub const G711_FRAME: usize = 160;

/// An encoder of 20 ms frames of the room's rate, as one stream key says: a listener's own
/// (`Downlink`) or a shared stream's (`mixer::shared_stream`).
pub enum Encoding {
    Opus {
        encoder: Encoder,
        gate: SilenceGate,
    },
    G711 {
        law: Law,
        /// The room's rate to 8 kHz.
        down: FrameResampler,
        narrow: Vec<i16>,
    },
}

impl Encoding {
    pub fn for_key(rate: u32, key: StreamKey) -> Result<Self, CodecError> {
        Ok(match key {
            StreamKey::Opus(profile) => Encoding::Opus {
                encoder: Encoder::new(rate, profile)?,
                gate: SilenceGate::new(rate, profile)?,
            },
            StreamKey::G711(law) => Encoding::G711 {
                law,
                down: FrameResampler::new(rate, 8000)?,
                narrow: vec![0; G711_FRAME],
            },
        })
    }
}

/// Encodes one limited frame of the room's rate as G.711 into `out`: through the resampler,
/// then the law. Returns the payload's length.
pub fn encode_g711(
    law: Law,
    down: &mut FrameResampler,
    narrow: &mut [i16],
    pcm: &[i16],
    out: &mut [u8],
) -> usize {
    down.process(pcm, narrow);
    law.encode(narrow, out)
}

pub struct Downlink {
    pub payload_type: u8,
    pub profile: EncoderProfile,
    codec: AudioCodec,
    rate: u32,
    stream: OutboundStream,
    encoding: Encoding,
    limiter: Limiter,
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
    /// An Opus listener.
    pub fn new(rate: u32, profile: EncoderProfile, payload_type: u8) -> Result<Self, CodecError> {
        Self::with_codec(rate, AudioCodec::Opus, profile, payload_type)
    }

    pub fn with_codec(
        rate: u32,
        codec: AudioCodec,
        profile: EncoderProfile,
        payload_type: u8,
    ) -> Result<Self, CodecError> {
        let frame = frame_samples(rate);
        let mut stream = OutboundStream::new();
        stream.set_frame_ticks(codec.frame_ticks());
        Ok(Downlink {
            payload_type,
            profile,
            codec,
            rate,
            stream,
            encoding: Encoding::for_key(rate, StreamKey::of(codec, profile))?,
            limiter: Limiter::new(rate),
            mix: vec![0; frame],
            pcm: vec![0; frame],
            packet: vec![0; RTP_HEADER_LEN + MAX_OPUS_PACKET],
            last: Source::Nothing,
            shared_at: None,
        })
    }

    /// Moves to a room with another sampling rate: new codec state, same RTP numbering.
    pub fn set_rate(&mut self, rate: u32) -> Result<(), CodecError> {
        if rate != self.rate {
            let frame = frame_samples(rate);
            self.encoding = Encoding::for_key(rate, StreamKey::of(self.codec, self.profile))?;
            self.limiter = Limiter::new(rate);
            self.mix = vec![0; frame];
            self.pcm = vec![0; frame];
            self.rate = rate;
        }
        self.shared_at = None;
        Ok(())
    }

    /// Changes the codec (a new negotiation): new codec state and RTP clock, same numbering.
    pub fn set_codec(&mut self, codec: AudioCodec) -> Result<(), CodecError> {
        if codec != self.codec {
            self.encoding = Encoding::for_key(self.rate, StreamKey::of(codec, self.profile))?;
            self.stream.set_frame_ticks(codec.frame_ticks());
            self.codec = codec;
            self.last = Source::Nothing;
            self.shared_at = None;
        }
        Ok(())
    }

    pub fn codec(&self) -> AudioCodec {
        self.codec
    }

    pub fn set_profile(&mut self, profile: EncoderProfile) -> Result<(), CodecError> {
        if profile != self.profile {
            if let Encoding::Opus { encoder, gate } = &mut self.encoding {
                encoder.apply(profile)?;
                *gate = SilenceGate::new(self.rate, profile)?;
            }
            self.profile = profile;
        }
        Ok(())
    }

    /// What this listener's stream is encoded as, for sharing.
    pub fn key(&self) -> StreamKey {
        match &self.encoding {
            Encoding::Opus { .. } => StreamKey::Opus(self.profile),
            Encoding::G711 { law, .. } => StreamKey::G711(*law),
        }
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
        let len = match &mut self.encoding {
            Encoding::Opus { encoder, gate } => gate.encode(encoder, &self.pcm, silent, payload)?,
            Encoding::G711 { law, down, narrow } => {
                encode_g711(*law, down, narrow, &self.pcm, payload)
            }
        };
        self.last = Source::Own;
        Ok(self.finish(len))
    }

    /// The limited mix of its own it was last sent, at the room's rate.
    pub fn last_private_pcm(&self) -> &[i16] {
        &self.pcm
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

    /// It stopped being mixed and others use the shared stream: converge first (Opus; a G.711
    /// listener joins at once, its decoder having no state to agree on).
    pub fn start_converging(&mut self) {
        if matches!(self.encoding, Encoding::Opus { .. }) {
            self.last = Source::Converging(CONVERGING_FRAMES);
        }
    }

    /// Encodes the full mix (limited, as the shared stream gets it) with its own encoder.
    pub fn encode_converging(&mut self, full: &[i16], silent: bool) -> Result<&[u8], CodecError> {
        let payload = &mut self.packet[RTP_HEADER_LEN..];
        let len = match &mut self.encoding {
            Encoding::Opus { encoder, gate } => gate.encode(encoder, full, silent, payload)?,
            Encoding::G711 { law, down, narrow } => encode_g711(*law, down, narrow, full, payload),
        };
        if let Source::Converging(left) = self.last {
            self.last = Source::Converging(left.saturating_sub(1));
        }
        Ok(self.finish(len))
    }

    /// Its Opus encoder and silence gate, for a shared stream to take over (see the module's
    /// comment); `None` for G.711.
    pub fn encoder_state(&self) -> Option<(&Encoder, &SilenceGate)> {
        match &self.encoding {
            Encoding::Opus { encoder, gate } => Some((encoder, gate)),
            Encoding::G711 { .. } => None,
        }
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
        if let Encoding::Opus {
            encoder: own,
            gate: own_gate,
        } = &mut self.encoding
        {
            own.copy_state_from(encoder);
            *own_gate = gate.clone();
        }
        self.limiter.set_gain(limiter_gain);
    }

    /// Takes over from a shared G.711 stream that was last given `previous` (the full mix of
    /// the tick before): its resampler continues exactly where the shared one is.
    pub fn continue_from_resampled(&mut self, previous: &[i16], limiter_gain: f32) {
        if let Encoding::G711 { down, .. } = &mut self.encoding {
            down.prime(previous);
        }
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
