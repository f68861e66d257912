//! The full mix encoded once per tick for every listener who is not talking, one stream per
//! encoder profile: what makes a room of many listeners cheap. Each listener gets the same
//! payload in its own RTP header. A listener who starts talking takes the stream's encoder
//! state over into its own encoder, so its decoder never notices the switch; one who stops
//! hands its own state to the stream when nobody else uses it (see `media::downlink`).

use crate::media::codec::{CodecError, Encoder, EncoderProfile, MAX_OPUS_PACKET};
use crate::media::downlink::Downlink;
use crate::media::silence::SilenceGate;

/// Ticks a stream may go unused before it is dropped (10 s).
const UNUSED_TICKS: u64 = 500;

pub struct SharedStream {
    profile: EncoderProfile,
    encoder: Encoder,
    gate: SilenceGate,
    payload: Vec<u8>,
    len: usize,
    encoded_at: u64,
}

impl SharedStream {
    /// Makes `downlink`'s own encoder continue exactly where this stream is.
    pub fn hand_over(&self, downlink: &mut Downlink, limiter_gain: f32) {
        downlink.continue_from(&self.encoder, &self.gate, limiter_gain);
    }
}

#[derive(Default)]
pub struct SharedStreams {
    streams: Vec<SharedStream>,
}

impl SharedStreams {
    /// The stream of `profile` if it was encoded in room tick `tick`.
    pub fn encoded_at(&self, profile: EncoderProfile, tick: u64) -> Option<&SharedStream> {
        self.streams
            .iter()
            .find(|s| s.profile == profile && s.encoded_at == tick)
    }

    /// The payload of the stream for `profile` in tick `tick`, encoded from `full` (the limited
    /// mix, and whether it is digital silence) on its first use in that tick; the flag says
    /// whether this call encoded it.
    pub fn payload(
        &mut self,
        rate: u32,
        tick: u64,
        profile: EncoderProfile,
        full: (&[i16], bool),
    ) -> Result<(&[u8], bool), CodecError> {
        let index = self.index_of(rate, profile)?;
        let stream = &mut self.streams[index];
        let fresh = stream.encoded_at != tick;
        if fresh {
            let (pcm, silent) = full;
            stream.len =
                stream
                    .gate
                    .encode(&mut stream.encoder, pcm, silent, &mut stream.payload)?;
            stream.encoded_at = tick;
        }
        Ok((&stream.payload[..stream.len], fresh))
    }

    /// Makes the stream of `profile` continue exactly where `downlink`'s own encoder is, as of
    /// room tick `tick`: a listener who stops being mixed while nobody uses that stream hands
    /// its encoder over and joins it without its decoder noticing.
    pub fn seed(
        &mut self,
        rate: u32,
        tick: u64,
        profile: EncoderProfile,
        downlink: &Downlink,
    ) -> Result<(), CodecError> {
        let index = self.index_of(rate, profile)?;
        let stream = &mut self.streams[index];
        let (encoder, gate) = downlink.encoder_state();
        stream.encoder.copy_state_from(encoder);
        stream.gate = gate.clone();
        stream.encoded_at = tick;
        Ok(())
    }

    fn index_of(&mut self, rate: u32, profile: EncoderProfile) -> Result<usize, CodecError> {
        if let Some(i) = self.streams.iter().position(|s| s.profile == profile) {
            return Ok(i);
        }
        self.streams.push(SharedStream {
            profile,
            encoder: Encoder::new(rate, profile)?,
            gate: SilenceGate::new(rate, profile)?,
            payload: vec![0; MAX_OPUS_PACKET],
            len: 0,
            encoded_at: 0,
        });
        Ok(self.streams.len() - 1)
    }

    /// Drops the streams no listener has used for a while.
    pub fn forget_unused(&mut self, tick: u64) {
        self.streams.retain(|s| tick - s.encoded_at < UNUSED_TICKS);
    }
}
