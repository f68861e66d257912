//! File names: the `#{...}` pattern substitutions of docs/API.md section 5.2 (recordings, tracks,
//! job files) and the encoding that keeps any room id inside its folder.

use std::time::{SystemTime, UNIX_EPOCH};

/// Longest file name most Linux file systems accept (NAME_MAX).
const NAME_MAX: usize = 255;
/// Room for `.wav`/`.json`, a clash suffix such as `-12` and a temporary-name prefix.
const NAME_RESERVE: usize = 32;

/// Unix time in microseconds, as `#{time}` and the job file's `started`/`finished` use it.
pub fn unix_time_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Percent-encodes every byte outside `A-Z a-z 0-9 . _ -`, and a leading `.`, so that a room
/// id can never name a parent folder, a hidden file or a sub-folder, and stays reversible.
pub fn encode_id(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for (i, byte) in id.bytes().enumerate() {
        let plain =
            byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-') || (byte == b'.' && i > 0);
        if plain {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The inverse of [`encode_id`]; `None` for text it could not have produced.
pub fn decode_id(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = encoded.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What a recording's name is made of.
pub struct RecordingName<'a> {
    pub room_id: &'a str,
    pub time_us: u64,
    pub kind: &'a str,
}

/// `recording_pattern` with `#{id}`, `#{time}` and `#{type}` substituted; `.wav` not included.
pub fn recording_name(pattern: &str, name: &RecordingName) -> String {
    let time = name.time_us.to_string();
    with_room_id(pattern, name.room_id, |key| match key {
        "time" => Some(time.clone()),
        "type" => Some(name.kind.to_owned()),
        _ => None,
    })
}

/// What a participant's track is named from.
pub struct TrackName<'a> {
    pub room_id: &'a str,
    /// When the participant joined.
    pub time_us: u64,
    pub user_id: u64,
}

/// `track_pattern` with `#{id}`, `#{time}` and `#{userid}` substituted; `.opus` not included.
pub fn track_name(pattern: &str, name: &TrackName) -> String {
    let (time, user_id) = (name.time_us.to_string(), name.user_id.to_string());
    with_room_id(pattern, name.room_id, |key| match key {
        "time" => Some(time.clone()),
        "userid" => Some(user_id.clone()),
        _ => None,
    })
}

/// `pattern` with `#{id}` (the room id, encoded) and what `others` knows substituted.
///
/// A name that would pass NAME_MAX (long non-ASCII ids triple in size when encoded) keeps a
/// prefix of the encoded id and ends it with `~` and the MD5 of the id: `~` cannot appear in an
/// encoded id, so shortened names are recognisable, and the job file carries the exact id.
fn with_room_id(pattern: &str, room_id: &str, others: impl Fn(&str) -> Option<String>) -> String {
    let encoded = encode_id(room_id);
    let build = |id: &str| {
        substitute(pattern, |key| match key {
            "id" => Some(id.to_owned()),
            _ => others(key),
        })
    };
    let full = build(&encoded);
    let longest = full.split('/').map(str::len).max().unwrap_or(0);
    if longest + NAME_RESERVE <= NAME_MAX {
        return full;
    }
    let excess = longest + NAME_RESERVE - NAME_MAX;
    let digest = format!("~{:x}", md5::compute(room_id.as_bytes()));
    let mut keep = encoded.len().saturating_sub(excess + digest.len());
    // Never cut a %XX escape in half.
    while keep > 0
        && encoded.as_bytes()[..keep]
            .iter()
            .rev()
            .take(2)
            .any(|b| *b == b'%')
    {
        keep -= 1;
    }
    build(&format!("{}{}", &encoded[..keep], digest))
}

/// What a job file's name is made of.
pub struct JobName<'a> {
    pub time_us: u64,
    pub random: u32,
    pub plugin: &'a str,
}

impl JobName<'_> {
    /// Lowercase hex MD5 of time, plugin package and random number, concatenated as text.
    pub fn md5(&self) -> String {
        format!(
            "{:x}",
            md5::compute(format!("{}{}{}", self.time_us, self.plugin, self.random))
        )
    }
}

/// `job_pattern` with `#{time}`, `#{rand}`, `#{md5}` and `#{plugin}` substituted; `.json` not
/// included.
pub fn job_name(pattern: &str, job: &JobName) -> String {
    substitute(pattern, |key| match key {
        "time" => Some(job.time_us.to_string()),
        "rand" => Some(job.random.to_string()),
        "md5" => Some(job.md5()),
        "plugin" => Some(job.plugin.to_owned()),
        _ => None,
    })
}

