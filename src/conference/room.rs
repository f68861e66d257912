//! A room: its settings, its participants, its recording, and its 20 ms tick.
//!
//! Two locks (see `locks` for the whole order): `state` (rank `Room`: settings, membership and
//! recording; held briefly by requests, and by the mixer thread to take a snapshot before a
//! tick and to hand the mix to the recording after it) and `mix` (rank `Mix`: the mixing state,
//! held by the room's mixer thread for the length of a tick and by nobody else). During a tick
//! the mixer thread takes each member's codec state with `try_lock` and, under it, the member's
//! leaf locks; it never takes `state` while holding `mix`.

use crate::archive::recorder::RecordingHandle;
use crate::archive::recording::Voiced;
use crate::conference::access::AccessList;
use crate::conference::announcement::Announcement;
use crate::conference::events::Notices;
use crate::conference::forwarder::Forwarder;
use crate::conference::link::Link;
use crate::conference::participant::{Media, Participant, Transport, log_codec_error};
use crate::conference::room_links::Removal;
use crate::conference::services::Services;
use crate::locks::{Guard, OrderedMutex, Rank};
use crate::media::clock;
use crate::media::jitter::Mode;
use crate::media::plain_rtp::MAX_DATAGRAMS_PER_TICK;
use crate::media::talk::TalkSettings;
use crate::mixer::pool::Mixable;
use crate::mixer::speakers::MixPolicy;
use crate::mixer::tick::{ForwardSink, Member, RoomMix};
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub struct RoomSettings {
    pub description: String,
    pub secret: Option<String>,
    pub pin: Option<String>,
    pub is_private: bool,
    pub audiolevel_event: bool,
    pub talk: TalkSettings,
    /// Whom the room mixes: speakers only (the gate's threshold and hangover, and how many at
    /// most), or everyone.
    pub mixing: MixPolicy,
    pub allow_rtp_participants: bool,
    /// Plain-RTP participants are whoever sends first to their port, and get the mix there
    /// (symmetric RTP); otherwise only their declared address is heard.
    pub rtp_symmetric: bool,
    /// How each participant's jitter queue holds packets unless they ask otherwise.
    pub default_playout: Mode,
    /// Who may join: the tokens of `allowed`, when checked.
    pub access: AccessList,
    /// This room's `recording_pattern`, instead of the configuration's.
    pub recording_pattern: Option<String>,
    /// While recorded, each participant's own audio also goes to a track of its own.
    pub record_participants: bool,
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

impl Recording {
    /// Whether the room is recorded now, as `list` shows it (`record`).
    pub fn is_on(&self) -> bool {
        matches!(self, Recording::Waiting | Recording::Active(_))
    }
}

pub struct RoomState {
    pub settings: RoomSettings,
    pub participants: Vec<Arc<Participant>>,
    pub destroyed: bool,
    /// `mute_room`: nobody but moderators is mixed.
    pub muted: bool,
    /// A mixer thread is ticking this room.
    scheduled: bool,
    pub recording: Recording,
    /// Files playing into the room (`play_file`).
    pub announcements: Vec<Arc<Announcement>>,
    /// Where the full mix also goes (`rtp_forward`).
    pub forwarders: Vec<Arc<Forwarder>>,
    /// Links to the same room on other servers (`link`), mixed with the participants.
    pub links: Vec<Arc<Link>>,
}

/// Why a participant could not be added.
#[derive(Debug, PartialEq, Eq)]
pub enum AddError {
    /// The room was destroyed meanwhile.
    Destroyed,
    /// Someone in the room has this user id.
    UserIdTaken(u64),
}

pub struct Room {
    pub id: String,
    pub sampling_rate: u32,
    pub(crate) services: Arc<Services>,
    state: OrderedMutex<RoomState>,
    mix: OrderedMutex<RoomMix>,
}

impl Room {
    pub fn new(
        id: String,
        sampling_rate: u32,
        settings: RoomSettings,
        record: bool,
        services: Arc<Services>,
    ) -> Self {
        Room {
            id,
            sampling_rate,
            services,
            state: OrderedMutex::new(
                Rank::Room,
                "room state",
                RoomState {
                    settings,
                    participants: Vec::new(),
                    destroyed: false,
                    muted: false,
                    scheduled: false,
                    recording: if record {
                        Recording::Waiting
                    } else {
                        Recording::Off
                    },
                    announcements: Vec::new(),
                    forwarders: Vec::new(),
                    links: Vec::new(),
                },
            ),
            mix: OrderedMutex::new(Rank::Mix, "room mix", RoomMix::new(sampling_rate)),
        }
    }

    pub fn state(&self) -> Guard<'_, RoomState> {
        self.state.lock()
    }

    pub fn settings(&self) -> RoomSettings {
        self.state().settings.clone()
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

    pub fn contains(&self, participant: &Participant) -> bool {
        self.state()
            .participants
            .iter()
            .any(|p| std::ptr::eq(&**p, participant))
    }

    /// Adds a participant; starts the recording and the mixing if they were not running.
    /// Returns the others' descriptions; `notices` gets their `joined` events.
    pub fn add(
        self: &Arc<Self>,
        participant: &Arc<Participant>,
        notices: &mut Notices,
    ) -> Result<Vec<Value>, AddError> {
        let (others, schedule) = {
            let mut state = self.state();
            if state.destroyed {
                return Err(AddError::Destroyed);
            }
            let user_id = participant.user_id();
            if state.participants.iter().any(|p| p.user_id() == user_id) {
                return Err(AddError::UserIdTaken(user_id));
            }
            let others: Vec<Value> = state.participants.iter().map(|p| p.describe()).collect();
            let joined = json!({"audioroom": "joined", "id": self.id, "participants": [participant.describe()]});
            notices.tell_all(&state.participants, None, &joined);
            participant.enter_room(state.muted);
            state.participants.push(participant.clone());
            if matches!(state.recording, Recording::Waiting) {
                // Everyone, the newcomer included, is in the recording from its first frame.
                state.recording = Recording::Active(self.start_recording(&state, notices));
            } else {
                let track = state.settings.record_participants;
                if let Recording::Active(recording) = &mut state.recording {
                    join_recording(recording, participant, track);
                }
            }
            let schedule = self.mark_scheduled(&mut state);
            drop(state);
            (others, schedule)
        };
        if schedule {
            self.services.mixers.schedule(self.clone());
        }
        Ok(others)
    }

    /// Marks the room as ticked; true when it was not (the caller then schedules it, with no
    /// lock held).
    pub(crate) fn mark_scheduled(&self, state: &mut RoomState) -> bool {
        !std::mem::replace(&mut state.scheduled, true)
    }

    /// Takes a participant out; the others hear `leaving` (after `stopped-talking`). Returns
    /// false when it was not in the room.
    pub fn remove(&self, participant: &Participant, notices: &mut Notices) -> bool {
        let mut state = self.state();
        let Some(at) = state
            .participants
            .iter()
            .position(|p| std::ptr::eq(&**p, participant))
        else {
            return false;
        };
        state.participants.remove(at);
        if let Recording::Active(recording) | Recording::Failed(recording) = &mut state.recording {
            recording.leave(member_key(participant));
        }
        self.stopped_talking(&state, participant, notices);
        participant.leave_room();
        let leaving =
            json!({"audioroom": "event", "id": self.id, "leaving": participant.user_id()});
        notices.tell_all(&state.participants, None, &leaving);
        true
    }

    /// Mutes or unmutes a participant of this room (its own `configure` or a moderator); a
    /// talker who is muted stops talking at once. Returns whether the state changed.
    pub fn set_muted(&self, participant: &Participant, muted: bool, notices: &mut Notices) -> bool {
        let was_talking = participant.is_talking();
        if !participant.set_muted(muted) {
            return false;
        }
        if muted && was_talking {
            let state = self.state();
            self.tell_talking(&state, participant, false, notices);
        }
        true
    }

    fn stopped_talking(&self, state: &RoomState, participant: &Participant, notices: &mut Notices) {
        if participant.stop_talking() {
            self.tell_talking(state, participant, false, notices);
        }
    }

    /// A talking change, for the room and for Janus's event handlers, in rooms that asked for
    /// talking events.
    pub(crate) fn tell_talking(
        &self,
        state: &RoomState,
        participant: &Participant,
        talking: bool,
        notices: &mut Notices,
    ) {
        if !state.settings.audiolevel_event {
            return;
        }
        let kind = if talking {
            "talking"
        } else {
            "stopped-talking"
        };
        let user_id = participant.user_id();
        let event = json!({"audioroom": kind, "id": self.id, "userid": user_id});
        notices.tell_all(&state.participants, None, &event);
        let about = json!({"event": kind, "id": self.id, "userid": user_id});
        notices.tell_handlers(Some(participant), about);
    }

    /// A new recording of this room, from now on (called with the state lock held); Janus's
    /// event handlers hear that it started.
    pub(crate) fn start_recording(
        &self,
        state: &RoomState,
        notices: &mut Notices,
    ) -> RecordingHandle {
        let pattern = state.settings.recording_pattern.as_deref();
        let mut handle =
            self.services
                .recorder
                .start_recording_with(&self.id, self.sampling_rate, pattern);
        for p in &state.participants {
            join_recording(&mut handle, p, state.settings.record_participants);
        }
        notices.tell_handlers(None, json!({"event": "recording-started", "id": self.id}));
        handle
    }

    /// Marks the room destroyed and empties it; returns who was in it and the recording to
    /// finish. After this no tick writes to the recording.
    pub fn destroy(&self) -> (Vec<Arc<Participant>>, Option<RecordingHandle>) {
        let mut state = self.state();
        state.destroyed = true;
        let participants = std::mem::take(&mut state.participants);
        let recording = match std::mem::replace(&mut state.recording, Recording::Off) {
            Recording::Active(handle) | Recording::Failed(handle) => Some(handle),
            Recording::Off | Recording::Waiting => None,
        };
        // Forwarders and links close their sockets; announcements stop being read.
        let announcements = std::mem::take(&mut state.announcements);
        let links = std::mem::take(&mut state.links);
        state.forwarders.clear();
        drop(state);
        for announcement in &announcements {
            announcement.end();
        }
        for link in &links {
            link.participant.close_media();
        }
        for p in &participants {
            p.stop_talking();
            p.leave_room();
        }
        (participants, recording)
    }

    /// Recording failed on disk: the room carries on unrecorded and its participants are told.
    pub fn recording_failed(&self, recording_id: u64, reason: &str, notices: &mut Notices) {
        let mut state = self.state();
        if matches!(&state.recording, Recording::Active(h) if h.id() == recording_id) {
            if let Recording::Active(handle) =
                std::mem::replace(&mut state.recording, Recording::Off)
            {
                state.recording = Recording::Failed(handle);
            }
            let event = json!({"audioroom": "event", "id": self.id, "recording": "stopped", "reason": reason});
            notices.tell_all(&state.participants, None, &event);
            drop(state);
            let about = json!({"event": "recording-stopped", "id": self.id, "reason": reason});
            notices.tell_handlers(None, about);
        }
    }

    /// The same event to everyone in the room but `except`.
    pub fn tell_all(&self, except: Option<&Participant>, event: &Value, notices: &mut Notices) {
        notices.tell_all(&self.state().participants, except, event);
    }

    /// The room as `list` shows it; operators (Admin API) also see whose reception is worst.
    pub fn describe(&self, admin: bool) -> Value {
        let (mut room, participants) = {
            let state = self.state();
            let room = json!({
                "id": self.id,
                "description": state.settings.description,
                "sampling_rate": self.sampling_rate,
                "pin_required": state.settings.pin.is_some(),
                "muted": state.muted,
                "record": state.recording.is_on(),
                "num_participants": state.participants.len(),
            });
            (room, state.participants.clone())
        };
        if admin {
            room["forwarders"] = json!(self.describe_forwarders());
            // The largest delay target: the participant on the worst network path.
            let worst = participants
                .iter()
                .map(|p| (p.user_id(), p.describe_playout()))
                .max_by(|a, b| {
                    let key = |v: &Value| {
                        (
                            v["target_ms"].as_f64().unwrap_or(0.0),
                            v["concealed"].as_u64(),
                        )
                    };
                    key(&a.1)
                        .partial_cmp(&key(&b.1))
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
            if let Some((user_id, mut playout)) = worst {
                playout["userid"] = json!(user_id);
                room["worst_playout"] = playout;
            }
        }
        room
    }

    /// Reads the plain-RTP members' sockets (a bounded number of datagrams each); the first
    /// valid packet of a member sets it up, and the room hears it.
    fn receive_plain_rtp(&self, members: &[Arc<Participant>], notices: &mut Notices) {
        for p in members {
            let Transport::PlainRtp(link) = p.transport() else {
                continue;
            };
            if p.is_link() {
                continue; // read by `receive_links`
            }
            let drained = link.drain(MAX_DATAGRAMS_PER_TICK, |packet, arrival| {
                p.receive_at(packet.header(), packet.payload, packet.audio_level, arrival)
            });
            if drained.rejected + drained.foreign > 0 {
                p.count_rejected(drained.rejected as u64, drained.foreign as u64);
            }
            if drained.valid > 0 && !p.set_setup(true) {
                let event =
                    json!({"audioroom": "event", "id": self.id, "participants": [p.describe()]});
                notices.tell_all(members, Some(p), &event);
            }
        }
    }

    /// Mixes one tick for `members` under the `mix` lock; returns the full mix and what each
    /// member did, for the recording. Members whose codecs another mixer thread holds (moving
    /// between rooms) sit this tick out.
    fn mix(
        &self,
        members: &[Arc<Participant>],
        snapshot: &Snapshot,
        extras: (&[&[i16]], &[&dyn ForwardSink]),
        notices: &mut Notices,
    ) -> (Vec<i16>, Vec<Voiced>) {
        let mut mix = self.mix.lock();
        let mut ready = Vec::with_capacity(members.len());
        for p in members {
            let Some(mut media) = p.try_media() else {
                continue;
            };
            if let Err(error) = p.sync_media(&mut media, self.sampling_rate) {
                mix.codec_errors += 1;
                log_codec_error(p.user_id(), &error, mix.codec_errors);
                continue;
            }
            // Tracks are Ogg Opus of the participant's own packets: a G.711 voice has none to
            // give, and its track stays silent.
            let opus = media.codec() == crate::media::audio_codec::AudioCodec::Opus;
            media
                .voice
                .played
                .start_tick(snapshot.tracks && opus && !p.is_link());
            ready.push((p, media));
        }
        let levels: Vec<Option<u8>> = {
            let mut views: Vec<Member> = ready
                .iter_mut()
                .map(|(p, media)| {
                    let Media {
                        voice,
                        gate,
                        downlink,
                        ..
                    } = &mut **media;
                    let mut member = Member::new(voice, gate, downlink, p.queue(), &***p);
                    // Suspended: out of the mix both ways, its RTP clock running on (seamless
                    // resume). A muted room holds everyone's voice but its moderators'.
                    member.sends = p.is_setup() && !p.is_muted() && !p.held_by_room(snapshot.muted);
                    member.listens = p.is_setup() && !p.is_suspended() && p.receives_mix();
                    if p.is_link() {
                        // Both ends wait for the other's first packet otherwise.
                        member.sends = p.is_setup();
                        member.listens = p.receives_mix();
                        member.always = true;
                    }
                    member.volume_percent = p.volume_percent();
                    member
                })
                .collect();
            let (sources, forwarders) = extras;
            let now = clock::now_us();
            mix.tick_with(&mut views, sources, forwarders, &snapshot.mixing, now);
            views.iter().map(|m| m.level).collect()
        };
        let voices = match snapshot.recorded {
            true => ready
                .iter()
                .zip(&levels)
                .filter(|((p, _), _)| !p.is_link())
                .map(|((p, media), level)| Voiced {
                    key: member_key(p),
                    speaking: media.gate.is_speaking(),
                    loud: level.is_some_and(|l| l <= snapshot.mixing.speech.threshold),
                    packets: media.voice.played.iter().map(<[u8]>::to_vec).collect(),
                })
                .collect(),
            false => Vec::new(),
        };
        for ((p, media), level) in ready.iter_mut().zip(levels) {
            let Some(level) = level.filter(|_| !p.is_link()) else {
                continue;
            };
            let Some(talking) = media.talk.observe(level, snapshot.talk) else {
                continue;
            };
            if p.set_talking(talking) && snapshot.talk_events {
                let kind = if talking {
                    "talking"
                } else {
                    "stopped-talking"
                };
                let event = json!({"audioroom": kind, "id": self.id, "userid": p.user_id()});
                notices.tell_all(members, None, &event);
                let about = json!({"event": kind, "id": self.id, "userid": p.user_id()});
                notices.tell_handlers(Some(p), about);
            }
        }
        (mix.full_mix().to_vec(), voices)
    }
}

/// How the recording knows a member: the participant object, for as long as it is in the room.
fn member_key(participant: &Participant) -> u64 {
    std::ptr::from_ref(participant) as usize as u64
}

/// A participant is in the recording from now on (its speech, and with `track` its own track).
fn join_recording(recording: &mut RecordingHandle, participant: &Participant, track: bool) {
    let display = participant.display();
    recording.join(
        member_key(participant),
        participant.user_id(),
        display,
        track,
    );
}

/// The room's settings a tick uses, as of its start.
#[derive(Clone, Copy)]
struct Snapshot {
    mixing: MixPolicy,
    talk: TalkSettings,
    talk_events: bool,
    /// The recording is being written: it hears who spoke.
    recorded: bool,
    /// ... and each member's packets, for their tracks.
    tracks: bool,
    /// The room is muted (`mute_room`).
    muted: bool,
}

impl Mixable for Room {
    /// One 20 ms tick. False when the room no longer needs ticking (empty or destroyed); it is
    /// then unscheduled until someone joins again.
    fn tick(&self) -> bool {
        let (members, snapshot, playing, forwarders, links) = {
            let mut state = self.state();
            let empty = state.participants.is_empty() && state.links.is_empty();
            if state.destroyed || (empty && state.announcements.is_empty()) {
                state.scheduled = false;
                return false;
            }
            let recorded = matches!(state.recording, Recording::Active(_));
            let snapshot = Snapshot {
                mixing: state.settings.mixing,
                talk: state.settings.talk,
                talk_events: state.settings.audiolevel_event,
                recorded,
                tracks: recorded && state.settings.record_participants,
                muted: state.muted,
            };
            let playing = state.announcements.clone();
            let forwarders = state.forwarders.clone();
            let links = state.links.clone();
            let mut members = state.participants.clone();
            drop(state);
            members.extend(links.iter().map(|l| l.participant.clone()));
            (members, snapshot, playing, forwarders, links)
        };
        let mut notices = Notices::new();
        self.receive_plain_rtp(&members, &mut notices);
        let timed_out = self.receive_links(&links, &mut notices);
        let announced = self.announcement_frames(&playing, &members, &mut notices);
        let sources: Vec<&[i16]> = announced.frames.iter().map(|f| &f[..]).collect();
        let sinks: Vec<&dyn ForwardSink> = forwarders.iter().map(|f| &**f as _).collect();
        let (full_mix, voices) = self.mix(&members, &snapshot, (&sources, &sinks), &mut notices);
        // An empty room ticked for an announcement is not recorded (it records while occupied).
        if !members.is_empty() {
            if let Recording::Active(recording) = &mut self.state().recording {
                recording.write_tick(full_mix, voices);
            }
        }
        self.finish_announcements(&announced.ended, &mut notices);
        for id in timed_out {
            self.remove_link(&id, Removal::Timeout, &mut notices);
        }
        self.services.events.post(notices);
        true
    }

    fn abandoned(&self) {
        self.state().scheduled = false;
    }

    fn name(&self) -> String {
        self.id.clone()
    }
}
