//! A participant: one Janus handle's presence in a room. The object outlives room changes
//! (its RTP numbering stays continuous) and is shared by three kinds of threads: Janus's RTP
//! threads push into `queue`, the mixer thread owns `media` during a tick, and the request
//! handler changes the settings.

use crate::codec::{CodecError, EncoderProfile};
use crate::downlink::Downlink;
use crate::host::JanusHandle;
use crate::jitter::JitterQueue;
use crate::mixer::PacketSink;
use crate::plain_rtp::PlainRtpLink;
use crate::room::Room;
use crate::sync::lock;
use crate::talk::TalkDetector;
use crate::voice::Voice;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Opus payload type when nobody negotiated one (the usual WebRTC choice).
pub const DEFAULT_OPUS_PT: u8 = 111;

/// The per-participant settings `join` and `configure` accept.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub display: Option<String>,
    pub muted: bool,
    pub volume_percent: u32,
    pub prebuffer: u32,
    pub profile: EncoderProfile,
}

/// The codec state only the mixer touches during a tick.
pub struct Media {
    /// The sampling rate of the room the codecs were made for.
    pub rate: u32,
    pub voice: Voice,
    pub downlink: Downlink,
    pub talk: TalkDetector,
}

/// How the participant's audio travels.
pub enum Transport {
    /// A WebRTC PeerConnection through Janus; the handle carries the media too.
    WebRtc,
    /// Plain RTP on a socket of the plugin's own (SIP gateways, load generators).
    PlainRtp(PlainRtpLink),
}

pub struct Participant {
    /// The handle this participant's events (and, for WebRTC, media) go to.
    pub handle: JanusHandle,
    pub transport: Transport,
    user_id: AtomicU64,
    display: Mutex<Option<String>>,
    pub muted: AtomicBool,
    /// Media is flowing: the PeerConnection is up, or the first plain RTP packet came.
    pub setup: AtomicBool,
    pub talking: AtomicBool,
    pub volume_percent: AtomicU32,
    /// The session is gone: nothing more may be sent to the handle.
    pub detached: AtomicBool,
    pub queue: Mutex<JitterQueue>,
    media: Mutex<Media>,
    room: Mutex<Weak<Room>>,
    /// Packets dropped on arrival as unparseable or of another payload type.
    pub rejected_packets: AtomicU64,
}

impl Participant {
    pub fn new(
        handle: JanusHandle,
        transport: Transport,
        user_id: u64,
        settings: &Settings,
        rate: u32,
        payload_type: u8,
    ) -> Result<Self, CodecError> {
        Ok(Participant {
            handle,
            transport,
            user_id: AtomicU64::new(user_id),
            display: Mutex::new(settings.display.clone()),
            muted: AtomicBool::new(settings.muted),
            setup: AtomicBool::new(false),
            talking: AtomicBool::new(false),
            volume_percent: AtomicU32::new(settings.volume_percent),
            detached: AtomicBool::new(false),
            queue: Mutex::new(JitterQueue::new(settings.prebuffer)),
            media: Mutex::new(Media {
                rate,
                voice: Voice::new(rate)?,
                downlink: Downlink::new(rate, settings.profile, payload_type)?,
                talk: TalkDetector::default(),
            }),
            room: Mutex::new(Weak::new()),
            rejected_packets: AtomicU64::new(0),
        })
    }

    pub fn user_id(&self) -> u64 {
        self.user_id.load(Relaxed)
    }

    pub fn set_user_id(&self, user_id: u64) {
        self.user_id.store(user_id, Relaxed)
    }

    pub fn display(&self) -> Option<String> {
        lock(&self.display).clone()
    }

    pub fn set_display(&self, display: Option<String>) {
        *lock(&self.display) = display;
    }

