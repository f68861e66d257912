//! Job files: the JSON that tells other systems a recording is finished (docs/API.md, section 5.4). A job file
//! appears whole or not at all: it is written under a hidden temporary name in the same
//! folder, synced, then linked into place (never replacing an existing file), and the folder
//! is synced so the new name survives a crash too.

use crate::PLUGIN_PACKAGE;
use crate::archive::names::{JobName, job_name, unix_time_us};
use crate::archive::timeline::SpeechSegment;
use crate::archive::track::TrackSummary;
use serde_json::{Value, json};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A finished recording, as its job file describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchiveFinished {
    pub room_id: String,
    pub audio: PathBuf,
    pub uid: String,
    pub started_us: u64,
    pub finished_us: u64,
    pub duration_ms: u64,
    pub sampling_rate: u32,
    /// Set when writing stopped early on a disk error; the file holds what was written.
    pub error: Option<String>,
    /// Frames of the mix that never reached the file because the disk fell behind.
    pub dropped_frames: u64,
    /// The participants' own tracks.
    pub tracks: Vec<TrackSummary>,
    /// Who spoke when.
    pub speech: Vec<SpeechSegment>,
}

impl ArchiveFinished {
    pub fn to_json(&self) -> Value {
        let mut data = json!({
            "id": self.room_id,
            "audio": self.audio.to_string_lossy(),
            "uid": self.uid,
            "started": self.started_us,
            "finished": self.finished_us,
            "duration_ms": self.duration_ms,
            "sampling_rate": self.sampling_rate,
            "tracks": self.ordered_tracks().iter().map(|t| t.to_json()).collect::<Vec<_>>(),
            "speech": self.speech.iter().map(|s| s.to_json()).collect::<Vec<_>>(),
        });
        if let Some(error) = &self.error {
            data["incomplete"] = json!(true);
            data["error"] = json!(error);
        }
        if self.dropped_frames > 0 {
            data["incomplete"] = json!(true);
            data["dropped_frames"] = json!(self.dropped_frames);
        }
        if self.tracks.iter().any(TrackSummary::incomplete) {
            data["incomplete"] = json!(true);
        }
        json!({"plugin": PLUGIN_PACKAGE, "event": "archive-finished", "data": data})
    }

    /// Tracks in the order they start, as a consumer lines them up.
    fn ordered_tracks(&self) -> Vec<&TrackSummary> {
        let mut tracks: Vec<&TrackSummary> = self.tracks.iter().collect();
        tracks.sort_by_key(|t| (t.offset_ms, t.user_id));
        tracks
    }
}

/// Writes `event` as a job file in `folder`, named by `pattern`; returns its path.
pub fn write_job(folder: &Path, pattern: &str, event: &Value) -> io::Result<PathBuf> {
    fs::create_dir_all(folder)?;
    let text = serde_json::to_vec_pretty(event).map_err(io::Error::other)?;
    for _ in 0..100 {
        let name = job_name(
            pattern,
            &JobName {
                time_us: unix_time_us(),
                random: rand::random(),
                plugin: PLUGIN_PACKAGE,
            },
        ) + ".json";
        let target = folder.join(&name);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        let temporary = target.with_file_name(format!(
            ".{}.{}.tmp",
            target
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id()
        ));
        write_synced(&temporary, &text)?;
        let placed = place_without_replacing(&temporary, &target);
        let _ = fs::remove_file(&temporary);
        match placed {
            Ok(()) => {
                sync_folder(target.parent().unwrap_or(folder));
                return Ok(target);
            }
            // The pattern gave a name that exists (a fixed pattern, or the same microsecond):
            // pick another name; a pattern with #{rand} or #{md5} changes every try.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "job_pattern keeps naming existing files",
    ))
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// A hard link is atomic and refuses to replace; where links are unsupported, fall back to a
/// rename after a check.
fn place_without_replacing(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) if to.exists() => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
        Err(_) => fs::rename(from, to),
    }
}

