//! A room's recording as the mixer feeds it, ticked by hand: each participant's track holds the
//! packets they sent at the tick they were played (quiet ones the mixer never decoded too),
//! lined up with the room's WAV; the speech timeline follows the gate; leaving and coming back
//! makes a new track, and so does a recording stopped and started again (`enable_recording`).

use crate::archive::ArchiveSettings;
use crate::archive::ogg_read;
use crate::archive::recorder::Recorder;
use crate::conference::access::AccessList;
use crate::conference::events::{Events, Notices};
use crate::conference::participant::{Participant, Settings, Transport};
use crate::conference::room::{Room, RoomSettings};
use crate::conference::services::Services;
use crate::conference::testing::{FakeEndpoint, FakeHost};
use crate::media::codec::test_signals::{goertzel_db, tone};
use crate::media::codec::{Encoder, EncoderProfile, MAX_OPUS_PACKET};
use crate::media::jitter::{Mode, PacketHeader};
use crate::media::talk::TalkSettings;
use crate::mixer::pool::{Mixable, MixerPool};
use crate::mixer::speakers::MixPolicy;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const TICK: usize = 960;

/// A participant's sender: its encoder and RTP numbering.
struct Sender {
    participant: Arc<Participant>,
    encoder: Encoder,
    sequence: u16,
}

impl Sender {
    fn new(user_id: u64) -> Sender {
        let settings = Settings {
            display: Some(format!("user {user_id}")),
            muted: false,
            volume_percent: 100,
            // Packets play at the tick they come: the test sends them just before each tick.
            playout: Mode::Fixed(0),
            profile: EncoderProfile::default(),
        };
        let participant = Participant::new(
            FakeEndpoint::new(),
            Transport::WebRtc,
            user_id,
            &settings,
            48000,
            (crate::media::audio_codec::AudioCodec::Opus, 111),
        )
        .unwrap();
        participant.set_setup(true);
        Sender {
            participant: Arc::new(participant),
            encoder: Encoder::new(48000, EncoderProfile::default()).unwrap(),
            sequence: 0,
        }
    }

    /// One 20 ms packet of `freq` for tick `tick`, with the level the sender claims for it.
    fn send(&mut self, freq: f64, tick: usize, level: u8) {
        let mut p = [0u8; MAX_OPUS_PACKET];
        let pcm = tone(48000, freq, 6000.0, tick * TICK, TICK);
        let len = self.encoder.encode(&pcm, &mut p).unwrap();
        self.sequence = self.sequence.wrapping_add(1);
        let header = PacketHeader {
            ssrc: 7,
            sequence: self.sequence,
            timestamp: tick as u32 * TICK as u32,
        };
        self.participant.receive(header, &p[..len], Some(level));
    }
}

fn settings() -> RoomSettings {
    RoomSettings {
        description: "tracks".into(),
        secret: None,
        pin: None,
        is_private: false,
        audiolevel_event: false,
        talk: TalkSettings::default(),
        mixing: MixPolicy::default(),
        allow_rtp_participants: false,
        rtp_symmetric: false,
        default_playout: Mode::Fixed(0),
        access: AccessList::default(),
        recording_pattern: None,
        record_participants: true,
    }
}

/// The first 10 ms window (5 ms steps) in `from..to` ticks where `freq` is loud.
fn onset(pcm: &[i16], freq: f64, from: usize, to: usize) -> Option<usize> {
    (from * TICK..to * TICK)
        .step_by(240)
        .find(|&i| i + 480 <= pcm.len() && goertzel_db(&pcm[i..i + 480], 48000, freq) > -30.0)
}

