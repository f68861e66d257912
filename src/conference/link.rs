//! A link: this room's end of a plain-RTP connection to the same-named room on another Janus
//! server (docs/API.md section 2.20), so that one room spans several servers. It is owned by
//! the room, not by a Janus handle, and mixes like a participant that always speaks: what it
//! brings is the far room's mix (which already chose its speakers), and what it is sent is this
//! room's mix minus that, so nobody hears themselves back across a hop.
//!
//! Its health is kept here: when its last packet came, and whether it was reported stalled.
//! The room's tick reads and changes it (`conference::room_links`).

use crate::conference::endpoint::Endpoint;
use crate::conference::participant::{Participant, Settings, Transport};
use crate::media::audio_codec::AudioCodec;
use crate::media::codec::EncoderProfile;
use crate::media::jitter::Mode;
use crate::media::plain_rtp::{PlainRtpLink, PlainRtpRequest, Sources};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// A link silent this long is reported `stalled` (a live far side sends every 20 ms).
pub const STALL_US: u64 = 1_000_000;

/// What a link sends: Opus at 64 kbit/s, so that a voice that crosses several hops (decoded
/// and encoded again at each) keeps its quality; twice what a browser usually gets.
pub const LINK_BITRATE: u32 = 64_000;

/// What `link` asks for (docs/API.md section 2.20).
pub struct LinkRequest {
    pub id: String,
    /// The far side's port; `None` until it is known (the link then latches onto the first
    /// sender and is sent nothing until it is given one).
    pub remote: Option<SocketAddr>,
    pub payload_type: u8,
    pub upstream: bool,
    pub peer: Option<String>,
    pub timeout_us: u64,
    pub prebuffering: u32,
}

/// A link has no Janus handle: nothing it would be told goes anywhere.
struct NoHandle;

impl Endpoint for NoHandle {
    fn push_event(&self, _event: &Value) {}
    fn relay_rtp(&self, _packet: &[u8]) {}
    fn close_pc(&self) {}
    fn notify_handlers(&self, _event: &Value) {}
    fn retain(&self) -> Arc<dyn Endpoint> {
        Arc::new(NoHandle)
    }
}

pub struct Link {
    /// Its name in the room (`link_id`).
    pub id: String,
    /// The mixer's view of it: a plain-RTP member with no Janus handle.
    pub participant: Arc<Participant>,
    /// This side joined toward the origin; a room has at most one (no loops in a tree).
    pub upstream: bool,
    /// The far server, as the operator named it (free text).
    pub peer: Option<String>,
    /// Silence for this long removes the link.
    pub timeout_us: u64,
    /// The jitter queue's depth, in packets.
    pub prebuffering: u32,
    /// When it was made (on `media::clock`).
    pub created_us: u64,
    /// When its last valid packet was read; 0 before the first.
    last_packet_us: AtomicU64,
    stalled: AtomicBool,
}

/// What a tick found of a link's health.
#[derive(Debug, PartialEq, Eq)]
pub enum Health {
    Fine,
    /// Silent for `STALL_US`: reported once.
    Stalled,
    /// Packets again after a stall.
    Resumed,
    /// Silent for its timeout: to be removed.
    TimedOut,
}

impl Link {
    /// Opens the link's socket on `local_ip` (a port of `ports`) and makes its member: a room
    /// moderator (a muted room mutes each server's own participants, not what a link brings)
    /// whose jitter queue holds `prebuffering` packets.
    pub fn open(
        request: LinkRequest,
        (local_ip, ports): (IpAddr, (u16, u16)),
        user_id: u64,
        rate: u32,
        now_us: u64,
    ) -> Result<Link, String> {
        let rtp = PlainRtpRequest {
            remote: request.remote,
            codec: AudioCodec::Opus,
            payload_type: request.payload_type,
            audio_level_ext: None,
            fec: false,
            sources: match request.remote {
                Some(remote) => Sources::Declared(remote.ip()),
                None => Sources::Latch,
            },
        };
        let socket = PlainRtpLink::bind(local_ip, ports, &rtp)
            .map_err(|e| format!("Cannot open an RTP port: {e}"))?;
        let settings = Settings {
            display: Some(format!("link {}", request.id)),
            muted: false,
            volume_percent: 100,
            playout: Mode::Fixed(request.prebuffering),
            profile: EncoderProfile {
                bitrate: Some(LINK_BITRATE),
                ..EncoderProfile::default()
            },
        };
        let participant = Participant::new(
            Arc::new(NoHandle),
            Transport::PlainRtp(socket),
            user_id,
            &settings,
            rate,
            (AudioCodec::Opus, request.payload_type),
        )
        .map_err(|e| format!("Cannot make the link's codecs: {e}"))?;
        participant.set_moderator(true);
        participant.mark_link();
        Ok(Link::new(
            request.id,
            Arc::new(participant),
            request.upstream,
            request.peer,
            (request.timeout_us, request.prebuffering),
            now_us,
        ))
    }

    /// Sends to the far side's port from now on, and hears only its address (also when this
    /// end latched onto an earlier sender: the far side may have come back on another port).
    pub fn set_remote(&self, remote: SocketAddr) {
        if let Transport::PlainRtp(rtp) = self.participant.transport() {
            rtp.set_remote(remote);
            rtp.hear_only(remote.ip());
        }
    }

    pub fn new(
        id: String,
        participant: Arc<Participant>,
        upstream: bool,
        peer: Option<String>,
        (timeout_us, prebuffering): (u64, u32),
        created_us: u64,
    ) -> Self {
        Link {
            id,
            participant,
            upstream,
            peer,
            timeout_us,
            prebuffering,
            created_us,
            last_packet_us: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
        }
    }

