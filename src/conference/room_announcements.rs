//! A room's announcements (`play_file`, `is_playing`, `stop_file`, `stop_all_files`,
//! `listannouncements`; docs/API.md section 2.18): kept in the room's state, played by its tick
//! (one frame each per tick, taken from the reader's ring), and told to the room as they start
//! and stop. A room with an announcement playing is ticked even when nobody is in it, so a
//! forwarder hears it (as in AudioBridge).

use crate::conference::announcement::Announcement;
use crate::conference::events::Notices;
use crate::conference::participant::Participant;
use crate::conference::room::Room;
use crate::media::announcement_reader::{Ending, Pop};
use crate::media::codec::frame_samples;
use serde_json::{Value, json};
use std::sync::Arc;

/// Announcements one room may play at once.
pub const MAX_ANNOUNCEMENTS: usize = 16;

/// Why `play` refused.
#[derive(Debug, PartialEq, Eq)]
pub enum PlayError {
    Destroyed,
    FileIdTaken,
    TooMany,
}

/// What the tick took from the room's announcements.
#[derive(Default)]
pub struct AnnouncementFrames {
    pub frames: Vec<Vec<i16>>,
    /// Those whose file ended (or failed, with the reason).
    pub ended: Vec<(Arc<Announcement>, Option<String>)>,
}

impl Room {
    /// Adds a playing announcement; the room is ticked from now on if it was not.
    pub fn play(self: &Arc<Self>, announcement: Arc<Announcement>) -> Result<(), PlayError> {
        let mut state = self.state();
        if state.destroyed {
            return Err(PlayError::Destroyed);
        }
        if state
            .announcements
            .iter()
            .any(|a| a.file_id == announcement.file_id)
        {
            return Err(PlayError::FileIdTaken);
        }
        if state.announcements.len() >= MAX_ANNOUNCEMENTS {
            return Err(PlayError::TooMany);
        }
        state.announcements.push(announcement);
        let schedule = self.mark_scheduled(&mut state);
        drop(state);
        if schedule {
            self.services.mixers.schedule(self.clone());
        }
        Ok(())
    }

    pub fn announcement(&self, file_id: &str) -> Option<Arc<Announcement>> {
        self.state()
            .announcements
            .iter()
            .find(|a| a.file_id == file_id)
            .cloned()
    }

    /// Stops one announcement; false when the room has none of that id. The room hears
    /// `announcement-stopped` if it had started.
    pub fn stop_announcement(&self, file_id: &str, notices: &mut Notices) -> bool {
        let mut state = self.state();
        let Some(at) = state
            .announcements
            .iter()
            .position(|a| a.file_id == file_id)
        else {
            return false;
        };
        let announcement = state.announcements.remove(at);
        if announcement.end() {
            self.tell_stopped(&state.participants, &announcement, None, notices);
        }
        true
    }

    /// Stops them all; returns their ids.
    pub fn stop_all_announcements(&self, notices: &mut Notices) -> Vec<String> {
        let mut state = self.state();
        let all = std::mem::take(&mut state.announcements);
        for announcement in &all {
            if announcement.end() {
                self.tell_stopped(&state.participants, announcement, None, notices);
            }
        }
        drop(state);
        all.iter().map(|a| a.file_id.clone()).collect()
    }

    pub fn describe_announcements(&self) -> Vec<Value> {
        self.state()
            .announcements
            .iter()
            .map(|a| a.describe())
            .collect()
    }

    /// This tick's frame of each playing announcement (mixer thread, no lock held but the
    /// rings' leaves); the room hears those that start.
    pub(crate) fn announcement_frames(
        &self,
        playing: &[Arc<Announcement>],
        members: &[Arc<Participant>],
        notices: &mut Notices,
    ) -> AnnouncementFrames {
        let mut taken = AnnouncementFrames::default();
        for announcement in playing {
            // Stopped by a request since the snapshot: not one frame more.
            if announcement.playback.is_stopped() {
                continue;
            }
            let mut frame = vec![0i16; frame_samples(self.sampling_rate)];
            match announcement.playback.pop(&mut frame) {
                Pop::Frame => {
                    if announcement.start() {
                        self.tell(members, "announcement-started", announcement, None, notices);
                    }
                    taken.frames.push(frame);
                }
                Pop::Waiting => {}
                Pop::Ended(Ending::Finished) => taken.ended.push((announcement.clone(), None)),
                Pop::Ended(Ending::Failed(reason)) => {
                    crate::log!(
                        Warn,
                        "Room {}: announcement {} ({}) stopped: {reason}",
                        self.id,
                        announcement.file_id,
                        announcement.filename
                    );
                    taken.ended.push((announcement.clone(), Some(reason)));
                }
            }
        }
        taken
    }

    /// Takes the announcements whose file ended out of the room; it hears that they stopped.
    pub(crate) fn finish_announcements(
        &self,
        ended: &[(Arc<Announcement>, Option<String>)],
        notices: &mut Notices,
    ) {
        if ended.is_empty() {
            return;
        }
        let mut state = self.state();
        state
            .announcements
            .retain(|a| !ended.iter().any(|(e, _)| Arc::ptr_eq(a, e)));
        for (announcement, reason) in ended {
            if announcement.end() {
                self.tell_stopped(
                    &state.participants,
                    announcement,
                    reason.as_deref(),
                    notices,
                );
            }
        }
    }

    fn tell_stopped(
        &self,
        participants: &[Arc<Participant>],
        announcement: &Announcement,
        reason: Option<&str>,
        notices: &mut Notices,
    ) {
        self.tell(
            participants,
            "announcement-stopped",
            announcement,
            reason,
            notices,
        );
    }

    /// `{"audioroom": kind, "id", "file_id"}` to the room, `{"event": kind, ...}` to Janus's
    /// event handlers; a failure's reason with both.
    fn tell(
        &self,
        participants: &[Arc<Participant>],
        kind: &str,
        announcement: &Announcement,
        reason: Option<&str>,
        notices: &mut Notices,
    ) {
        let mut event = json!({"audioroom": kind, "id": self.id, "file_id": announcement.file_id});
        let mut about = json!({"event": kind, "id": self.id, "file_id": announcement.file_id});
        if let Some(reason) = reason {
            event["reason"] = json!(reason);
            about["reason"] = json!(reason);
        }
        notices.tell_all(participants, None, &event);
        notices.tell_handlers(None, about);
    }
}
