//! Every request × every field: a missing required field is 483 naming it, a field of the wrong
//! type is 484 naming it and what it should be, exactly as clients read them.

use super::*;
use crate::api::jsep::OfferInput;
use crate::api::test_plugin::TestPlugin;
use serde_json::json;

/// A running plugin (`TestPlugin`) with two handles: one in no room, one in room "r" (for
/// changeroom, which first needs a room to leave).
struct Fixture {
    plugin: TestPlugin,
}

const FREE: usize = 0;
const JOINED: usize = 1;

impl Fixture {
    fn new(name: &str) -> Fixture {
        let mut plugin = TestPlugin::start(&format!("requests-{name}"), |_| {});
        assert_eq!((plugin.handle(), plugin.handle()), (FREE, JOINED));
        for room in ["r", "r2"] {
            assert_eq!(
                plugin.ask(FREE, json!({"request": "create", "id": room}))["audioroom"],
                "created"
            );
        }
        let join = json!({"request": "join", "id": "r", "userid": 1}).to_string();
        asynchronous(plugin.session(JOINED), &join, &OfferInput::None).unwrap();
        Fixture { plugin }
    }

    /// The handle in no room.
    fn session(&self) -> &Session {
        self.plugin.session(FREE)
    }

    /// The reply to `body` as a client gets it, whether answered at once or by an event;
    /// `changeroom` comes from the session that is in a room.
    fn ask(&self, body: &Value) -> Value {
        let at = if body["request"] == "changeroom" {
            JOINED
        } else {
            FREE
        };
        self.plugin.ask(at, body.clone())
    }
}

/// (request, field, what it should be, whether it is required). Room ids are checked
/// separately (their rule is longer than a type).
const FIELDS: &[(&str, &str, &str, bool)] = &[
    ("create", "description", "a string", false),
    ("create", "secret", "a string", false),
    ("create", "pin", "a string", false),
    ("create", "is_private", "a boolean", false),
    ("create", "record", "a boolean", false),
    ("create", "record_participants", "a boolean", false),
    ("create", "audiolevel_event", "a boolean", false),
    ("create", "allow_rtp_participants", "a boolean", false),
    ("create", "rtp_symmetric", "a boolean", false),
    ("create", "speech_level", "an integer from 1 to 127", false),
    (
        "create",
        "speech_hangover",
        "an integer from 0 to 5000",
        false,
    ),
    ("create", "max_speakers", "an integer from 1 to 64", false),
    ("create", "mix_all", "a boolean", false),
    (
        "create",
        "audio_active_packets",
        "an integer from 1 to 3000",
        false,
    ),
    (
        "create",
        "audio_level_average",
        "an integer from 1 to 127",
        false,
    ),
    (
        "create",
        "default_prebuffering",
        "an integer from 0 to 50",
        false,
    ),
    (
        "create",
        "sampling",
        "8000, 12000, 16000, 24000 or 48000",
        false,
    ),
    ("create", "allowed", "an array of strings", false),
    ("create", "recording_pattern", "a string", false),
    ("create", "permanent", "a boolean", false),
    ("edit", "secret", "a string", false),
    ("edit", "new_description", "a string", false),
    ("edit", "new_secret", "a string", false),
    ("edit", "new_pin", "a string", false),
    ("edit", "new_is_private", "a boolean", false),
    ("edit", "permanent", "a boolean", false),
    ("destroy", "secret", "a string", false),
    ("destroy", "permanent", "a boolean", false),
    ("kick_all", "secret", "a string", false),
    ("mute_room", "secret", "a string", false),
    ("unmute_room", "secret", "a string", false),
    ("suspend", "userid", "a positive integer below 2^53", true),
    ("suspend", "secret", "a string", false),
    ("resume", "userid", "a positive integer below 2^53", true),
    ("resume", "secret", "a string", false),
    ("allowed", "action", "a string", true),
    ("allowed", "allowed", "an array of strings", false),
    ("allowed", "permanent", "a boolean", false),
    ("allowed", "secret", "a string", false),
    ("enable_recording", "record", "a boolean", true),
    ("enable_recording", "recording_pattern", "a string", false),
    ("enable_recording", "secret", "a string", false),
    ("kick", "userid", "a positive integer below 2^53", true),
    ("kick", "secret", "a string", false),
    ("mute", "userid", "a positive integer below 2^53", true),
    ("unmute", "userid", "a positive integer below 2^53", true),
    ("join", "userid", "a positive integer below 2^53", false),
    ("join", "display", "a string", false),
    ("join", "muted", "a boolean", false),
    ("join", "pin", "a string", false),
    ("join", "quality", "an integer from 0 to 10", false),
    ("join", "volume", "an integer from 0 to 1000", false),
    ("join", "prebuffer", "an integer from 0 to 50", false),
    ("join", "bitrate", "an integer from 0 to 512000", false),
    ("join", "expected_loss", "an integer from 0 to 100", false),
    ("join", "rtp", "an object", false),
    ("join", "token", "a string", false),
    ("join", "secret", "a string", false),
    (
        "changeroom",
        "userid",
        "a positive integer below 2^53",
        false,
    ),
    ("changeroom", "display", "a string", false),
    ("changeroom", "muted", "a boolean", false),
    ("changeroom", "token", "a string", false),
    ("changeroom", "secret", "a string", false),
];

/// Requests that name a room, and whether their `id` is required.
const ROOM_ID: &[(&str, bool)] = &[
    ("create", false),
    ("edit", true),
    ("destroy", true),
    ("exists", true),
    ("listparticipants", true),
    ("kick", true),
    ("mute", true),
    ("unmute", true),
    ("kick_all", true),
    ("mute_room", true),
    ("unmute_room", true),
    ("suspend", true),
    ("resume", true),
    ("allowed", true),
    ("enable_recording", true),
    ("join", true),
    ("changeroom", true),
];

