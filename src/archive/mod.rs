//! The archive: every room's recording as a WAV file, each participant's own track as Ogg Opus,
//! the speech timeline, and the job files that tell other systems a recording is finished. All disk work happens on the recorder thread, never on a
//! mixer thread or a Janus thread.
//!
//! Lower layers: `locks`, `log`. Nothing here names `media`, `mixer`, `conference`, `api` or
//! `ffi`.

pub mod jobs;
pub mod names;
pub mod new_file;
pub mod ogg_opus;
#[cfg(test)]
pub mod ogg_read;
pub mod recorder;
pub mod recording;
pub mod timeline;
pub mod track;
pub mod wav;

use std::path::PathBuf;

/// Where recordings and job files go, and how they are named (the configuration's
/// `archive_path`, `recording_pattern`, `track_pattern`, `job_path` and `job_pattern`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveSettings {
    pub archive_path: PathBuf,
    pub recording_pattern: String,
    pub track_pattern: String,
    pub job_path: PathBuf,
    pub job_pattern: String,
}
