//! The operator's controls against a running plugin (mixer, recorder and events threads as in
//! Janus, with stand-ins for Janus's handles): room mute and its moderators, suspension, kick_all,
//! access lists, recording switched off and on, permanent rooms and what event handlers hear.
//! How it sounds is tested end to end (test/e2e/test_operator_controls.py).

use super::permanent_rooms;
use super::test_plugin::TestPlugin;
use crate::conference::testing::FakeEndpoint;
use crate::media::rtp;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

struct Fixture(TestPlugin);

impl std::ops::Deref for Fixture {
    type Target = TestPlugin;
    fn deref(&self) -> &TestPlugin {
        &self.0
    }
}

/// A participant: its session and what its handle was sent.
struct Peer {
    at: usize,
    endpoint: Arc<FakeEndpoint>,
}

impl Fixture {
    fn new(name: &str, record: bool) -> Fixture {
        Fixture(TestPlugin::start(&format!("controls-{name}"), |c| {
            c.recording_enabled = record
        }))
    }

    fn peer(&mut self) -> Peer {
        let at = self.0.handle();
        Peer {
            at,
            endpoint: self.endpoint(at).clone(),
        }
    }

    /// The reply to `body` as the client on `peer` gets it.
    fn ask(&self, peer: &Peer, body: Value) -> Value {
        self.0.ask(peer.at, body)
    }

    /// Joins with media up (as a PeerConnection), returns the joined event.
    fn join(&self, peer: &Peer, body: Value) -> Value {
        let joined = self.ask(peer, body);
        assert_eq!(joined["audioroom"], "joined", "{joined}");
        self.session(peer.at).setup_media();
        joined
    }

    /// One RTP packet from `peer`, as Janus hands it over.
    fn send_rtp(&self, peer: &Peer, sequence: u16) {
        let mut packet = vec![0u8; rtp::RTP_HEADER_LEN + 3];
        rtp::write_header(&mut packet, 111, false, sequence, 960 * sequence as u32, 9);
        packet[rtp::RTP_HEADER_LEN..].copy_from_slice(&[0xf8, 0xff, 0xfe]);
        self.session(peer.at).incoming_rtp(&packet, Some(30));
    }

    /// Packets of `peer`'s voice queued for the mixer so far.
    fn received(&self, peer: &Peer) -> u64 {
        let participant = self.session(peer.at).participant().unwrap();
        participant.queue_stats().received
    }

    fn handler_events(&self) -> Vec<Value> {
        self.host.events.lock().clone()
    }

