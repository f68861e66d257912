//! The plugin's configuration (docs/API.md, section 8.1): defaults, parsing of the text values
//! Janus's own config parser hands us, and the folder checks `init` performs.

use crate::archive::ArchiveSettings;
use crate::media::jitter::Mode;
use crate::media::speech::frames_of_ms;
use crate::mixer::speakers::MixPolicy;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub job_path: PathBuf,
    pub job_pattern: String,
    pub archive_path: PathBuf,
    pub recording_pattern: String,
    pub recording_enabled: bool,
    /// Rooms also record each participant's own audio, unless they say otherwise.
    pub record_participants: bool,
    pub track_pattern: String,
    /// How participants' jitter queues hold packets unless a room or a participant says
    /// otherwise: adaptive (the default), or a fixed pre-buffer of so many packets
    /// (`mixer_prebuffering`; 0 disables pre-buffering and late drops).
    pub playout: Mode,
    pub admin_key: Option<String>,
    pub events: bool,
    /// Where plain-RTP participants are received; `None` means the host's detected address.
    pub local_ip: Option<IpAddr>,
    pub rtp_port_range: (u16, u16),
    /// Mixer threads; 0 means one per core.
    pub mixer_threads: usize,
    /// Rooms' defaults for whom they mix (`speech_level`, `speech_hangover`, `max_speakers`,
    /// `mix_all`).
    pub mixing: MixPolicy,
    /// Where announcement files are; `play_file` plays nothing outside it.
    pub announcements_path: PathBuf,
    /// With `admin_key` set, `rtp_forward` and `stop_rtp_forward` need it too.
    pub lock_rtp_forward: bool,
    /// With `admin_key` set, `play_file`, `is_playing`, `stop_file` and `stop_all_files` need
    /// it too.
    pub lock_play_file: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            job_path: PathBuf::from("/tmp/jobs"),
            job_pattern: "job-#{md5}".into(),
            archive_path: PathBuf::from("/tmp/recordings"),
            recording_pattern: "rec-#{id}-#{time}-#{type}".into(),
            recording_enabled: true,
            record_participants: false,
            track_pattern: "rec-#{id}-#{time}-#{userid}".into(),
            playout: Mode::Adaptive,
            admin_key: None,
            events: true,
            local_ip: None,
            rtp_port_range: (10000, 60000),
            mixer_threads: 0,
            mixing: MixPolicy::default(),
            announcements_path: PathBuf::from("/usr/share/janus/announcements"),
            lock_rtp_forward: false,
            lock_play_file: false,
        }
    }
}

/// The most packets a participant may pre-buffer (one second of 20 ms frames).
pub const MAX_PREBUFFER: u32 = 50;
/// The longest speech hangover, in milliseconds.
pub const MAX_HANGOVER_MS: u32 = 5000;
/// The most speakers a room may mix at once.
pub const MAX_SPEAKERS: usize = 64;

#[derive(Debug, PartialEq, Eq)]
pub enum SetError {
    UnknownKey,
    BadValue(String),
}

