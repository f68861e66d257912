//! The recorder thread: every room's WAV archive, its participants' tracks and its job file,
//! off the 20 ms path.
//!
//! Mixer threads hand frames and packets over a bounded channel without ever blocking (a full
//! channel drops them and counts them; `recording` is the room's side). A file is created on
//! its recording's first message and named with the time of the first join, a track's on its
//! first packet; finishing closes and syncs every track and the WAV before the job file that
//! names them is written. A job file that cannot be written is retried until it is, or, at the very
//! end, logged in full so an operator can still recover it.
//!
//! The ledger (a leaf lock shared with `stop`) knows every unfinished recording: if the thread
//! cannot finish in time at shutdown (a disk that hangs), `stop` writes their job files itself,
//! marked incomplete, so no recording ends without one. Each job is claimed in the ledger
//! before it is written, so a recording never gets two.

use crate::archive::ArchiveSettings;
use crate::archive::jobs::{ArchiveFinished, write_job};
use crate::archive::names::{RecordingName, TrackName, recording_name, track_name, unix_time_us};
pub use crate::archive::recording::RecordingHandle;
use crate::archive::timeline::SpeechSegment;
use crate::archive::track::{TrackFile, TrackOpening, TrackSummary};
use crate::archive::wav::WavFile;
use crate::locks::OrderedMutex;
use crate::log;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, channel, sync_channel};
use std::sync::mpsc::{Sender, TrySendError};
use std::time::{Duration, Instant};

/// Messages that may wait for the disk: about 10 s of 100 busy rooms (a frame each per tick,
/// and a packet per participant with a track).
const CHANNEL_CAPACITY: usize = 50_000;
/// How often a job file that could not be written is tried again.
const JOB_RETRY: Duration = Duration::from_secs(2);

/// Told when a recording stops on a disk error: room id, recording id, reason.
pub type FailureHook = Box<dyn Fn(&str, u64, &str) + Send>;
/// Told when a job file has been written, with its event.
pub type FinishedHook = Arc<dyn Fn(&Value) + Send + Sync>;

/// What a recording's file is made from; travels with its first message.
#[derive(Clone)]
pub(super) struct Opening {
    pub room_id: String,
    pub rate: u32,
    pub time_us: u64,
    /// The room's own `recording_pattern`, instead of the configuration's.
    pub pattern: Option<String>,
}

/// A track: its recording, and its number in that recording.
pub(super) type TrackKey = (u64, u64);

/// One packet of a track (by its number in the recording), with the track's opening until a
/// message has carried it.
pub(super) struct TrackPacket {
    pub number: u64,
    pub opening: Option<Box<TrackOpening>>,
    pub payload: Vec<u8>,
}

pub(super) enum Message {
    Samples {
        id: u64,
        opening: Option<Box<Opening>>,
        pcm: Vec<i16>,
    },
    /// The Opus packets of a recording's tracks played at `frame`: one message a tick for
    /// all of them, so the recorder thread is woken per tick, not per participant.
    Packets {
        id: u64,
        frame: u64,
        packets: Vec<TrackPacket>,
    },
    /// The participant left: its track is closed.
    TrackEnd {
        track: TrackKey,
        dropped_packets: u64,
    },
    Finish {
        id: u64,
        opening: Option<Box<Opening>>,
        /// Frames of this recording dropped because the disk fell behind.
        dropped_frames: u64,
        /// Its tracks still open, with the packets each dropped.
        tracks: Vec<(u64, u64)>,
    },
    Stop,
}

/// One unfinished recording, as both the thread and `stop` see it.
pub(super) struct Entry {
    room_id: String,
    rate: u32,
    started_us: u64,
    /// Known once the file exists.
    path: Option<PathBuf>,
    /// Samples the file's header accounts for.
    samples_on_disk: u64,
    /// Someone is writing (or has written) its job file.
    job_claimed: bool,
    /// Its participants' tracks, by number, as far as the thread has written them.
    tracks: BTreeMap<u64, TrackSummary>,
    /// Set when the room finishes the recording.
    pub(super) speech: Vec<SpeechSegment>,
}

pub(super) type Ledger = OrderedMutex<HashMap<u64, Entry>>;

