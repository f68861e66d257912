//! The mixer threads: a fixed few (one per core by default) serve every occupied room's 20 ms
//! deadline. Deadlines are absolute on the monotonic clock, so ticks do not drift; a thread
//! with no rooms sleeps on a condition variable and costs nothing, and a room that empties is
//! dropped from its thread until someone joins again.

use crate::locks::OrderedMutex;
use crate::log;
use crate::mixer::timing::ThreadTiming;
use serde_json::{Value, json};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Condvar};
use std::time::{Duration, Instant};

pub const TICK: Duration = Duration::from_millis(20);
/// Further behind than this, a thread stops catching up and starts a new schedule.
const MAX_LAG: Duration = Duration::from_millis(200);

/// What a mixer thread ticks: a room, seen from below.
pub trait Mixable: Send + Sync {
    /// One 20 ms tick. Returns false when nothing is left to mix; the thread then drops it.
    fn tick(&self) -> bool;
    /// A tick panicked (caught and logged): the thread drops it.
    fn abandoned(&self);
    /// For log lines.
    fn name(&self) -> String;
}

struct Shared {
    incoming: OrderedMutex<Vec<Arc<dyn Mixable>>>,
    wake: Condvar,
    stop: AtomicBool,
    /// Rooms this thread ticks, to balance new rooms.
    rooms: AtomicUsize,
    /// Ticks that started later than a whole period after their deadline.
    late_ticks: AtomicU64,
    timing: ThreadTiming,
}

pub struct MixerPool {
    workers: Vec<Arc<Shared>>,
    /// One message per thread that has ended.
    ended: OrderedMutex<Receiver<()>>,
}

impl MixerPool {
    pub fn start(threads: usize) -> std::io::Result<MixerPool> {
        let (ended_tx, ended) = channel();
        let mut workers = Vec::new();
        for n in 0..threads.max(1) {
            let shared = Arc::new(Shared {
                incoming: OrderedMutex::leaf("mixer inbox", Vec::new()),
                wake: Condvar::new(),
                stop: AtomicBool::new(false),
                rooms: AtomicUsize::new(0),
                late_ticks: AtomicU64::new(0),
                timing: ThreadTiming::default(),
            });
            let (worker, ended_tx) = (shared.clone(), ended_tx.clone());
            std::thread::Builder::new()
                .name(format!("audioroom mix{n}"))
                .spawn(move || {
                    run(&worker);
                    let _ = ended_tx.send(());
                })?;
            workers.push(shared);
        }
        Ok(MixerPool {
            workers,
            ended: OrderedMutex::leaf("mixer pool exits", ended),
        })
    }

    /// Starts ticking `room` on the least busy thread.
    pub fn schedule(&self, room: Arc<dyn Mixable>) {
        let Some(shared) = self.workers.iter().min_by_key(|s| s.rooms.load(Relaxed)) else {
            return;
        };
        shared.rooms.fetch_add(1, Relaxed);
        shared.incoming.lock().push(room);
        shared.wake.notify_one();
    }

    /// Per thread: rooms ticked, ticks later than a period, and the last minute's timing.
    pub fn describe(&self) -> Value {
        let threads: Vec<Value> = self
            .workers
            .iter()
            .map(|s| {
                let mut v = s.timing.describe();
                v["rooms"] = json!(s.rooms.load(Relaxed));
                v["late_ticks"] = json!(s.late_ticks.load(Relaxed));
                v
            })
            .collect();
        json!({"threads": threads})
    }

    /// Stops every thread after its current tick and waits for them, at most `patience`;
    /// returns whether all of them ended.
    pub fn stop(&self, patience: Duration) -> bool {
        for shared in &self.workers {
            shared.stop.store(true, Relaxed);
            // Taking the inbox lock orders the flag before a sleeping thread's next check.
            drop(shared.incoming.lock());
            shared.wake.notify_all();
        }
        let deadline = Instant::now() + patience;
        let ended = self.ended.lock();
        for _ in &self.workers {
            let left = deadline.saturating_duration_since(Instant::now());
            if ended.recv_timeout(left).is_err() {
                log!(
                    Error,
                    "A mixer thread did not stop within {patience:?}; going on without it"
                );
                return false;
            }
        }
        true
    }
}

fn run(shared: &Shared) {
    let mut rooms: Vec<Arc<dyn Mixable>> = Vec::new();
    let mut deadline = Instant::now();
    loop {
        {
            let mut incoming = shared.incoming.lock();
            if rooms.is_empty() {
                while incoming.is_empty() && !shared.stop.load(Relaxed) {
                    incoming = incoming.wait(&shared.wake);
                }
                deadline = Instant::now();
            }
            rooms.append(&mut incoming);
            drop(incoming);
        }
        if shared.stop.load(Relaxed) {
            return;
        }
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        } else if now - deadline > TICK {
            shared.late_ticks.fetch_add(1, Relaxed);
            if now - deadline > MAX_LAG {
                deadline = now;
            }
        }
        let started = Instant::now();
        rooms.retain(|room| {
            let keep = catch_unwind(AssertUnwindSafe(|| room.tick())).unwrap_or_else(|_| {
                log!(
                    Error,
                    "Mixing room {} failed; the room is no longer mixed",
                    room.name()
                );
                room.abandoned();
                false
            });
            if !keep {
                shared.rooms.fetch_sub(1, Relaxed);
            }
            keep
        });
        shared.timing.record(
            started.saturating_duration_since(deadline),
            started.elapsed(),
        );
        deadline += TICK;
    }
}