impl Config {
    /// Applies one `key = value` of section `general`. A bad value leaves the default in place.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SetError> {
        let value = value.trim();
        match key {
            "job_path" => self.job_path = non_empty_path(value)?,
            "job_pattern" => self.job_pattern = non_empty(value)?.to_owned(),
            "archive_path" => self.archive_path = non_empty_path(value)?,
            "recording_pattern" => self.recording_pattern = non_empty(value)?.to_owned(),
            "recording_enabled" => self.recording_enabled = parse_bool(value)?,
            "record_participants" => self.record_participants = parse_bool(value)?,
            "track_pattern" => self.track_pattern = non_empty(value)?.to_owned(),
            "mixer_prebuffering" => {
                self.playout = match value {
                    "adaptive" => Mode::Adaptive,
                    _ => Mode::Fixed(
                        value
                            .parse::<u32>()
                            .ok()
                            .filter(|n| *n <= MAX_PREBUFFER)
                            .ok_or_else(|| {
                                SetError::BadValue(format!(
                                    "adaptive or an integer from 0 to {MAX_PREBUFFER}"
                                ))
                            })?,
                    ),
                }
            }
            "admin_key" => self.admin_key = Some(non_empty(value)?.to_owned()),
            "events" => self.events = parse_bool(value)?,
            "local_ip" => {
                self.local_ip = Some(
                    value
                        .parse::<IpAddr>()
                        .map_err(|_| SetError::BadValue("an IPv4 or IPv6 address".into()))?,
                )
            }
            "rtp_port_range" => self.rtp_port_range = parse_port_range(value)?,
            "speech_level" => {
                self.mixing.speech.threshold = parse_in(value, 1, 127)? as u8;
            }
            "speech_hangover" => {
                self.mixing.speech.hangover_frames =
                    frames_of_ms(parse_in(value, 0, MAX_HANGOVER_MS as u64)? as u32);
            }
            "max_speakers" => {
                self.mixing.max_speakers = parse_in(value, 1, MAX_SPEAKERS as u64)? as usize;
            }
            "mix_all" => self.mixing.mix_all = parse_bool(value)?,
            "announcements_path" => self.announcements_path = non_empty_path(value)?,
            "lock_rtp_forward" => self.lock_rtp_forward = parse_bool(value)?,
            "lock_play_file" => self.lock_play_file = parse_bool(value)?,
            "mixer_threads" => {
                self.mixer_threads = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n <= 64)
                    .ok_or_else(|| SetError::BadValue("an integer from 0 to 64".into()))?
            }
            _ => return Err(SetError::UnknownKey),
        }
        Ok(())
    }

    /// Creates the job and archive folders when missing and proves they can be written.
    pub fn prepare_folders(&self) -> Result<(), String> {
        for (key, path) in [
            ("archive_path", &self.archive_path),
            ("job_path", &self.job_path),
        ] {
            ensure_writable_folder(path)
                .map_err(|e| format!("{key} {} cannot be used: {e}", path.display()))?;
        }
        Ok(())
    }

    pub fn archive_settings(&self) -> ArchiveSettings {
        ArchiveSettings {
            archive_path: self.archive_path.clone(),
            recording_pattern: self.recording_pattern.clone(),
            track_pattern: self.track_pattern.clone(),
            job_path: self.job_path.clone(),
            job_pattern: self.job_pattern.clone(),
        }
    }

    pub fn mixer_thread_count(&self) -> usize {
        if self.mixer_threads > 0 {
            self.mixer_threads
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(1, 8)
        }
    }
}

/// Janus's own notion of truth (`janus_is_true`), plus the explicit negatives.
pub fn parse_bool(value: &str) -> Result<bool, SetError> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "on" => Ok(true),
        "no" | "false" | "0" | "off" => Ok(false),
        _ => Err(SetError::BadValue("yes or no".into())),
    }
}

fn parse_in(value: &str, min: u64, max: u64) -> Result<u64, SetError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| SetError::BadValue(format!("an integer from {min} to {max}")))
}

fn non_empty(value: &str) -> Result<&str, SetError> {
    if value.is_empty() {
        Err(SetError::BadValue("a non-empty string".into()))
    } else {
        Ok(value)
    }
}

fn non_empty_path(value: &str) -> Result<PathBuf, SetError> {
    Ok(PathBuf::from(non_empty(value)?))
}

fn parse_port_range(value: &str) -> Result<(u16, u16), SetError> {
    let bad = || SetError::BadValue("a port range like 10000-60000".into());
    let (low, high) = value.split_once('-').ok_or_else(bad)?;
    let low: u16 = low.trim().parse().map_err(|_| bad())?;
    let high: u16 = high.trim().parse().map_err(|_| bad())?;
    if low == 0 || low > high {
        return Err(bad());
    }
    Ok((low, high))
}

