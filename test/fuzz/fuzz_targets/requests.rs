//! `requests`: any sequence of requests against a running plugin, as the C glue makes them.
//!
//! One plugin (its mixer thread, recorder and events threads running) serves every input; each
//! input starts from the same state: rooms "r" and "s" (a PIN, a secret, plain RTP allowed) and
//! four fresh sessions in no room. An input is lines; a line is `<action><session><text>`:
//!
//! | action ((byte - '0') % 9) | what the glue would do |
//! |---|---|
//! | 0 | `handle_message` without JSEP: `dispatch`, and `asynchronous` if it queues the request |
//! | 1 | the same with an SDP offer (payload type, level extension and FEC from the session byte) |
//! | 2 | the same with a JSEP that could not be used |
//! | 3 | `handle_admin_message`: `admin` |
//! | 4 | `setup_media` (the PeerConnection is up) |
//! | 5 | `hangup_media` |
//! | 6 | `incoming_rtp`: the rest of the line is the packet, the session byte its level |
//! | 7 | `query_session`, then `destroy_session` and a new handle in its place |
//! | 8 | a mixer tick of every room, now, on this thread (the plugin's own mixer thread ticks
//! |   | every 20 ms, and an input lasts about a millisecond: without this line the mixing of
//! |   | what an input set up would rarely run) |
//!
//! Nothing may panic, on this thread or the plugin's; every reply is a JSON object naming
//! `audioroom`; every packet relayed is RTP; no lock is ever taken out of order (outside tests
//! the checked locks count a violation instead of panicking, so the target asserts the count);
//! the request parser (`api::json_text`, which cuts very deep JSON) reads what serde_json reads,
//! and shallow JSON exactly as serde_json does.
//!
//! A plain-RTP `join` names where the mix goes: every address that parses is replaced with
//! 127.0.0.1 and every port in range with a socket of this target's own, so the fuzzer never
//! sends a packet to another host or another program (addresses and ports that fail the
//! plugin's validation are left alone, so that validation is still fuzzed). An `rtp_forward`'s
//! `host` (any string: names are not looked up) becomes 127.0.0.1 and its `port` that socket.
#![no_main]

use audioroom::api::dispatch::{Dispatch, admin, asynchronous, dispatch};
use audioroom::api::jsep::{Offer, OfferInput};
use audioroom::api::json_text;
use audioroom::conference::config::Config;
use audioroom::conference::endpoint::{Endpoint, Host};
use audioroom::conference::plugin::Plugin;
use audioroom::conference::session::Session;
use audioroom::locks;
use audioroom::media::rtp;
use audioroom::mixer::pool::Mixable;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

const SESSIONS: usize = 4;
/// Lines of one input that are played; more would only make single inputs slow.
const MAX_LINES: usize = 48;
/// Inputs between two sweeps of the recordings and job files that inputs leave behind.
const SWEEP_EVERY: u64 = 2000;

/// Janus's handle, checking what the plugin gives it.
struct FuzzEndpoint;

impl Endpoint for FuzzEndpoint {
    fn push_event(&self, event: &Value) {
        assert!(event.is_object(), "event is not an object: {event}");
    }
    fn relay_rtp(&self, packet: &[u8]) {
        assert!(
            rtp::parse(packet, None).is_ok(),
            "relayed a packet that is not RTP: {packet:?}"
        );
    }
    fn close_pc(&self) {}
    fn notify_handlers(&self, event: &Value) {
        assert!(event.is_object(), "handler event is not an object: {event}");
    }
    fn retain(&self) -> Arc<dyn Endpoint> {
        Arc::new(FuzzEndpoint)
    }
}

/// Janus as a whole: permanent rooms are "saved" nowhere.
struct FuzzHost;

impl Host for FuzzHost {
    fn notify_handlers(&self, event: &Value) {
        assert!(event.is_object(), "handler event is not an object: {event}");
    }
    fn save_room(&self, _section: &str, items: &Value) -> Result<(), String> {
        assert!(
            items.is_object(),
            "a room's section is not an object: {items}"
        );
        Ok(())
    }
    fn remove_room(&self, _section: &str) -> Result<(), String> {
        Ok(())
    }
}

