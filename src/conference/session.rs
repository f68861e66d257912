//! A session: what the plugin knows of one Janus handle. It holds the handle's participant
//! (kept across leave and join, so outgoing RTP stays continuous), the room it is in, and the
//! media the last SDP offer negotiated, and turns Janus's media callbacks into participant and
//! room changes.

use crate::conference::endpoint::Endpoint;
use crate::conference::events::Notices;
use crate::conference::participant::Participant;
use crate::conference::plugin::Plugin;
use crate::conference::room::Room;
use crate::locks::OrderedMutex;
use crate::media::audio_codec::AudioCodec;
use crate::media::rtp;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// What the handle's last SDP offer negotiated for audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// Opus, or G.711 for a peer that offered no Opus or asked for it (`codec` on `join`).
    pub codec: AudioCodec,
    pub payload_type: u8,
    /// RFC 6464 extension id, when offered.
    pub audio_level_ext: Option<u8>,
    /// `useinbandfec=1` was offered: the peer decodes our FEC, and sends its own.
    pub fec: bool,
}

#[derive(Default)]
struct SessionState {
    participant: Option<Arc<Participant>>,
    /// The room the participant was last put in; it may have been kicked or the room
    /// destroyed since, which [`Session::joined`] checks.
    room: Option<Arc<Room>>,
    negotiated: Option<NegotiatedMedia>,
}

pub struct Session {
    /// Borrowed: Janus's own session keeps the handle alive as long as this session.
    endpoint: Box<dyn Endpoint>,
    pub plugin: Arc<Plugin>,
    state: OrderedMutex<SessionState>,
    destroyed: AtomicBool,
}

impl Session {
    pub fn new(plugin: Arc<Plugin>, endpoint: Box<dyn Endpoint>) -> Self {
        Session {
            endpoint,
            plugin,
            state: OrderedMutex::leaf_default("session"),
            destroyed: AtomicBool::new(false),
        }
    }

    pub fn endpoint(&self) -> &dyn Endpoint {
        &*self.endpoint
    }

    pub fn participant(&self) -> Option<Arc<Participant>> {
        self.state.lock().participant.clone()
    }

    pub fn negotiated(&self) -> Option<NegotiatedMedia> {
        self.state.lock().negotiated
    }

    pub fn set_negotiated(&self, media: NegotiatedMedia) {
        self.state.lock().negotiated = Some(media);
    }

    /// The participant and its room, when it is in one (not after `leave`, a kick or the
    /// room's destruction).
    pub fn joined(&self) -> Option<(Arc<Participant>, Arc<Room>)> {
        let (participant, room) = {
            let state = self.state.lock();
            (state.participant.clone()?, state.room.clone()?)
        };
        room.contains(&participant).then_some((participant, room))
    }

    /// Records that the participant is now in `room`.
    pub fn entered(&self, participant: &Arc<Participant>, room: &Arc<Room>) {
        let mut state = self.state.lock();
        state.participant = Some(participant.clone());
        state.room = Some(room.clone());
    }

    pub fn is_destroyed(&self) -> bool {
        self.destroyed.load(Relaxed)
    }

    /// Takes the participant out of its room, telling the others and Janus's event handlers
    /// (`leave`, hang-up, session end); returns who left and from where. A plain-RTP
    /// participant is dropped with its socket.
    pub fn leave(&self) -> Option<(Arc<Participant>, Arc<Room>)> {
        let (participant, room) = self.joined()?;
        let mut notices = Notices::new();
        if room.remove(&participant, &mut notices) {
            let event = json!({"event": "left", "id": room.id, "userid": participant.user_id()});
            notices.tell_handlers(Some(&participant), event);
        }
        self.plugin.services.events.send(notices);
        let plain_rtp = participant.is_plain_rtp();
        {
            let mut state = self.state.lock();
            state.room = None;
            if plain_rtp {
                state.participant = None;
            }
        }
        if plain_rtp {
            participant.close_media();
        }
        Some((participant, room))
    }

    /// One packet from the PeerConnection (a Janus RTP thread): parse and queue, nothing more.
    /// Anything but the negotiated codec's payload type (DTMF events, comfort noise, garbage)
    /// is dropped and counted.
    pub fn incoming_rtp(&self, packet: &[u8], audio_level: Option<u8>) {
        let Some(participant) = self.participant() else {
            return;
        };
        match rtp::parse(packet, None) {
            Ok(p) if p.payload_type == participant.payload_type() && !p.payload.is_empty() => {
                participant.receive(p.header(), p.payload, audio_level)
            }
            _ => participant.count_rejected(1, 0),
        }
    }

    /// The PeerConnection is up: the room hears that this participant is set up.
    pub fn setup_media(&self) {
        let Some(participant) = self.participant() else {
            return;
        };
        if participant.is_plain_rtp() || participant.set_setup(true) {
            return;
        }
        if let Some((_, room)) = self.joined() {
            let mut notices = Notices::new();
            let event = json!({"audioroom": "event", "id": room.id, "participants": [participant.describe()]});
            room.tell_all(Some(&participant), &event, &mut notices);
            self.plugin.services.events.send(notices);
        }
    }

    /// The PeerConnection is gone: like a `leave`.
    pub fn hangup_media(&self) {
        if let Some(participant) = self.participant() {
            participant.set_setup(false);
            self.leave();
        }
    }

    /// The handle is going away. On return nothing will start a callback with this handle.
    pub fn destroy(&self) {
        if self.destroyed.swap(true, Relaxed) {
            return;
        }
        if let Some(participant) = self.participant() {
            participant.detach();
        }
        self.leave();
        let participant = self.state.lock().participant.take();
        drop(participant);
    }

    /// What Janus's Admin API shows for this handle (`query_session`).
    pub fn describe(&self) -> Value {
        let Some(participant) = self.participant() else {
            return json!({"room": null});
        };
        let mut v = participant.describe();
        v["room"] = self
            .joined()
            .map_or(Value::Null, |(_, room)| Value::String(room.id.clone()));
        if let (Some(v), Value::Object(reception)) =
            (v.as_object_mut(), participant.describe_reception())
        {
            v.extend(reception);
        }
        v
    }
}