fn ensure_writable_folder(path: &Path) -> io::Result<()> {
    fs::create_dir_all(path)?;
    let probe = path.join(format!(".audioroom-write-probe-{}", std::process::id()));
    fs::write(&probe, b"")?;
    fs::remove_file(&probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::default();
        assert_eq!(c.job_path, PathBuf::from("/tmp/jobs"));
        assert_eq!(c.job_pattern, "job-#{md5}");
        assert_eq!(c.archive_path, PathBuf::from("/tmp/recordings"));
        assert_eq!(c.recording_pattern, "rec-#{id}-#{time}-#{type}");
        assert!(c.recording_enabled);
        assert!(!c.record_participants);
        assert_eq!(c.track_pattern, "rec-#{id}-#{time}-#{userid}");
        assert_eq!(c.playout, Mode::Adaptive);
        assert_eq!(c.admin_key, None);
        assert!(c.events);
        assert_eq!(c.rtp_port_range, (10000, 60000));
        assert_eq!(
            c.announcements_path,
            PathBuf::from("/usr/share/janus/announcements")
        );
        assert!(!c.lock_rtp_forward && !c.lock_play_file);
    }

    #[test]
    fn values_are_parsed_and_bad_ones_keep_the_default() {
        let mut c = Config::default();
        assert_eq!(c.set("recording_enabled", "no"), Ok(()));
        assert!(!c.recording_enabled);
        assert_eq!(c.set("record_participants", "yes"), Ok(()));
        assert!(c.record_participants);
        assert_eq!(c.set("track_pattern", "t/#{userid}"), Ok(()));
        assert_eq!(c.archive_settings().track_pattern, "t/#{userid}");
        assert!(c.set("track_pattern", "").is_err());
        assert_eq!(c.set("mixer_prebuffering", " 0 "), Ok(()));
        assert_eq!(c.playout, Mode::Fixed(0));
        assert!(matches!(
            c.set("mixer_prebuffering", "-1"),
            Err(SetError::BadValue(_))
        ));
        assert!(matches!(
            c.set("mixer_prebuffering", "many"),
            Err(SetError::BadValue(_))
        ));
        assert_eq!(c.playout, Mode::Fixed(0));
        assert_eq!(c.set("rtp_port_range", "20000-20100"), Ok(()));
        assert_eq!(c.rtp_port_range, (20000, 20100));
        assert!(c.set("rtp_port_range", "5-1").is_err());
        assert!(c.set("local_ip", "not-an-ip").is_err());
        assert_eq!(c.set("local_ip", "10.1.2.3"), Ok(()));
        assert!(c.set("events", "maybe").is_err());
        assert!(c.events);
        assert_eq!(c.set("mixer_prebuffering", "adaptive"), Ok(()));
        assert_eq!(c.playout, Mode::Adaptive);
        assert_eq!(c.set("speech_level", "50"), Ok(()));
        assert_eq!(c.set("speech_hangover", "300"), Ok(()));
        assert_eq!(c.set("max_speakers", "2"), Ok(()));
        assert_eq!(c.set("mix_all", "yes"), Ok(()));
        assert_eq!(
            (c.mixing.speech.threshold, c.mixing.speech.hangover_frames),
            (50, 15)
        );
        assert_eq!((c.mixing.max_speakers, c.mixing.mix_all), (2, true));
        assert!(c.set("speech_level", "0").is_err());
        assert!(c.set("max_speakers", "65").is_err());
        assert_eq!(c.set("announcements_path", "/srv/prompts"), Ok(()));
        assert_eq!(c.announcements_path, PathBuf::from("/srv/prompts"));
        assert_eq!(c.set("lock_rtp_forward", "yes"), Ok(()));
        assert_eq!(c.set("lock_play_file", "true"), Ok(()));
        assert!(c.lock_rtp_forward && c.lock_play_file);
        assert!(c.set("announcements_path", "").is_err());
        assert_eq!(c.set("no_such_key", "1"), Err(SetError::UnknownKey));
        assert!(c.set("job_path", "").is_err());
    }

    #[test]
    fn missing_folders_are_created_and_unwritable_ones_refused() {
        let base = std::env::temp_dir().join(format!("audioroom-config-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let c = Config {
            archive_path: base.join("a/b"),
            job_path: base.join("jobs"),
            ..Config::default()
        };
        c.prepare_folders().unwrap();
        assert!(base.join("a/b").is_dir() && base.join("jobs").is_dir());

        fs::write(base.join("file"), b"").unwrap();
        let blocked = Config {
            archive_path: base.join("file/sub"),
            ..c.clone()
        };
        let err = blocked.prepare_folders().unwrap_err();
        assert!(err.starts_with("archive_path "), "{err}");
        fs::remove_dir_all(&base).unwrap();
    }
}
