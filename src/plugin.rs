//! The plugin while Janus runs it: configuration, rooms, and the threads that serve them, from
//! `init` to `destroy`.

use crate::config::Config;
use crate::host::{self, JanusHandle};
use crate::log;
use crate::mixers::MixerPool;
use crate::outbox::Outbox;
use crate::plain_rtp::detect_local_ip;
use crate::recorder::Recorder;
use crate::rooms::Rooms;
use serde_json::Value;
use std::net::IpAddr;
use std::sync::Arc;

pub struct Plugin {
    pub config: Config,
    pub rooms: Arc<Rooms>,
    pub mixers: MixerPool,
    pub recorder: Recorder,
    pub outbox: Arc<Outbox>,
    /// Where plain-RTP participants' sockets are bound.
    pub local_ip: IpAddr,
}

impl Plugin {
    /// Checks the folders and starts the threads; the error is the log line `init` fails with.
    pub fn start(config: Config) -> Result<Arc<Plugin>, String> {
        config.prepare_folders()?;
        let rooms = Arc::new(Rooms::new());
        let outbox =
            Arc::new(Outbox::start().map_err(|e| format!("cannot start the event thread: {e}"))?);
        let on_failure = {
            let rooms = Arc::downgrade(&rooms);
            Box::new(move |room_id: &str, recording: u64, reason: &str| {
                if let Some(room) = rooms.upgrade().and_then(|r| r.get(room_id)) {
                    room.recording_failed(recording, reason).send();
                }
            })
        };
        let events = config.events;
        let on_finished = Box::new(move |event: &Value| {
            if events {
                host::notify_event(None, event);
            }
        });
        let recorder = Recorder::start(&config, on_failure, on_finished)
            .map_err(|e| format!("cannot start the recorder thread: {e}"))?;
        let mixers =
            MixerPool::start(config.mixer_thread_count(), outbox.clone()).map_err(|e| {
                recorder.stop();
                format!("cannot start the mixer threads: {e}")
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
            mixers,
            recorder,
            outbox,
            local_ip,
        }))
    }

    /// Janus is shutting down: stop mixing, finish every recording (WAV closed and synced, job
    /// written), and return only when all of it is on disk.
    pub fn shutdown(&self) {
        self.mixers.stop();
        for room in self.rooms.drain() {
            let (_participants, recording) = room.destroy();
            if let Some(recording) = recording {
                recording.finish();
            }
        }
        self.recorder.stop();
        self.outbox.stop();
        log!(Info, "Audioroom stopped; every recording is finished");
    }

    /// Tells Janus's event handlers, when the plugin's `events` is on.
    pub fn notify_handlers(&self, handle: Option<&JanusHandle>, event: Value) {
        if self.config.events {
            host::notify_event(handle, &event);
        }
    }
}
