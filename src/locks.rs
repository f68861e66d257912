//! Every mutex of the plugin, and the one order in which they may be taken.
//!
//! # Lock order
//!
//! Outermost first. A thread may take a lock only when every lock it already holds has a
//! smaller rank. Leaves are held for a few instructions and nothing is taken while one is held.
//!
//! | rank | lock | held by |
//! |---|---|---|
//! | 0 `Saved` | the permanent rooms of the configuration file (`conference::permanent`) | requests that save or remove a permanent room, across the glue's write of the file |
//! | 1 `Rooms` | the registry of rooms (`conference::rooms`) | requests, for a lookup or an insert |
//! | 2 `Room` | a room's settings, membership and recording (`conference::room`) | requests, and a mixer thread for a snapshot at the start and end of a tick |
//! | 3 `Mix` | a room's mixing state (`mixer::tick`) | the room's mixer thread, for one tick |
//! | 4 `Media` | a participant's codec state (`conference::participant`) | mixer threads only, with `try_lock` |
//! | 5 `Leaf` | everything else: a participant's jitter queue and settings, a session, a socket, a thread's inbox, statistics | anyone, briefly |
//!
//! Two more rules keep the order meaningful: no guard is held across a call into another
//! component (Janus callbacks, another object's methods that lock), and events are collected
//! while locks are held and sent after they are released (`conference::events`). The one
//! exception is `Saved`, held across the glue's write of the configuration file so that saves
//! reach the file in the order they were decided: the glue takes only its own configuration
//! mutex there and never calls back into the plugin.
//!
//! # Checking it
//!
//! Each thread remembers the locks it holds. Taking a lock out of order is reported at once,
//! naming both locks: a panic in unit tests (so a test fails instead of hanging some day), an
//! error line in Janus's log otherwise (the end-to-end stress tests look for it). The check
//! costs a thread-local push and pop per lock.
//!
//! A poisoned lock is recovered: the panic that poisoned it was caught and logged at the C
//! boundary or in the mixer, and the data it guards stays structurally valid.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

/// A lock's place in the order; smaller is taken first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    Saved = 0,
    Rooms = 1,
    Room = 2,
    Mix = 3,
    Media = 4,
    Leaf = 5,
}

/// A mutex with a name and a rank in the lock order.
pub struct OrderedMutex<T> {
    rank: Rank,
    name: &'static str,
    inner: Mutex<T>,
}

pub struct Guard<'a, T> {
    inner: Option<MutexGuard<'a, T>>,
    id: usize,
}

#[derive(Clone, Copy)]
struct Held {
    rank: Rank,
    name: &'static str,
    id: usize,
}

thread_local! {
    static HELD: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
}

impl<T> OrderedMutex<T> {
    pub const fn new(rank: Rank, name: &'static str, value: T) -> Self {
        OrderedMutex {
            rank,
            name,
            inner: Mutex::new(value),
        }
    }

    /// A leaf lock: held briefly, nothing taken while it is held.
    pub const fn leaf(name: &'static str, value: T) -> Self {
        Self::new(Rank::Leaf, name, value)
    }

