//! Forwarders and announcements against a running plugin (mixer, reader and events threads as
//! in Janus, with stand-ins for Janus's handles): the packets a forwarder's socket receives,
//! the events a room hears, and every error a request can get, code and reason. How it sounds
//! in the real Janus is tested end to end (test/e2e/test_media_in_out.py).

use super::test_plugin::TestPlugin;
use crate::conference::config::Config;
use crate::media::announcement_file::test_files::wav;
use crate::media::codec::test_signals::goertzel_db;
use crate::media::g711::Law;
use crate::media::rtp;
use serde_json::{Value, json};
use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

/// A plugin whose announcements come from its `prompts/` folder.
struct Fixture(TestPlugin);

impl std::ops::Deref for Fixture {
    type Target = TestPlugin;
    fn deref(&self) -> &TestPlugin {
        &self.0
    }
}

impl std::ops::DerefMut for Fixture {
    fn deref_mut(&mut self) -> &mut TestPlugin {
        &mut self.0
    }
}

impl Fixture {
    fn new(name: &str, tune: impl FnOnce(&mut Config)) -> Fixture {
        let plugin = TestPlugin::start(&format!("media-{name}"), |c| {
            c.announcements_path = c.archive_path.with_file_name("prompts");
            tune(c);
        });
        std::fs::create_dir_all(plugin.root.join("prompts")).unwrap();
        Fixture(plugin)
    }

    /// A room with one participant whose media is up (it listens, sends nothing).
    fn occupied_room(&mut self, id: &str, extra: Value) -> usize {
        let at = self.handle();
        let mut create = json!({"request": "create", "id": id});
        create
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        assert_eq!(self.ask(at, create)["audioroom"], "created");
        assert_eq!(
            self.ask(at, json!({"request": "join", "id": id}))["audioroom"],
            "joined"
        );
        self.session(at).setup_media();
        at
    }

    fn events_of(&self, at: usize) -> Vec<Value> {
        self.endpoint(at).events()
    }
}

fn error(code: u16, reason: &str) -> Value {
    json!({"audioroom": "event", "error_code": code, "error": reason})
}

/// RTP packets a socket receives within `seconds`.
fn receive(socket: &UdpSocket, seconds: f64) -> Vec<Vec<u8>> {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut packets = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < until {
        if let Ok(n) = socket.recv(&mut buf) {
            packets.push(buf[..n].to_vec());
        }
    }
    packets
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < until, "waited 5 s for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_forwarder_sends_50_packets_a_second_numbered_continuously_until_stopped() {
    let mut f = Fixture::new("forward", |_| ());
    let at = f.occupied_room("fwd", json!({"secret": "s"}));
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = socket.local_addr().unwrap().port();
    let body = json!({"request": "rtp_forward", "id": "fwd", "secret": "s", "host": "127.0.0.1",
                      "port": port, "codec": "pcmu", "ssrc": 77});
    let reply = f.ask(at, body);
    assert_eq!(reply["audioroom"], "success", "{reply}");
    assert_eq!(
        (reply["host"].as_str(), reply["port"].as_u64()),
        (Some("127.0.0.1"), Some(port as u64))
    );
    let stream_id = reply["stream_id"].as_u64().unwrap();
    let packets = receive(&socket, 1.0);
    assert!(
        (45..=55).contains(&packets.len()),
        "{} packets in a second",
        packets.len()
    );
    let parsed: Vec<_> = packets
        .iter()
        .map(|p| rtp::parse(p, None).unwrap())
        .collect();
    for pair in parsed.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
        assert_eq!(pair[1].timestamp, pair[0].timestamp.wrapping_add(160));
    }
    assert!(
        parsed
            .iter()
            .all(|p| p.payload_type == 0 && p.ssrc == 77 && p.payload.len() == 160)
    );

    let listed = f.ask(
        at,
        json!({"request": "listforwarders", "id": "fwd", "secret": "s"}),
    );
    assert_eq!(listed["audioroom"], "forwarders");
    let entry = &listed["rtp_forwarders"][0];
    assert_eq!(
        (
            entry["stream_id"].as_u64(),
            entry["ip"].as_str(),
            entry["codec"].as_str(),
            entry["ptype"].as_u64(),
            entry["ssrc"].as_u64()
        ),
        (
            Some(stream_id),
            Some("127.0.0.1"),
            Some("pcmu"),
            Some(0),
            Some(77)
        )
    );
    assert!(entry.get("srtp").is_none());
    // Operators see it in `list`; clients do not.
    let admin_list = f.admin(json!({"request": "list"}));
    assert_eq!(
        admin_list["list"][0]["forwarders"][0]["stream_id"].as_u64(),
        Some(stream_id)
    );
    assert!(
        f.ask(at, json!({"request": "list"}))["list"][0]
            .get("forwarders")
            .is_none()
    );

    let stop =
        json!({"request": "stop_rtp_forward", "id": "fwd", "secret": "s", "stream_id": stream_id});
    assert_eq!(
        f.ask(at, stop.clone()),
        json!({"audioroom": "success", "id": "fwd", "stream_id": stream_id})
    );
    receive(&socket, 0.1);
    assert!(receive(&socket, 0.3).is_empty(), "nothing after the stop");
    assert_eq!(
        f.ask(at, stop),
        error(495, &format!("No such forwarder ({stream_id}) in room fwd"))
    );
}

