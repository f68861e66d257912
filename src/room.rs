//! A room: its settings, its participants, its recording, and its 20 ms tick.
//!
//! Three locks, taken in this order and each only briefly: `settings`, `state` (membership
//! and recording), then a participant's own locks. `mix` is held by the mixer thread for the
//! length of a tick and by nobody else, so requests never wait for mixing.

use crate::errors::{ApiError, ApiResult};
use crate::mixer::{Member, RoomMix};
use crate::notices::Notices;
use crate::outbox::Outbox;
use crate::participant::{Media, Participant, Transport};
use crate::plugin::Plugin;
use crate::recorder::RecordingHandle;
use crate::sync::lock;
use crate::talk::TalkSettings;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Clone, Debug, PartialEq)]
pub struct RoomSettings {
    pub description: String,
    pub secret: Option<String>,
    pub pin: Option<String>,
    pub is_private: bool,
    pub audiolevel_event: bool,
    pub talk: TalkSettings,
    pub allow_rtp_participants: bool,
    /// Packets each participant pre-buffers unless they ask otherwise.
    pub default_prebuffer: u32,
}

/// Where the room's recording stands.
pub enum Recording {
    /// Not recorded (the room's `record` is off).
    Off,
    /// Recorded from the first participant on; nobody has come yet.
    Waiting,
    Active(RecordingHandle),
    /// Writing failed; the room goes on unrecorded. The handle stays so that `destroy` still
    /// finishes what was written (its job file says it is incomplete).
    Failed(RecordingHandle),
}

pub struct RoomState {
    pub participants: Vec<Arc<Participant>>,
    pub destroyed: bool,
    /// A mixer thread is ticking this room.
    pub scheduled: bool,
    pub recording: Recording,
}

pub struct Room {
    pub id: String,
    pub sampling_rate: u32,
    settings: Mutex<RoomSettings>,
    state: Mutex<RoomState>,
    mix: Mutex<RoomMix>,
}

impl Room {
    pub fn new(id: String, sampling_rate: u32, settings: RoomSettings, record: bool) -> Self {
        Room {
            id,
            sampling_rate,
            settings: Mutex::new(settings),
            state: Mutex::new(RoomState {
                participants: Vec::new(),
                destroyed: false,
                scheduled: false,
                recording: if record {
                    Recording::Waiting
                } else {
                    Recording::Off
                },
            }),
            mix: Mutex::new(RoomMix::new(sampling_rate)),
        }
    }