/// A room recorded into `root`, with the recorder and services it needs; no mixer thread
/// ticks it (the test does).
fn recorded_room(name: &str) -> (PathBuf, Arc<Services>, Arc<Room>) {
    let root = std::env::temp_dir().join(format!("audioroom-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let archive = ArchiveSettings {
        archive_path: root.join("recordings"),
        recording_pattern: "rec-#{id}-#{time}".into(),
        track_pattern: "rec-#{id}-#{time}-#{userid}".into(),
        job_path: root.join("jobs"),
        job_pattern: "job-#{md5}".into(),
    };
    let recorder =
        Recorder::start(&archive, Box::new(|_, _, _| {}), Arc::new(|_: &Value| {})).unwrap();
    let mixers = MixerPool::start(1).unwrap();
    mixers.stop(Duration::from_secs(1));
    let events = Events::start(Arc::new(FakeHost::default()), false).unwrap();
    let services = Arc::new(Services {
        recorder,
        mixers,
        events,
        announcements: crate::media::announcement_reader::AnnouncementReader::start().unwrap(),
    });
    let room = Arc::new(Room::new(
        "r".into(),
        48000,
        settings(),
        true,
        services.clone(),
    ));
    (root, services, room)
}

/// Every job file's `data`, oldest recording first.
fn jobs(root: &std::path::Path) -> Vec<Value> {
    let mut jobs: Vec<Value> = std::fs::read_dir(root.join("jobs"))
        .unwrap()
        .flatten()
        .map(|e| serde_json::from_slice::<Value>(&std::fs::read(e.path()).unwrap()).unwrap())
        .map(|j| j["data"].clone())
        .collect();
    jobs.sort_by_key(|d| d["started"].as_u64());
    jobs
}

#[test]
fn tracks_hold_each_participants_packets_at_the_tick_they_played_lined_up_with_the_wav() {
    let (root, services, room) = recorded_room("room-tracks");
    let (mut a, mut b, mut c) = (Sender::new(1), Sender::new(2), Sender::new(3));
    let mut notices = Notices::new();
    room.add(&a.participant, &mut notices).unwrap();
    room.add(&b.participant, &mut notices).unwrap();
    for tick in 0..100 {
        match tick {
            20 | 35 => drop(room.add(&c.participant, &mut notices).unwrap()),
            30 => assert!(room.remove(&c.participant, &mut notices)),
            _ => {}
        }
        // A speaks (440 Hz, loud) from 200 to 800 ms; B (1000 Hz) from 1000 to 1600 ms. The
        // rest of the time both send a 2500 Hz (A) or 2000 Hz (B) hum they say is quiet: the
        // mixer does not decode it, but it is what they sent, so their tracks hold it.
        if (10..40).contains(&tick) {
            a.send(440.0, tick, 20);
        } else {
            a.send(2500.0, tick, 70);
        }
        if (50..80).contains(&tick) {
            b.send(1000.0, tick, 20);
        } else {
            b.send(2000.0, tick, 70);
        }
        if (20..30).contains(&tick) || tick >= 35 {
            c.send(3000.0, tick, 70);
        }
        assert!(room.tick());
    }
    let (_, recording) = room.destroy();
    recording.unwrap().finish();
    services.recorder.stop(Duration::from_secs(5));
    services.events.stop();

    let jobs = jobs(&root);
    let data = &jobs[0];
    assert_eq!(data["duration_ms"], 2000);
    assert_eq!(
        data["speech"],
        json!([
            {"userid": 1, "start_ms": 200, "end_ms": 800},
            {"userid": 2, "start_ms": 1000, "end_ms": 1600},
        ])
    );
    let tracks = data["tracks"].as_array().unwrap();
    let listed: Vec<(u64, &str, u64, u64)> = tracks
        .iter()
        .map(|t| {
            (
                t["userid"].as_u64().unwrap(),
                t["display"].as_str().unwrap(),
                t["offset_ms"].as_u64().unwrap(),
                t["duration_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (1, "user 1", 0, 2000),
            (2, "user 2", 0, 2000),
            (3, "user 3", 400, 200),
            (3, "user 3", 700, 1300)
        ]
    );

    let wav: Vec<i16> = hound::WavReader::open(data["audio"].as_str().unwrap())
        .unwrap()
        .samples::<i16>()
        .map(Result::unwrap)
        .collect();
    let track = |n: usize| {
        ogg_read::decode(
            &std::fs::read(PathBuf::from(tracks[n]["file"].as_str().unwrap())).unwrap(),
        )
    };
    let (ta, tb) = (track(0), track(1));
    // Each track holds its sender's voice, and only theirs.
    assert!(goertzel_db(&ta[12 * TICK..38 * TICK], 48000, 440.0) > -20.0);
    assert!(goertzel_db(&ta[12 * TICK..38 * TICK], 48000, 1000.0) < -50.0);
    assert!(goertzel_db(&tb[52 * TICK..78 * TICK], 48000, 1000.0) > -20.0);
    // The hum nobody mixed is in the tracks, not in the WAV.
    assert!(goertzel_db(&ta[70 * TICK..98 * TICK], 48000, 2500.0) > -20.0);
    assert!(goertzel_db(&tb[2 * TICK..48 * TICK], 48000, 2000.0) > -20.0);
    assert!(goertzel_db(&wav[2 * TICK..9 * TICK], 48000, 2000.0) < -50.0);
    assert!(goertzel_db(&wav[70 * TICK..98 * TICK], 48000, 2500.0) < -50.0);
    assert!(goertzel_db(&track(3)[2 * TICK..60 * TICK], 48000, 3000.0) > -20.0);
    // A word starts in the track where it starts in the mix (offsets are 0 here).
    for (pcm, freq, from) in [(&ta, 440.0, 5), (&tb, 1000.0, 45)] {
        let in_track = onset(pcm, freq, from, from + 10).unwrap();
        let in_mix = onset(&wav, freq, from, from + 10).unwrap();
        assert!(
            in_track.abs_diff(in_mix) <= 240,
            "{freq} Hz: {in_track} vs {in_mix}"
        );
        assert!(
            in_mix.abs_diff((from + 5) * TICK) <= 480,
            "{freq} Hz at {in_mix}"
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_recording_stopped_and_started_again_closes_the_tracks_and_starts_new_ones_for_everyone() {
    let (root, services, room) = recorded_room("room-tracks-restart");
    let (mut a, mut b) = (Sender::new(1), Sender::new(2));
    let mut notices = Notices::new();
    room.add(&a.participant, &mut notices).unwrap();
    room.add(&b.participant, &mut notices).unwrap();
    for tick in 0..60 {
        if tick == 20 {
            // enable_recording false: the recording (and its tracks) is finished.
            let change = room.set_recording(false, None, &mut notices);
            change.to_finish.unwrap().finish();
        }
        if tick == 30 {
            // enable_recording true, people in the room: a new recording with both of them.
            assert!(
                room.set_recording(true, None, &mut notices)
                    .to_finish
                    .is_none()
            );
        }
        a.send(440.0, tick, if tick % 30 < 10 { 20 } else { 70 });
        b.send(1000.0, tick, 70);
        assert!(room.tick());
    }
    let (_, recording) = room.destroy();
    recording.unwrap().finish();
    services.recorder.stop(Duration::from_secs(5));
    services.events.stop();

    let jobs = jobs(&root);
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    for (job, ms) in jobs.iter().zip([400, 600]) {
        assert_eq!(job["duration_ms"], ms);
        let tracks: Vec<(u64, u64, u64)> = job["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let file = PathBuf::from(t["file"].as_str().unwrap());
                let pcm = ogg_read::decode(&std::fs::read(&file).unwrap());
                assert_eq!(pcm.len() as u64, t["duration_ms"].as_u64().unwrap() * 48);
                (
                    t["userid"].as_u64().unwrap(),
                    t["offset_ms"].as_u64().unwrap(),
                    t["duration_ms"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(tracks, [(1, 0, ms), (2, 0, ms)], "{job}");
        // A speaks in the first 200 ms of each recording.
        assert_eq!(
            job["speech"],
            json!([{"userid": 1, "start_ms": 0, "end_ms": 200}])
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
