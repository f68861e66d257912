//! Rust core of `janus.plugin.cm.audioroom`, a Janus plugin for audio conference rooms named by
//! strings: Opus mixing with mix-minus, a WAV archive of every room, and job files for the
//! systems that pick recordings up. The C glue in `c/audioroom.c` calls the API in `ffi.rs`.
//!
//! Map: `ffi` (C boundary) → `requests` (dispatch) → `room_requests` / `participant_requests`
//! → `rooms`, `room`, `participant`, `session`; media: `rtp`, `jitter`, `voice` (decode side),
//! `mixer`, `limiter`, `downlink`, `silence` and `encoder` (encode side), `codec`, `plain_rtp`; threads:
//! `mixers` (with `tick_stats`), `recorder`, `outbox`; files: `names`, `jobs`; plumbing: `host`, `config`, `body`,
//! `errors`, `notices`, `jsep`, `talk`, `sync`.

pub mod host;

pub mod body;
pub mod codec;
pub mod config;
pub mod downlink;
pub mod encoder;
pub mod errors;
pub mod ffi;
pub mod jitter;
pub mod jobs;
pub mod jsep;
pub mod limiter;
pub mod mixer;
pub mod mixers;
pub mod names;
pub mod notices;
pub mod outbox;
pub mod participant;
pub mod participant_requests;
pub mod plain_rtp;
pub mod plugin;
pub mod recorder;
pub mod requests;
pub mod room;
pub mod room_requests;
pub mod rooms;
pub mod rtp;
pub mod session;
pub mod silence;
pub mod sync;
pub mod talk;
pub mod tick_stats;
pub mod voice;
