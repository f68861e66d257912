//! Recorder tests: WAV files parsed back, no-overwrite names, crash-safe headers, job files,
//! and failures reported instead of crashing.

use super::*;
use crate::archive::names::decode_id;
use crate::media::codec::test_signals::tone;
use hound::{SampleFormat, WavSpec};
use serde_json::{Value, json};
use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

struct Folders {
    root: PathBuf,
}

impl Folders {
    fn new(name: &str) -> Folders {
        let root =
            std::env::temp_dir().join(format!("audioroom-rec-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        Folders { root }
    }

    fn config(&self, pattern: &str) -> ArchiveSettings {
        ArchiveSettings {
            archive_path: self.root.join("recordings"),
            job_path: self.root.join("jobs"),
            recording_pattern: pattern.into(),
            track_pattern: format!("{pattern}-#{{userid}}"),
            job_pattern: "job-#{md5}".into(),
        }
    }

    fn wavs(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(self.root.join("recordings"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "wav"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    fn jobs(&self) -> Vec<Value> {
        fs::read_dir(self.root.join("jobs"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .map(|e| serde_json::from_slice(&fs::read(e.path()).unwrap()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Folders {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

const PATIENCE: Duration = Duration::from_secs(5);

fn quiet_recorder(config: &ArchiveSettings) -> Recorder {
    Recorder::start(config, Box::new(|_, _, _| {}), Arc::new(|_: &Value| {})).unwrap()
}

#[test]
fn a_recording_is_a_wav_of_exactly_the_frames_given_and_a_job_describes_it() {
    let folders = Folders::new("wav");
    let config = folders.config("rec-#{id}-#{time}-#{type}");
    let finished = Arc::new(Mutex::new(Vec::new()));
    let recorder = {
        let finished = finished.clone();
        Recorder::start(
            &config,
            Box::new(|_, _, _| panic!("no failure expected")),
            Arc::new(move |e: &Value| finished.lock().unwrap().push(e.clone())),
        )
        .unwrap()
    };
    let before = unix_time_us();
    let mut recording = recorder.start_recording("café ☕", 16000);
    let mut written = Vec::new();
    for frame in 0..50 {
        let pcm = tone(16000, 440.0, 10000.0, frame * 320, 320);
        recording.write(pcm.clone());
        written.extend(pcm);
    }
    recording.finish();
    recorder.stop(PATIENCE);

    let wavs = folders.wavs();
    assert_eq!(wavs.len(), 1);
    let name = wavs[0].file_name().unwrap().to_str().unwrap();
    let middle = name
        .strip_prefix("rec-")
        .unwrap()
        .strip_suffix("-audio.wav")
        .unwrap();
    let (encoded_id, time) = middle.rsplit_once('-').unwrap();
    assert_eq!(decode_id(encoded_id).as_deref(), Some("café ☕"));
    let time: u64 = time.parse().unwrap();
    assert!(time >= before && time <= unix_time_us());

    let mut reader = hound::WavReader::open(&wavs[0]).unwrap();
    assert_eq!(
        reader.spec(),
        WavSpec {
            channels: 1,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int
        }
    );
    assert_eq!(reader.duration(), 16000);
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    assert_eq!(samples, written);

    let jobs = folders.jobs();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job["plugin"], "janus.plugin.cm.audioroom");
    assert_eq!(job["event"], "archive-finished");
    let data = &job["data"];
    assert_eq!(data["id"], "café ☕");
    assert_eq!(data["audio"], wavs[0].to_str().unwrap());
    assert_eq!(data["duration_ms"], 1000);
    assert_eq!(data["sampling_rate"], 16000);
    assert_eq!(data["started"], time);
    assert!(data["finished"].as_u64().unwrap() >= time);
    assert_eq!(data["uid"].as_str().unwrap().len(), 32);
    assert!(data.get("incomplete").is_none());
    assert_eq!(
        finished.lock().unwrap().as_slice(),
        std::slice::from_ref(job),
        "event handlers get the same event"
    );
}

#[test]
fn an_existing_file_is_never_overwritten() {
    let folders = Folders::new("clash");
    let config = folders.config("fixed-#{id}");
    fs::create_dir_all(&config.archive_path).unwrap();
    fs::write(config.archive_path.join("fixed-r.wav"), b"precious").unwrap();
    let recorder = quiet_recorder(&config);
    for _ in 0..2 {
        let mut recording = recorder.start_recording("r", 8000);
        recording.write(vec![1; 160]);
        recording.finish();
    }
    recorder.stop(PATIENCE);
    let names: Vec<String> = folders
        .wavs()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["fixed-r-1.wav", "fixed-r-2.wav", "fixed-r.wav"]);
    assert_eq!(
        fs::read(config.archive_path.join("fixed-r.wav")).unwrap(),
        b"precious"
    );
}

#[test]
fn hostile_ids_stay_inside_the_archive_folder() {
    let folders = Folders::new("hostile");
    let config = folders.config("#{id}");
    let recorder = quiet_recorder(&config);
    for id in ["../../x", "a/b", ".hidden", "..", "/etc/passwd"] {
        let mut recording = recorder.start_recording(id, 8000);
        recording.write(vec![0; 160]);
        recording.finish();
    }
    recorder.stop(PATIENCE);
    let wavs = folders.wavs();
    assert_eq!(wavs.len(), 5, "{wavs:?}");
    for wav in &wavs {
        assert_eq!(wav.parent().unwrap(), config.archive_path);
        assert!(!wav.file_name().unwrap().to_string_lossy().starts_with('.'));
    }
    assert!(!folders.root.join("x.wav").exists());
}

#[test]
fn the_header_is_kept_current_so_a_crash_leaves_a_valid_file() {
    let folders = Folders::new("crash");
    let config = folders.config("crash");
    let recorder = quiet_recorder(&config);
    let mut recording = recorder.start_recording("r", 8000);
    // 2.5 s of audio in real time; the file is read while the recording is still open, as a
    // crash would leave it.
    for frame in 0..125 {
        recording.write(tone(8000, 300.0, 5000.0, frame * 160, 160));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let snapshot = fs::read(folders.wavs()[0].clone()).unwrap();
    let reader = hound::WavReader::new(std::io::Cursor::new(&snapshot)).unwrap();
    let seconds = reader.duration() as f64 / 8000.0;
    assert!(
        seconds >= 1.4,
        "the header covers all but the last second: {seconds} s"
    );
    assert!(reader.duration() as usize * 2 + 44 <= snapshot.len());
    recording.finish();
    recorder.stop(PATIENCE);
}

#[test]
fn a_recording_finished_before_any_audio_still_leaves_a_valid_file_and_job() {
    let folders = Folders::new("empty");
    let recorder = quiet_recorder(&folders.config("e"));
    recorder.start_recording("r", 48000).finish();
    recorder.stop(PATIENCE);
    assert_eq!(
        hound::WavReader::open(&folders.wavs()[0])
            .unwrap()
            .duration(),
        0
    );
    assert_eq!(folders.jobs()[0]["data"]["duration_ms"], 0);
}

#[test]
fn a_folder_that_cannot_be_written_is_reported_not_fatal() {
    let folders = Folders::new("fail");
    let config = folders.config("f");
    fs::create_dir_all(&folders.root).unwrap();
    fs::write(&config.archive_path, b"a file, not a folder").unwrap();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let recorder = {
        let failures = failures.clone();
        Recorder::start(
            &config,
            Box::new(move |room: &str, id, reason: &str| {
                failures
                    .lock()
                    .unwrap()
                    .push((room.to_owned(), id, reason.to_owned()))
            }),
            Arc::new(|_: &Value| {}),
        )
        .unwrap()
    };
    let mut recording = recorder.start_recording("room", 8000);
    let id = recording.id();
    for _ in 0..10 {
        recording.write(vec![0; 160]);
    }
    recording.finish();
    recorder.stop(PATIENCE);
    let failures = failures.lock().unwrap().clone();
    assert_eq!(failures.len(), 1, "reported once: {failures:?}");
    let (room, failed_id, reason) = &failures[0];
    assert_eq!((room.as_str(), *failed_id), ("room", id));
    assert!(
        reason.contains(config.archive_path.to_str().unwrap()),
        "{reason}"
    );
    assert!(
        reason.contains("Not a directory") || reason.contains("exists"),
        "the OS error: {reason}"
    );
    assert!(
        folders.jobs().is_empty(),
        "no job for a recording that never had a file"
    );
}

#[test]
fn a_stop_that_runs_out_of_time_still_leaves_exactly_one_job_per_recording() {
    let folders = Folders::new("patience");
    let config = folders.config("p-#{id}");
    let recorder = quiet_recorder(&config);
    let mut recording = recorder.start_recording("slow", 48000);
    recording.join(1, 7, None, true);
    let packet = opus_packets(440.0, 1).remove(0);
    recording.write_tick(vec![1000; 960], vec![voiced(1, true, Some(&packet))]);
    // Far more than the thread writes before `stop` gives up at once: 400 s of audio queued.
    for _ in 0..20_000 {
        recording.write(vec![1000; 960]);
    }
    // The file exists (its first frame was written) before patience runs out.
    let deadline = Instant::now() + Duration::from_secs(10);
    while folders.wavs().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    recording.finish();
    recorder.stop(Duration::ZERO);
    let early = folders.jobs();
    // Let the thread get to the end of its queue, as it would if Janus waited.
    recorder.stop(Duration::from_secs(20));
    let jobs = folders.jobs();
    assert_eq!(jobs.len(), 1, "exactly one job: {jobs:?}");
    assert_eq!(
        early, jobs,
        "written by the impatient stop, not again by the thread"
    );
    let data = &jobs[0]["data"];
    assert_eq!(data["incomplete"], true);
    assert!(
        data["error"]
            .as_str()
            .unwrap()
            .contains("could not be finished within 0 s"),
        "{data}"
    );
    // The track is listed, unfinished; its speech segment (20 ms) too.
    assert!(
        data["tracks"][0]["error"]
            .as_str()
            .unwrap()
            .contains("could not be finished"),
        "{data}"
    );
    assert_eq!(
        data["speech"],
        json!([{"userid": 7, "start_ms": 0, "end_ms": 20}])
    );
    // The WAV is valid and holds at least what the job claims.
    let reader = hound::WavReader::open(&folders.wavs()[0]).unwrap();
    assert!(reader.duration() as u64 * 1000 / 48000 >= data["duration_ms"].as_u64().unwrap());
}

#[test]
fn a_job_folder_that_cannot_be_written_is_retried_until_it_can() {
    let folders = Folders::new("retry");
    let config = folders.config("r-#{id}");
    fs::create_dir_all(&folders.root).unwrap();
    // The job folder's place is taken by a file: writing a job fails.
    fs::write(&config.job_path, b"in the way").unwrap();
    let written = Arc::new(Mutex::new(Vec::new()));
    let recorder = {
        let written = written.clone();
        Recorder::start(
            &config,
            Box::new(|_, _, _| {}),
            Arc::new(move |e: &Value| written.lock().unwrap().push(e.clone())),
        )
        .unwrap()
    };
    let mut recording = recorder.start_recording("r", 8000);
    recording.write(vec![0; 160]);
    recording.finish();
    std::thread::sleep(Duration::from_millis(500));
    assert!(written.lock().unwrap().is_empty(), "not written yet");
    // The operator fixes the folder; the next try succeeds.
    fs::remove_file(&config.job_path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while written.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(folders.jobs().len(), 1, "written on a later try");
    assert_eq!(written.lock().unwrap().len(), 1);
    recorder.stop(PATIENCE);
    assert_eq!(folders.jobs().len(), 1);
}

/// 20 ms Opus packets of a tone (48 kHz, as browsers send), `frames` of them.
fn opus_packets(freq: f64, frames: usize) -> Vec<Vec<u8>> {
    use crate::media::codec::{Encoder, EncoderProfile, MAX_OPUS_PACKET};
    let mut encoder = Encoder::new(48000, EncoderProfile::default()).unwrap();
    (0..frames)
        .map(|i| {
            let mut p = [0u8; MAX_OPUS_PACKET];
            let len = encoder
                .encode(&tone(48000, freq, 8000.0, i * 960, 960), &mut p)
                .unwrap();
            p[..len].to_vec()
        })
        .collect()
}

fn voiced(key: u64, speaking: bool, packet: Option<&Vec<u8>>) -> Voiced {
    Voiced {
        key,
        speaking,
        loud: speaking,
        packets: packet.into_iter().cloned().collect(),
    }
}

fn opus_files(folders: &Folders) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(folders.root.join("recordings"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "opus"))
        .collect();
    files.sort();
    files
}

use crate::archive::ogg_read;
use crate::archive::recording::Voiced;
use crate::media::codec::test_signals::goertzel_db;

#[test]
fn each_member_gets_a_track_at_its_frames_and_the_job_lists_tracks_and_speech() {
    let folders = Folders::new("tracks");
    let config = folders.config("rec-#{id}");
    let recorder = quiet_recorder(&config);
    let mut recording = recorder.start_recording("café ☕", 16000);
    let (ann, bob) = (opus_packets(440.0, 100), opus_packets(1000.0, 100));
    recording.join(1, 11, Some("Ann".into()), true);
    recording.join(2, 22, None, true);
    for frame in 0..100usize {
        if frame == 70 {
            recording.leave(2);
        }
        if frame == 75 {
            recording.join(2, 22, None, true); // back: a new track
        }
        let mut voices = Vec::new();
        // Ann sends from the start, speaks from 200 to 800 ms, stops sending at 1200 ms.
        if frame < 60 {
            voices.push(voiced(1, (10..40).contains(&frame), Some(&ann[frame])));
        }
        // Bob's first packet plays at 600 ms; he speaks from 1000 ms until he leaves.
        if (30..70).contains(&frame) || frame >= 75 {
            voices.push(voiced(2, (50..70).contains(&frame), Some(&bob[frame])));
        }
        recording.write_tick(vec![0; 320], voices);
    }
    recording.finish();
    recorder.stop(PATIENCE);

    let job = &folders.jobs()[0]["data"];
    let files = opus_files(&folders);
    assert_eq!(files.len(), 3, "{files:?}");
    let tracks = job["tracks"].as_array().unwrap();
    let summary: Vec<(u64, Value, u64, u64)> = tracks
        .iter()
        .map(|t| {
            (
                t["userid"].as_u64().unwrap(),
                t["display"].clone(),
                t["offset_ms"].as_u64().unwrap(),
                t["duration_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (11, json!("Ann"), 0, 1200),
            (22, Value::Null, 600, 800),
            (22, Value::Null, 1500, 500)
        ]
    );
    assert!(job.get("incomplete").is_none(), "{job}");
    assert_eq!(
        job["speech"],
        json!([
            {"userid": 11, "start_ms": 200, "end_ms": 800},
            {"userid": 22, "start_ms": 1000, "end_ms": 1400},
        ])
    );
    // Every file is named by the pattern, listed once, and decodes to its sender's tone for as
    // long as the job says.
    let listed: Vec<PathBuf> = tracks
        .iter()
        .map(|t| PathBuf::from(t["file"].as_str().unwrap()))
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, files);
    for (track, path) in tracks.iter().zip(&listed) {
        let name = path.file_name().unwrap().to_str().unwrap();
        let user = track["userid"].as_u64().unwrap();
        // No #{time} in this pattern: Bob's second track does not replace his first.
        assert!(
            name == format!("rec-caf%C3%A9%20%E2%98%95-{user}.opus")
                || name == format!("rec-caf%C3%A9%20%E2%98%95-{user}-1.opus"),
            "{name}"
        );
        let pcm = ogg_read::decode(&fs::read(path).unwrap());
        assert_eq!(
            pcm.len() as u64,
            track["duration_ms"].as_u64().unwrap() * 48,
            "{name}"
        );
        let (mine, other) = if user == 11 {
            (440.0, 1000.0)
        } else {
            (1000.0, 440.0)
        };
        let body = &pcm[960..pcm.len() - 960];
        assert!(goertzel_db(body, 48000, mine) > -20.0, "{name}");
        assert!(goertzel_db(body, 48000, other) < -50.0, "{name}");
    }
}

#[test]
fn a_track_is_readable_while_it_is_written_as_a_crash_would_leave_it() {
    let folders = Folders::new("track-crash");
    let recorder = quiet_recorder(&folders.config("c"));
    let mut recording = recorder.start_recording("r", 48000);
    recording.join(1, 5, None, true);
    let packets = opus_packets(440.0, 125);
    for packet in &packets {
        recording.write_tick(vec![0; 960], vec![voiced(1, true, Some(packet))]);
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let snapshot = fs::read(&opus_files(&folders)[0]).unwrap();
    let pcm = ogg_read::decode(&snapshot);
    let seconds = pcm.len() as f64 / 48000.0;
    assert!(seconds >= 1.4, "all but the last second: {seconds} s");
    assert!(goertzel_db(&pcm[960..], 48000, 440.0) > -20.0);
    recording.finish();
    recorder.stop(PATIENCE);
    let finished = fs::read(&opus_files(&folders)[0]).unwrap();
    assert_eq!(ogg_read::decode(&finished).len(), 125 * 960);
    assert_eq!(ogg_read::pages(&finished).last().unwrap().flags, 4);
}

#[test]
fn a_track_that_cannot_be_made_is_listed_with_its_error_and_the_job_is_incomplete() {
    let folders = Folders::new("track-fail");
    let mut config = folders.config("w");
    config.track_pattern = "blocked/#{userid}".into();
    fs::create_dir_all(&config.archive_path).unwrap();
    fs::write(config.archive_path.join("blocked"), b"a file, not a folder").unwrap();
    let recorder = quiet_recorder(&config);
    let mut recording = recorder.start_recording("r", 8000);
    recording.join(1, 5, None, true);
    // A member who never sends a packet has no track at all.
    recording.join(2, 6, None, true);
    let packets = opus_packets(440.0, 10);
    for packet in &packets {
        recording.write_tick(vec![0; 160], vec![voiced(1, false, Some(packet))]);
    }
    recording.finish();
    recorder.stop(PATIENCE);
    let job = &folders.jobs()[0]["data"];
    assert_eq!(job["incomplete"], true);
    assert!(job.get("error").is_none(), "the WAV is whole: {job}");
    assert_eq!(job["duration_ms"], 200);
    let tracks = job["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 1, "{tracks:?}");
    assert_eq!(
        tracks[0]["file"],
        config.archive_path.join("blocked/5.opus").to_str().unwrap()
    );
    let error = tracks[0]["error"].as_str().unwrap();
    assert!(
        error.contains("blocked")
            && (error.contains("Not a directory") || error.contains("exists")),
        "{error}"
    );
}

#[test]
fn a_full_channel_drops_a_ticks_packets_counts_them_per_track_and_keeps_the_opening() {
    use std::sync::atomic::AtomicU64;
    use std::sync::mpsc::sync_channel;
    let (sender, receiver) = sync_channel(2);
    let ledger: Arc<Ledger> = Arc::new(OrderedMutex::leaf("recording ledger", HashMap::new()));
    let opening = Opening {
        room_id: "r".into(),
        rate: 48000,
        time_us: 1,
        pattern: None,
    };
    let other = sender.clone();
    let mut recording =
        RecordingHandle::new(1, opening, sender, Arc::new(AtomicU64::new(0)), ledger);
    recording.join(10, 5, None, true);
    let packets = opus_packets(440.0, 2);
    // Someone else's message takes a place: the frame fits, the packets do not.
    other.try_send(Message::Stop).unwrap();
    recording.write_tick(vec![0; 960], vec![voiced(10, true, Some(&packets[0]))]);
    assert!(matches!(receiver.try_recv(), Ok(Message::Stop)));
    assert!(matches!(receiver.try_recv(), Ok(Message::Samples { .. })));
    assert!(receiver.try_recv().is_err(), "the packets were dropped");
    // Next tick they fit, and carry the track's opening, which was kept.
    recording.write_tick(vec![0; 960], vec![voiced(10, true, Some(&packets[1]))]);
    assert!(matches!(receiver.try_recv(), Ok(Message::Samples { .. })));
    let Ok(Message::Packets {
        frame,
        packets: sent,
        ..
    }) = receiver.try_recv()
    else {
        panic!("the tick's packets");
    };
    assert_eq!((frame, sent.len()), (1, 1));
    assert_eq!(sent[0].payload, packets[1]);
    assert_eq!(sent[0].opening.as_ref().map(|o| o.user_id), Some(5));
    recording.leave(10);
    assert!(matches!(
        receiver.try_recv(),
        Ok(Message::TrackEnd {
            track: (1, 1),
            dropped_packets: 1
        })
    ));
}
