//! The plugin while Janus runs it: configuration, rooms, and the threads that serve them, from
//! `init` to `destroy`.

use crate::archive::recorder::{FailureHook, FinishedHook, Recorder};
use crate::conference::config::Config;
use crate::conference::endpoint::Host;
use crate::conference::events::{Events, Notices};
use crate::conference::permanent::PermanentRooms;
use crate::conference::room::{Room, RoomSettings};
use crate::conference::rooms::Rooms;
use crate::conference::services::Services;
use crate::log;
use crate::media::announcement_reader::AnnouncementReader;
use crate::media::plain_rtp::detect_local_ip;
use crate::mixer::pool::MixerPool;
use serde_json::Value;
use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How long `shutdown` may take in all: mixer threads get a second to stop, the recorder the
/// rest to close every file and write every job file. Well under the patience of a service
/// manager (systemd waits 90 s) and short enough that an operator never reaches for `kill -9`.
pub const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(6);
const MIXER_PATIENCE: Duration = Duration::from_secs(1);

pub struct Plugin {
    pub config: Config,
    pub rooms: Arc<Rooms>,
    pub services: Arc<Services>,
    /// Where plain-RTP participants' sockets are bound.
    pub local_ip: IpAddr,
    /// Rooms saved in the configuration file.
    pub permanent: PermanentRooms,
}

impl Plugin {
    /// Checks the folders and starts the threads; the error is the log line `init` fails with.
    pub fn start(config: Config, host: Arc<dyn Host>) -> Result<Arc<Plugin>, String> {
        config.prepare_folders()?;
        let rooms = Arc::new(Rooms::default());
        let permanent = PermanentRooms::new(host.clone());
        let events = Events::start(host, config.events)
            .map_err(|e| format!("cannot start the event thread: {e}"))?;
        let recorder = Recorder::start(
            &config.archive_settings(),
            recording_failed_hook(Arc::downgrade(&rooms), Arc::downgrade(&events)),
            recording_finished_hook(Arc::downgrade(&events)),
        )
        .map_err(|e| format!("cannot start the recorder thread: {e}"))?;
        let mixers = MixerPool::start(config.mixer_thread_count()).map_err(|e| {
            recorder.stop(SHUTDOWN_PATIENCE);
            format!("cannot start the mixer threads: {e}")
        })?;
        let announcements = AnnouncementReader::start().map_err(|e| {
            mixers.stop(MIXER_PATIENCE);
            recorder.stop(SHUTDOWN_PATIENCE);
            format!("cannot start the announcement reader thread: {e}")
        })?;
        let local_ip = config.local_ip.unwrap_or_else(detect_local_ip);
        log!(
            Info,
            "Audioroom ready: {} mixer threads, recordings in {}, jobs in {}, plain RTP on {}",
            config.mixer_thread_count(),
            config.archive_path.display(),
            config.job_path.display(),
            local_ip
        );
        Ok(Arc::new(Plugin {
            config,
            rooms,
            services: Arc::new(Services {
                recorder,
                mixers,
                events,
                announcements,
            }),
            local_ip,
            permanent,
        }))
    }

    /// A room served by this plugin's threads (not yet registered).
    pub fn new_room(&self, id: String, rate: u32, settings: RoomSettings, record: bool) -> Room {
        Room::new(id, rate, settings, record, self.services.clone())
    }

    /// Sends events now, on this thread; call with no lock held.
    pub fn send(&self, notices: Notices) {
        self.services.events.send(notices);
    }

    /// Janus is shutting down: stop mixing, finish every recording (WAV closed and synced, job
    /// written), and return only when all of it is on disk, or after `SHUTDOWN_PATIENCE` with
    /// the job files of what could not be finished marked incomplete.
    pub fn shutdown(&self) {
        let deadline = Instant::now() + SHUTDOWN_PATIENCE;
        self.services.mixers.stop(MIXER_PATIENCE);
        for room in self.rooms.drain() {
            let (_participants, recording) = room.destroy();
            if let Some(recording) = recording {
                recording.finish_by(deadline);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.services
            .recorder
            .stop(left.max(Duration::from_secs(1)));
        self.services.announcements.stop();
        self.services.events.stop();
        log!(Info, "Audioroom stopped; every recording is finished");
    }
}

/// A recording that fails on disk: its room carries on unrecorded and is told.
fn recording_failed_hook(rooms: Weak<Rooms>, events: Weak<Events>) -> FailureHook {
    Box::new(move |room_id: &str, recording: u64, reason: &str| {
        let (Some(rooms), Some(events)) = (rooms.upgrade(), events.upgrade()) else {
            return;
        };
        if let Some(room) = rooms.get(room_id) {
            let mut notices = Notices::new();
            room.recording_failed(recording, reason, &mut notices);
            events.post(notices);
        }
    })
}

/// A job file written: Janus's event handlers hear the same event.
fn recording_finished_hook(events: Weak<Events>) -> FinishedHook {
    Arc::new(move |event: &Value| {
        if let Some(events) = events.upgrade() {
            let mut notices = Notices::new();
            notices.tell_handlers(None, event.clone());
            events.post(notices);
        }
    })
}
