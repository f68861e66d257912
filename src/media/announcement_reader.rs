//! The announcement reader: one thread (`audioroom files`) that decodes every playing
//! announcement ahead of the mixer into a bounded ring of 20 ms frames, so no mixer thread ever
//! waits for the disk. The mixer takes one frame per tick from the ring (a leaf lock held for a
//! copy); the reader tops every ring up to a second's worth every 100 ms. A disk that stalls
//! longer than that makes the announcement skip (silence, counted), never the room.
//!
//! `play` reads the first frames on the caller's thread (a request thread), so an announcement
//! is heard from the next tick and a file that yields no audio is an error for the request.

use crate::locks::OrderedMutex;
use crate::media::announcement_file::AnnouncementFile;
use crate::media::codec::frame_samples;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Condvar};
use std::thread::JoinHandle;
use std::time::Duration;

/// Frames kept ahead of the mixer: one second.
const RING_FRAMES: usize = 50;
/// Frames `play` reads before it returns.
const FIRST_FRAMES: usize = 10;
/// How often the reader tops the rings up.
const PERIOD: Duration = Duration::from_millis(100);

/// How an announcement ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The file played to its end (and was not looped).
    Finished,
    /// Reading failed (the reason in words).
    Failed(String),
}

/// What the mixer got from `Playback::pop`.
#[derive(Debug, PartialEq, Eq)]
pub enum Pop {
    /// A frame, copied into the caller's buffer.
    Frame,
    /// Nothing this tick: the reader is behind.
    Waiting,
    /// The announcement is over.
    Ended(Ending),
}

struct Ring {
    frames: VecDeque<Vec<i16>>,
    spare: Vec<Vec<i16>>,
    ending: Option<Ending>,
    /// Ticks that found the ring empty before its end.
    underruns: u64,
}

/// One playing announcement, between the reader (which fills it) and a room's mixer thread
/// (which empties it).
pub struct Playback {
    ring: OrderedMutex<Ring>,
    /// Stopped by a request (or its room destroyed): the reader lets it go.
    stopped: AtomicBool,
}

impl Playback {
    fn new() -> Self {
        Playback {
            ring: OrderedMutex::leaf(
                "announcement ring",
                Ring {
                    frames: VecDeque::with_capacity(RING_FRAMES),
                    spare: Vec::new(),
                    ending: None,
                    underruns: 0,
                },
            ),
            stopped: AtomicBool::new(false),
        }
    }

    /// This tick's frame into `out` (one frame at the room's rate).
    pub fn pop(&self, out: &mut [i16]) -> Pop {
        let mut ring = self.ring.lock();
        match ring.frames.pop_front() {
            Some(frame) => {
                out.copy_from_slice(&frame);
                ring.spare.push(frame);
                Pop::Frame
            }
            None => match ring.ending.clone() {
                Some(ending) => Pop::Ended(ending),
                None => {
                    ring.underruns += 1;
                    Pop::Waiting
                }
            },
        }
    }

    /// Ticks that found nothing to play before the end (the disk was too slow).
    pub fn underruns(&self) -> u64 {
        self.ring.lock().underruns
    }

    /// The reader forgets it (`stop_file`, its room destroyed).
    pub fn stop(&self) {
        self.stopped.store(true, Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Relaxed)
    }

    fn room_for(&self) -> usize {
        RING_FRAMES.saturating_sub(self.ring.lock().frames.len())
    }

    fn push(&self, frame: &[i16]) {
        let mut ring = self.ring.lock();
        let mut buffer = ring.spare.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(frame);
        ring.frames.push_back(buffer);
    }

    fn end(&self, ending: Ending) {
        self.ring.lock().ending = Some(ending);
    }
}

/// A file being read into a playback.
struct Reading {
    file: AnnouncementFile,
    looping: bool,
    playback: Arc<Playback>,
    /// A frame came since the last rewind (a looped file that yields none would spin).
    played_since_rewind: bool,
    frame: Vec<i16>,
}

impl Reading {
    /// Reads up to `frames` frames into the ring; false once the reading is over.
    fn top_up(&mut self, frames: usize) -> bool {
        for _ in 0..frames {
            match self.file.next_frame(&mut self.frame) {
                Ok(true) => {
                    self.played_since_rewind = true;
                    self.playback.push(&self.frame);
                }
                Ok(false) if self.looping && self.played_since_rewind => {
                    self.played_since_rewind = false;
                    if let Err(reason) = self.file.rewind() {
                        self.playback.end(Ending::Failed(reason));
                        return false;
                    }
                }
                Ok(false) => {
                    self.playback.end(Ending::Finished);
                    return false;
                }
                Err(reason) => {
                    self.playback.end(Ending::Failed(reason));
                    return false;
                }
            }
        }
        true
    }
}