/// A value of the wrong type for a field that should be `should_be`.
fn wrong_value(should_be: &str) -> Value {
    if should_be == "a string" || should_be == "an object" {
        json!(17)
    } else {
        json!("nope")
    }
}

#[test]
fn every_field_of_every_request_is_checked_with_the_exact_reason() {
    let f = Fixture::new("fields");
    for &(request, field, should_be, required) in FIELDS {
        // A valid request but for this one field (changeroom moves from "r" to "r2").
        let room = if request == "changeroom" { "r2" } else { "r" };
        // `action` and `record` make `allowed` and `enable_recording` valid; others ignore them.
        let mut body = json!({"request": request, "id": room, "userid": 5, "action": "enable",
                              "record": false});
        body[field] = wrong_value(should_be);
        let reply = f.ask(&body);
        assert_eq!(
            (reply["error_code"].clone(), reply["error"].clone()),
            (
                json!(484),
                json!(format!("Invalid element ({field} should be {should_be})"))
            ),
            "{request}.{field}: {reply}"
        );
        if required {
            body.as_object_mut().unwrap().remove(field);
            let reply = f.ask(&body);
            assert_eq!(
                (reply["error_code"].clone(), reply["error"].clone()),
                (json!(483), json!(format!("Missing element ({field})"))),
                "{request} without {field}: {reply}"
            );
        }
    }
}

#[test]
fn every_request_naming_a_room_checks_its_id() {
    let f = Fixture::new("ids");
    for &(request, required) in ROOM_ID {
        for (value, reason) in [
            (json!(42), "Invalid element (id should be a string)"),
            (
                json!(""),
                "Invalid element (id should be a string of 1 to 256 bytes without control characters)",
            ),
            (
                json!("x".repeat(257)),
                "Invalid element (id should be a string of 1 to 256 bytes without control characters)",
            ),
            (
                json!("bell\u{7}"),
                "Invalid element (id should be a string of 1 to 256 bytes without control characters)",
            ),
        ] {
            let reply = f.ask(&json!({"request": request, "id": value, "userid": 5}));
            assert_eq!(
                (reply["error_code"].clone(), reply["error"].clone()),
                (json!(484), json!(reason)),
                "{request}: {reply}"
            );
        }
        let reply = f.ask(&json!({"request": request, "userid": 5}));
        if required {
            assert_eq!(reply["error"], "Missing element (id)", "{request}: {reply}");
            assert_eq!(reply["error_code"], 483);
        } else {
            assert_eq!(
                reply["audioroom"], "created",
                "{request} picks an id: {reply}"
            );
        }
    }
}

#[test]
fn malformed_messages_and_unknown_requests() {
    let f = Fixture::new("malformed");
    let cases = [
        ("", 480, "No message"),
        ("{not json", 481, ""),
        ("[1, 2]", 481, "JSON error: not an object"),
        ("{}", 483, "Missing element (request)"),
        (
            "{\"request\": 7}",
            484,
            "Invalid element (request should be a string)",
        ),
        ("{\"request\": \"fly\"}", 482, "Unknown request (fly)"),
        ("{\"request\": \"stats\"}", 482, "Unknown request (stats)"),
    ];
    // A value as deep as Janus accepts where `id` should be a string is that error (484),
    // not "invalid JSON".
    let deep = format!(
        "{{\"request\": \"exists\", \"id\": {}{}}}",
        "[".repeat(300),
        "]".repeat(300)
    );
    let cases: Vec<(&str, u64, &str)> = cases
        .into_iter()
        .chain([(
            deep.as_str(),
            484,
            "Invalid element (id should be a string)",
        )])
        .collect();
    for (text, code, reason) in cases {
        let reply = match dispatch(f.session(), text) {
            Dispatch::Reply(reply) => reply,
            Dispatch::Queue => panic!("{text} queued"),
        };
        assert_eq!(reply["error_code"], code, "{text}: {reply}");
        if !reason.is_empty() {
            assert_eq!(reply["error"], reason, "{text}");
        }
    }
    // Through the Admin API, stats is answered and requests needing a handle are refused.
    assert_eq!(
        admin(&f.plugin.plugin, "{\"request\": \"stats\"}")["audioroom"],
        "success"
    );
    for request in ["join", "configure", "changeroom", "leave", "resetdecoder"] {
        let reply = admin(
            &f.plugin.plugin,
            &json!({"request": request, "id": "r"}).to_string(),
        );
        assert_eq!(reply["error_code"], 482, "{request}");
    }
}

#[test]
fn only_the_negotiated_payload_type_reaches_the_jitter_buffer() {
    let f = Fixture::new("payload-types");
    let reply = f.ask(&json!({"request": "join", "id": "r2", "userid": 5}));
    assert_eq!(reply["audioroom"], "joined", "{reply}");
    let participant = f.session().participant().unwrap();
    let packet = |payload_type: u8, sequence: u16| {
        let mut p = vec![0u8; 12 + 3];
        crate::media::rtp::write_header(&mut p, payload_type, false, sequence, 0, 7);
        p[12..].copy_from_slice(&[0xf8, 0xff, 0xfe]);
        p
    };
    // Opus (111, negotiated by default), then DTMF events (126), comfort noise (13), garbage.
    f.session().incoming_rtp(&packet(111, 1), None);
    f.session().incoming_rtp(&packet(126, 2), None);
    f.session().incoming_rtp(&packet(13, 3), None);
    f.session().incoming_rtp(b"garbage", None);
    let reception = participant.describe_reception();
    assert_eq!(reception["queue"]["received"], 1, "{reception}");
    assert_eq!(reception["rejected_packets"], 3, "{reception}");
}