pub struct Recorder {
    sender: SyncSender<Message>,
    ended: OrderedMutex<Receiver<()>>,
    next_id: AtomicU64,
    dropped: Arc<AtomicU64>,
    ledger: Arc<Ledger>,
    settings: ArchiveSettings,
    on_finished: FinishedHook,
}

impl Recorder {
    pub fn start(
        settings: &ArchiveSettings,
        on_failure: FailureHook,
        on_finished: FinishedHook,
    ) -> std::io::Result<Recorder> {
        let (sender, receiver) = sync_channel(CHANNEL_CAPACITY);
        let (ended_tx, ended) = channel();
        let ledger: Arc<Ledger> = Arc::new(OrderedMutex::leaf("recording ledger", HashMap::new()));
        let mut worker = Worker {
            settings: settings.clone(),
            files: HashMap::new(),
            tracks: HashMap::new(),
            unwritten_jobs: Vec::new(),
            ledger: ledger.clone(),
            on_failure,
            on_finished: on_finished.clone(),
        };
        std::thread::Builder::new()
            .name("audioroom rec".into())
            .spawn(move || worker.run(receiver, ended_tx))?;
        Ok(Recorder {
            sender,
            ended: OrderedMutex::leaf("recorder exit", ended),
            next_id: AtomicU64::new(1),
            dropped: Arc::new(AtomicU64::new(0)),
            ledger,
            settings: settings.clone(),
            on_finished,
        })
    }

    /// A new recording of `room_id`, named with the current time; no file exists until the
    /// first frame or the finish reaches the recorder thread.
    pub fn start_recording(&self, room_id: &str, rate: u32) -> RecordingHandle {
        self.start_recording_with(room_id, rate, None)
    }

    /// The same, named by `pattern` instead of the configuration's `recording_pattern`.
    pub fn start_recording_with(
        &self,
        room_id: &str,
        rate: u32,
        pattern: Option<&str>,
    ) -> RecordingHandle {
        let id = self.next_id.fetch_add(1, Relaxed);
        let time_us = unix_time_us();
        self.ledger.lock().insert(
            id,
            Entry {
                room_id: room_id.to_owned(),
                rate,
                started_us: time_us,
                path: None,
                samples_on_disk: 0,
                job_claimed: false,
                tracks: BTreeMap::new(),
                speech: Vec::new(),
            },
        );
        let opening = Opening {
            room_id: room_id.to_owned(),
            rate,
            time_us,
            pattern: pattern.map(str::to_owned),
        };
        RecordingHandle::new(
            id,
            opening,
            self.sender.clone(),
            self.dropped.clone(),
            self.ledger.clone(),
        )
    }