    fn jobs(&self) -> Vec<Value> {
        let Ok(dir) = std::fs::read_dir(self.root.join("jobs")) else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
            .collect()
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

fn packets(peer: &Peer) -> u64 {
    peer.endpoint.packets.load(Relaxed)
}

#[test]
fn a_muted_room_holds_everyone_but_its_moderators() {
    let mut f = Fixture::new("mute-room", false);
    let (moderator, member) = (f.peer(), f.peer());
    f.ask(
        &moderator,
        json!({"request": "create", "id": "r", "secret": "s"}),
    );
    assert_eq!(
        f.ask(
            &member,
            json!({"request": "join", "id": "r", "secret": "nope"})
        )["error_code"],
        489,
        "a wrong secret is refused"
    );
    f.join(
        &moderator,
        json!({"request": "join", "id": "r", "userid": 1, "secret": "s"}),
    );
    f.join(&member, json!({"request": "join", "id": "r", "userid": 2}));
    moderator.endpoint.take_events();
    member.endpoint.take_events();

    let wrong = f.ask(&member, json!({"request": "mute_room", "id": "r"}));
    assert_eq!(
        (wrong["error_code"].clone(), wrong["error"].clone()),
        (json!(489), json!("Unauthorized (wrong secret)"))
    );
    let muted = f.ask(
        &member,
        json!({"request": "mute_room", "id": "r", "secret": "s"}),
    );
    assert_eq!(muted, json!({"audioroom": "success"}));
    let event = json!({"audioroom": "event", "id": "r", "muted": true});
    assert_eq!(moderator.endpoint.take_events(), vec![event.clone()]);
    assert_eq!(member.endpoint.take_events(), vec![event]);
    // Again: nothing changes, nobody is told.
    f.ask(
        &member,
        json!({"request": "mute_room", "id": "r", "secret": "s"}),
    );
    assert!(member.endpoint.take_events().is_empty());

    // The member's voice is dropped on arrival; the moderator's is kept.
    for sequence in 0..5 {
        f.send_rtp(&moderator, sequence);
        f.send_rtp(&member, sequence);
    }
    assert_eq!((f.received(&moderator), f.received(&member)), (5, 0));
    // Unmuting oneself does not get round it.
    let configured = f.ask(&member, json!({"request": "configure", "muted": false}));
    assert_eq!(configured["result"], "ok");
    f.send_rtp(&member, 5);
    assert_eq!(f.received(&member), 0);
    let listed = f.ask(&member, json!({"request": "list"}));
    assert_eq!(listed["list"][0]["muted"], true);
    let listed = f.ask(&member, json!({"request": "listparticipants", "id": "r"}));
    assert_eq!(listed["muted"], true);
    // Someone joining now is told the room is muted.
    let late = f.peer();
    let joined = f.join(&late, json!({"request": "join", "id": "r", "userid": 3}));
    assert_eq!(joined["muted"], true, "{joined}");

    f.ask(
        &moderator,
        json!({"request": "unmute_room", "id": "r", "secret": "s"}),
    );
    f.send_rtp(&member, 6);
    assert_eq!(f.received(&member), 1);
    assert_eq!(
        member.endpoint.take_events().last(),
        Some(&json!({"audioroom": "event", "id": "r", "muted": false}))
    );
    let kinds: Vec<Value> = f
        .handler_events()
        .iter()
        .map(|e| e["event"].clone())
        .collect();
    assert!(
        kinds.contains(&json!("room-muted")) && kinds.contains(&json!("room-unmuted")),
        "{kinds:?}"
    );
}

#[test]
fn in_a_room_without_a_secret_nobody_is_a_moderator() {
    let mut f = Fixture::new("no-secret", false);
    let a = f.peer();
    f.ask(&a, json!({"request": "create", "id": "open"}));
    f.join(
        &a,
        json!({"request": "join", "id": "open", "secret": "anything"}),
    );
    f.ask(&a, json!({"request": "mute_room", "id": "open"}));
    f.send_rtp(&a, 0);
    assert_eq!(f.received(&a), 0);
}

#[test]
fn a_suspended_participant_is_neither_heard_nor_sent_anything_and_stays_listed() {
    let mut f = Fixture::new("suspend", false);
    let (a, b) = (f.peer(), f.peer());
    f.ask(&a, json!({"request": "create", "id": "r", "secret": "s"}));
    f.join(&a, json!({"request": "join", "id": "r", "userid": 1}));
    f.join(&b, json!({"request": "join", "id": "r", "userid": 2}));
    wait_for("the mix", || packets(&b) > 3);
    a.endpoint.take_events();

    let body = json!({"request": "suspend", "id": "r", "userid": 2, "secret": "s"});
    assert_eq!(f.ask(&a, body), json!({"audioroom": "success"}));
    assert_eq!(
        a.endpoint.take_events(),
        vec![json!({"audioroom": "event", "id": "r", "suspended": 2})]
    );
    std::thread::sleep(Duration::from_millis(60)); // a tick already under way
    let (a_before, b_before) = (packets(&a), packets(&b));
    f.send_rtp(&b, 0);
    assert_eq!(f.received(&b), 0, "its voice is dropped on arrival");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(packets(&b), b_before, "nothing is encoded nor sent for it");
    assert!(packets(&a) >= a_before + 5, "the others go on");
    let listed = f.ask(&a, json!({"request": "listparticipants", "id": "r"}));
    assert_eq!(
        listed["participants"][1],
        json!({"userid": 2, "setup": true, "muted": false, "talking": false, "suspended": true})
    );
    assert_eq!(listed["participants"][0].get("suspended"), None);

    let body = json!({"request": "resume", "id": "r", "userid": 2, "secret": "s"});
    assert_eq!(f.ask(&a, body), json!({"audioroom": "success"}));
    wait_for("the mix again", || packets(&b) > b_before + 3);
    f.send_rtp(&b, 1);
    assert_eq!(f.received(&b), 1);
    let about: Vec<Value> = b.endpoint.handler_events.lock().clone();
    assert_eq!(
        about,
        vec![
            json!({"event": "joined", "id": "r", "userid": 2, "display": null}),
            json!({"event": "suspended", "id": "r", "userid": 2}),
            json!({"event": "resumed", "id": "r", "userid": 2}),
        ]
    );
    // Errors: the user must be in the room; the secret is needed even for oneself.
    let missing = f.ask(
        &a,
        json!({"request": "suspend", "id": "r", "userid": 9, "secret": "s"}),
    );
    assert_eq!(
        (missing["error_code"].clone(), missing["error"].clone()),
        (json!(492), json!("No such user (9) in room r"))
    );
    let own = f.ask(&b, json!({"request": "suspend", "id": "r", "userid": 2}));
    assert_eq!(own["error_code"], 489);
}

#[test]
fn kick_all_empties_the_room_and_keeps_it() {
    let mut f = Fixture::new("kick-all", false);
    let (a, b, c) = (f.peer(), f.peer(), f.peer());
    f.ask(&a, json!({"request": "create", "id": "r"}));
    f.join(&a, json!({"request": "join", "id": "r", "userid": 1}));
    f.join(&b, json!({"request": "join", "id": "r", "userid": 2}));
    // A signalling-only participant goes too (AudioBridge leaves those in).
    f.ask(&c, json!({"request": "join", "id": "r", "userid": 3}));
    for p in [&a, &b, &c] {
        p.endpoint.take_events();
    }
    assert_eq!(
        f.ask(&c, json!({"request": "kick_all", "id": "r"})),
        json!({"audioroom": "success"})
    );
    for (p, id) in [(&a, 1), (&b, 2), (&c, 3)] {
        assert_eq!(
            p.endpoint.take_events(),
            vec![json!({"audioroom": "event", "id": "r", "kicked": id, "kicked_all": id})]
        );
        let about = p.endpoint.handler_events.lock().last().cloned();
        assert_eq!(
            about,
            Some(json!({"event": "kicked", "id": "r", "userid": id}))
        );
    }
    assert!(a.endpoint.closed.load(Relaxed) && b.endpoint.closed.load(Relaxed));
    assert!(
        !c.endpoint.closed.load(Relaxed),
        "no PeerConnection to close"
    );
    let listed = f.ask(&a, json!({"request": "listparticipants", "id": "r"}));
    assert_eq!(listed["participants"], json!([]));
    assert_eq!(f.ask(&a, json!({"request": "leave"}))["error_code"], 487);
    assert_eq!(
        f.ask(&a, json!({"request": "join", "id": "r"}))["audioroom"],
        "joined"
    );
}

#[test]
fn access_lists_admit_listed_tokens_only() {
    let mut f = Fixture::new("allowed", false);
    let (admin_peer, guest) = (f.peer(), f.peer());
    f.ask(
        &admin_peer,
        json!({"request": "create", "id": "r", "secret": "s", "allowed": ["t1"]}),
    );
    let refused = f.ask(&guest, json!({"request": "join", "id": "r"}));
    assert_eq!(
        (refused["error_code"].clone(), refused["error"].clone()),
        (json!(489), json!("Unauthorized (not in the allowed list)"))
    );
    let wrong = f.ask(&guest, json!({"request": "join", "id": "r", "token": "t2"}));
    assert_eq!(wrong["error_code"], 489);
    let added = f.ask(
        &admin_peer,
        json!({"request": "allowed", "id": "r", "secret": "s", "action": "add", "allowed": ["t2", "t0"]}),
    );
    assert_eq!(
        added,
        json!({"audioroom": "success", "id": "r", "check_tokens": true, "allowed": ["t0", "t1", "t2"]})
    );
    let joined = f.ask(&guest, json!({"request": "join", "id": "r", "token": "t2"}));
    assert_eq!(joined["audioroom"], "joined");
    f.ask(&guest, json!({"request": "leave"}));
    let removed = f.ask(
        &admin_peer,
        json!({"request": "allowed", "id": "r", "secret": "s", "action": "remove", "allowed": ["t2"]}),
    );
    assert_eq!(removed["allowed"], json!(["t0", "t1"]));
    let again = f.ask(&guest, json!({"request": "join", "id": "r", "token": "t2"}));
    assert_eq!(again["error_code"], 489);
    // A moderator needs a token too.
    let moderator = f.ask(&guest, json!({"request": "join", "id": "r", "secret": "s"}));
    assert_eq!(moderator["error_code"], 489);
    let disabled = f.ask(
        &admin_peer,
        json!({"request": "allowed", "id": "r", "secret": "s", "action": "disable"}),
    );
    assert_eq!(
        (
            disabled["check_tokens"].clone(),
            disabled["allowed"].clone()
        ),
        (json!(false), json!(["t0", "t1"]))
    );
    assert_eq!(
        f.ask(&guest, json!({"request": "join", "id": "r"}))["audioroom"],
        "joined"
    );
    // Operators see the list; clients do not.
    let listed = f.admin(json!({"request": "list"}));
    assert_eq!(
        (
            listed["list"][0]["check_tokens"].clone(),
            listed["list"][0]["allowed"].clone()
        ),
        (json!(false), json!(["t0", "t1"]))
    );
    let client = f.ask(&guest, json!({"request": "list"}));
    assert_eq!(client["list"][0].get("allowed"), None);
    assert_eq!(client["list"][0]["pin_required"], false);

    // Every error row.
    for (body, code, reason) in [
        (
            json!({"request": "allowed", "id": "r", "secret": "s"}),
            483,
            "Missing element (action)",
        ),
        (
            json!({"request": "allowed", "id": "r", "secret": "s", "action": 1}),
            484,
            "Invalid element (action should be a string)",
        ),
        (
            json!({"request": "allowed", "id": "r", "secret": "s", "action": "open"}),
            484,
            "Invalid element (action should be enable, disable, add or remove)",
        ),
        (
            json!({"request": "allowed", "id": "r", "secret": "s", "action": "add"}),
            483,
            "Missing element (allowed)",
        ),
        (
            json!({"request": "allowed", "id": "r", "secret": "s", "action": "add", "allowed": ["a", 1]}),
            484,
            "Invalid element (allowed should be an array of strings)",
        ),
        (
            json!({"request": "allowed", "id": "nope", "action": "enable"}),
            485,
            "No such room (nope)",
        ),
        (
            json!({"request": "allowed", "id": "r", "action": "enable"}),
            489,
            "Unauthorized (wrong secret)",
        ),
        (
            json!({"request": "join", "id": "r", "token": 5}),
            484,
            "Invalid element (token should be a string)",
        ),
    ] {
        let reply = f.ask(&admin_peer, body.clone());
        assert_eq!(
            (reply["error_code"].clone(), reply["error"].clone()),
            (json!(code), json!(reason)),
            "{body}"
        );
    }
    let unchanged = f.admin(json!({"request": "list"}));
    assert_eq!(unchanged["list"][0]["allowed"], json!(["t0", "t1"]));
}

#[test]
fn recording_switched_off_and_on_leaves_two_recordings_and_two_jobs() {
    let mut f = Fixture::new("enable-recording", true);
    let a = f.peer();
    f.ask(&a, json!({"request": "create", "id": "r", "secret": "s"}));
    f.join(&a, json!({"request": "join", "id": "r"}));
    std::thread::sleep(Duration::from_millis(300));
    a.endpoint.take_events();
    let stop = json!({"request": "enable_recording", "id": "r", "secret": "s", "record": false});
    assert_eq!(
        f.ask(&a, stop.clone()),
        json!({"audioroom": "success", "id": "r", "record": false})
    );
    wait_for("the first job", || f.jobs().len() == 1);
    assert_eq!(
        a.endpoint.take_events(),
        vec![json!({"audioroom": "event", "id": "r", "recording": "stopped"})]
    );
    let listed = f.ask(&a, json!({"request": "listparticipants", "id": "r"}));
    assert_eq!(listed["record"], false);
    // Stopping again changes nothing.
    assert_eq!(f.ask(&a, stop)["record"], false);
    let start = json!({"request": "enable_recording", "id": "r", "secret": "s", "record": true,
                       "recording_pattern": "second-#{id}"});
    assert_eq!(f.ask(&a, start)["record"], true);
    assert_eq!(
        a.endpoint.take_events(),
        vec![json!({"audioroom": "event", "id": "r", "recording": "started"})]
    );
    std::thread::sleep(Duration::from_millis(300));
    f.ask(&a, json!({"request": "destroy", "id": "r", "secret": "s"}));
    wait_for("the second job", || f.jobs().len() == 2);
    let jobs = f.jobs();
    let uids: std::collections::HashSet<&str> = jobs
        .iter()
        .map(|j| j["data"]["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids.len(), 2);
    let named: Vec<&str> = jobs
        .iter()
        .map(|j| j["data"]["audio"].as_str().unwrap())
        .filter(|audio| audio.ends_with("/second-r.wav"))
        .collect();
    assert_eq!(named.len(), 1, "{jobs:?}");
    let kinds: Vec<Value> = f
        .handler_events()
        .iter()
        .map(|e| e["event"].clone())
        .collect();
    let recording: Vec<&Value> = kinds
        .iter()
        .filter(|k| k.as_str().unwrap().starts_with("recording-"))
        .collect();
    assert_eq!(
        recording,
        [
            "recording-started",
            "recording-stopped",
            "recording-started"
        ]
    );

    let b = f.peer();
    f.ask(&b, json!({"request": "create", "id": "q"}));
    for (body, code, reason) in [
        (
            json!({"request": "enable_recording", "id": "q"}),
            483,
            "Missing element (record)",
        ),
        (
            json!({"request": "enable_recording", "id": "q", "record": "yes"}),
            484,
            "Invalid element (record should be a boolean)",
        ),
        (
            json!({"request": "enable_recording", "id": "q", "record": true, "recording_pattern": "../up"}),
            484,
            "Invalid element (recording_pattern should be a relative file name without .. components or control characters)",
        ),
        (
            json!({"request": "enable_recording", "id": "q", "record": true, "recording_pattern": "/etc/x"}),
            484,
            "Invalid element (recording_pattern should be a relative file name without .. components or control characters)",
        ),
        (
            json!({"request": "enable_recording", "id": "nope", "record": true}),
            485,
            "No such room (nope)",
        ),
        (
            json!({"request": "create", "id": "z", "recording_pattern": ""}),
            484,
            "Invalid element (recording_pattern should be a relative file name without .. components or control characters)",
        ),
    ] {
        let reply = f.ask(&b, body.clone());
        assert_eq!(
            (reply["error_code"].clone(), reply["error"].clone()),
            (json!(code), json!(reason)),
            "{body}"
        );
    }
}

#[test]
fn a_permanent_room_is_saved_and_comes_back_with_every_setting() {
    let mut f = Fixture::new("permanent", false);
    let a = f.peer();
    let create = json!({"request": "create", "id": "Café ☕", "permanent": true, "sampling": 16000,
        "description": "Standup", "secret": "s", "pin": "1", "is_private": true,
        "audiolevel_event": true, "audio_active_packets": 50, "audio_level_average": 40,
        "speech_level": 50, "speech_hangover": 300, "max_speakers": 2, "mix_all": true,
        "allow_rtp_participants": true, "rtp_symmetric": true, "default_prebuffering": 3, "record": true,
        "record_participants": true, "recording_pattern": "r-#{id}", "allowed": ["tok"]});
    assert_eq!(
        f.ask(&a, create),
        json!({"audioroom": "created", "id": "Café ☕", "permanent": true})
    );
    f.ask(&a, json!({"request": "create", "id": "brief"}));
    let sections = f.host.sections.lock().clone();
    assert_eq!(
        sections.keys().collect::<Vec<_>>(),
        ["room-_43af_c3_a9_20_e2_98_95"]
    );
    let items = &sections["room-_43af_c3_a9_20_e2_98_95"];
    assert_eq!(items["sampling_rate"], "16000");
    assert_eq!(items["speech_hangover"], "300");
    assert_eq!(items["record_participants"], "true");
    assert_eq!(items["rtp_symmetric"], "true");
    assert_eq!(items["allowed"], json!(["tok"]));

    // A fresh plugin (Janus restarted) makes the same room from the section.
    let mut g = Fixture::new("permanent-again", false);
    let id = permanent_rooms::load(&g.plugin, "room-_43af_c3_a9_20_e2_98_95", items).unwrap();
    assert_eq!(id, "Café ☕");
    let before = f.plugin.rooms.get("Café ☕").unwrap().settings();
    let after = g.plugin.rooms.get("Café ☕").unwrap().settings();
    assert_eq!(before, after);
    assert!(g.plugin.rooms.get("Café ☕").unwrap().is_recording());
    let b = g.peer();
    let joined = g.ask(
        &b,
        json!({"request": "join", "id": "Café ☕", "pin": "1", "token": "tok"}),
    );
    assert_eq!(joined["audioroom"], "joined", "{joined}");

    // edit saves the room as it stands; destroy removes it.
    let edit = json!({"request": "edit", "id": "Café ☕", "secret": "s",
                      "new_description": "Retro", "permanent": true});
    assert_eq!(
        f.ask(&a, edit),
        json!({"audioroom": "edited", "id": "Café ☕", "permanent": true})
    );
    assert_eq!(
        f.host.sections.lock()["room-_43af_c3_a9_20_e2_98_95"]["description"],
        "Retro"
    );
    let destroy = json!({"request": "destroy", "id": "Café ☕", "secret": "s", "permanent": true});
    assert_eq!(
        f.ask(&a, destroy),
        json!({"audioroom": "destroyed", "id": "Café ☕", "permanent": true})
    );
    assert!(f.host.sections.lock().is_empty());

    // Sections that make no room are refused with the reason.
    for (section, items, reason) in [
        (
            "room-x",
            json!({"sampling_rate": "44100"}),
            "Invalid element (sampling_rate should be 8000, 12000, 16000, 24000 or 48000)",
        ),
        (
            "room-x",
            json!({"is_private": "maybe"}),
            "Invalid element (is_private should be a boolean)",
        ),
        (
            "room-x",
            json!({"allowed": "tok"}),
            "Invalid element (allowed should be an array of strings)",
        ),
        (
            "room-_07",
            json!({}),
            "Invalid element (id should be a string of 1 to 256 bytes without control characters)",
        ),
        (
            "forwarders",
            json!({}),
            "not a room section: its name should be room- followed by the encoded id (see docs/API.md)",
        ),
        ("room-brief", json!({}), "Room brief already exists"),
    ] {
        if section == "room-brief" {
            g.ask(&b, json!({"request": "create", "id": "brief"}));
        }
        assert_eq!(
            permanent_rooms::load(&g.plugin, section, &items),
            Err(reason.to_owned()),
            "{section}"
        );
    }
    // A hand-written section: plain numbers and booleans, other keys ignored.
    let hand =
        json!({"description": "Lobby", "sampling_rate": "8000", "mix_all": "yes", "colour": "red"});
    assert_eq!(
        permanent_rooms::load(&g.plugin, "room-Lobby", &hand),
        Ok("lobby".to_owned())
    );
}

#[test]
fn event_handlers_hear_every_room_event() {
    let mut f = Fixture::new("handlers", false);
    let (a, b) = (f.peer(), f.peer());
    f.ask(
        &a,
        json!({"request": "create", "id": "r", "secret": "s", "audiolevel_event": true}),
    );
    f.ask(
        &a,
        json!({"request": "edit", "id": "r", "secret": "s", "new_description": "x"}),
    );
    f.join(&a, json!({"request": "join", "id": "r", "userid": 1}));
    f.join(&b, json!({"request": "join", "id": "r", "userid": 2}));
    f.ask(&b, json!({"request": "configure", "muted": true}));
    for request in ["unmute", "mute"] {
        f.ask(
            &a,
            json!({"request": request, "id": "r", "userid": 1, "secret": "s"}),
        );
    }
    f.ask(
        &a,
        json!({"request": "kick", "id": "r", "userid": 2, "secret": "s"}),
    );
    f.ask(&a, json!({"request": "leave"}));
    f.ask(&a, json!({"request": "destroy", "id": "r", "secret": "s"}));
    let about_a: Vec<Value> = a.endpoint.handler_events.lock().clone();
    assert_eq!(
        about_a,
        vec![
            json!({"event": "joined", "id": "r", "userid": 1, "display": null}),
            json!({"event": "muted", "id": "r", "userid": 1}),
            json!({"event": "left", "id": "r", "userid": 1}),
        ]
    );
    let about_b: Vec<Value> = b.endpoint.handler_events.lock().clone();
    assert_eq!(
        about_b,
        vec![
            json!({"event": "joined", "id": "r", "userid": 2, "display": null}),
            json!({"event": "configured", "id": "r", "userid": 2, "muted": true}),
            json!({"event": "kicked", "id": "r", "userid": 2}),
        ]
    );
    assert_eq!(
        f.handler_events(),
        vec![
            json!({"event": "created", "id": "r"}),
            json!({"event": "edited", "id": "r"}),
            json!({"event": "destroyed", "id": "r"}),
        ]
    );
}
