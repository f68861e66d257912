//! `names`: any room id and any pattern through the file names of recordings, the sections of
//! permanent rooms and the configuration's values.
//!
//! - `encode_id` keeps every id in its folder (no `/`, no leading `.`, only `A-Z a-z 0-9 . _ -
//!   %`) and `decode_id` gives the id back; `decode_id` of any text never panics.
//! - `section_name` writes only what Janus's config parser keeps (`a-z 0-9 - _`) and
//!   `room_id_of_section` reads the id back; any section name is read without panicking.
//! - `recording_name` and `track_name`: the id adds no folder to the pattern's, a name that starts with the id
//!   never starts with `.`; `#{id}` alone decodes back, or, cut to fit a file name, ends in
//!   `~` and the id's MD5 after whole escapes; any pattern whose own text is short yields names
//!   that fit NAME_MAX with the room the archive reserves.
//! - `job_name` of any pattern, `Config::set` of any key and value (and of every key with the
//!   value) never panic, and a port range accepted is one `PlainRtpLink::bind` can use.
//!
//! Input: `<id length / 2> <time byte>` then the id's bytes and the pattern's (each read as
//! UTF-8, lossily).
#![no_main]

use audioroom::api::body::is_valid_room_id;
use audioroom::archive::names::{
    JobName, RecordingName, TrackName, decode_id, encode_id, job_name, recording_name, track_name,
};
use audioroom::conference::config::Config;
use audioroom::conference::permanent::{room_id_of_section, section_name};
use libfuzzer_sys::fuzz_target;

const NAME_MAX: usize = 255;
const NAME_RESERVE: usize = 32;
const KEYS: [&str; 17] = [
    "job_path",
    "job_pattern",
    "archive_path",
    "recording_pattern",
    "recording_enabled",
    "record_participants",
    "track_pattern",
    "mixer_prebuffering",
    "admin_key",
    "events",
    "local_ip",
    "rtp_port_range",
    "speech_level",
    "speech_hangover",
    "max_speakers",
    "mix_all",
    "mixer_threads",
];

fn recording(pattern: &str, id: &str, time_us: u64) -> String {
    recording_name(
        pattern,
        &RecordingName {
            room_id: id,
            time_us,
            kind: "audio",
        },
    )
}

/// Every `%` followed by two hex digits: no escape cut in half.
fn whole_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len()).all(|i| {
        b[i] != b'%'
            || (i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit())
    })
}

fn check_ids(id: &str) {
    let encoded = encode_id(id);
    assert!(!encoded.contains('/'), "{encoded}");
    assert!(!encoded.starts_with('.'), "{encoded}");
    assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-%".contains(&b)),
        "{encoded}"
    );
    assert_eq!(decode_id(&encoded).as_deref(), Some(id));
    if let Some(decoded) = decode_id(id) {
        assert_eq!(decode_id(&encode_id(&decoded)), Some(decoded));
    }

    let section = section_name(id);
    assert!(
        section
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'),
        "{section}"
    );
    // An empty id is no room (ids are 1 to 255 bytes): its section is refused.
    let back = (!id.is_empty()).then_some(id);
    assert_eq!(room_id_of_section(&section).as_deref(), back);
    let _ = room_id_of_section(id);
    let _ = is_valid_room_id(id);
}

fn check_recording_names(id: &str, pattern: &str, time_us: u64) {
    let name = recording(pattern, id, time_us);
    let without_id = recording(pattern, "", time_us);
    assert_eq!(
        name.matches('/').count(),
        without_id.matches('/').count(),
        "the id added a folder: {name}"
    );
    if pattern.starts_with("#{id}") && !id.is_empty() {
        assert!(!name.starts_with('.'), "{name}");
    }

    let alone = recording("#{id}", id, time_us);
    match alone.split_once('~') {
        None => {
            assert_eq!(decode_id(&alone).as_deref(), Some(id), "{alone}");
            assert!(alone.len() + NAME_RESERVE <= NAME_MAX, "{}", alone.len());
        }
        Some((prefix, digest)) => {
            assert!(alone.len() + NAME_RESERVE <= NAME_MAX, "{}", alone.len());
            assert_eq!(digest, format!("{:x}", md5::compute(id.as_bytes())));
            assert!(encode_id(id).starts_with(prefix), "{prefix}");
            assert!(whole_escapes(prefix), "an escape cut in half: {prefix}");
        }
    }

    // A pattern of short text with one `#{id}`: every segment fits, however long the id.
    let short = without_id.split('/').all(|segment| segment.len() <= 150);
    if pattern.matches("#{id}").count() == 1 && short {
        for segment in name.split('/') {
            assert!(
                segment.len() + NAME_RESERVE <= NAME_MAX,
                "{} bytes: {segment}",
                segment.len()
            );
        }
    }

    // Tracks are named the same way, with the participant in place of the type.
    let track = |pattern: &str, id: &str| {
        track_name(
            pattern,
            &TrackName {
                room_id: id,
                time_us,
                user_id: time_us >> 8,
            },
        )
    };
    let name = track(pattern, id);
    assert_eq!(
        name.matches('/').count(),
        track(pattern, "").matches('/').count(),
        "the id added a folder to a track: {name}"
    );
    let alone = track("#{id}", id);
    assert_eq!(
        alone,
        recording("#{id}", id, time_us),
        "tracks cut ids differently"
    );

    let _ = job_name(
        pattern,
        &JobName {
            time_us,
            random: time_us as u32,
            plugin: id,
        },
    );
}

fn check_config(key: &str, value: &str) {
    let mut config = Config::default();
    let _ = config.set(key, value);
    for key in KEYS {
        let mut config = Config::default();
        if config.set(key, value).is_ok() && key == "rtp_port_range" {
            let (low, high) = config.rtp_port_range;
            assert!(low >= 1 && low <= high, "{value} gave {low}-{high}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [id_len, time, rest @ ..] = data else {
        return;
    };
    let split = (*id_len as usize * 2).min(rest.len());
    let id = String::from_utf8_lossy(&rest[..split]);
    let pattern = String::from_utf8_lossy(&rest[split..]);
    let time_us = 1_700_000_000_000_000 + (*time as u64) * 1_000_003;
    check_ids(&id);
    check_recording_names(&id, &pattern, time_us);
    check_config(&id, &pattern);
});