struct Harness {
    plugin: Arc<Plugin>,
    /// Where plain-RTP participants' mix goes (drained and dropped).
    mix_sink: UdpSocket,
    root: PathBuf,
    inputs: u64,
}

fn harness() -> &'static Mutex<Harness> {
    static HARNESS: OnceLock<Mutex<Harness>> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("audioroom-fuzz-{}", std::process::id()));
        let mut config = Config {
            archive_path: root.join("recordings"),
            job_path: root.join("jobs"),
            recording_enabled: false,
            mixer_threads: 1,
            local_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ..Config::default()
        };
        config.set("rtp_port_range", "41000-41999").unwrap();
        let plugin = Plugin::start(config, Arc::new(FuzzHost)).expect("the plugin starts");
        let mix_sink = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        mix_sink.set_nonblocking(true).unwrap();
        Mutex::new(Harness {
            plugin,
            mix_sink,
            root,
            inputs: 0,
        })
    })
}

/// The base rooms every input starts with.
fn create_base_rooms(plugin: &Plugin) {
    for create in [
        json!({"request": "create", "id": "r"}),
        json!({"request": "create", "id": "s", "secret": "sec", "pin": "pin",
               "allow_rtp_participants": true, "sampling": 16000}),
    ] {
        let reply = admin(plugin, &create.to_string());
        assert_eq!(reply["audioroom"], "created", "{reply}");
    }
}

/// Takes every room away (as `destroy` does, without the events), leaving the plugin empty.
fn destroy_rooms(plugin: &Plugin) {
    for room in plugin.rooms.drain() {
        let (participants, recording) = room.destroy();
        for p in &participants {
            p.close_media();
        }
        if let Some(recording) = recording {
            recording.finish();
        }
    }
}

/// Keeps a plain-RTP `join` and an `rtp_forward` on this machine (see the module's comment).
fn confine(text: &str, sink_port: u16) -> Cow<'_, str> {
    // Parsed as the plugin parses it, so that nothing it reads escapes the rewrite.
    let Ok(mut message) = json_text::parse(text) else {
        return Cow::Borrowed(text);
    };
    let mut changed = false;
    // An `rtp_forward` names a host (an address or a name to resolve) and a port: every host
    // becomes 127.0.0.1, so that nothing is sent away and no name is looked up.
    if let Some(object) = message.as_object_mut() {
        if object
            .get("host")
            .is_some_and(|h| h.as_str().is_some_and(|h| h != "127.0.0.1"))
        {
            object.insert("host".into(), json!("127.0.0.1"));
            changed = true;
        }
        if let Some(port) = object.get("port").and_then(Value::as_u64)
            && (1..=65535).contains(&port)
            && port != sink_port as u64
        {
            object.insert("port".into(), json!(sink_port));
            changed = true;
        }
    }
    let Some(rtp) = message.get_mut("rtp").and_then(Value::as_object_mut) else {
        return if changed {
            Cow::Owned(message.to_string())
        } else {
            Cow::Borrowed(text)
        };
    };
    if let Some(ip) = rtp.get("ip").and_then(Value::as_str)
        && ip.parse::<IpAddr>().is_ok()
        && ip != "127.0.0.1"
    {
        rtp.insert("ip".into(), json!("127.0.0.1"));
        changed = true;
    }
    if let Some(port) = rtp.get("port").and_then(Value::as_u64)
        && (1..=65535).contains(&port)
        && port != sink_port as u64
    {
        rtp.insert("port".into(), json!(sink_port));
        changed = true;
    }
    if changed {
        Cow::Owned(message.to_string())
    } else {
        Cow::Borrowed(text)
    }
}

/// Nesting of a value: 0 for a scalar.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// `json_text::parse` (which cuts containers deeper than 32 to `null`) reads all that
/// serde_json reads, and what is no deeper than the cut exactly as serde_json does.
fn check_parse(text: &str) {
    let Ok(plain) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let ours = json_text::parse(text).expect("JSON that serde_json reads");
    if depth(&plain) <= 32 {
        assert_eq!(ours, plain, "json_text changed shallow JSON");
    }
}

