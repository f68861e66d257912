//! Turning a room's recording off and on while it runs (`enable_recording`, docs/API.md section
//! 2.16). Stopping finishes the WAV and has its job file written exactly as `destroy` does;
//! starting makes a new recording (new file, new `uid`), at once when someone is in the room,
//! else at the next join.

use crate::archive::recorder::RecordingHandle;
use crate::conference::events::Notices;
use crate::conference::room::{Recording, Room};
use serde_json::json;

/// What `set_recording` did.
pub struct RecordingChange {
    /// Whether the room is recorded now (`list`'s `record`).
    pub recording: bool,
    /// A recording to finish (its job file written), with no lock held: finishing may wait for
    /// the recorder's queue.
    pub to_finish: Option<RecordingHandle>,
}

impl Room {
    pub fn is_recording(&self) -> bool {
        self.state().recording.is_on()
    }

    /// Records from now on, or stops recording. A recording that failed on disk is finished
    /// either way, so `record: true` also starts afresh after a disk error. `pattern`, when
    /// given, names this room's recordings from now on (one in progress keeps its name).
    pub fn set_recording(
        &self,
        record: bool,
        pattern: Option<String>,
        notices: &mut Notices,
    ) -> RecordingChange {
        let mut state = self.state();
        if pattern.is_some() {
            state.settings.recording_pattern = pattern;
        }
        if state.recording.is_on() == record {
            return RecordingChange {
                recording: record,
                to_finish: None,
            };
        }
        let previous = std::mem::replace(&mut state.recording, Recording::Off);
        let (was_active, to_finish) = match previous {
            Recording::Active(handle) => (true, Some(handle)),
            Recording::Failed(handle) => (false, Some(handle)),
            Recording::Off | Recording::Waiting => (false, None),
        };
        let change = if record {
            state.recording = if state.participants.is_empty() {
                Recording::Waiting
            } else {
                let handle = self.start_recording(&state, notices);
                Recording::Active(handle)
            };
            Some("started")
        } else {
            was_active.then_some("stopped")
        };
        if let Some(change) = change {
            let event = json!({"audioroom": "event", "id": self.id, "recording": change});
            notices.tell_all(&state.participants, None, &event);
        }
        drop(state);
        if was_active {
            let about = json!({"event": "recording-stopped", "id": self.id});
            notices.tell_handlers(None, about);
        }
        RecordingChange {
            recording: record,
            to_finish,
        }
    }
}