/// Makes a new directory entry durable.
pub fn sync_folder(folder: &Path) {
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn temp_folder(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("audioroom-jobs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn sample() -> ArchiveFinished {
        ArchiveFinished {
            room_id: "café ☕".into(),
            audio: "/tmp/recordings/rec-caf%C3%A9-1-audio.wav".into(),
            uid: "abc".into(),
            started_us: 1,
            finished_us: 2_000_001,
            duration_ms: 2000,
            sampling_rate: 16000,
            error: None,
            dropped_frames: 0,
            tracks: Vec::new(),
            speech: Vec::new(),
        }
    }

    #[test]
    fn the_job_json_has_the_contract_shape() {
        let v = sample().to_json();
        assert_eq!(v["plugin"], "janus.plugin.cm.audioroom");
        assert_eq!(v["event"], "archive-finished");
        assert_eq!(v["data"]["id"], "café ☕");
        assert_eq!(
            v["data"]["audio"],
            "/tmp/recordings/rec-caf%C3%A9-1-audio.wav"
        );
        assert_eq!(v["data"]["duration_ms"], 2000);
        assert!(v["data"].get("incomplete").is_none());
        let dropped = ArchiveFinished {
            dropped_frames: 3,
            ..sample()
        }
        .to_json();
        assert_eq!(
            (
                dropped["data"]["incomplete"].clone(),
                dropped["data"]["dropped_frames"].clone()
            ),
            (json!(true), json!(3))
        );
    }

    #[test]
    fn tracks_and_speech_are_listed_in_order_and_a_failed_track_makes_the_job_incomplete() {
        let track = |user_id, offset_ms, error: Option<&str>| TrackSummary {
            user_id,
            display: (user_id == 1).then(|| "Ann".to_owned()),
            file: format!("/r/t-{user_id}.opus").into(),
            offset_ms,
            duration_ms: 1000,
            error: error.map(str::to_owned),
            dropped_packets: 0,
            finished: true,
        };
        let job = ArchiveFinished {
            tracks: vec![track(2, 500, None), track(1, 0, None)],
            speech: vec![SpeechSegment {
                user_id: 1,
                start_frame: 10,
                end_frame: 25,
            }],
            ..sample()
        }
        .to_json();
        assert_eq!(
            job["data"]["tracks"],
            json!([
                {"userid": 1, "display": "Ann", "file": "/r/t-1.opus", "offset_ms": 0, "duration_ms": 1000},
                {"userid": 2, "display": null, "file": "/r/t-2.opus", "offset_ms": 500, "duration_ms": 1000},
            ])
        );
        assert_eq!(
            job["data"]["speech"],
            json!([{"userid": 1, "start_ms": 200, "end_ms": 500}])
        );
        assert!(job["data"].get("incomplete").is_none());
        assert_eq!(sample().to_json()["data"]["tracks"], json!([]));
        assert_eq!(sample().to_json()["data"]["speech"], json!([]));

        let failed = ArchiveFinished {
            tracks: vec![track(1, 0, Some("/r/t-1.opus: No space left on device"))],
            ..sample()
        }
        .to_json();
        assert_eq!(failed["data"]["incomplete"], json!(true));
        assert_eq!(
            failed["data"]["tracks"][0]["error"],
            "/r/t-1.opus: No space left on device"
        );
        assert!(failed["data"].get("error").is_none(), "the WAV is fine");
    }

    #[test]
    fn job_files_are_named_by_the_pattern() {
        let dir = temp_folder("names");
        let path = write_job(&dir, "job-#{md5}", &sample().to_json()).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("job-") && name.ends_with(".json"),
            "{name}"
        );
        assert_eq!(name.len(), "job-".len() + 32 + ".json".len());
        let path = write_job(&dir, "#{plugin}-#{time}-#{rand}", &sample().to_json()).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("janus.plugin.cm.audioroom-"), "{name}");
        let parsed: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(parsed, sample().to_json());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fixed_pattern_never_overwrites() {
        let dir = temp_folder("fixed");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("same.json"), b"precious").unwrap();
        let err = write_job(&dir, "same", &sample().to_json()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(dir.join("same.json")).unwrap(), b"precious");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_polling_reader_never_sees_a_partial_job() {
        let dir = temp_folder("atomic");
        fs::create_dir_all(&dir).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (dir, done) = (dir.clone(), done.clone());
            std::thread::spawn(move || {
                let mut seen = std::collections::HashSet::new();
                let mut reads = 0u64;
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    for entry in fs::read_dir(&dir).unwrap().flatten() {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        if !name.ends_with(".json") || name.starts_with('.') {
                            continue;
                        }
                        let bytes = fs::read(entry.path()).unwrap();
                        let v: Value = serde_json::from_slice(&bytes)
                            .unwrap_or_else(|e| panic!("partial job {name}: {e}"));
                        assert_eq!(v["event"], "archive-finished");
                        reads += 1;
                        seen.insert(name);
                    }
                    if finished {
                        return (seen.len(), reads);
                    }
                }
            })
        };
        let mut big = sample();
        big.room_id = "x".repeat(256);
        for _ in 0..1000 {
            write_job(&dir, "job-#{md5}", &big.to_json()).unwrap();
        }
        done.store(true, Ordering::SeqCst);
        let (seen, reads) = reader.join().unwrap();
        assert_eq!(seen, 1000);
        assert!(reads >= 1000);
        assert!(
            fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
