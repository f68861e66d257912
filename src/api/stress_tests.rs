//! Requests hammered against rooms that mix continuously: many threads send `configure`,
//! `changeroom`, `mute`, `kick`, `leave`, `join`, the room-wide controls (`suspend`,
//! `mute_room`, `kick_all`, `enable_recording`, `allowed`, a permanent `edit`) and destroy
//! sessions while talkers keep sending audio, for a fixed number of operations. A lock-order inversion fails the test at
//! once (the checked locks panic in tests, and `locks::violations` counts what a mixer thread
//! would otherwise swallow); a deadlock the checker could not see fails it at the watchdog's
//! deadline, naming every blocked thread with the lock it waits for and the locks it holds.

use super::test_plugin::ask;
use crate::conference::config::Config;
use crate::conference::plugin::Plugin;
use crate::conference::session::Session;
use crate::conference::testing::{FakeEndpoint, FakeHost};
use crate::locks;
use crate::media::codec::test_signals::tone;
use crate::media::codec::{Encoder, EncoderProfile, MAX_OPUS_PACKET};
use crate::media::rtp;
use serde_json::json;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const WORKERS: usize = 4;
const OPERATIONS_PER_WORKER: usize = 2500;
const SESSIONS: usize = 8;
const WATCHDOG: Duration = Duration::from_secs(120);

/// Opus frames of a tone, each in an RTP packet, to cycle through.
fn talk_packets() -> Vec<Vec<u8>> {
    let mut encoder = Encoder::new(48000, EncoderProfile::default()).unwrap();
    (0..50)
        .map(|i| {
            let mut payload = [0u8; MAX_OPUS_PACKET];
            let pcm = tone(48000, 440.0 + 10.0 * i as f64, 8000.0, i * 960, 960);
            let len = encoder.encode(&pcm, &mut payload).unwrap();
            let mut packet = vec![0u8; rtp::RTP_HEADER_LEN + len];
            rtp::write_header(&mut packet, 111, false, 0, 0, 7);
            packet[rtp::RTP_HEADER_LEN..].copy_from_slice(&payload[..len]);
            packet
        })
        .collect()
}

struct Stress {
    plugin: Arc<Plugin>,
    /// Replaced when a worker destroys one and makes a new one.
    sessions: Vec<RwLock<Arc<Session>>>,
    stop: AtomicBool,
    operations: AtomicU64,
}

fn new_session(plugin: &Arc<Plugin>) -> Arc<Session> {
    Arc::new(Session::new(
        plugin.clone(),
        FakeEndpoint::new().session_endpoint(),
    ))
}

/// Joins (or rejoins) a session into a room and marks its media up, as a PeerConnection would.
fn join(session: &Session, room: &str) {
    let reply = ask(session, json!({"request": "join", "id": room}));
    if reply["audioroom"] == "joined" {
        session.setup_media();
    }
}

impl Stress {
    fn session(&self, n: usize) -> Arc<Session> {
        self.sessions[n].read().unwrap().clone()
    }

    /// One random operation by a worker.
    fn operate(&self, seed: u64) {
        let n = (seed % SESSIONS as u64) as usize;
        let session = self.session(n);
        let room = if seed % 3 == 0 { "a" } else { "b" };
        let userid = session.participant().map(|p| p.user_id()).unwrap_or(1);
        let reply = match seed % 17 {
            0..=2 => ask(
                &session,
                json!({"request": "configure", "volume": seed % 200, "muted": seed % 4 == 0,
                       "display": format!("p{seed}")}),
            ),
            3 | 4 => ask(&session, json!({"request": "changeroom", "id": room})),
            5 => ask(
                &session,
                json!({"request": if seed % 2 == 0 {"mute"} else {"unmute"}, "id": room,
                       "secret": "s", "userid": userid}),
            ),
            6 => ask(
                &session,
                json!({"request": "kick", "id": room, "secret": "s", "userid": userid}),
            ),
            7 => ask(&session, json!({"request": "leave"})),
            8 => {
                session.destroy();
                let fresh = new_session(&self.plugin);
                join(&fresh, room);
                *self.sessions[n].write().unwrap() = fresh;
                json!({})
            }
            9 => ask(&session, json!({"request": "listparticipants", "id": room})),
            11 | 12 => ask(
                &session,
                json!({"request": if seed % 2 == 0 {"suspend"} else {"resume"}, "id": room,
                       "secret": "s", "userid": userid}),
            ),
            13 => ask(
                &session,
                json!({"request": if seed % 2 == 0 {"mute_room"} else {"unmute_room"},
                       "id": room, "secret": "s"}),
            ),
            14 if seed % 8 == 0 => ask(
                &session,
                json!({"request": "kick_all", "id": room, "secret": "s"}),
            ),
            15 if seed % 4 == 0 => ask(
                &session,
                json!({"request": "enable_recording", "id": room, "secret": "s",
                       "record": seed % 8 == 0}),
            ),
            16 => ask(
                &session,
                json!({"request": "allowed", "id": room, "secret": "s",
                       "action": if seed % 2 == 0 {"add"} else {"remove"}, "allowed": ["t"],
                       "permanent": seed % 4 == 0}),
            ),
            _ => ask(&session, json!({"request": "list"})),
        };
        if reply["error_code"] == 487 {
            // Kicked or left: in again, so there is something to stress.
            join(&session, room);
        }
        self.operations.fetch_add(1, Relaxed);
    }
}

