//! Locking that survives a poisoned mutex: a panic elsewhere was already caught and logged at
//! the C boundary or in the mixer, and the data the lock guards stays structurally valid, so
//! the plugin carries on rather than failing every later request.

use std::sync::{Mutex, MutexGuard};

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