    pub fn lock(&self) -> Guard<'_, T> {
        check_order(self.rank, self.name);
        #[cfg(test)]
        waits::waiting_for(Some(self.name));
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        #[cfg(test)]
        waits::waiting_for(None);
        self.held(inner)
    }

    /// Takes the lock only if it is free. Never blocks, so it cannot close a cycle and is
    /// allowed whatever the thread holds; later locks are checked against it.
    pub fn try_lock(&self) -> Option<Guard<'_, T>> {
        let inner = match self.inner.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(self.held(inner))
    }

    fn held<'a>(&'a self, inner: MutexGuard<'a, T>) -> Guard<'a, T> {
        let id = self as *const Self as usize;
        HELD.with(|h| {
            h.borrow_mut().push(Held {
                rank: self.rank,
                name: self.name,
                id,
            })
        });
        Guard {
            inner: Some(inner),
            id,
        }
    }

    pub fn into_inner(self) -> T {
        self.inner.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Default> OrderedMutex<T> {
    pub fn leaf_default(name: &'static str) -> Self {
        Self::leaf(name, T::default())
    }
}

impl<'a, T> Guard<'a, T> {
    /// Waits on `condvar`, releasing the lock meanwhile.
    pub fn wait(mut self, condvar: &Condvar) -> Self {
        let inner = self.inner.take().expect("guard is held");
        self.inner = Some(condvar.wait(inner).unwrap_or_else(|e| e.into_inner()));
        self
    }

    /// Waits on `condvar` for at most `timeout`, releasing the lock meanwhile.
    pub fn wait_timeout(mut self, condvar: &Condvar, timeout: Duration) -> Self {
        let inner = self.inner.take().expect("guard is held");
        let (inner, _) = condvar
            .wait_timeout(inner, timeout)
            .unwrap_or_else(|e| e.into_inner());
        self.inner = Some(inner);
        self
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.inner.as_ref().expect("guard is held")
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.inner.as_mut().expect("guard is held")
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        let id = self.id;
        // Guards may be dropped in any order; forget the newest entry for this lock.
        let _ = HELD.try_with(|h| {
            let mut held = h.borrow_mut();
            if let Some(at) = held.iter().rposition(|l| l.id == id) {
                held.remove(at);
            }
        });
    }
}

/// Violations already reported, one bit per (held rank, wanted rank), so a log is not flooded.
static REPORTED: AtomicU32 = AtomicU32::new(0);
/// Violations seen since the process started (tests assert none).
static VIOLATIONS: AtomicU64 = AtomicU64::new(0);

/// How many times a lock was taken out of order, or a call made out while holding one.
pub fn violations() -> u64 {
    VIOLATIONS.load(Relaxed)
}

fn check_order(rank: Rank, name: &'static str) {
    let conflict = HELD.with(|h| h.borrow().iter().find(|l| l.rank >= rank).copied());
    let Some(held) = conflict else { return };
    VIOLATIONS.fetch_add(1, Relaxed);
    let message = format!(
        "Lock order violation: taking {name} (rank {}) while holding {} (rank {})",
        rank as u32, held.name, held.rank as u32
    );
    if cfg!(test) {
        panic!("{message}");
    }
    let bit = 1u32 << ((held.rank as u32 - 1) * 5 + (rank as u32 - 1));
    if REPORTED.fetch_or(bit, Relaxed) & bit == 0 {
        crate::log!(Error, "{message}");
    }
}

/// Reports a call into another component (Janus, most often) made while this thread holds a
/// lock, which the lock order forbids.
pub fn expect_none_held(what: &str) {
    let Some(held) = HELD.with(|h| h.borrow().first().copied()) else {
        return;
    };
    VIOLATIONS.fetch_add(1, Relaxed);
    let message = format!("Lock order violation: {what} while holding {}", held.name);
    if cfg!(test) {
        panic!("{message}");
    }
    let bit = 1u32 << (25 + held.rank as u32);
    if REPORTED.fetch_or(bit, Relaxed) & bit == 0 {
        crate::log!(Error, "{message}");
    }
}

/// Which thread waits for which lock while holding which (unit tests only): what a watchdog
/// prints when a test seems stuck, so a deadlock fails with both sides named.
#[cfg(test)]
pub mod waits {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    static WAITING: Mutex<BTreeMap<String, (&'static str, Vec<&'static str>)>> =
        Mutex::new(BTreeMap::new());

    pub(super) fn waiting_for(lock: Option<&'static str>) {
        let thread = std::thread::current();
        let name = format!("{:?} {}", thread.id(), thread.name().unwrap_or("?"));
        let mut waiting = WAITING.lock().unwrap_or_else(|e| e.into_inner());
        match lock {
            Some(lock) => {
                waiting.insert(name, (lock, super::held_by_this_thread()));
            }
            None => {
                waiting.remove(&name);
            }
        }
    }

    /// One line per thread blocked on a lock right now.
    pub fn report() -> String {
        let waiting = WAITING.lock().unwrap_or_else(|e| e.into_inner());
        waiting
            .iter()
            .map(|(thread, (lock, held))| format!("{thread}: waits for {lock}, holds {held:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The locks this thread holds, outermost first (for tests and diagnostics).
pub fn held_by_this_thread() -> Vec<&'static str> {
    HELD.with(|h| h.borrow().iter().map(|l| l.name).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_taken_in_order_are_fine_and_released_in_any_order() {
        let room = OrderedMutex::new(Rank::Room, "room", 1);
        let mix = OrderedMutex::new(Rank::Mix, "mix", 2);
        let queue = OrderedMutex::leaf("queue", 3);
        let a = room.lock();
        let b = mix.lock();
        let c = queue.lock();
        assert_eq!(held_by_this_thread(), ["room", "mix", "queue"]);
        drop(b);
        drop(a);
        assert_eq!(held_by_this_thread(), ["queue"]);
        drop(c);
        assert!(held_by_this_thread().is_empty());
    }

    #[test]
    #[should_panic(expected = "taking room (rank 2) while holding queue (rank 5)")]
    fn taking_an_outer_lock_inside_an_inner_one_is_reported_with_both_names() {
        let room = OrderedMutex::new(Rank::Room, "room", ());
        let queue = OrderedMutex::leaf("queue", ());
        let _q = queue.lock();
        let _r = room.lock();
    }

    #[test]
    #[should_panic(expected = "taking media (rank 4) while holding display (rank 5)")]
    fn two_leaves_are_never_nested() {
        let display = OrderedMutex::leaf("display", ());
        let media = OrderedMutex::new(Rank::Media, "media", ());
        let _d = display.lock();
        let _m = media.lock();
    }

    #[test]
    fn try_lock_never_blocks_and_is_checked_against_later_locks() {
        let media = OrderedMutex::new(Rank::Media, "media", 0);
        let held = media.lock();
        let other_thread = std::thread::scope(|s| s.spawn(|| media.try_lock().is_none()).join());
        assert!(other_thread.unwrap(), "busy lock is not taken");
        drop(held);
        let mix = OrderedMutex::new(Rank::Mix, "mix", 0);
        let _m = mix.lock();
        let _media = media.try_lock().expect("free");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let room = OrderedMutex::new(Rank::Room, "room", 0);
            let _r = room.lock();
        }));
        assert!(caught.is_err());
    }

    #[test]
    fn a_poisoned_lock_is_recovered() {
        let m = std::sync::Arc::new(OrderedMutex::leaf("poisoned", 5));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock();
            panic!("boom");
        })
        .join();
        assert_eq!(*m.lock(), 5);
    }
}
