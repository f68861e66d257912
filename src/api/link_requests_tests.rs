//! Links between two running plugins in one process (each with its mixer and events threads,
//! stand-ins for Janus's handles), talking over real UDP sockets on 127.0.0.1: what a phone in
//! each room hears, what the rooms list and tell, and every error the requests can give. Links
//! between real Janus servers are tested end to end (test/e2e/test_links.py).

use super::test_plugin::TestPlugin;
use crate::media::codec::test_signals::{goertzel_db, tone};
use crate::media::codec::{Decoder, Encoder, EncoderProfile, MAX_OPUS_PACKET};
use crate::media::rtp::{self, OutboundStream, RTP_HEADER_LEN};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// One plugin, as one Janus server would run it, with a handle of its own for requests.
struct Server(TestPlugin);

impl std::ops::Deref for Server {
    type Target = TestPlugin;
    fn deref(&self) -> &TestPlugin {
        &self.0
    }
}

impl Server {
    fn new(name: &str) -> Server {
        let mut plugin =
            TestPlugin::start(&format!("links-{name}"), |c| c.local_ip = Some(LOCALHOST));
        plugin.handle();
        Server(plugin)
    }

    fn ask(&self, body: Value) -> Value {
        self.0.ask(0, body)
    }

    fn create(&self, room: &str) {
        let created =
            self.ask(json!({"request": "create", "id": room, "allow_rtp_participants": true}));
        assert_eq!(created["audioroom"], "created", "{created}");
    }

    /// A phone in `room`: a plain-RTP participant on a socket of the test's.
    fn phone(&mut self, room: &str) -> (Phone, usize) {
        let at = self.0.handle();
        let socket = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        let port = socket.local_addr().unwrap().port();
        let joined = self.0.ask(
            at,
            json!({"request": "join", "id": room, "rtp": {"ip": "127.0.0.1", "port": port, "payload_type": 100}}),
        );
        assert_eq!(joined["audioroom"], "joined", "{joined}");
        let to = SocketAddr::new(LOCALHOST, joined["rtp"]["port"].as_u64().unwrap() as u16);
        (Phone::new(socket, to), at)
    }
}

/// A plain-RTP phone: sends a tone (or silence) every 20 ms, keeps what it hears decoded.
struct Phone {
    socket: UdpSocket,
    to: SocketAddr,
    encoder: Encoder,
    decoder: Decoder,
    stream: OutboundStream,
    sent: usize,
    heard: Vec<i16>,
}

impl Phone {
    fn new(socket: UdpSocket, to: SocketAddr) -> Phone {
        socket.set_nonblocking(true).unwrap();
        Phone {
            socket,
            to,
            encoder: Encoder::new(48000, EncoderProfile::default()).unwrap(),
            decoder: Decoder::new(48000).unwrap(),
            stream: OutboundStream::new(),
            sent: 0,
            heard: Vec::new(),
        }
    }

    fn step(&mut self, freq: Option<f64>) {
        let amplitude = if freq.is_some() { 8000.0 } else { 0.0 };
        let pcm = tone(
            48000,
            freq.unwrap_or(1000.0),
            amplitude,
            self.sent * 960,
            960,
        );
        self.sent += 1;
        let mut packet = [0u8; RTP_HEADER_LEN + MAX_OPUS_PACKET];
        self.stream.next_header(&mut packet, 100);
        let len = self
            .encoder
            .encode(&pcm, &mut packet[RTP_HEADER_LEN..])
            .unwrap();
        let _ = self
            .socket
            .send_to(&packet[..RTP_HEADER_LEN + len], self.to);
        let mut buf = [0u8; 2048];
        let mut pcm = vec![0i16; 5760];
        while let Ok(n) = self.socket.recv(&mut buf) {
            if let Ok(p) = rtp::parse(&buf[..n], None)
                && let Ok(samples) = self.decoder.decode(p.payload, &mut pcm)
            {
                self.heard.extend_from_slice(&pcm[..samples]);
            }
        }
    }

    /// How loud `freq` was in the last half second heard (dBFS).
    fn recent_db(&self, freq: f64) -> f64 {
        let start = self.heard.len().saturating_sub(24_000);
        goertzel_db(&self.heard[start..], 48000, freq)
    }
}

