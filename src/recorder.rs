//! The recorder thread: every room's WAV archive and job file, off the 20 ms path.
//!
//! Mixer threads hand frames over a bounded channel without ever blocking (a full channel
//! drops the frame and counts it); control messages (finish, stop) block, but are only sent
//! from request and shutdown threads. A file is created on its recording's first message and
//! named with the time of the first join; the WAV header is rewritten at least once a second,
//! so a file cut short by a crash is still valid; finishing closes and syncs the file before
//! its job file is written.

use crate::config::Config;
use crate::jobs::{sync_folder, write_job, ArchiveFinished};
use crate::log;
use crate::names::{recording_name, unix_time_us, RecordingName};
use hound::{SampleFormat, WavSpec, WavWriter};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Frames that may wait for the disk: about 10 s of 100 busy rooms.
const CHANNEL_CAPACITY: usize = 50_000;
/// How often the WAV header is brought up to date.
const HEADER_REFRESH: Duration = Duration::from_secs(1);

/// Told when a recording stops on a disk error: room id, recording id, reason.
pub type FailureHook = Box<dyn Fn(&str, u64, &str) + Send>;
/// Told when a job file has been written, with its event.
pub type FinishedHook = Box<dyn Fn(&serde_json::Value) + Send>;

/// What a recording's file is made from; travels with its first message.
struct Opening {
    room_id: String,
    rate: u32,
    time_us: u64,
}

enum Message {
    Samples {
        id: u64,
        opening: Option<Box<Opening>>,
        pcm: Vec<i16>,
    },
    Finish {
        id: u64,
        opening: Option<Box<Opening>>,
        /// Frames of this recording dropped because the disk fell behind.
        dropped_frames: u64,
    },
    Stop,
}

pub struct Recorder {
    sender: SyncSender<Message>,
    thread: Mutex<Option<JoinHandle<()>>>,
    next_id: AtomicU64,
    dropped: Arc<AtomicU64>,
}