/// Replaces every `#{key}` the lookup knows; unknown placeholders stay as written.
fn substitute(pattern: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(pattern.len() + 64);
    let mut rest = pattern;
    while let Some(start) = rest.find("#{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after
            .find('}')
            .and_then(|end| lookup(&after[..end]).map(|v| (end, v)))
        {
            Some((end, value)) => {
                out.push_str(&value);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("#{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_recording_placeholder_is_substituted() {
        let name = RecordingName {
            room_id: "room-1",
            time_us: 1_700_000_000_123_456,
            kind: "audio",
        };
        assert_eq!(
            recording_name("rec-#{id}-#{time}-#{type}", &name),
            "rec-room-1-1700000000123456-audio"
        );
        assert_eq!(recording_name("#{id}#{id}", &name), "room-1room-1");
        assert_eq!(recording_name("#{nope}-#{id", &name), "#{nope}-#{id");
    }

    #[test]
    fn every_track_placeholder_is_substituted_and_long_ids_are_cut_the_same_way() {
        let name = TrackName {
            room_id: "café ☕",
            time_us: 1_700_000_000_123_456,
            user_id: 42,
        };
        assert_eq!(
            track_name("rec-#{id}-#{time}-#{userid}", &name),
            "rec-caf%C3%A9%20%E2%98%95-1700000000123456-42"
        );
        assert_eq!(track_name("#{type}-#{userid}", &name), "#{type}-42");
        let long = "☕".repeat(85);
        let cut = track_name(
            "rec-#{id}-#{time}-#{userid}",
            &TrackName {
                room_id: &long,
                ..name
            },
        );
        assert!(cut.len() + NAME_RESERVE <= NAME_MAX, "{}", cut.len());
        assert!(
            cut.contains('~') && cut.ends_with("-1700000000123456-42"),
            "{cut}"
        );
    }

    #[test]
    fn every_job_placeholder_is_substituted() {
        let job = JobName {
            time_us: 1_700_000_000_000_000,
            random: 4_000_000_000,
            plugin: "janus.plugin.cm.audioroom",
        };
        let expected_md5 = format!(
            "{:x}",
            md5::compute("1700000000000000janus.plugin.cm.audioroom4000000000")
        );
        assert_eq!(job.md5().len(), 32);
        assert_eq!(job_name("job-#{md5}", &job), format!("job-{expected_md5}"));
        assert_eq!(
            job_name("#{plugin}_#{time}_#{rand}", &job),
            "janus.plugin.cm.audioroom_1700000000000000_4000000000"
        );
    }

    #[test]
    fn hostile_ids_become_safe_names_that_decode_back() {
        let hostile = [
            "../x",
            "../../etc/passwd",
            "a/b",
            ".hidden",
            "..",
            ".",
            "nul\u{0}byte",
            "café ☕",
            "100%",
            "back\\slash",
            "spaces and\ttabs",
            "日本語のルーム",
        ];
        for id in hostile {
            let encoded = encode_id(id);
            assert!(!encoded.contains('/'), "{encoded}");
            assert!(!encoded.starts_with('.'), "{encoded}");
            assert!(!encoded.contains('\0'), "{encoded}");
            assert!(
                encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-%".contains(&b)),
                "{encoded}"
            );
            assert_eq!(decode_id(&encoded).as_deref(), Some(id));
        }
        assert_eq!(encode_id("../x"), "%2E.%2Fx");
        assert_eq!(encode_id("a.b"), "a.b");
    }

    #[test]
    fn long_ids_fit_a_file_name_and_stay_distinct() {
        let long_ascii = "x".repeat(300);
        let name = recording_name(
            "rec-#{id}-#{time}-#{type}",
            &RecordingName {
                room_id: &long_ascii,
                time_us: 1,
                kind: "audio",
            },
        );
        assert!(name.len() + NAME_RESERVE <= NAME_MAX, "{}", name.len());
        assert!(name.contains('~'));

        let a = "☕".repeat(85); // 255 bytes, 765 when encoded
        let b = format!("{}a", "☕".repeat(84));
        let name_a = recording_name(
            "#{id}",
            &RecordingName {
                room_id: &a,
                time_us: 1,
                kind: "audio",
            },
        );
        let name_b = recording_name(
            "#{id}",
            &RecordingName {
                room_id: &b,
                time_us: 1,
                kind: "audio",
            },
        );
        assert_ne!(name_a, name_b);
        assert!(name_a.len() + NAME_RESERVE <= NAME_MAX);
        // The cut never leaves half an escape behind.
        let prefix = name_a.split('~').next().unwrap();
        assert!(decode_id(prefix).is_some(), "{prefix}");

        let short = recording_name(
            "#{id}",
            &RecordingName {
                room_id: "short",
                time_us: 1,
                kind: "audio",
            },
        );
        assert_eq!(short, "short");
    }

    #[test]
    fn time_is_unix_microseconds() {
        let now = unix_time_us();
        assert!(now > 1_600_000_000_000_000 && now < 4_000_000_000_000_000);
    }
}