    /// Frames dropped because the disk fell behind.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Finishes whatever is still open and waits for the thread, at most `patience`. What the
    /// thread could not finish in time gets its job file here, marked incomplete.
    pub fn stop(&self, patience: Duration) {
        let deadline = Instant::now() + patience;
        let mut stop = Message::Stop;
        loop {
            match self.sender.try_send(stop) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => break,
                Err(TrySendError::Full(message)) if Instant::now() < deadline => {
                    stop = message;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => break,
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let ended = self.ended.lock().recv_timeout(left);
        if matches!(ended, Err(RecvTimeoutError::Timeout)) {
            log!(
                Error,
                "The recorder could not finish within {patience:?}; writing the remaining job files as incomplete"
            );
            self.write_unfinished_jobs(patience);
        }
    }

    fn write_unfinished_jobs(&self, patience: Duration) {
        // Only recordings whose file exists: one the thread has not even created yet may still
        // be, and is then finished by the thread as usual.
        let unfinished: Vec<(u64, Entry, PathBuf)> = {
            let mut ledger = self.ledger.lock();
            let ids: Vec<u64> = ledger
                .iter()
                .filter(|(_, e)| !e.job_claimed && e.path.is_some())
                .map(|(id, _)| *id)
                .collect();
            let unfinished = ids
                .into_iter()
                .filter_map(|id| {
                    // Out of the ledger: the thread, should it get there, writes no job.
                    let entry = ledger.remove(&id)?;
                    let path = entry.path.clone()?;
                    Some((id, entry, path))
                })
                .collect();
            drop(ledger);
            unfinished
        };
        for (id, entry, path) in unfinished {
            let unfinished_track = format!(
                "the track could not be finished within {} s at shutdown; the file holds its whole pages",
                patience.as_secs_f32()
            );
            let tracks = entry
                .tracks
                .into_values()
                .map(|mut t| {
                    if !t.finished {
                        t.error.get_or_insert_with(|| unfinished_track.clone());
                    }
                    t
                })
                .collect();
            let finished = ArchiveFinished {
                uid: recording_uid(&entry.room_id, id, entry.started_us),
                room_id: entry.room_id,
                audio: path,
                started_us: entry.started_us,
                finished_us: unix_time_us(),
                duration_ms: entry.samples_on_disk * 1000 / entry.rate.max(1) as u64,
                sampling_rate: entry.rate,
                error: Some(format!(
                    "the recording could not be finished within {} s at shutdown; the file holds what its header accounts for",
                    patience.as_secs_f32()
                )),
                dropped_frames: 0,
                tracks,
                speech: entry.speech,
            };
            let event = finished.to_json();
            match write_job(&self.settings.job_path, &self.settings.job_pattern, &event) {
                Ok(_) => (self.on_finished)(&event),
                Err(e) => log_lost_job(&self.settings, &event, &e),
            }
        }
    }
}

struct Worker {
    settings: ArchiveSettings,
    /// Open files by recording id; `None` for a recording whose file could not be made.
    files: HashMap<u64, Option<WavFile>>,
    /// Open tracks; `None` for one whose file could not be made.
    tracks: HashMap<TrackKey, Option<TrackFile>>,
    /// Job files that could not be written yet.
    unwritten_jobs: Vec<Value>,
    ledger: Arc<Ledger>,
    on_failure: FailureHook,
    on_finished: FinishedHook,
}

impl Worker {
    fn run(&mut self, receiver: Receiver<Message>, ended: Sender<()>) {
        loop {
            let message = if self.unwritten_jobs.is_empty() {
                receiver.recv().ok()
            } else {
                match receiver.recv_timeout(JOB_RETRY) {
                    Ok(message) => Some(message),
                    Err(RecvTimeoutError::Timeout) => {
                        self.retry_jobs(false);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => None,
                }
            };
            let Some(message) = message else { break };
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match message {
                    Message::Samples { id, opening, pcm } => {
                        self.write(id, opening, &pcm);
                        true
                    }
                    Message::Packets { id, frame, packets } => {
                        for p in packets {
                            self.track_packet((id, p.number), p.opening, frame, p.payload);
                        }
                        true
                    }
                    Message::TrackEnd {
                        track,
                        dropped_packets,
                    } => {
                        self.end_track(track, dropped_packets);
                        true
                    }
                    Message::Finish {
                        id,
                        opening,
                        dropped_frames,
                        tracks,
                    } => {
                        self.open_if_new(id, opening);
                        for (number, dropped_packets) in tracks {
                            self.end_track((id, number), dropped_packets);
                        }
                        self.finish(id, dropped_frames);
                        true
                    }
                    Message::Stop => false,
                }));
            match outcome {
                Ok(true) => {}
                Ok(false) => break,
                Err(_) => log!(
                    Error,
                    "Recorder: a message failed unexpectedly; recording goes on"
                ),
            }
        }
        let ids: Vec<u64> = self.files.keys().copied().collect();
        for id in ids {
            self.finish(id, 0);
        }
        // Tracks of a recording whose WAV was never opened: closed properly all the same.
        let tracks: Vec<TrackKey> = self.tracks.keys().copied().collect();
        for key in tracks {
            self.end_track(key, 0);
        }
        self.retry_jobs(true);
        let _ = ended.send(());
    }

    fn open_if_new(&mut self, id: u64, opening: Option<Box<Opening>>) {
        if self.files.contains_key(&id) {
            return;
        }
        let Some(opening) = opening else { return };
        let pattern = opening
            .pattern
            .as_deref()
            .unwrap_or(&self.settings.recording_pattern);
        let base = recording_name(
            pattern,
            &RecordingName {
                room_id: &opening.room_id,
                time_us: opening.time_us,
                kind: "audio",
            },
        );
        let file = match WavFile::create(&self.settings.archive_path, &base, opening.rate) {
            Ok(file) => {
                log!(
                    Info,
                    "Recording room {} to {}",
                    opening.room_id,
                    file.path.display()
                );
                if let Some(entry) = self.ledger.lock().get_mut(&id) {
                    entry.path = Some(file.path.clone());
                }
                Some(file)
            }
            Err((path, e)) => {
                let reason = format!("{}: {e}", path.display());
                log!(Error, "Cannot record room {}: {reason}", opening.room_id);
                (self.on_failure)(&opening.room_id, id, &reason);
                None
            }
        };
        self.files.insert(id, file);
    }

    fn write(&mut self, id: u64, opening: Option<Box<Opening>>, pcm: &[i16]) {
        self.open_if_new(id, opening);
        let Some(Some(file)) = self.files.get_mut(&id) else {
            return;
        };
        let before = file.samples_on_disk;
        let written = file.write(pcm);
        let on_disk = file.samples_on_disk;
        if on_disk != before {
            if let Some(entry) = self.ledger.lock().get_mut(&id) {
                entry.samples_on_disk = on_disk;
            }
        }
        if let Err(reason) = written {
            let room_id = self
                .ledger
                .lock()
                .get(&id)
                .map(|e| e.room_id.clone())
                .unwrap_or_default();
            log!(Error, "Recording of room {room_id} stopped: {reason}");
            (self.on_failure)(&room_id, id, &reason);
        }
    }

    /// A packet of a track: its file is created with its first one (none for a recording
    /// whose WAV could not be made: no job would name it).
    fn track_packet(
        &mut self,
        key: TrackKey,
        opening: Option<Box<TrackOpening>>,
        frame: u64,
        payload: Vec<u8>,
    ) {
        if !self.tracks.contains_key(&key) {
            if matches!(self.files.get(&key.0), Some(None)) {
                return;
            }
            let Some(opening) = opening else { return };
            let file = self.create_track(key, &opening, frame);
            self.tracks.insert(key, file);
        }
        let Some(Some(file)) = self.tracks.get_mut(&key) else {
            return;
        };
        let flushed = file.flushes();
        let written = file.write(frame, payload);
        if written.is_err() || file.flushes() != flushed {
            let (duration_ms, error) = (file.duration_ms(), file.error.clone());
            if let Err(reason) = &written {
                log!(Error, "Track stopped: {reason}");
            }
            self.update_track(key, |t| {
                t.duration_ms = duration_ms;
                t.error = error;
            });
        }
    }

    fn create_track(&self, key: TrackKey, opening: &TrackOpening, frame: u64) -> Option<TrackFile> {
        let base = track_name(
            &self.settings.track_pattern,
            &TrackName {
                room_id: &opening.room_id,
                time_us: opening.time_us,
                user_id: opening.user_id,
            },
        );
        let (file, path, error) =
            match TrackFile::create(&self.settings.archive_path, &base, opening, frame) {
                Ok(file) => {
                    log!(
                        Info,
                        "Recording participant {} of room {} to {}",
                        opening.user_id,
                        opening.room_id,
                        file.path.display()
                    );
                    let path = file.path.clone();
                    (Some(file), path, None)
                }
                Err((failed, e)) => {
                    let reason = format!("{}: {e}", failed.display());
                    log!(
                        Error,
                        "Cannot record participant {} of room {}: {reason}",
                        opening.user_id,
                        opening.room_id
                    );
                    let path = self.settings.archive_path.join(format!("{base}.opus"));
                    (None, path, Some(reason))
                }
            };
        if let Some(entry) = self.ledger.lock().get_mut(&key.0) {
            entry.tracks.insert(
                key.1,
                TrackSummary {
                    user_id: opening.user_id,
                    display: opening.display.clone(),
                    file: path,
                    offset_ms: file.as_ref().map_or(0, |f| f.offset_ms()),
                    duration_ms: 0,
                    finished: error.is_some(),
                    error,
                    dropped_packets: 0,
                },
            );
        }
        file
    }

    /// The participant left, or the recording finishes: the track's file is closed and synced.
    fn end_track(&mut self, key: TrackKey, dropped_packets: u64) {
        let Some(file) = self.tracks.remove(&key) else {
            return; // never sent a packet: no track
        };
        let outcome = file.map(|mut file| {
            file.finish();
            (file.duration_ms(), file.error)
        });
        self.update_track(key, |t| {
            if let Some((duration_ms, error)) = outcome {
                t.duration_ms = duration_ms;
                t.error = error;
            }
            t.dropped_packets += dropped_packets;
            t.finished = true;
        });
    }

    fn update_track(&self, key: TrackKey, change: impl FnOnce(&mut TrackSummary)) {
        if let Some(track) = self
            .ledger
            .lock()
            .get_mut(&key.0)
            .and_then(|e| e.tracks.get_mut(&key.1))
        {
            change(track);
        }
    }

    fn finish(&mut self, id: u64, dropped_frames: u64) {
        // Every track the job will name is closed and synced first.
        let open: Vec<TrackKey> = self.tracks.keys().filter(|k| k.0 == id).copied().collect();
        for key in open {
            self.end_track(key, 0);
        }
        let file = self.files.remove(&id);
        // Claimed here, or already taken out of the ledger by a `stop` that gave up waiting.
        let claimed = {
            let mut ledger = self.ledger.lock();
            match ledger.get_mut(&id) {
                Some(entry) if !entry.job_claimed => {
                    entry.job_claimed = true;
                    let tracks: Vec<TrackSummary> = entry.tracks.values().cloned().collect();
                    let speech = std::mem::take(&mut entry.speech);
                    Some((entry.room_id.clone(), entry.started_us, tracks, speech))
                }
                _ => None,
            }
        };
        let Some(Some(mut file)) = file else {
            // Never had a file: nothing to describe.
            self.ledger.lock().remove(&id);
            return;
        };
        file.finish();
        let Some((room_id, started_us, tracks, speech)) = claimed else {
            return; // `stop` gave up waiting and wrote this job itself
        };
        let finished = ArchiveFinished {
            uid: recording_uid(&room_id, id, started_us),
            room_id,
            audio: file.path.clone(),
            started_us,
            finished_us: unix_time_us(),
            duration_ms: file.duration_ms(),
            sampling_rate: file.rate,
            error: file.error.clone(),
            dropped_frames,
            tracks,
            speech,
        };
        self.write_job(finished.to_json());
        self.ledger.lock().remove(&id);
    }

    fn write_job(&mut self, event: Value) {
        match write_job(&self.settings.job_path, &self.settings.job_pattern, &event) {
            Ok(path) => {
                log!(
                    Info,
                    "Recording of room {} finished: {} ({} ms), job {}",
                    event["data"]["id"].as_str().unwrap_or_default(),
                    event["data"]["audio"].as_str().unwrap_or_default(),
                    event["data"]["duration_ms"],
                    path.display()
                );
                (self.on_finished)(&event);
            }
            Err(e) => {
                log!(
                    Error,
                    "Could not write the job file for {} in {}: {e}; trying again every {} s",
                    event["data"]["audio"].as_str().unwrap_or_default(),
                    self.settings.job_path.display(),
                    JOB_RETRY.as_secs()
                );
                self.unwritten_jobs.push(event);
            }
        }
    }

    /// Tries the job files that failed again; `last` is the final attempt at shutdown.
    fn retry_jobs(&mut self, last: bool) {
        let jobs = std::mem::take(&mut self.unwritten_jobs);
        for event in jobs {
            match write_job(&self.settings.job_path, &self.settings.job_pattern, &event) {
                Ok(path) => {
                    log!(Info, "Job file written on a later try: {}", path.display());
                    (self.on_finished)(&event);
                }
                Err(e) if last => log_lost_job(&self.settings, &event, &e),
                Err(_) => self.unwritten_jobs.push(event),
            }
        }
    }
}

/// 32 hex digits naming one recording: MD5 of the room id, its start, its number and a random
/// number.
fn recording_uid(room_id: &str, id: u64, started_us: u64) -> String {
    let random = rand::random::<u64>();
    format!(
        "{:x}",
        md5::compute(format!("{room_id}{started_us}{id}{random}"))
    )
}

/// The last resort: the job's whole content in the log, so it can be recreated by hand.
fn log_lost_job(settings: &ArchiveSettings, event: &Value, error: &std::io::Error) {
    log!(
        Fatal,
        "Job file could not be written in {} ({error}); its content: {event}",
        settings.job_path.display()
    );
}

#[cfg(test)]
#[path = "recorder_tests.rs"]
mod tests;
