//! The full mix encoded once per tick for every listener who is not talking, one stream per
//! encoding (`StreamKey`: an Opus encoder profile, or a G.711 law): what makes a room of many
//! listeners cheap. Each listener gets the same payload in its own RTP header, and so does every
//! RTP forwarder of that encoding. A listener who starts talking takes the stream's encoder
//! state over into its own encoder, so its decoder never notices the switch; one who stops
//! hands its own state to the stream when nobody else uses it (see `media::downlink`).
//!
//! A G.711 stream's only state is its resampler's one-frame memory: it is rebuilt from the
//! previous tick's mix whenever the stream missed a tick, and handed over the same way.

use crate::media::codec::{CodecError, MAX_OPUS_PACKET};
use crate::media::downlink::{Downlink, Encoding, StreamKey, encode_g711};

/// Ticks a stream may go unused before it is dropped (10 s).
const UNUSED_TICKS: u64 = 500;

/// The limited full mix of this tick as the streams encode it.
#[derive(Clone, Copy)]
pub struct FullMix<'a> {
    pub pcm: &'a [i16],
    /// Digital silence (an Opus stream then repeats a cached frame).
    pub silent: bool,
    /// The limited full mix of the tick before, which G.711 streams that missed it are primed
    /// with.
    pub previous: &'a [i16],
}

pub struct SharedStream {
    key: StreamKey,
    encoding: Encoding,
    payload: Vec<u8>,
    len: usize,
    encoded_at: u64,
}

impl SharedStream {
    /// Makes `downlink`'s own encoder continue exactly where this stream is; `previous` is the
    /// full mix this stream encoded last (for G.711's resampler).
    pub fn hand_over(&self, downlink: &mut Downlink, limiter_gain: f32, previous: &[i16]) {
        match &self.encoding {
            Encoding::Opus { encoder, gate } => downlink.continue_from(encoder, gate, limiter_gain),
            Encoding::G711 { .. } => downlink.continue_from_resampled(previous, limiter_gain),
        }
    }
}

#[derive(Default)]
pub struct SharedStreams {
    streams: Vec<SharedStream>,
}

impl SharedStreams {
    /// The stream of `key` if it was encoded in room tick `tick`.
    pub fn encoded_at(&self, key: StreamKey, tick: u64) -> Option<&SharedStream> {
        self.streams
            .iter()
            .find(|s| s.key == key && s.encoded_at == tick)
    }

    /// The payload of the stream for `key` in tick `tick`, encoded from `full` on its first
    /// use in that tick; the flag says whether this call encoded it.
    pub fn payload(
        &mut self,
        rate: u32,
        tick: u64,
        key: StreamKey,
        full: FullMix,
    ) -> Result<(&[u8], bool), CodecError> {
        let index = self.index_of(rate, key)?;
        let stream = &mut self.streams[index];
        let fresh = stream.encoded_at != tick;
        if fresh {
            let missed_last_tick = stream.encoded_at + 1 != tick;
            stream.len = match &mut stream.encoding {
                Encoding::Opus { encoder, gate } => {
                    gate.encode(encoder, full.pcm, full.silent, &mut stream.payload)?
                }
                Encoding::G711 { law, down, narrow } => {
                    if missed_last_tick {
                        down.prime(full.previous);
                    }
                    encode_g711(*law, down, narrow, full.pcm, &mut stream.payload)
                }
            };
            stream.encoded_at = tick;
        }
        Ok((&stream.payload[..stream.len], fresh))
    }

    /// Makes the stream of `key` continue exactly where `downlink`'s own encoder is, as of
    /// room tick `tick`: a listener who stops being mixed while nobody uses that stream hands
    /// its encoder over and joins it without its decoder noticing.
    pub fn seed(
        &mut self,
        rate: u32,
        tick: u64,
        key: StreamKey,
        downlink: &Downlink,
    ) -> Result<(), CodecError> {
        let index = self.index_of(rate, key)?;
        let stream = &mut self.streams[index];
        match &mut stream.encoding {
            Encoding::Opus { encoder, gate } => {
                if let Some((own, own_gate)) = downlink.encoder_state() {
                    encoder.copy_state_from(own);
                    *gate = own_gate.clone();
                }
            }
            Encoding::G711 { down, .. } => down.prime(downlink.last_private_pcm()),
        }
        stream.encoded_at = tick;
        Ok(())
    }

    fn index_of(&mut self, rate: u32, key: StreamKey) -> Result<usize, CodecError> {
        if let Some(i) = self.streams.iter().position(|s| s.key == key) {
            return Ok(i);
        }
        let encoding = Encoding::for_key(rate, key)?;
        self.streams.push(SharedStream {
            key,
            encoding,
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
