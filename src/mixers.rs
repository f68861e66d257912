//! The mixer threads: a fixed few (one per core by default) serve every occupied room's 20 ms
//! deadline. Deadlines are absolute on the monotonic clock, so ticks do not drift; a thread
//! with no rooms sleeps on a condition variable and costs nothing, and a room that empties is
//! dropped from its thread until someone joins again.

use crate::log;
use crate::outbox::Outbox;
use crate::room::Room;
use crate::sync::lock;
use crate::tick_stats::TickStats;
use serde_json::{json, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const TICK: Duration = Duration::from_millis(20);
/// Further behind than this, a thread stops catching up and starts a new schedule.
const MAX_LAG: Duration = Duration::from_millis(200);

struct Shared {
    incoming: Mutex<Vec<Arc<Room>>>,
    wake: Condvar,
    stop: AtomicBool,
    /// Rooms this thread ticks, to balance new rooms.
    rooms: AtomicUsize,
    /// Ticks that started later than a whole period after their deadline.
    late_ticks: AtomicU64,
    timing: TickStats,
}

pub struct MixerPool {
    workers: Vec<(Arc<Shared>, Mutex<Option<JoinHandle<()>>>)>,
}

impl MixerPool {
    pub fn start(threads: usize, outbox: Arc<Outbox>) -> std::io::Result<MixerPool> {
        let mut workers = Vec::new();
        for n in 0..threads.max(1) {
            let shared = Arc::new(Shared {
                incoming: Mutex::new(Vec::new()),
                wake: Condvar::new(),
                stop: AtomicBool::new(false),
                rooms: AtomicUsize::new(0),
                late_ticks: AtomicU64::new(0),
                timing: TickStats::default(),
            });
            let thread = {
                let (shared, outbox) = (shared.clone(), outbox.clone());
                std::thread::Builder::new()
                    .name(format!("audioroom mix{n}"))
                    .spawn(move || run(&shared, &outbox))?
            };
            workers.push((shared, Mutex::new(Some(thread))));
        }
        Ok(MixerPool { workers })
    }

    /// Starts ticking `room` on the least busy thread.
    pub fn schedule(&self, room: Arc<Room>) {
        let Some((shared, _)) = self
            .workers
            .iter()
            .min_by_key(|(s, _)| s.rooms.load(Relaxed))
        else {
            return;
        };
        shared.rooms.fetch_add(1, Relaxed);
        lock(&shared.incoming).push(room);
        shared.wake.notify_one();
    }

    /// Per thread: rooms ticked, ticks later than a period, and the last minute's timing.
    pub fn describe(&self) -> Value {
        let threads: Vec<Value> = self
            .workers
            .iter()
            .map(|(s, _)| {
                let mut v = s.timing.describe();
                v["rooms"] = json!(s.rooms.load(Relaxed));
                v["late_ticks"] = json!(s.late_ticks.load(Relaxed));
                v
            })
            .collect();
        json!({"threads": threads})
    }

    /// Stops every thread after its current tick and waits for them.
    pub fn stop(&self) {
        for (shared, _) in &self.workers {
            shared.stop.store(true, Relaxed);
            let _guard = lock(&shared.incoming);
            shared.wake.notify_all();
        }
        for (_, thread) in &self.workers {
            if let Some(thread) = lock(thread).take() {
                let _ = thread.join();
            }
        }
    }
}

fn run(shared: &Shared, outbox: &Outbox) {
    let mut rooms: Vec<Arc<Room>> = Vec::new();
    let mut deadline = Instant::now();
    loop {
        {
            let mut incoming = lock(&shared.incoming);
            if rooms.is_empty() {
                while incoming.is_empty() && !shared.stop.load(Relaxed) {
                    incoming = shared
                        .wake
                        .wait(incoming)
                        .unwrap_or_else(|e| e.into_inner());
                }
                deadline = Instant::now();
            }
            rooms.append(&mut incoming);
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
            let keep = catch_unwind(AssertUnwindSafe(|| room.tick(outbox))).unwrap_or_else(|_| {
                log!(
                    Error,
                    "Mixing room {} failed; the room is no longer mixed",
                    room.id
                );
                room.state().scheduled = false;
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