/// Both phones for `seconds`, one packet each per 20 ms.
fn talk(phones: &mut [(&mut Phone, Option<f64>)], seconds: f64) {
    let start = Instant::now();
    for n in 0..(seconds * 50.0) as u32 {
        for (phone, freq) in phones.iter_mut() {
            phone.step(*freq);
        }
        let next = start + Duration::from_millis(20 * (n as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// The three steps `tester.py link` takes: the origin opens a link that latches, the edge
/// points its upstream link at it, the origin is pointed back.
fn link(origin: &mut Server, edge: &mut Server, room: &str, link_id: &str) {
    let a = origin.ask(json!({"request": "link", "id": room, "link_id": link_id, "peer": "edge"}));
    assert_eq!(a["audioroom"], "linked", "{a}");
    let b = edge.ask(
        json!({"request": "link", "id": room, "link_id": link_id, "upstream": true,
        "peer": "origin", "rtp": {"ip": a["rtp"]["ip"], "port": a["rtp"]["port"]}}),
    );
    assert_eq!(b["audioroom"], "linked", "{b}");
    let again = origin.ask(json!({"request": "link", "id": room, "link_id": link_id,
        "rtp": {"ip": b["rtp"]["ip"], "port": b["rtp"]["port"]}}));
    assert_eq!(again["rtp"], a["rtp"], "the same link, now pointed");
}

const LOUD: f64 = -30.0;
const ABSENT: f64 = -60.0;

#[test]
fn phones_in_linked_rooms_hear_each_other_and_never_themselves() {
    let (mut origin, mut edge) = (Server::new("o1"), Server::new("e1"));
    origin.create("town");
    edge.create("town");
    link(&mut origin, &mut edge, "town", "o-e");
    let (mut a, _) = origin.phone("town");
    let (mut b, _) = edge.phone("town");

    talk(&mut [(&mut a, Some(440.0)), (&mut b, None)], 1.5);
    assert!(
        b.recent_db(440.0) > LOUD,
        "the edge hears the origin: {}",
        b.recent_db(440.0)
    );
    assert!(
        a.recent_db(440.0) < ABSENT,
        "no echo back: {}",
        a.recent_db(440.0)
    );

    talk(&mut [(&mut a, None), (&mut b, Some(880.0))], 1.5);
    assert!(
        a.recent_db(880.0) > LOUD,
        "the origin hears the edge: {}",
        a.recent_db(880.0)
    );
    assert!(
        b.recent_db(880.0) < ABSENT,
        "no echo back: {}",
        b.recent_db(880.0)
    );
    assert!(
        b.recent_db(440.0) < ABSENT,
        "the origin's tone ended everywhere"
    );

    // A link is listed, but counted as nobody.
    let listed = origin.ask(json!({"request": "listparticipants", "id": "town"}));
    let participants = listed["participants"].as_array().unwrap();
    let links: Vec<&Value> = participants.iter().filter(|p| p["link"] == true).collect();
    assert_eq!(links.len(), 1, "{listed}");
    assert_eq!(links[0]["link_id"], "o-e");
    assert_eq!(links[0]["state"], "up");
    assert_eq!(links[0]["peer"], "edge");
    let rooms = origin.ask(json!({"request": "list"}));
    assert_eq!(rooms["list"][0]["num_participants"], 1, "{rooms}");
}

#[test]
fn a_chain_of_three_carries_every_voice_to_the_far_end_without_echo() {
    let (mut a_server, mut b_server, mut c_server) =
        (Server::new("a3"), Server::new("b3"), Server::new("c3"));
    for s in [&mut a_server, &mut b_server, &mut c_server] {
        s.create("chain");
    }
    link(&mut a_server, &mut b_server, "chain", "a-b");
    link(&mut b_server, &mut c_server, "chain", "b-c");
    let (mut a, _) = a_server.phone("chain");
    let (mut c, _) = c_server.phone("chain");
    let (mut b, _) = b_server.phone("chain");

    talk(
        &mut [
            (&mut a, Some(440.0)),
            (&mut b, None),
            (&mut c, Some(1200.0)),
        ],
        1.5,
    );
    for (name, phone) in [("a", &a), ("b", &b), ("c", &c)] {
        let (hears_a, hears_c) = (phone.recent_db(440.0), phone.recent_db(1200.0));
        match name {
            "a" => assert!(hears_c > LOUD && hears_a < ABSENT, "a: {hears_a} {hears_c}"),
            "c" => assert!(hears_a > LOUD && hears_c < ABSENT, "c: {hears_a} {hears_c}"),
            _ => assert!(hears_a > LOUD && hears_c > LOUD, "b: {hears_a} {hears_c}"),
        }
    }
}

#[test]
fn a_star_of_two_edges_carries_each_edge_to_the_other_through_the_origin() {
    let (mut origin, mut left, mut right) =
        (Server::new("os"), Server::new("ls"), Server::new("rs"));
    for s in [&mut origin, &mut left, &mut right] {
        s.create("star");
    }
    link(&mut origin, &mut left, "star", "o-l");
    link(&mut origin, &mut right, "star", "o-r");
    let (mut o, _) = origin.phone("star");
    let (mut l, _) = left.phone("star");
    let (mut r, _) = right.phone("star");

    talk(
        &mut [
            (&mut o, None),
            (&mut l, Some(440.0)),
            (&mut r, Some(1200.0)),
        ],
        1.5,
    );
    let (o440, o1200) = (o.recent_db(440.0), o.recent_db(1200.0));
    assert!(
        o440 > LOUD && o1200 > LOUD,
        "the origin hears both edges: {o440} {o1200}"
    );
    let (l440, l1200) = (l.recent_db(440.0), l.recent_db(1200.0));
    assert!(l1200 > LOUD && l440 < ABSENT, "left: {l440} {l1200}");
    let (r440, r1200) = (r.recent_db(440.0), r.recent_db(1200.0));
    assert!(r440 > LOUD && r1200 < ABSENT, "right: {r440} {r1200}");
}

#[test]
fn a_link_whose_far_side_goes_is_reported_stalled_then_removed() {
    let (mut origin, edge) = (Server::new("o2"), Server::new("e2"));
    origin.create("r");
    edge.create("r");
    let a = origin.ask(json!({"request": "link", "id": "r", "link_id": "x", "timeout": 3}));
    let b = edge.ask(
        json!({"request": "link", "id": "r", "link_id": "x", "upstream": true,
        "rtp": {"ip": a["rtp"]["ip"], "port": a["rtp"]["port"]}}),
    );
    origin.ask(json!({"request": "link", "id": "r", "link_id": "x",
        "rtp": {"ip": b["rtp"]["ip"], "port": b["rtp"]["port"]}}));
    let (_phone, at) = origin.phone("r");
    wait(2.0, || links_of(&origin, "r")[0]["state"] == "up");

    let gone = edge.ask(json!({"request": "unlink", "id": "r", "link_id": "x"}));
    assert_eq!(
        gone,
        json!({"audioroom": "unlinked", "id": "r", "link_id": "x"})
    );
    let told = |s: &Server, what: &str| {
        s.endpoint(at)
            .events()
            .iter()
            .any(|e| e["link_id"] == "x" && e["link"] == what)
    };
    wait(2.5, || told(&origin, "stalled"));
    assert_eq!(links_of(&origin, "r")[0]["state"], "stalled");
    wait(4.0, || told(&origin, "removed"));
    assert!(links_of(&origin, "r").is_empty());
    let removed = origin
        .endpoint(at)
        .events()
        .into_iter()
        .find(|e| e["link"] == "removed");
    assert_eq!(
        removed.unwrap(),
        json!({"audioroom": "event", "id": "r", "link_id": "x", "link": "removed", "reason": "timeout"})
    );
}

fn links_of(server: &Server, room: &str) -> Vec<Value> {
    let listed = server.ask(json!({"request": "listparticipants", "id": room}));
    listed["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["link"] == true)
        .cloned()
        .collect()
}

fn wait(seconds: f64, mut condition: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    while !condition() {
        assert!(Instant::now() < until, "waited {seconds} s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn error(code: u16, reason: &str) -> Value {
    json!({"audioroom": "event", "error_code": code, "error": reason})
}

#[test]
fn link_requests_refuse_bad_input_with_the_element_named() {
    let s = Server::new("errors");
    s.create("r");
    let created = s.ask(json!({"request": "create", "id": "locked", "secret": "s"}));
    assert_eq!(created["audioroom"], "created");
    let cases = [
        (
            json!({"request": "link", "id": "nope"}),
            error(485, "No such room (nope)"),
        ),
        (
            json!({"request": "link", "id": "locked"}),
            error(489, "Unauthorized (wrong secret)"),
        ),
        (
            json!({"request": "link", "id": "r", "link_id": "a/b"}),
            error(
                484,
                "Invalid element (link_id should be 1 to 64 letters, digits, '.', '_', ':' or '-')",
            ),
        ),
        (
            json!({"request": "link", "id": "r", "rtp": {"ip": "127.0.0.1"}}),
            error(483, "Missing element (rtp.port)"),
        ),
        (
            json!({"request": "link", "id": "r", "rtp": {"ip": "here", "port": 5000}}),
            error(
                484,
                "Invalid element (rtp.ip should be an IPv4 or IPv6 address)",
            ),
        ),
        (
            json!({"request": "link", "id": "r", "prebuffering": 9}),
            error(
                484,
                "Invalid element (prebuffering should be an integer from 1 to 5)",
            ),
        ),
        (
            json!({"request": "link", "id": "r", "upstream": "yes"}),
            error(484, "Invalid element (upstream should be a boolean)"),
        ),
        (
            json!({"request": "unlink", "id": "r", "link_id": "none"}),
            error(497, "No such link (none) in room r"),
        ),
        (
            json!({"request": "unlink", "id": "r"}),
            error(483, "Missing element (link_id)"),
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(s.ask(request.clone()), expected, "{request}");
    }

    let up = s.ask(json!({"request": "link", "id": "r", "link_id": "up", "upstream": true}));
    assert_eq!(up["audioroom"], "linked");
    assert_eq!(
        s.ask(json!({"request": "link", "id": "r", "link_id": "up2", "upstream": true})),
        error(
            498,
            "Room r already has an upstream link (up): a room joins one tree"
        )
    );
    assert_eq!(
        s.ask(json!({"request": "link", "id": "r", "link_id": "up"})),
        error(
            490,
            "Link up already exists in room r (give rtp to point it)"
        )
    );
    let down = s.ask(json!({"request": "link", "id": "r"}));
    assert_eq!(
        down["link_id"].as_str().unwrap().len(),
        16,
        "a random id: {down}"
    );
    assert_eq!(down["rtp"]["payload_type"], 100);
    let ok = s.ask(json!({"request": "link", "id": "locked", "secret": "s", "link_id": "k"}));
    assert_eq!(ok["audioroom"], "linked");
}
