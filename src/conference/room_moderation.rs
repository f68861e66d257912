//! What a moderator does to a whole room, or to someone's place in it without taking them out:
//! `mute_room` / `unmute_room`, `suspend` / `resume` and `kick_all` (docs/API.md, sections
//! 2.13 and 2.14). State changes here under the room's state lock and in the participants'
//! atomics; the next tick applies them (`Room::mix` decides who sends and listens), so a request
//! never waits for mixing.

use crate::conference::events::Notices;
use crate::conference::participant::Participant;
use crate::conference::room::Room;
use serde_json::json;
use std::sync::Arc;

impl Room {
    pub fn is_muted(&self) -> bool {
        self.state().muted
    }

    /// `mute_room` / `unmute_room`: while muted only moderators are mixed, and nobody else can
    /// be heard by unmuting themselves. Everyone in the room hears of a change (and Janus's
    /// event handlers); returns whether it was one.
    pub fn set_room_muted(&self, muted: bool, notices: &mut Notices) -> bool {
        let mut state = self.state();
        if state.muted == muted {
            return false;
        }
        state.muted = muted;
        for p in &state.participants {
            let silenced = muted && !p.is_moderator() && p.is_talking();
            p.set_room_muted(muted);
            if silenced {
                self.tell_talking(&state, p, false, notices);
            }
        }
        let event = json!({"audioroom": "event", "id": self.id, "muted": muted});
        notices.tell_all(&state.participants, None, &event);
        drop(state);
        let kind = if muted { "room-muted" } else { "room-unmuted" };
        notices.tell_handlers(None, json!({"event": kind, "id": self.id}));
        true
    }

    /// `suspend` / `resume` of a participant of this room. A suspended participant stays in
    /// the room but neither is heard nor hears, and costs no encode; its outgoing RTP keeps
    /// its clock, so resuming is seamless. Everyone hears of a change; returns whether it was
    /// one.
    pub fn set_suspended(
        &self,
        participant: &Participant,
        suspended: bool,
        notices: &mut Notices,
    ) -> bool {
        let state = self.state();
        if !state
            .participants
            .iter()
            .any(|p| std::ptr::eq(&**p, participant))
        {
            return false; // it left meanwhile
        }
        let was_talking = participant.is_talking();
        if !participant.set_suspended(suspended) {
            return false;
        }
        if suspended && was_talking {
            self.tell_talking(&state, participant, false, notices);
        }
        let kind = if suspended { "suspended" } else { "resumed" };
        let user_id = participant.user_id();
        let event = json!({"audioroom": "event", "id": self.id, kind: user_id});
        notices.tell_all(&state.participants, None, &event);
        drop(state);
        let about = json!({"event": kind, "id": self.id, "userid": user_id});
        notices.tell_handlers(Some(participant), about);
        true
    }

    /// `kick_all`: everyone out, the room stays. Each participant hears that it was kicked
    /// (nobody is left to hear `leaving`), and Janus's event handlers hear one `kicked` each.
    /// Returns who was in the room, for their media to be closed once the locks are released.
    pub fn remove_everyone(&self, notices: &mut Notices) -> Vec<Arc<Participant>> {
        let mut state = self.state();
        let everyone = std::mem::take(&mut state.participants);
        drop(state);
        for p in &everyone {
            p.stop_talking();
            p.leave_room();
            let user_id = p.user_id();
            let event = json!({"audioroom": "event", "id": self.id, "kicked": user_id, "kicked_all": user_id});
            notices.tell(p, event);
            let about = json!({"event": "kicked", "id": self.id, "userid": user_id});
            notices.tell_handlers(Some(p), about);
        }
        everyone
    }
}