    pub fn settings(&self) -> MutexGuard<'_, RoomSettings> {
        lock(&self.settings)
    }

    pub fn state(&self) -> MutexGuard<'_, RoomState> {
        lock(&self.state)
    }

    /// Checks a secret-protected request (489 on a wrong or missing secret).
    pub fn check_secret(&self, given: Option<&str>) -> ApiResult<()> {
        match &self.settings().secret {
            Some(secret) if given != Some(secret.as_str()) => Err(ApiError::unauthorized("secret")),
            _ => Ok(()),
        }
    }

    pub fn check_pin(&self, given: Option<&str>) -> ApiResult<()> {
        match &self.settings().pin {
            Some(pin) if given != Some(pin.as_str()) => Err(ApiError::unauthorized("pin")),
            _ => Ok(()),
        }
    }

    pub fn participants(&self) -> Vec<Arc<Participant>> {
        self.state().participants.clone()
    }

    pub fn find(&self, user_id: u64) -> Option<Arc<Participant>> {
        self.state()
            .participants
            .iter()
            .find(|p| p.user_id() == user_id)
            .cloned()
    }

    /// Adds a participant. Starts the recording and the mixing if they were not running.
    /// Returns the others' descriptions and their `joined` notices.
    pub fn add(
        self: &Arc<Self>,
        participant: &Arc<Participant>,
        plugin: &Plugin,
    ) -> ApiResult<(Vec<Value>, Notices)> {
        let mut notices = Notices::new();
        let mut state = self.state();
        if state.destroyed {
            return Err(ApiError::no_such_room(&self.id));
        }
        let user_id = participant.user_id();
        if state.participants.iter().any(|p| p.user_id() == user_id) {
            return Err(ApiError::id_exists(user_id));
        }
        let others: Vec<Value> = state.participants.iter().map(|p| p.describe()).collect();
        let joined =
            json!({"audioroom": "joined", "id": self.id, "participants": [participant.describe()]});
        notices.add_to_all(&state.participants, None, &joined);
        state.participants.push(participant.clone());
        participant.set_room(Some(self));
        if matches!(state.recording, Recording::Waiting) {
            state.recording = Recording::Active(
                plugin
                    .recorder
                    .start_recording(&self.id, self.sampling_rate),
            );
        }
        if !state.scheduled {
            state.scheduled = true;
            plugin.mixers.schedule(self.clone());
        }
        Ok((others, notices))
    }

    /// Takes a participant out; the others hear `leaving`.
    pub fn remove(&self, participant: &Participant) -> Option<Notices> {
        let mut state = self.state();
        let at = state
            .participants
            .iter()
            .position(|p| std::ptr::eq(&**p, participant))?;
        state.participants.remove(at);
        participant.set_room(None);
        let mut notices = self.stopped_talking(participant, &state.participants);
        let leaving =
            json!({"audioroom": "event", "id": self.id, "leaving": participant.user_id()});
        notices.add_to_all(&state.participants, None, &leaving);
        Some(notices)
    }

    /// A participant who goes quiet for a reason other than silence (mute, leaving) stops
    /// talking at once; with `audiolevel_event` the room hears it.
    pub fn quieten(&self, participant: &Participant) -> Notices {
        let state = self.state();
        self.stopped_talking(participant, &state.participants)
    }

    fn stopped_talking(&self, participant: &Participant, audience: &[Arc<Participant>]) -> Notices {
        let mut notices = Notices::new();
        if participant.stop_talking() && self.settings().audiolevel_event {
            let event = json!({"audioroom": "stopped-talking", "id": self.id, "userid": participant.user_id()});
            notices.add_to_all(audience, None, &event);
        }
        notices
    }

    /// Marks the room destroyed and empties it; returns who was in it and the recording to
    /// finish. After this no tick writes to the recording.
    pub fn destroy(&self) -> (Vec<Arc<Participant>>, Option<RecordingHandle>) {
        let mut state = self.state();
        state.destroyed = true;
        let participants = std::mem::take(&mut state.participants);
        for p in &participants {
            p.set_room(None);
            p.talking.store(false, Relaxed);
        }
        let recording = match std::mem::replace(&mut state.recording, Recording::Off) {
            Recording::Active(handle) | Recording::Failed(handle) => Some(handle),
            Recording::Off | Recording::Waiting => None,
        };
        (participants, recording)
    }

    /// Recording failed on disk: the room carries on unrecorded and its participants are told.
    pub fn recording_failed(&self, recording_id: u64, reason: &str) -> Notices {
        let mut notices = Notices::new();
        let mut state = self.state();
        if matches!(&state.recording, Recording::Active(h) if h.id() == recording_id) {
            if let Recording::Active(handle) =
                std::mem::replace(&mut state.recording, Recording::Off)
            {
                state.recording = Recording::Failed(handle);
            }
            let event = json!({"audioroom": "event", "id": self.id, "recording": "stopped", "reason": reason});
            notices.add_to_all(&state.participants, None, &event);
        }
        notices
    }

    /// The same event to everyone in the room but `except`.
    pub fn notify(&self, except: Option<&Participant>, event: &Value) -> Notices {
        let mut notices = Notices::new();
        notices.add_to_all(&self.state().participants, except, event);
        notices
    }

    /// One 20 ms tick. Returns false when the room no longer needs ticking (empty or
    /// destroyed); it is then unscheduled until someone joins again.
    pub fn tick(&self, outbox: &Outbox) -> bool {
        let members = {
            let mut state = self.state();
            if state.destroyed || state.participants.is_empty() {
                state.scheduled = false;
                return false;
            }
            state.participants.clone()
        };
        let (audiolevel_event, talk_settings) = {
            let s = self.settings();
            (s.audiolevel_event, s.talk)
        };
        let mut notices = Notices::new();
        for p in &members {
            if let Transport::PlainRtp(link) = &p.transport {
                if link.receive_into(p) && !p.setup.swap(true, Relaxed) {
                    let event = json!({"audioroom": "event", "id": self.id, "participants": [p.describe()]});
                    notices.add_to_all(&members, Some(p), &event);
                }
            }
        }
        let mut mix = lock(&self.mix);
        let mut media: Vec<MutexGuard<'_, Media>> = members.iter().map(|p| p.media()).collect();
        {
            let mut views: Vec<Member> = media
                .iter_mut()
                .zip(&members)
                .map(|(guard, p)| {
                    let m: &mut Media = guard;
                    Member {
                        voice: &mut m.voice,
                        downlink: &mut m.downlink,
                        queue: &p.queue,
                        speaks: p.is_setup() && !p.is_muted(),
                        listens: p.is_setup(),
                        volume_percent: p.volume_percent.load(Relaxed),
                        sink: &**p,
                    }
                })
                .collect();
            mix.tick(&mut views);
        }
        for (guard, p) in media.iter_mut().zip(&members) {
            let m: &mut Media = guard;
            for level in m.voice.take_levels() {
                if let Some(talking) = m.talk.observe(level, talk_settings) {
                    p.talking.store(talking, Relaxed);
                    if audiolevel_event {
                        let kind = if talking {
                            "talking"
                        } else {
                            "stopped-talking"
                        };
                        let event =
                            json!({"audioroom": kind, "id": self.id, "userid": p.user_id()});
                        notices.add_to_all(&members, None, &event);
                    }
                }
            }
        }
        drop(media);
        if let Recording::Active(recording) = &mut self.state().recording {
            recording.write(mix.full_mix());
        }
        drop(mix);
        if !notices.is_empty() {
            outbox.send(notices);
        }
        true
    }

    /// The room as `list` shows it.
    pub fn describe(&self) -> Value {
        let description = self.settings().description.clone();
        let state = self.state();
        json!({
            "id": self.id,
            "description": description,
            "sampling_rate": self.sampling_rate,
            "record": matches!(state.recording, Recording::Waiting | Recording::Active(_)),
            "num_participants": state.participants.len(),
        })
    }
}