struct Work {
    new: Vec<Reading>,
    stopping: bool,
}

struct Shared {
    work: OrderedMutex<Work>,
    wake: Condvar,
}

pub struct AnnouncementReader {
    shared: Arc<Shared>,
    thread: OrderedMutex<Option<JoinHandle<()>>>,
}

impl AnnouncementReader {
    pub fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            work: OrderedMutex::leaf(
                "announcement reader inbox",
                Work {
                    new: Vec::new(),
                    stopping: false,
                },
            ),
            wake: Condvar::new(),
        });
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("audioroom files".into())
            .spawn(move || read_forever(&theirs))?;
        Ok(AnnouncementReader {
            shared,
            thread: OrderedMutex::leaf("announcement reader thread", Some(thread)),
        })
    }

    /// Starts playing `file` (opened for the room's `rate`): its first frames are read here;
    /// the reader thread reads the rest. An error when the file yields no audio at all.
    pub fn play(
        &self,
        file: AnnouncementFile,
        rate: u32,
        looping: bool,
    ) -> Result<Arc<Playback>, String> {
        let playback = Arc::new(Playback::new());
        let mut reading = Reading {
            file,
            looping,
            playback: playback.clone(),
            played_since_rewind: false,
            frame: Vec::with_capacity(frame_samples(rate)),
        };
        let going = reading.top_up(FIRST_FRAMES);
        let (empty, ending) = {
            let ring = playback.ring.lock();
            (ring.frames.is_empty(), ring.ending.clone())
        };
        if empty {
            return Err(match ending {
                Some(Ending::Failed(reason)) => reason,
                _ => "there is no audio in it".into(),
            });
        }
        if going {
            self.shared.work.lock().new.push(reading);
            self.shared.wake.notify_one();
        }
        Ok(playback)
    }

    /// Ends the thread (plugin shutdown).
    pub fn stop(&self) {
        self.shared.work.lock().stopping = true;
        self.shared.wake.notify_one();
        let thread = self.thread.lock().take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn read_forever(shared: &Shared) {
    let mut readings: Vec<Reading> = Vec::new();
    loop {
        {
            let mut work = shared.work.lock();
            if work.stopping {
                return;
            }
            readings.append(&mut work.new);
        }
        readings.retain_mut(|r| !r.playback.is_stopped() && r.top_up(r.playback.room_for()));
        let work = shared.work.lock();
        if work.new.is_empty() && !work.stopping {
            drop(work.wait_timeout(&shared.wake, PERIOD));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::announcement_file::test_files::wav;
    use crate::media::codec::test_signals::goertzel_db;

    fn file(name: &str, seconds: f64) -> AnnouncementFile {
        let dir = std::env::temp_dir().join(format!("audioroom-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        wav(&path, 16000, 1, 800.0, seconds);
        AnnouncementFile::open(&path, 16000).unwrap()
    }

    /// Pops like a mixer, one frame per 20 ms, until the end or `ticks`.
    fn play_out(playback: &Playback, ticks: usize) -> (Vec<i16>, Option<Ending>, usize) {
        let mut out = Vec::new();
        let mut frame = vec![0i16; 320];
        let mut waits = 0;
        for _ in 0..ticks {
            match playback.pop(&mut frame) {
                Pop::Frame => out.extend_from_slice(&frame),
                Pop::Waiting => waits += 1,
                Pop::Ended(ending) => return (out, Some(ending), waits),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (out, None, waits)
    }

    #[test]
    fn a_file_plays_out_in_real_time_without_a_gap_and_ends() {
        let reader = AnnouncementReader::start().unwrap();
        let playback = reader.play(file("two.wav", 2.0), 16000, false).unwrap();
        let (pcm, ending, waits) = play_out(&playback, 200);
        assert_eq!(ending, Some(Ending::Finished));
        assert_eq!(waits, 0, "the reader kept ahead");
        assert_eq!(pcm.len(), 2 * 16000);
        assert!(goertzel_db(&pcm, 16000, 800.0) > -11.0);
        reader.stop();
    }

    #[test]
    fn a_looped_file_plays_until_stopped() {
        let reader = AnnouncementReader::start().unwrap();
        let playback = reader.play(file("short.wav", 0.3), 16000, true).unwrap();
        let (pcm, ending, _) = play_out(&playback, 60);
        assert_eq!(ending, None, "still playing after 1.2 s of a 0.3 s file");
        assert_eq!(pcm.len(), 60 * 320);
        playback.stop();
        reader.stop();
    }

    #[test]
    fn a_file_without_audio_is_refused() {
        let reader = AnnouncementReader::start().unwrap();
        let error = reader.play(file("empty.wav", 0.0), 16000, true).err();
        assert_eq!(error.as_deref(), Some("there is no audio in it"));
        reader.stop();
    }
}