    /// Valid packets were read at `now_us`.
    pub fn heard(&self, now_us: u64) {
        self.last_packet_us.store(now_us.max(1), Relaxed);
    }

    /// Whether a packet ever came.
    pub fn is_up(&self) -> bool {
        self.last_packet_us.load(Relaxed) != 0
    }

    /// Its health at `now_us`, each change reported once. A link that never heard anything
    /// counts from its making: the far side has its timeout to answer.
    pub fn check(&self, now_us: u64) -> Health {
        let last = self.last_packet_us.load(Relaxed);
        let silent_us = now_us.saturating_sub(if last == 0 { self.created_us } else { last });
        if silent_us >= self.timeout_us {
            return Health::TimedOut;
        }
        let stalled = last != 0 && silent_us >= STALL_US;
        match (self.stalled.swap(stalled, Relaxed), stalled) {
            (false, true) => Health::Stalled,
            (true, false) => Health::Resumed,
            _ => Health::Fine,
        }
    }

    /// `waiting` (nothing heard yet), `up`, or `stalled`.
    pub fn state(&self) -> &'static str {
        if !self.is_up() {
            "waiting"
        } else if self.stalled.load(Relaxed) {
            "stalled"
        } else {
            "up"
        }
    }

    /// As `listparticipants` shows it, among the participants.
    pub fn describe(&self) -> Value {
        let p = &self.participant;
        let mut v = json!({
            "userid": p.user_id(),
            "link": true,
            "link_id": self.id,
            "upstream": self.upstream,
            "setup": self.is_up(),
            "state": self.state(),
            "muted": false,
            "talking": false,
        });
        if let Some(peer) = &self.peer {
            v["peer"] = json!(peer);
        }
        if let Transport::PlainRtp(rtp) = p.transport() {
            v["rtp"] = json!({
                "local": rtp.local.to_string(),
                "remote": rtp.remote().map(|r| r.to_string()),
                "payload_type": rtp.payload_type,
            });
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn link(created_us: u64) -> Link {
        let request = LinkRequest {
            id: "l".into(),
            remote: None,
            payload_type: 100,
            upstream: false,
            peer: None,
            timeout_us: 10_000_000,
            prebuffering: 2,
        };
        let local = (IpAddr::V4(Ipv4Addr::LOCALHOST), (20000, 60000));
        Link::open(request, local, 7, 48_000, created_us).unwrap()
    }

    #[test]
    fn a_silent_link_is_stalled_once_resumed_once_and_removed_after_its_timeout() {
        let l = link(1_000);
        assert_eq!(l.check(5_000_000), Health::Fine, "waiting is not stalled");
        assert_eq!(l.state(), "waiting");
        l.heard(5_000_000);
        assert_eq!(l.state(), "up");
        assert_eq!(l.check(5_500_000), Health::Fine);
        assert_eq!(l.check(6_000_000), Health::Stalled);
        assert_eq!(l.check(6_020_000), Health::Fine, "reported once");
        assert_eq!(l.state(), "stalled");
        l.heard(6_040_000);
        assert_eq!(l.check(6_040_000), Health::Resumed);
        assert_eq!(l.check(6_060_000), Health::Fine);
        assert_eq!(l.check(16_040_000), Health::TimedOut);
    }

    #[test]
    fn a_link_is_an_always_mixed_moderator_with_a_short_fixed_queue_and_a_rich_encode() {
        let l = link(0);
        let p = &l.participant;
        assert!(p.is_link() && p.is_moderator());
        assert_eq!(p.settings().playout, Mode::Fixed(2));
        assert_eq!(p.settings().profile.bitrate, Some(LINK_BITRATE));
        assert!(
            !p.receives_mix(),
            "nothing is sent before the far side's port is known"
        );
        l.set_remote("127.0.0.1:9".parse().unwrap());
        assert!(p.receives_mix());
        let v = l.describe();
        assert_eq!(v["link"], true);
        assert_eq!(v["state"], "waiting");
        assert_eq!(v["rtp"]["remote"], "127.0.0.1:9");
    }

    #[test]
    fn a_link_pointed_again_hears_its_far_side_on_its_new_port_and_no_other_address() {
        use crate::media::rtp;
        use std::net::UdpSocket;
        use std::time::Duration;
        let packet = |sequence: u16| {
            let mut packet = vec![0u8; 12 + 3];
            rtp::write_header(&mut packet, 100, false, sequence, 960 * sequence as u32, 7);
            packet[12..].copy_from_slice(&[0xf8, 0xff, 0xfe]);
            packet
        };
        let l = link(0);
        let Transport::PlainRtp(socket) = l.participant.transport() else {
            unreachable!("a link is plain RTP");
        };
        let drain = || {
            std::thread::sleep(Duration::from_millis(30));
            let d = socket.drain(8, |_, _| ());
            (d.valid, d.foreign)
        };
        let before = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        before.send_to(&packet(1), socket.local).unwrap();
        assert_eq!(drain(), (1, 0), "latched onto the first sender");
        // The far server came back on another port, and the link is pointed at it.
        let after = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        l.set_remote(after.local_addr().unwrap());
        after.send_to(&packet(2), socket.local).unwrap();
        assert_eq!(drain(), (1, 0), "heard on its new port");
        let stranger = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), 0)).unwrap();
        stranger.send_to(&packet(3), socket.local).unwrap();
        assert_eq!(drain(), (0, 1), "another address is not the far side");
    }

    #[test]
    fn a_link_nobody_answers_is_removed_after_its_timeout_from_its_making() {
        let l = link(1_000);
        assert_eq!(l.check(10_000_999), Health::Fine);
        assert_eq!(l.check(10_001_000), Health::TimedOut);
    }
}