#[test]
fn requests_against_ticking_rooms_never_deadlock() {
    let root = std::env::temp_dir().join(format!("audioroom-stress-{}", std::process::id()));
    let config = Config {
        archive_path: root.join("recordings"),
        job_path: root.join("jobs"),
        local_ip: Some("127.0.0.1".parse().unwrap()),
        mixer_threads: 2,
        playout: crate::media::jitter::Mode::Fixed(1),
        ..Config::default()
    };
    let plugin = Plugin::start(config, Arc::new(FakeHost::default())).unwrap();
    let violations_before = locks::violations();
    let admin = new_session(&plugin);
    for room in ["a", "b"] {
        let created = ask(
            &admin,
            json!({"request": "create", "id": room, "secret": "s", "allow_rtp_participants": true,
                   "audiolevel_event": true, "audio_active_packets": 5}),
        );
        assert_eq!(created["audioroom"], "created");
    }
    let mut sessions = Vec::new();
    for n in 0..SESSIONS {
        let session = new_session(&plugin);
        join(&session, if n % 2 == 0 { "a" } else { "b" });
        sessions.push(RwLock::new(session));
    }
    let stress = Arc::new(Stress {
        plugin: plugin.clone(),
        sessions,
        stop: AtomicBool::new(false),
        operations: AtomicU64::new(0),
    });

    // Two plain-RTP talkers, read by the mixer threads from their sockets.
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rtp_ports = Vec::new();
    let mut plain_sessions = Vec::new();
    for room in ["a", "b"] {
        let plain = new_session(&plugin);
        let joined = ask(
            &plain,
            json!({"request": "join", "id": room, "rtp": {"ip": "127.0.0.1",
                   "port": sender.local_addr().unwrap().port(), "audiolevel_ext": 1}}),
        );
        rtp_ports.push(joined["rtp"]["port"].as_u64().unwrap() as u16);
        plain_sessions.push(plain);
    }

    let packets = talk_packets();
    let mut threads = Vec::new();
    // Janus's RTP threads: every session's talker, as fast as it goes.
    {
        let (stress, packets) = (stress.clone(), packets.clone());
        threads.push(std::thread::spawn(move || {
            let mut sequence = 0u16;
            while !stress.stop.load(Relaxed) {
                for n in 0..SESSIONS {
                    let mut packet = packets[sequence as usize % packets.len()].clone();
                    packet[2..4].copy_from_slice(&sequence.to_be_bytes());
                    stress.session(n).incoming_rtp(&packet, Some(30));
                }
                for port in &rtp_ports {
                    let _ = sender.send_to(&packets[0], ("127.0.0.1", *port));
                }
                sequence = sequence.wrapping_add(1);
                std::thread::sleep(Duration::from_millis(2));
            }
        }));
    }
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let stress = stress.clone();
        workers.push(std::thread::spawn(move || {
            let mut seed = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(w as u64 + 1);
            for _ in 0..OPERATIONS_PER_WORKER {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                stress.operate(seed);
            }
        }));
    }

    let started = Instant::now();
    while workers.iter().any(|w| !w.is_finished()) {
        assert!(
            started.elapsed() < WATCHDOG,
            "stuck after {} operations; blocked threads:\n{}",
            stress.operations.load(Relaxed),
            locks::waits::report()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for worker in workers {
        worker.join().expect("a worker panicked (see above)");
    }
    stress.stop.store(true, Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(
        stress.operations.load(Relaxed),
        (WORKERS * OPERATIONS_PER_WORKER) as u64
    );
    assert_eq!(
        locks::violations(),
        violations_before,
        "locks taken out of order"
    );
    // The rooms still mix: the mixer threads survived.
    let stats = plugin.services.mixers.describe();
    assert!(stats["threads"][0]["ticks"].as_u64().unwrap() > 0);
    for session in (0..SESSIONS)
        .map(|n| stress.session(n))
        .chain(plain_sessions)
    {
        session.destroy();
    }
    admin.destroy();
    plugin.shutdown();
    let _ = std::fs::remove_dir_all(&root);
}
