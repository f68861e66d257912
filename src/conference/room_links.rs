//! A room's links to other servers (`link`, `unlink`; docs/API.md section 2.20), kept in the
//! room's state apart from its participants: they are mixed with them every tick, but counted,
//! listed, kicked, evented and recorded as nobody. The tick reads their sockets, watches their
//! health and removes those silent for their timeout.

use crate::conference::events::Notices;
use crate::conference::link::{Health, Link, LinkRequest};
use crate::conference::participant::Transport;
use crate::conference::room::{Recording, Room, RoomState};
use crate::media::clock;
use crate::media::plain_rtp::MAX_DATAGRAMS_PER_TICK;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::Arc;

/// Links one room may have (an origin with this many edges, or a relay in a chain).
pub const MAX_LINKS: usize = 64;

/// Why `add_link` refused.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkError {
    Destroyed,
    TooMany,
    /// A link of this `link_id` exists.
    IdTaken,
    /// The room already has its one upstream link.
    UpstreamTaken(String),
    /// Its socket or codecs could not be made.
    Failed(String),
}

/// Why a link went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// `unlink`.
    Unlinked,
    /// Nothing came for its timeout.
    Timeout,
}

impl Removal {
    fn name(self) -> &'static str {
        match self {
            Removal::Unlinked => "unlinked",
            Removal::Timeout => "timeout",
        }
    }
}

impl Room {
    /// Opens a link and adds it; the room starts recording and mixing if it was not.
    pub fn add_link(
        self: &Arc<Self>,
        request: LinkRequest,
        local: (IpAddr, (u16, u16)),
        notices: &mut Notices,
    ) -> Result<Arc<Link>, LinkError> {
        self.check_new_link(&self.state(), &request.id, request.upstream)?;
        // The socket is opened without the room's lock, and the checks made again under it.
        let user_id = rand::random::<u32>() as u64 + 1;
        let link = Link::open(request, local, user_id, self.sampling_rate, clock::now_us())
            .map_err(LinkError::Failed)?;
        let link = Arc::new(link);
        let mut state = self.state();
        self.check_new_link(&state, &link.id, link.upstream)?;
        state.links.push(link.clone());
        if matches!(state.recording, Recording::Waiting) {
            state.recording = Recording::Active(self.start_recording(&state, notices));
        }
        let schedule = self.mark_scheduled(&mut state);
        drop(state);
        if schedule {
            self.services.mixers.schedule(self.clone());
        }
        Ok(link)
    }

    fn check_new_link(&self, state: &RoomState, id: &str, upstream: bool) -> Result<(), LinkError> {
        if state.destroyed {
            return Err(LinkError::Destroyed);
        }
        if state.links.iter().any(|l| l.id == id) {
            return Err(LinkError::IdTaken);
        }
        if state.links.len() >= MAX_LINKS {
            return Err(LinkError::TooMany);
        }
        if let Some(up) = state.links.iter().find(|l| l.upstream).filter(|_| upstream) {
            return Err(LinkError::UpstreamTaken(up.id.clone()));
        }
        Ok(())
    }

    pub fn find_link(&self, id: &str) -> Option<Arc<Link>> {
        self.state().links.iter().find(|l| l.id == id).cloned()
    }

    pub fn links(&self) -> Vec<Arc<Link>> {
        self.state().links.clone()
    }

    /// Takes a link out and closes its socket; everyone hears why. False when there is none of
    /// that id.
    pub fn remove_link(&self, id: &str, why: Removal, notices: &mut Notices) -> bool {
        let mut state = self.state();
        let Some(at) = state.links.iter().position(|l| l.id == id) else {
            return false;
        };
        let link = state.links.remove(at);
        let event = json!({"audioroom": "event", "id": self.id, "link_id": id, "link": "removed", "reason": why.name()});
        notices.tell_all(&state.participants, None, &event);
        drop(state);
        link.participant.close_media();
        notices.tell_handlers(
            None,
            json!({"event": "link", "id": self.id, "link_id": id, "link": "removed", "reason": why.name()}),
        );
        true
    }

    /// Reads the links' sockets (bounded, as for plain-RTP participants) and reports changes
    /// of their health; returns the ids of those silent for their timeout, for the tick to
    /// remove once it holds no lock.
    pub(crate) fn receive_links(&self, links: &[Arc<Link>], notices: &mut Notices) -> Vec<String> {
        let now = clock::now_us();
        let mut timed_out = Vec::new();
        for link in links {
            let p = &link.participant;
            let Transport::PlainRtp(rtp) = p.transport() else {
                continue;
            };
            let drained = rtp.drain(MAX_DATAGRAMS_PER_TICK, |packet, arrival| {
                p.receive_at(packet.header(), packet.payload, packet.audio_level, arrival)
            });
            if drained.rejected + drained.foreign > 0 {
                p.count_rejected(drained.rejected as u64, drained.foreign as u64);
            }
            if drained.valid > 0 {
                let first = !link.is_up();
                link.heard(now);
                if !p.set_setup(true) && first {
                    self.tell_link(link, "up", notices);
                }
            }
            match link.check(now) {
                Health::Fine => {}
                Health::Stalled => self.tell_link(link, "stalled", notices),
                Health::Resumed => self.tell_link(link, "resumed", notices),
                Health::TimedOut => timed_out.push(link.id.clone()),
            }
        }
        timed_out
    }

    fn tell_link(&self, link: &Link, what: &str, notices: &mut Notices) {
        let event = json!({"audioroom": "event", "id": self.id, "link_id": link.id, "link": what});
        notices.tell_all(&self.state().participants, None, &event);
        notices.tell_handlers(
            None,
            json!({"event": "link", "id": self.id, "link_id": link.id, "link": what}),
        );
    }

    /// The links as `listparticipants` shows them, after the participants.
    pub fn describe_links(&self) -> Vec<Value> {
        self.links().iter().map(|l| l.describe()).collect()
    }
}
