//! Events for participants, gathered while a room is locked and pushed after it is unlocked.
//!
//! Janus takes its session lock inside `push_event`, and holds that same lock while it calls
//! our `destroy_session`, which needs the room lock: pushing while holding a room lock could
//! deadlock. So nothing is pushed under a lock; it is collected here first.

use crate::host::JanusHandle;
use crate::participant::Participant;
use serde_json::Value;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

#[derive(Default)]
#[must_use = "notices must be sent once the locks are released"]
pub struct Notices {
    pending: Vec<(JanusHandle, Value)>,
}

impl Notices {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, participant: &Participant, event: Value) {
        if !participant.detached.load(Relaxed) {
            self.pending.push((participant.handle.clone(), event));
        }
    }

    /// The same event to every participant but `except`.
    pub fn add_to_all(
        &mut self,
        participants: &[Arc<Participant>],
        except: Option<&Participant>,
        event: &Value,
    ) {
        for p in participants {
            if except.is_none_or(|e| !std::ptr::eq(e, Arc::as_ptr(p))) {
                self.add(p, event.clone());
            }
        }
    }

    pub fn append(&mut self, mut other: Notices) {
        self.pending.append(&mut other.pending);
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Pushes everything; call with no lock held.
    pub fn send(mut self) {
        for (handle, event) in self.pending.drain(..) {
            handle.push_event(None, &event, None);
        }
    }
}
