//! Load profiles: what the participants who do not talk send, and whether packets carry the
//! RFC 6464 audio level. Talkers always send the speech-like loops of `common.rs`.
//!
//! - `silence`: listeners send Opus-encoded digital silence flagged level 127. The ideal case
//!   (a client that gates its microphone); what the benchmark measured before profiles existed.
//! - `open-mic`: listeners send room noise (`noise.rs`) with the level computed from each
//!   frame, as a browser with an open microphone does.
//! - `sip`: the same noise, and no audio-level extension at all, as a SIP gateway sends it
//!   (the join then carries no `audiolevel_ext` either).

#![allow(dead_code)]

use crate::common::{Frame, silence_frames};
use crate::noise::{NOISE_VARIANTS, noise_frames};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Silence,
    OpenMic,
    Sip,
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "silence" => Ok(Profile::Silence),
            "open-mic" => Ok(Profile::OpenMic),
            "sip" => Ok(Profile::Sip),
            _ => Err(format!("unknown profile {s} (silence, open-mic, sip)")),
        }
    }
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Silence => "silence",
            Profile::OpenMic => "open-mic",
            Profile::Sip => "sip",
        }
    }

    /// Do packets carry the RFC 6464 audio-level extension?
    pub fn audio_level(self) -> bool {
        self != Profile::Sip
    }

    /// The listeners' pre-encoded loops, encoded in parallel: one loop of silence, or
    /// `NOISE_VARIANTS` loops of room noise.
    pub fn listener_loops(self) -> Vec<Arc<Vec<Frame>>> {
        match self {
            Profile::Silence => vec![Arc::new(silence_frames())],
            Profile::OpenMic | Profile::Sip => std::thread::scope(|s| {
                let handles: Vec<_> = (0..NOISE_VARIANTS)
                    .map(|v| s.spawn(move || Arc::new(noise_frames(v))))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            }),
        }
    }
}
