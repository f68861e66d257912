//! The C boundary: the exported C API (`exports`, from which cbindgen writes
//! `include/audioroom.h`) and Janus's callbacks (`host`). Every raw pointer and `unsafe` block
//! of the plugin is here, but for libopus calls wrapped in `media::encoder`. Every export runs
//! inside a panic boundary.
//!
//! The top layer: it may name every other.

pub mod exports;
pub mod host;