/// `AUDIOROOM_FUZZ_TRACE=1` prints every request and reply: to see what an input does.
fn tracing() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("AUDIOROOM_FUZZ_TRACE").is_some())
}

fn check_reply(reply: &Value) {
    if tracing() {
        eprintln!("  -> {reply}");
    }
    assert!(
        reply.get("audioroom").is_some_and(Value::is_string),
        "a reply without `audioroom`: {reply}"
    );
}

/// A request on a handle, as `handle_message` and the handler thread take it.
fn on_handle(session: &Session, text: &str, offer: &OfferInput) {
    match dispatch(session, text) {
        Dispatch::Reply(reply) => check_reply(&reply),
        Dispatch::Queue => match asynchronous(session, text, offer) {
            Ok(reply) => check_reply(&reply.event),
            Err(error) => check_reply(&error.to_event()),
        },
    }
}

/// An offer with Opus (unless bit 3), PCMU (bit 2) and PCMA (bit 1): none of them is an offer
/// the plugin must refuse.
fn offer(param: u8) -> OfferInput {
    OfferInput::Offer(Offer {
        opus_payload_type: (param & 0x08 == 0).then_some(if param & 0x40 != 0 {
            96 + param % 32
        } else {
            111
        }),
        pcmu_payload_type: (param & 0x04 != 0).then_some(0),
        pcma_payload_type: (param & 0x02 != 0).then_some(8),
        audio_level_ext: (param & 0x20 != 0).then_some(1 + param % 14),
        fec: param & 0x10 != 0,
    })
}

fn new_session(plugin: &Arc<Plugin>) -> Session {
    Session::new(plugin.clone(), Box::new(FuzzEndpoint))
}

fn run(h: &mut Harness, data: &[u8]) {
    let plugin = h.plugin.clone();
    let sink_port = h.mix_sink.local_addr().unwrap().port();
    let mut sessions: Vec<Session> = (0..SESSIONS).map(|_| new_session(&plugin)).collect();
    for line in data.split(|b| *b == b'\n').take(MAX_LINES) {
        let [action, param, rest @ ..] = line else {
            continue;
        };
        let session = &sessions[*param as usize % SESSIONS];
        // The glue hands the core the text jansson printed: always UTF-8.
        let text = String::from_utf8_lossy(rest);
        check_parse(&text);
        let text = confine(&text, sink_port);
        let action = action.wrapping_sub(b'0') % 9;
        if tracing() {
            eprintln!("{action} on {}: {text}", param % 4);
        }
        match action {
            0 => on_handle(session, &text, &OfferInput::None),
            1 => on_handle(session, &text, &offer(*param)),
            2 => on_handle(session, &text, &OfferInput::Invalid("bad SDP".into())),
            3 => check_reply(&admin(&plugin, &text)),
            4 => session.setup_media(),
            5 => session.hangup_media(),
            6 => session.incoming_rtp(rest, (param & 0x80 != 0).then_some(param & 0x7f)),
            7 => {
                let _ = session.describe();
                let at = *param as usize % SESSIONS;
                sessions[at].destroy();
                sessions[at] = new_session(&plugin);
            }
            _ => {
                for room in plugin.rooms.all() {
                    room.tick();
                }
            }
        }
    }
    for session in &sessions {
        let _ = session.describe();
        session.destroy();
    }
    drop(sessions);
    destroy_rooms(&plugin);
    create_base_rooms(&plugin);
    let mut buf = [0u8; 2048];
    while h.mix_sink.recv(&mut buf).is_ok() {}
    assert_eq!(locks::violations(), 0, "a lock was taken out of order");
    h.inputs += 1;
    if h.inputs.is_multiple_of(SWEEP_EVERY) {
        for folder in ["recordings", "jobs"] {
            if let Ok(entries) = std::fs::read_dir(h.root.join(folder)) {
                for entry in entries.flatten() {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut h = harness().lock().unwrap_or_else(|e| e.into_inner());
    if h.inputs == 0 {
        create_base_rooms(&h.plugin);
    }
    run(&mut h, data);
});