#[test]
fn a_destroyed_room_takes_its_forwarders_along() {
    let mut f = Fixture::new("destroy", |_| ());
    let at = f.occupied_room("gone", json!({}));
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = socket.local_addr().unwrap().port();
    let reply = f.ask(
        at,
        json!({"request": "rtp_forward", "id": "gone", "host": "127.0.0.1", "port": port}),
    );
    assert_eq!(reply["audioroom"], "success");
    assert!(!receive(&socket, 0.3).is_empty());
    assert_eq!(
        f.ask(at, json!({"request": "destroy", "id": "gone"}))["audioroom"],
        "destroyed"
    );
    receive(&socket, 0.1);
    assert!(receive(&socket, 0.3).is_empty());
}

#[test]
fn forwarding_requests_refuse_bad_input_with_the_element_named() {
    let mut f = Fixture::new("forward-errors", |c| {
        c.admin_key = Some("k".into());
        c.lock_rtp_forward = true;
    });
    let at = f.handle();
    assert_eq!(
        f.ask(
            at,
            json!({"request": "create", "id": "r", "secret": "s", "admin_key": "k"})
        )["audioroom"],
        "created"
    );
    let base = json!({"request": "rtp_forward", "id": "r", "secret": "s", "admin_key": "k",
                      "host": "127.0.0.1", "port": 5000});
    let with = |change: Value| {
        let mut body = base.clone();
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let key = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw";
    for (change, code, reason) in [
        (
            json!({"admin_key": null}),
            483,
            "Missing element (admin_key)",
        ),
        (
            json!({"admin_key": "x"}),
            489,
            "Unauthorized (wrong admin_key)",
        ),
        (json!({"host": null}), 483, "Missing element (host)"),
        (
            json!({"port": 0}),
            484,
            "Invalid element (port should be an integer from 1 to 65535)",
        ),
        (json!({"port": null}), 483, "Missing element (port)"),
        (
            json!({"host_family": "ipx"}),
            484,
            "Invalid element (host_family should be ipv4 or ipv6)",
        ),
        (
            json!({"codec": "g729"}),
            484,
            "Invalid element (codec should be opus, pcmu or pcma)",
        ),
        (
            json!({"ptype": 128}),
            484,
            "Invalid element (ptype should be an integer from 0 to 127)",
        ),
        (
            json!({"ssrc": -1}),
            484,
            "Invalid element (ssrc should be an integer from 0 to 4294967295)",
        ),
        (
            json!({"srtp_suite": 40, "srtp_crypto": key}),
            484,
            "Invalid element (srtp_suite should be 32 or 80)",
        ),
        (
            json!({"srtp_suite": 80}),
            483,
            "Missing element (srtp_crypto)",
        ),
        (
            json!({"srtp_crypto": key}),
            483,
            "Missing element (srtp_suite)",
        ),
        (
            json!({"srtp_suite": 32, "srtp_crypto": "c2hvcnQ="}),
            484,
            "Invalid element (srtp_crypto should be the base64 of a 30-byte master key and salt)",
        ),
        (json!({"id": "nope"}), 485, "No such room (nope)"),
        (
            json!({"secret": "wrong"}),
            489,
            "Unauthorized (wrong secret)",
        ),
        (
            json!({"host": "no-such-host.invalid"}),
            484,
            "Invalid element (host should be an address, or a name that resolves)",
        ),
        (
            json!({"host": "127.0.0.1", "host_family": "ipv6"}),
            484,
            "Invalid element (host should be an address, or a name that resolves)",
        ),
    ] {
        assert_eq!(
            f.ask(at, with(change.clone())),
            error(code, reason),
            "{change}"
        );
    }
    assert_eq!(
        f.ask(
            at,
            json!({"request": "listforwarders", "id": "r", "secret": "s"})
        )["rtp_forwarders"],
        json!([])
    );
    // Operators are not asked for the admin key; SRTP is listed.
    let reply = f.admin(with(
        json!({"admin_key": null, "srtp_suite": 80, "srtp_crypto": key}),
    ));
    assert_eq!(reply["audioroom"], "success", "{reply}");
    let listed = f.admin(json!({"request": "listforwarders", "id": "r", "secret": "s"}));
    assert_eq!(
        (
            listed["rtp_forwarders"][0]["srtp"].as_bool(),
            listed["rtp_forwarders"][0]["srtp_suite"].as_u64()
        ),
        (Some(true), Some(80))
    );
    assert_eq!(
        f.ask(at, json!({"request": "listforwarders", "id": "r"})),
        error(489, "Unauthorized (wrong secret)")
    );
}

#[test]
fn an_announcement_is_played_told_and_stopped() {
    let mut f = Fixture::new("announce", |_| ());
    wav(&f.root.join("prompts/hello.wav"), 16000, 1, 600.0, 0.6);
    let at = f.occupied_room("a", json!({"sampling": 16000}));
    let play =
        json!({"request": "play_file", "id": "a", "filename": "hello.wav", "file_id": "greeting"});
    assert_eq!(
        f.ask(at, play.clone()),
        json!({"audioroom": "success", "id": "a", "file_id": "greeting"})
    );
    assert_eq!(
        f.ask(at, play),
        error(490, "File ID greeting already exists")
    );
    let started = json!({"audioroom": "announcement-started", "id": "a", "file_id": "greeting"});
    let stopped = json!({"audioroom": "announcement-stopped", "id": "a", "file_id": "greeting"});
    wait_for("announcement-started", || {
        f.events_of(at).contains(&started)
    });
    let listed = f.ask(at, json!({"request": "listannouncements", "id": "a"}));
    assert_eq!(
        listed,
        json!({"audioroom": "announcements", "id": "a", "announcements": [
        {"file_id": "greeting", "filename": "hello.wav", "playing": true, "loop": false}]})
    );
    let asked = f.ask(
        at,
        json!({"request": "is_playing", "id": "a", "file_id": "greeting"}),
    );
    assert_eq!(asked["playing"], true);
    // 0.6 s later it ends by itself, and is told once.
    wait_for("announcement-stopped", || {
        f.events_of(at).contains(&stopped)
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(f.events_of(at).iter().filter(|e| **e == stopped).count(), 1);
    let handlers = f.host.events.lock().clone();
    assert!(
        handlers
            .contains(&json!({"event": "announcement-started", "id": "a", "file_id": "greeting"}))
    );
    assert!(
        handlers
            .contains(&json!({"event": "announcement-stopped", "id": "a", "file_id": "greeting"}))
    );
    let asked = f.ask(
        at,
        json!({"request": "is_playing", "id": "a", "file_id": "greeting"}),
    );
    assert_eq!(
        asked,
        json!({"audioroom": "success", "id": "a", "file_id": "greeting", "playing": false})
    );
    assert_eq!(
        f.ask(
            at,
            json!({"request": "stop_file", "id": "a", "file_id": "greeting"})
        ),
        error(496, "No such announcement (greeting) in room a")
    );

    // Looped, until stopped; stop_all_files names what it stopped.
    let looped = json!({"request": "play_file", "id": "a", "filename": "hello.wav", "loop": true});
    let reply = f.ask(at, looped);
    let file_id = reply["file_id"].as_str().unwrap().to_owned();
    assert_eq!(file_id.len(), 36, "a UUID: {file_id}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        f.ask(
            at,
            json!({"request": "is_playing", "id": "a", "file_id": file_id})
        )["playing"],
        true
    );
    let all = f.ask(at, json!({"request": "stop_all_files", "id": "a"}));
    assert_eq!(
        all,
        json!({"audioroom": "success", "id": "a", "file_id_list": [file_id]})
    );
    let stopped = json!({"audioroom": "announcement-stopped", "id": "a", "file_id": file_id});
    assert!(f.events_of(at).contains(&stopped));
}

#[test]
fn play_file_refuses_what_it_cannot_play_and_what_is_outside() {
    let mut f = Fixture::new("announce-errors", |c| {
        c.admin_key = Some("k".into());
        c.lock_play_file = true;
    });
    std::fs::write(f.root.join("secret.wav"), b"RIFF").unwrap();
    std::fs::write(f.root.join("prompts/text.wav"), b"just some text").unwrap();
    let at = f.handle();
    f.ask(
        at,
        json!({"request": "create", "id": "p", "admin_key": "k", "secret": "s"}),
    );
    let play = |filename: &str| json!({"request": "play_file", "id": "p", "admin_key": "k", "secret": "s", "filename": filename});
    let outside = "Invalid element (filename should be a file inside announcements_path)";
    for (body, code, reason) in [
        (play("../secret.wav"), 484, outside),
        (
            play(f.root.join("secret.wav").to_str().unwrap()),
            484,
            outside,
        ),
        (
            play("nope.wav"),
            499,
            "Cannot play nope.wav: No such file or directory (os error 2)",
        ),
        (
            play("text.wav"),
            499,
            "Cannot play text.wav: not an Ogg Opus or WAV file",
        ),
        (
            json!({"request": "play_file", "id": "p", "secret": "s", "filename": "x"}),
            483,
            "Missing element (admin_key)",
        ),
        (
            json!({"request": "play_file", "id": "p", "admin_key": "k", "secret": "s"}),
            483,
            "Missing element (filename)",
        ),
        (
            json!({"request": "play_file", "id": "p", "admin_key": "k", "filename": "x", "file_id": ""}),
            484,
            "Invalid element (file_id should be a string of 1 to 256 bytes without control characters)",
        ),
        (
            json!({"request": "play_file", "id": "p", "admin_key": "k", "filename": "x", "loop": 1}),
            484,
            "Invalid element (loop should be a boolean)",
        ),
        (
            json!({"request": "play_file", "id": "p", "admin_key": "k", "filename": "x"}),
            489,
            "Unauthorized (wrong secret)",
        ),
        (
            json!({"request": "stop_file", "id": "p", "admin_key": "k", "secret": "s"}),
            483,
            "Missing element (file_id)",
        ),
        (
            json!({"request": "is_playing", "id": "p", "secret": "s", "file_id": "x"}),
            483,
            "Missing element (admin_key)",
        ),
    ] {
        assert_eq!(f.ask(at, body.clone()), error(code, reason), "{body}");
    }
    // listannouncements needs the secret but not the admin key.
    let listed = f.ask(
        at,
        json!({"request": "listannouncements", "id": "p", "secret": "s"}),
    );
    assert_eq!(listed["announcements"], json!([]));
}

#[test]
fn an_empty_room_plays_its_announcement_to_its_forwarder() {
    let mut f = Fixture::new("empty-room", |_| ());
    wav(&f.root.join("prompts/tone.wav"), 44100, 2, 700.0, 1.0);
    let at = f.handle();
    f.ask(
        at,
        json!({"request": "create", "id": "e", "sampling": 24000}),
    );
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = socket.local_addr().unwrap().port();
    let body = json!({"request": "rtp_forward", "id": "e", "host": "127.0.0.1", "port": port, "codec": "pcma"});
    assert_eq!(f.ask(at, body)["audioroom"], "success");
    assert!(
        receive(&socket, 0.3).is_empty(),
        "an empty room sends nothing"
    );
    assert_eq!(
        f.ask(
            at,
            json!({"request": "play_file", "id": "e", "filename": "tone.wav"})
        )["audioroom"],
        "success"
    );
    let packets = receive(&socket, 0.8);
    assert!(packets.len() >= 35, "{} packets", packets.len());
    let mut pcm = Vec::new();
    for p in &packets {
        let p = rtp::parse(p, None).unwrap();
        assert_eq!(p.payload_type, 8);
        let mut frame = [0i16; 160];
        Law::A.decode(p.payload, &mut frame);
        pcm.extend_from_slice(&frame);
    }
    let level = goertzel_db(&pcm[1600..], 8000, 700.0);
    assert!(level > -12.0, "the announcement's tone at {level:.1} dB");
    // When it ends the room stops ticking: nothing more is sent.
    std::thread::sleep(Duration::from_millis(500));
    receive(&socket, 0.1);
    assert!(receive(&socket, 0.3).is_empty());
}
