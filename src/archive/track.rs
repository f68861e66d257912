//! One participant's own track of a room recording, on the recorder thread: an Ogg Opus file
//! (`ogg_opus`) of the packets they sent, each placed at the frame of the recording's clock at
//! which the mixer played it, so that the track lines up with the room's WAV by construction.
//! The file is created with the first packet: a participant who never sent audio has no track.
//! Pages reach the disk at least once a second (crash safety, as the WAV's header); after a
//! disk error the file is cut back to its last whole page and nothing more is written.

use crate::archive::new_file::create_new;
use crate::archive::ogg_opus::{OggOpusWriter, StreamInfo, TICK_SAMPLES};
use crate::archive::timeline::FRAME_MS;
use serde_json::{Value, json};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often pages are written out, at the least.
pub const PAGE_FLUSH: Duration = Duration::from_secs(1);

/// Who a track is of; travels with its first message, as a WAV's opening does.
#[derive(Clone, Debug)]
pub struct TrackOpening {
    pub room_id: String,
    pub user_id: u64,
    pub display: Option<String>,
    /// The room's rate (the header's input rate, for information).
    pub rate: u32,
    /// When the participant joined: `#{time}` of the name.
    pub time_us: u64,
}

/// A track as the job file lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackSummary {
    pub user_id: u64,
    pub display: Option<String>,
    pub file: PathBuf,
    /// Where the first packet plays, from the start of the room's recording.
    pub offset_ms: u64,
    pub duration_ms: u64,
    /// The first failure: the file holds what was written before it.
    pub error: Option<String>,
    /// Packets that never reached the file because the disk fell behind (played as gaps).
    pub dropped_packets: u64,
    /// Closed and synced.
    pub finished: bool,
}

impl TrackSummary {
    /// `{"userid", "display", "file", "offset_ms", "duration_ms"}`, and `error` and
    /// `dropped_packets` when there is something to say.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "userid": self.user_id,
            "display": self.display,
            "file": self.file.to_string_lossy(),
            "offset_ms": self.offset_ms,
            "duration_ms": self.duration_ms,
        });
        if let Some(error) = &self.error {
            v["error"] = json!(error);
        }
        if self.dropped_packets > 0 {
            v["dropped_packets"] = json!(self.dropped_packets);
        }
        v
    }

    /// Audio is missing from the file.
    pub fn incomplete(&self) -> bool {
        self.error.is_some() || self.dropped_packets > 0
    }
}

pub struct TrackFile {
    pub path: PathBuf,
    writer: Option<OggOpusWriter<File>>,
    /// A second descriptor of the same file, to sync or cut it after the writer is gone.
    sync_handle: File,
    /// The recording's frame at which the first packet played.
    first_frame: u64,
    /// 48 kHz samples the file holds (all taken while writing; what is on disk after an error).
    samples: u64,
    last_flush: Instant,
    /// Pages written out so far by `flush` (the ledger hears of each).
    flushes: u64,
    pub error: Option<String>,
}

impl TrackFile {
    /// Creates `<folder>/<base>.opus` (or `-1`, `-2`… when taken) and writes its headers; the
    /// first packet to come plays at `first_frame` of the recording.
    pub fn create(
        folder: &Path,
        base: &str,
        opening: &TrackOpening,
        first_frame: u64,
    ) -> Result<TrackFile, (PathBuf, io::Error)> {
        let (file, path) = create_new(folder, base, "opus")?;
        let fail = |e: io::Error| (path.clone(), e);
        let sync_handle = file.try_clone().map_err(fail)?;
        let mut comments = vec![
            format!("AUDIOROOM_ROOM={}", opening.room_id),
            format!("AUDIOROOM_USERID={}", opening.user_id),
        ];
        if let Some(display) = &opening.display {
            comments.push(format!("AUDIOROOM_DISPLAY={display}"));
        }
        let info = StreamInfo {
            serial: rand::random(),
            input_rate: opening.rate,
            comments: &comments,
        };
        let writer = OggOpusWriter::new(file, &info).map_err(fail)?;
        Ok(TrackFile {
            path,
            writer: Some(writer),
            sync_handle,
            first_frame,
            samples: 0,
            last_flush: Instant::now(),
            flushes: 0,
            error: None,
        })
    }

    /// Adds a packet played at `frame` of the recording. On the first error the file is cut
    /// back to its whole pages and the error (`<path>: <OS error>`) is returned once; later
    /// calls do nothing.
    pub fn write(&mut self, frame: u64, packet: Vec<u8>) -> Result<(), String> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let at = frame.saturating_sub(self.first_frame) * TICK_SAMPLES;
        let written = writer.push(packet, at).and_then(|_| {
            if self.last_flush.elapsed() >= PAGE_FLUSH {
                self.last_flush = Instant::now();
                self.flushes += 1;
                writer.flush()?;
            }
            Ok(())
        });
        self.samples = writer.samples();
        written.map_err(|e| self.close_after_error(e))
    }

    /// Writes the last page and syncs the file and its folder.
    pub fn finish(&mut self) {
        if let Some(writer) = self.writer.take() {
            let (samples, bytes) = (writer.samples_on_disk(), writer.bytes_on_disk);
            if let Err(e) = writer.finish() {
                // The last page is torn: back to the pages before it.
                self.samples = samples;
                let _ = self.sync_handle.set_len(bytes);
                self.error
                    .get_or_insert(format!("{}: {e}", self.path.display()));
            }
        }
        if let Err(e) = self.sync_handle.sync_all() {
            crate::log!(Warn, "Could not sync {}: {e}", self.path.display());
        }
        if let Some(folder) = self.path.parent() {
            crate::archive::jobs::sync_folder(folder);
        }
    }

    /// How many times pages were written out (to know when what is on disk changed).
    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    pub fn offset_ms(&self) -> u64 {
        self.first_frame * FRAME_MS
    }

    pub fn duration_ms(&self) -> u64 {
        self.samples / 48
    }

    fn close_after_error(&mut self, error: io::Error) -> String {
        let reason = format!("{}: {error}", self.path.display());
        if let Some(writer) = self.writer.take() {
            self.samples = writer.samples_on_disk();
            if let Err(e) = self.sync_handle.set_len(writer.bytes_on_disk) {
                crate::log!(Error, "Could not cut {} back: {e}", self.path.display());
            }
        }
        self.error.get_or_insert(reason.clone());
        reason
    }
}