    pub fn media(&self) -> MutexGuard<'_, Media> {
        lock(&self.media)
    }

    pub fn room(&self) -> Option<Arc<Room>> {
        lock(&self.room).upgrade()
    }

    pub fn set_room(&self, room: Option<&Arc<Room>>) {
        *lock(&self.room) = room.map_or_else(Weak::new, Arc::downgrade);
    }

    pub fn is_muted(&self) -> bool {
        self.muted.load(Relaxed)
    }

    pub fn is_setup(&self) -> bool {
        self.setup.load(Relaxed)
    }

    /// Queues one received RTP packet for the mixer (called on Janus's or the mixer's threads).
    pub fn receive(&self, ssrc: u32, sequence: u16, payload: &[u8], audio_level: Option<u8>) {
        if self.is_muted() {
            return; // muted voices are not mixed; nothing to keep
        }
        lock(&self.queue).push(ssrc, sequence, payload, audio_level);
    }

    /// The settings as they stand, for `configure` to change some of them.
    pub fn settings(&self) -> Settings {
        Settings {
            display: self.display(),
            muted: self.is_muted(),
            volume_percent: self.volume_percent.load(Relaxed),
            prebuffer: lock(&self.queue).prebuffer(),
            profile: self.media().downlink.profile,
        }
    }

    /// Applies new settings; the codec side changes under the media lock, between ticks.
    pub fn apply(&self, settings: &Settings) -> Result<(), CodecError> {
        self.set_display(settings.display.clone());
        self.volume_percent.store(settings.volume_percent, Relaxed);
        lock(&self.queue).set_prebuffer(settings.prebuffer);
        let was_muted = self.muted.swap(settings.muted, Relaxed);
        let mut media = self.media();
        if was_muted && !settings.muted {
            // The decoder last heard this voice before the mute: start it afresh.
            media.voice.reset();
        }
        if settings.muted {
            lock(&self.queue).reset();
        }
        media.downlink.set_profile(settings.profile)
    }

    /// Prepares for another room: fresh decoding at its rate, same outgoing numbering.
    pub fn move_to_rate(&self, rate: u32) -> Result<(), CodecError> {
        lock(&self.queue).reset();
        let mut media = self.media();
        if media.rate != rate {
            media.voice = Voice::new(rate)?;
            media.downlink.set_rate(rate)?;
            media.rate = rate;
        } else {
            media.voice.reset();
        }
        media.talk = TalkDetector::default();
        self.talking.store(false, Relaxed);
        Ok(())
    }

    /// Ends talking (mute, leave): returns whether the participant was talking.
    pub fn stop_talking(&self) -> bool {
        let was = self.talking.swap(false, Relaxed);
        self.media().talk = TalkDetector::default();
        was
    }

    pub fn reset_decoder(&self) {
        lock(&self.queue).reset();
        self.media().voice.reset();
    }

    pub fn set_payload_type(&self, payload_type: u8) {
        self.media().downlink.payload_type = payload_type;
    }

    /// Ends the participant's media (kicked, or its room destroyed): Janus closes the
    /// PeerConnection, when there is one; a plain-RTP socket is closed.
    pub fn close_media(&self) {
        match &self.transport {
            Transport::WebRtc => {
                if self.is_setup() && !self.detached.load(Relaxed) {
                    self.handle.close_pc();
                }
            }
            Transport::PlainRtp(link) => link.close(),
        }
    }

    /// The participant as rooms list it: `{"userid","display","setup","muted","talking"}`.
    pub fn describe(&self) -> Value {
        let mut v = json!({
            "userid": self.user_id(),
            "setup": self.is_setup(),
            "muted": self.is_muted(),
            "talking": self.talking.load(Relaxed),
        });
        if let Some(display) = self.display() {
            v["display"] = Value::String(display);
        }
        v
    }
}

impl PacketSink for Participant {
    fn send(&self, packet: &[u8]) {
        if self.detached.load(Relaxed) {
            return;
        }
        match &self.transport {
            Transport::WebRtc => self.handle.relay_rtp(packet),
            Transport::PlainRtp(link) => link.send(packet),
        }
    }
}
