//! A session: what the plugin knows of one Janus handle. It holds the handle's participant
//! (kept across leave and join, so outgoing RTP stays continuous) and the media negotiated by
//! the last offer, and turns Janus's media callbacks into participant and room changes.

use crate::host::JanusHandle;
use crate::jsep::Offer;
use crate::participant::{Participant, Transport};
use crate::plugin::Plugin;
use crate::rtp;
use crate::sync::lock;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

pub struct Session {
    pub handle: JanusHandle,
    pub plugin: Arc<Plugin>,
    participant: Mutex<Option<Arc<Participant>>>,
    offer: Mutex<Option<Offer>>,
    destroyed: AtomicBool,
}

impl Session {
    pub fn new(plugin: Arc<Plugin>, handle: JanusHandle) -> Self {
        Session {
            handle,
            plugin,
            participant: Mutex::new(None),
            offer: Mutex::new(None),
            destroyed: AtomicBool::new(false),
        }
    }

    pub fn participant(&self) -> Option<Arc<Participant>> {
        lock(&self.participant).clone()
    }

    pub fn set_participant(&self, participant: Option<Arc<Participant>>) {
        *lock(&self.participant) = participant;
    }

    pub fn offer(&self) -> Option<Offer> {
        *lock(&self.offer)
    }

    pub fn set_offer(&self, offer: Offer) {
        *lock(&self.offer) = Some(offer);
    }

    pub fn is_destroyed(&self) -> bool {
        self.destroyed.load(Relaxed)
    }

    /// One packet from the PeerConnection (a Janus RTP thread): parse and queue, nothing more.
    pub fn incoming_rtp(&self, packet: &[u8], audio_level: Option<u8>) {
        let Some(participant) = self.participant() else {
            return;
        };
        match rtp::parse(packet, None) {
            Ok(p) if !p.payload.is_empty() => {
                participant.receive(p.ssrc, p.sequence, p.payload, audio_level)
            }
            _ => {
                participant.rejected_packets.fetch_add(1, Relaxed);
            }
        }
    }

    /// The PeerConnection is up: the room hears that this participant is set up.
    pub fn setup_media(&self) {
        let Some(participant) = self.participant() else {
            return;
        };
        if !matches!(participant.transport, Transport::WebRtc)
            || participant.setup.swap(true, Relaxed)
        {
            return;
        }
        if let Some(room) = participant.room() {
            let event = json!({"audioroom": "event", "id": room.id, "participants": [participant.describe()]});
            room.notify(Some(&participant), &event).send();
        }
    }

    /// The PeerConnection is gone: like a `leave`.
    pub fn hangup_media(&self) {
        if let Some(participant) = self.participant() {
            participant.setup.store(false, Relaxed);
            crate::participant_requests::leave_room(self, &participant);
        }
    }

    /// The handle is going away. On return nothing will start a callback with this handle.
    pub fn destroy(&self) {
        if self.destroyed.swap(true, Relaxed) {
            return;
        }
        if let Some(participant) = lock(&self.participant).take() {
            participant.detached.store(true, Relaxed);
            participant.setup.store(false, Relaxed);
            crate::participant_requests::leave_room(self, &participant);
        }
    }

    /// What Janus's Admin API shows for this handle (`query_session`).
    pub fn describe(&self) -> Value {
        match self.participant() {
            Some(p) => {
                let mut v = p.describe();
                v["room"] = p
                    .room()
                    .map_or(Value::Null, |r| Value::String(r.id.clone()));
                let stats = lock(&p.queue).stats;
                v["queue"] = json!({
                    "received": stats.received, "late": stats.late, "duplicates": stats.duplicates,
                    "overflow_drops": stats.overflow_drops, "lost": stats.lost, "underruns": stats.underruns,
                });
                v["rejected_packets"] = json!(p.rejected_packets.load(Relaxed));
                v
            }
            None => json!({"room": null}),
        }
    }
}
