//! Rust core of `janus.plugin.cm.audioroom`, a Janus plugin for audio conference rooms named by
//! strings: Opus mixing with mix-minus, a WAV archive of every room, and job files for the
//! systems that pick recordings up. The C glue in `c/audioroom.c` calls the API in `ffi`.
//!
//! Layers, lowest first; each names only those before it (a test checks it, and
//! `docs/ARCHITECTURE.md` tells the story):
//!
//! 1. `locks`, `log`: the lock order and its checked mutex; logging through Janus.
//! 2. `media`: RTP, the jitter queue, Opus decoding (uplink) and encoding (downlink), the
//!    limiter, talk detection, plain-RTP sockets. Knows nothing of rooms.
//! 3. `archive`: WAV recordings, participants' Ogg Opus tracks, the speech timeline and job
//!    files, written by the recorder thread.
//! 4. `mixer`: one room's 20 ms tick, the shared full-mix streams, the mixer threads.
//! 5. `conference`: the plugin, rooms, participants, sessions, events.
//! 6. `api`: requests, their validation, replies and errors.
//! 7. `ffi`: the C API and Janus's callbacks.

pub mod locks;
pub mod log;

pub mod media;

pub mod archive;

pub mod mixer;

pub mod conference;

pub mod api;

pub mod ffi;

/// The plugin's Janus package name (`#{plugin}` in job file names, and in job files).
pub const PLUGIN_PACKAGE: &str = "janus.plugin.cm.audioroom";

#[cfg(test)]
mod layers_tests;