impl Recorder {
    pub fn start(
        config: &Config,
        on_failure: FailureHook,
        on_finished: FinishedHook,
    ) -> io::Result<Recorder> {
        let (sender, receiver) = sync_channel(CHANNEL_CAPACITY);
        let mut worker = Worker {
            archive_path: config.archive_path.clone(),
            recording_pattern: config.recording_pattern.clone(),
            job_path: config.job_path.clone(),
            job_pattern: config.job_pattern.clone(),
            files: HashMap::new(),
            on_failure,
            on_finished,
        };
        let thread = std::thread::Builder::new()
            .name("audioroom rec".into())
            .spawn(move || worker.run(receiver))?;
        Ok(Recorder {
            sender,
            thread: Mutex::new(Some(thread)),
            next_id: AtomicU64::new(1),
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// A new recording of `room_id`, named with the current time; no file exists until the
    /// first frame or the finish reaches the recorder thread.
    pub fn start_recording(&self, room_id: &str, rate: u32) -> RecordingHandle {
        RecordingHandle {
            id: self.next_id.fetch_add(1, Relaxed),
            sender: self.sender.clone(),
            opening: Some(Box::new(Opening {
                room_id: room_id.to_owned(),
                rate,
                time_us: unix_time_us(),
            })),
            dropped: self.dropped.clone(),
            dropped_here: 0,
        }
    }

    /// Frames dropped because the disk fell behind.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Finishes whatever is still open and waits for the thread to end.
    pub fn stop(&self) {
        let _ = self.sender.send(Message::Stop);
        if let Some(thread) = crate::sync::lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

/// One recording, held by its room.
pub struct RecordingHandle {
    id: u64,
    sender: SyncSender<Message>,
    opening: Option<Box<Opening>>,
    dropped: Arc<AtomicU64>,
    dropped_here: u64,
}

impl RecordingHandle {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Hands one frame of the mix to the recorder; never blocks.
    pub fn write(&mut self, pcm: &[i16]) {
        let message = Message::Samples {
            id: self.id,
            opening: self.opening.take(),
            pcm: pcm.to_vec(),
        };
        match self.sender.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(Message::Samples { opening, .. })) => {
                self.opening = opening;
                self.dropped_here += 1;
                let dropped = self.dropped.fetch_add(1, Relaxed) + 1;
                if dropped.is_power_of_two() {
                    log!(
                        Warn,
                        "Recorder is behind the disk: {dropped} frames dropped so far"
                    );
                }
            }
            Err(_) => {}
        }
    }

    /// Closes the recording and has its job file written. Blocks while the channel is full,
    /// so call it with no lock held.
    pub fn finish(self) {
        let _ = self.sender.send(Message::Finish {
            id: self.id,
            opening: self.opening,
            dropped_frames: self.dropped_here,
        });
    }
}

/// A file being written.
struct Archive {
    room_id: String,
    path: PathBuf,
    rate: u32,
    started_us: u64,
    writer: Option<WavWriter<BufWriter<StopOnError>>>,
    /// A second descriptor of the same file, to sync it after the writer is gone.
    sync_handle: File,
    samples: u64,
    last_header: Instant,
    error: Option<String>,
}

impl Archive {
    /// Writing failed: what reached the disk is kept, with a header that says exactly that
    /// much (buffered samples that never made it are not claimed).
    fn close_after_error(&mut self, reason: String) {
        if let Some(writer) = self.writer.take() {
            let _ = writer.finalize();
        }
        match fit_header_to_file(&self.sync_handle) {
            Ok(samples) => self.samples = samples,
            Err(e) => log!(
                Error,
                "Could not repair the header of {}: {e}",
                self.path.display()
            ),
        }
        self.error.get_or_insert(reason);
    }
}

struct Worker {
    archive_path: PathBuf,
    recording_pattern: String,
    job_path: PathBuf,
    job_pattern: String,
    /// Open archives by recording id; `None` for a recording whose file could not be made.
    files: HashMap<u64, Option<Archive>>,
    on_failure: FailureHook,
    on_finished: FinishedHook,
}

impl Worker {
    fn run(&mut self, receiver: Receiver<Message>) {
        while let Ok(message) = receiver.recv() {
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match message {
                    Message::Samples { id, opening, pcm } => {
                        self.write(id, opening, &pcm);
                        true
                    }
                    Message::Finish {
                        id,
                        opening,
                        dropped_frames,
                    } => {
                        self.open_if_new(id, opening);
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
    }

    fn open_if_new(&mut self, id: u64, opening: Option<Box<Opening>>) {
        if self.files.contains_key(&id) {
            return;
        }
        let Some(opening) = opening else { return };
        let archive = match self.create(&opening) {
            Ok(archive) => {
                log!(
                    Info,
                    "Recording room {} to {}",
                    opening.room_id,
                    archive.path.display()
                );
                Some(archive)
            }
            Err((path, e)) => {
                let reason = format!("{}: {e}", path.display());
                log!(Error, "Cannot record room {}: {reason}", opening.room_id);
                (self.on_failure)(&opening.room_id, id, &reason);
                None
            }
        };
        self.files.insert(id, archive);
    }

    fn create(&self, opening: &Opening) -> Result<Archive, (PathBuf, io::Error)> {
        let base = recording_name(
            &self.recording_pattern,
            &RecordingName {
                room_id: &opening.room_id,
                time_us: opening.time_us,
                kind: "audio",
            },
        );
        let (file, path) = create_unique(&self.archive_path, &base)?;
        let fail = |e: io::Error| (path.clone(), e);
        let sync_handle = file.try_clone().map_err(fail)?;
        let spec = WavSpec {
            channels: 1,
            sample_rate: opening.rate,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let mut writer = WavWriter::new(
            BufWriter::new(StopOnError {
                file,
                failed: false,
            }),
            spec,
        )
        .map_err(|e| fail(hound_to_io(e)))?;
        writer.flush().map_err(|e| fail(hound_to_io(e)))?;
        Ok(Archive {
            room_id: opening.room_id.clone(),
            path,
            rate: opening.rate,
            started_us: opening.time_us,
            writer: Some(writer),
            sync_handle,
            samples: 0,
            last_header: Instant::now(),
            error: None,
        })
    }

    fn write(&mut self, id: u64, opening: Option<Box<Opening>>, pcm: &[i16]) {
        self.open_if_new(id, opening);
        let Some(Some(archive)) = self.files.get_mut(&id) else {
            return;
        };
        let Some(writer) = archive.writer.as_mut() else {
            return;
        };
        let result = write_samples(writer, pcm).and_then(|()| {
            if archive.last_header.elapsed() >= HEADER_REFRESH {
                archive.last_header = Instant::now();
                writer.flush().map_err(hound_to_io)
            } else {
                Ok(())
            }
        });
        match result {
            Ok(()) => archive.samples += pcm.len() as u64,
            Err(e) => {
                let reason = format!("{}: {e}", archive.path.display());
                log!(
                    Error,
                    "Recording of room {} stopped: {reason}",
                    archive.room_id
                );
                archive.close_after_error(reason.clone());
                (self.on_failure)(&archive.room_id, id, &reason);
            }
        }
    }

    fn finish(&mut self, id: u64, dropped_frames: u64) {
        let Some(Some(mut archive)) = self.files.remove(&id) else {
            return;
        };
        if let Some(writer) = archive.writer.take() {
            if let Err(e) = writer.finalize() {
                let reason = format!("{}: {}", archive.path.display(), hound_to_io(e));
                log!(
                    Error,
                    "Recording of room {} could not be finished cleanly: {reason}",
                    archive.room_id
                );
                archive.close_after_error(reason);
            }
        }
        if let Err(e) = archive.sync_handle.sync_all() {
            log!(Warn, "Could not sync {}: {e}", archive.path.display());
        }
        if let Some(folder) = archive.path.parent() {
            sync_folder(folder);
        }
        let finished = ArchiveFinished {
            room_id: archive.room_id.clone(),
            audio: archive.path.clone(),
            uid: format!(
                "{:x}",
                md5::compute(format!(
                    "{}{}{id}{}",
                    archive.room_id,
                    archive.started_us,
                    rand::random::<u64>()
                ))
            ),
            started_us: archive.started_us,
            finished_us: unix_time_us(),
            duration_ms: archive.samples * 1000 / archive.rate.max(1) as u64,
            sampling_rate: archive.rate,
            error: archive.error.clone(),
            dropped_frames,
        };
        let event = finished.to_json();
        match write_job(&self.job_path, &self.job_pattern, &event) {
            Ok(path) => {
                log!(
                    Info,
                    "Recording of room {} finished: {} ({} ms), job {}",
                    archive.room_id,
                    archive.path.display(),
                    finished.duration_ms,
                    path.display()
                );
                (self.on_finished)(&event);
            }
            Err(e) => log!(
                Error,
                "Could not write the job file for {} in {}: {e}",
                archive.path.display(),
                self.job_path.display()
            ),
        }
    }
}

/// The file as hound sees it: after the first error every write and seek fails without
/// touching the file, so nothing hound or its buffer does after a full disk can garble what
/// `fit_header_to_file` then repairs.
struct StopOnError {
    file: File,
    failed: bool,
}

impl StopOnError {
    fn guard<T>(&mut self, op: impl FnOnce(&mut File) -> io::Result<T>) -> io::Result<T> {
        if self.failed {
            return Err(io::Error::other("writing stopped after an earlier error"));
        }
        op(&mut self.file).inspect_err(|_| self.failed = true)
    }
}

impl io::Write for StopOnError {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.guard(|f| f.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.guard(|f| f.flush())
    }
}

impl io::Seek for StopOnError {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.guard(|f| f.seek(pos))
    }
}

fn write_samples(writer: &mut WavWriter<BufWriter<StopOnError>>, pcm: &[i16]) -> io::Result<()> {
    let mut samples = writer.get_i16_writer(pcm.len() as u32);
    for &s in pcm {
        samples.write_sample(s);
    }
    samples.flush().map_err(hound_to_io)
}

/// Rewrites the RIFF and `data` sizes of a 16-bit mono WAV to match the bytes in the file,
/// trimming a torn last sample; returns the samples it holds.
fn fit_header_to_file(mut file: &File) -> io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let length = file.metadata()?.len();
    let mut header = [0u8; 12];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut header)?;
    if &header[0..4] != b"RIFF" || &header[8..12] != b"WAVE" {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a WAV file"));
    }
    let mut chunk_at = 12u64;
    let data_at = loop {
        let mut chunk = [0u8; 8];
        file.seek(SeekFrom::Start(chunk_at))?;
        file.read_exact(&mut chunk)?;
        if &chunk[0..4] == b"data" {
            break chunk_at + 8;
        }
        let size = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]) as u64;
        chunk_at += 8 + size + (size & 1);
        if chunk_at >= length {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "no data chunk"));
        }
    };
    let data_bytes = length.saturating_sub(data_at) & !1;
    file.set_len(data_at + data_bytes)?;
    file.seek(SeekFrom::Start(4))?;
    file.write_all(&((data_at + data_bytes - 8) as u32).to_le_bytes())?;
    file.seek(SeekFrom::Start(data_at - 4))?;
    file.write_all(&(data_bytes as u32).to_le_bytes())?;
    Ok(data_bytes / 2)
}

fn hound_to_io(e: hound::Error) -> io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// Creates `<folder>/<base>.wav`, or `<base>-1.wav`, `-2`… when taken: never overwrites.
fn create_unique(folder: &Path, base: &str) -> Result<(File, PathBuf), (PathBuf, io::Error)> {
    let first = folder.join(format!("{base}.wav"));
    if let Some(parent) = first.parent() {
        fs::create_dir_all(parent).map_err(|e| (parent.to_path_buf(), e))?;
    }
    for n in 0..10_000u32 {
        let path = if n == 0 {
            first.clone()
        } else {
            folder.join(format!("{base}-{n}.wav"))
        };
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err((path, e)),
        }
    }
    Err((
        first,
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "10000 recordings of that name exist",
        ),
    ))
}

#[cfg(test)]
#[path = "recorder_tests.rs"]
mod tests;
