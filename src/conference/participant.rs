//! A participant: one Janus handle's presence in a room. The object outlives room changes
//! (its RTP numbering stays continuous) and is shared by three kinds of threads:
//!
//! - Janus's RTP threads (or the mixer, for plain RTP) push packets into `queue`;
//! - the mixer thread of its room owns `media` (the codecs) during a tick;
//! - request threads change its settings through the methods below.
//!
//! Requests never touch the codecs: they record what they want in `control` and the next tick
//! applies it ([`Participant::sync_media`]), so a request never waits for mixing and mixing
//! never waits for a request. Locks: `media` has rank `Media` and is taken by mixer threads
//! only, with `try_lock`; `queue` and `control` are leaves (see `locks`).

use crate::conference::endpoint::Endpoint;
use crate::locks::{OrderedMutex, Rank};
use crate::log;
use crate::media::audio_codec::AudioCodec;
use crate::media::clock;
use crate::media::codec::{CodecError, EncoderProfile};
use crate::media::downlink::Downlink;
use crate::media::jitter::{JitterQueue, JitterStats, Mode, PacketHeader};
use crate::media::plain_rtp::PlainRtpLink;
use crate::media::speech::SpeechGate;
use crate::media::talk::TalkDetector;
use crate::media::voice::Voice;
use crate::mixer::tick::PacketSink;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};

/// Opus payload type when nobody negotiated one (the usual WebRTC choice).
pub const DEFAULT_OPUS_PT: u8 = 111;

/// The per-participant settings `join` and `configure` accept.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub display: Option<String>,
    pub muted: bool,
    pub volume_percent: u32,
    /// How the jitter queue holds packets: adaptive, or a fixed pre-buffer.
    pub playout: Mode,
    pub profile: EncoderProfile,
}

/// How the participant's audio travels.
pub enum Transport {
    /// A WebRTC PeerConnection through Janus; the handle carries the media too.
    WebRtc,
    /// Plain RTP on a socket of the plugin's own (SIP gateways, load generators).
    PlainRtp(PlainRtpLink),
}

/// The codec state only mixer threads touch.
pub struct Media {
    /// The sampling rate of the room the codecs were made for.
    pub rate: u32,
    /// The codec the voice decodes (the downlink knows its own).
    codec: AudioCodec,
    pub voice: Voice,
    pub downlink: Downlink,
    pub gate: SpeechGate,
    pub talk: TalkDetector,
    /// The `control.version` last applied.
    applied: u64,
    /// The `control.voice_epoch` last applied.
    voice_epoch: u64,
}

impl Media {
    /// The codec its voice decodes.
    pub fn codec(&self) -> AudioCodec {
        self.codec
    }
}

/// What requests ask of the codecs, applied by the next tick.
struct Control {
    display: Option<String>,
    profile: EncoderProfile,
    /// The codec both ways and its payload type (negotiated, or the plain-RTP link's).
    codec: AudioCodec,
    payload_type: u8,
    /// Bumped to make the decoder and the talk detector start afresh.
    voice_epoch: u64,
}

pub struct Participant {
    endpoint: Arc<dyn Endpoint>,
    transport: Transport,
    user_id: AtomicU64,
    muted: AtomicBool,
    /// Suspended by a moderator: neither heard nor sent the mix, yet still in the room.
    suspended: AtomicBool,
    /// Joined with the room's secret: exempt from the room's mute (AudioBridge's admins).
    moderator: AtomicBool,
    /// The room's mute as the room last told it (`Room::set_room_muted`), so that RTP threads
    /// drop a held voice on arrival; the mixer decides from the room's own state.
    room_muted: AtomicBool,
    /// Media is flowing: the PeerConnection is up, or the first plain RTP packet came.
    setup: AtomicBool,
    talking: AtomicBool,
    volume_percent: AtomicU32,
    /// The session is gone: nothing more may be sent to the handle.
    detached: AtomicBool,
    /// Bumped by every change of `control`, so a tick skips the lock when nothing changed.
    control_version: AtomicU64,
    control: OrderedMutex<Control>,
    queue: OrderedMutex<JitterQueue>,
    media: OrderedMutex<Media>,
    /// Packets dropped on arrival as unparseable or of another payload type.
    rejected_packets: AtomicU64,
    /// Plain-RTP packets dropped for coming from another address than the participant's.
    foreign_packets: AtomicU64,
    /// The negotiated payload type, read on Janus's RTP threads to drop anything else (a G.711
    /// peer's comfort noise and DTMF too).
    payload_type: AtomicU8,
    /// The codec as RTP threads need it (`codec_index`), to count G.711 timestamps in the
    /// jitter queue's 48 kHz units.
    codec: AtomicU8,
    /// The codec `join` asked for (`codec`), which offers must then have; `NO_CODEC` if none.
    requested_codec: AtomicU8,
    /// A room's link to another server (`conference::link`): mixed whenever it sends, never
    /// gated or capped, and sent the mix as soon as its far side is known.
    link: AtomicBool,
}

const NO_CODEC: u8 = u8::MAX;

fn codec_index(codec: AudioCodec) -> u8 {
    match codec {
        AudioCodec::Opus => 0,
        AudioCodec::Pcmu => 1,
        AudioCodec::Pcma => 2,
    }
}

fn codec_of(index: u8) -> AudioCodec {
    match index {
        1 => AudioCodec::Pcmu,
        2 => AudioCodec::Pcma,
        _ => AudioCodec::Opus,
    }
}

impl Participant {
    pub fn new(
        endpoint: Arc<dyn Endpoint>,
        transport: Transport,
        user_id: u64,
        settings: &Settings,
        rate: u32,
        (codec, payload_type): (AudioCodec, u8),
    ) -> Result<Self, CodecError> {
        Ok(Participant {
            endpoint,
            transport,
            user_id: AtomicU64::new(user_id),
            muted: AtomicBool::new(settings.muted),
            suspended: AtomicBool::new(false),
            moderator: AtomicBool::new(false),
            room_muted: AtomicBool::new(false),
            setup: AtomicBool::new(false),
            talking: AtomicBool::new(false),
            volume_percent: AtomicU32::new(settings.volume_percent),
            detached: AtomicBool::new(false),
            control_version: AtomicU64::new(0),
            control: OrderedMutex::leaf(
                "participant control",
                Control {
                    display: settings.display.clone(),
                    profile: settings.profile,
                    codec,
                    payload_type,
                    voice_epoch: 0,
                },
            ),
            queue: OrderedMutex::leaf("participant queue", JitterQueue::new(settings.playout)),
            media: OrderedMutex::new(
                Rank::Media,
                "participant media",
                Media {
                    rate,
                    codec,
                    voice: Voice::with_codec(rate, codec)?,
                    downlink: Downlink::with_codec(rate, codec, settings.profile, payload_type)?,
                    gate: SpeechGate::default(),
                    talk: TalkDetector::default(),
                    applied: 0,
                    voice_epoch: 0,
                },
            ),
            rejected_packets: AtomicU64::new(0),
            foreign_packets: AtomicU64::new(0),
            payload_type: AtomicU8::new(payload_type),
            codec: AtomicU8::new(codec_index(codec)),
            requested_codec: AtomicU8::new(NO_CODEC),
            link: AtomicBool::new(false),
        })
    }

    /// Makes it a link's member (once, before it enters its room).
    pub fn mark_link(&self) {
        self.link.store(true, Relaxed);
    }

    pub fn is_link(&self) -> bool {
        self.link.load(Relaxed)
    }

    /// The codec `join` asked for, which the handle's offers must have.
    pub fn requested_codec(&self) -> Option<AudioCodec> {
        let index = self.requested_codec.load(Relaxed);
        (index != NO_CODEC).then(|| codec_of(index))
    }

    pub fn set_requested_codec(&self, codec: Option<AudioCodec>) {
        self.requested_codec
            .store(codec.map_or(NO_CODEC, codec_index), Relaxed);
    }

    /// The codec it speaks and hears.
    pub fn codec(&self) -> AudioCodec {
        codec_of(self.codec.load(Relaxed))
    }

    /// Whether anything is sent to it: a plain-RTP source that gave no destination hears
    /// nothing (and costs no encode).
    pub fn receives_mix(&self) -> bool {
        match &self.transport {
            Transport::WebRtc => true,
            Transport::PlainRtp(link) => link.remote().is_some(),
        }
    }

    pub fn endpoint(&self) -> &Arc<dyn Endpoint> {
        &self.endpoint
    }

    /// The endpoint, unless the handle is gone.
    pub fn live_endpoint(&self) -> Option<&Arc<dyn Endpoint>> {
        (!self.detached.load(Relaxed)).then_some(&self.endpoint)
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn is_plain_rtp(&self) -> bool {
        matches!(self.transport, Transport::PlainRtp(_))
    }

    pub fn user_id(&self) -> u64 {
        self.user_id.load(Relaxed)
    }

    /// A new id, for a participant that is in no room.
    pub fn set_user_id(&self, user_id: u64) {
        self.user_id.store(user_id, Relaxed)
    }

    pub fn display(&self) -> Option<String> {
        self.control.lock().display.clone()
    }

    pub fn is_muted(&self) -> bool {
        self.muted.load(Relaxed)
    }

    /// Mutes or unmutes (the participant's own `configure` and a moderator alike); returns
    /// whether the state changed. A muted voice is dropped on arrival; an unmuted one is
    /// decoded afresh, since the decoder last heard it before the mute.
    pub fn set_muted(&self, muted: bool) -> bool {
        if self.muted.swap(muted, Relaxed) == muted {
            return false;
        }
        if muted {
            self.queue.lock().reset();
            self.talking.store(false, Relaxed);
        } else {
            self.restart_voice();
        }
        true
    }

    pub fn is_suspended(&self) -> bool {
        self.suspended.load(Relaxed)
    }

    /// Suspends or resumes; returns whether the state changed. A suspended voice is dropped on
    /// arrival and its talking ends; a resumed one is decoded afresh.
    pub fn set_suspended(&self, suspended: bool) -> bool {
        if self.suspended.swap(suspended, Relaxed) == suspended {
            return false;
        }
        self.hold_or_release(suspended);
        true
    }

    pub fn is_moderator(&self) -> bool {
        self.moderator.load(Relaxed)
    }

    /// Whether it joined its room with the room's secret (set before it enters the room).
    pub fn set_moderator(&self, moderator: bool) {
        self.moderator.store(moderator, Relaxed);
    }

    /// The room it is in was muted or unmuted (called by the room, under its state lock).
    pub fn set_room_muted(&self, muted: bool) {
        if self.room_muted.swap(muted, Relaxed) != muted && !self.is_moderator() {
            self.hold_or_release(muted);
        }
    }

    /// Whether the room holds its voice: suspended, or a muted room and not a moderator. Its
    /// own `muted` is separate.
    pub fn held_by_room(&self, room_muted: bool) -> bool {
        self.is_suspended() || (room_muted && !self.is_moderator())
    }

    /// Entering a room: not suspended, and the room's mute as it stands.
    pub fn enter_room(&self, room_muted: bool) {
        self.suspended.store(false, Relaxed);
        self.room_muted.store(room_muted, Relaxed);
    }

    /// Out of its room: nothing of the room's holds it any more.
    pub fn leave_room(&self) {
        self.suspended.store(false, Relaxed);
        self.room_muted.store(false, Relaxed);
        self.moderator.store(false, Relaxed);
    }

    fn hold_or_release(&self, held: bool) {
        if held {
            self.queue.lock().reset();
            self.talking.store(false, Relaxed);
        } else {
            self.reset_voice();
        }
    }

    pub fn is_setup(&self) -> bool {
        self.setup.load(Relaxed)
    }

    /// Marks media as flowing or not; returns the previous state.
    pub fn set_setup(&self, setup: bool) -> bool {
        self.setup.swap(setup, Relaxed)
    }

    pub fn is_talking(&self) -> bool {
        self.talking.load(Relaxed)
    }

    /// Ends talking (mute, leave); returns whether the participant was talking.
    pub fn stop_talking(&self) -> bool {
        let was = self.talking.swap(false, Relaxed);
        if was {
            self.restart_voice();
        }
        was
    }

    pub fn volume_percent(&self) -> u32 {
        self.volume_percent.load(Relaxed)
    }

    /// The handle is gone: nothing more is sent to it.
    pub fn detach(&self) {
        self.detached.store(true, Relaxed);
        self.setup.store(false, Relaxed);
    }

    /// Counts packets dropped on arrival: unparseable or of another payload type, and (plain
    /// RTP) from an address that is not the participant's.
    pub fn count_rejected(&self, rejected: u64, foreign: u64) {
        self.rejected_packets.fetch_add(rejected, Relaxed);
        self.foreign_packets.fetch_add(foreign, Relaxed);
    }

    /// Queues one RTP packet for the mixer that arrived just now (Janus's RTP threads).
    pub fn receive(&self, header: PacketHeader, payload: &[u8], audio_level: Option<u8>) {
        self.receive_at(header, payload, audio_level, clock::now_us());
    }

    /// Queues one RTP packet that arrived at `arrival_us` (on `media::clock`).
    pub fn receive_at(
        &self,
        header: PacketHeader,
        payload: &[u8],
        audio_level: Option<u8>,
        arrival_us: u64,
    ) {
        if self.is_muted() || self.held_by_room(self.room_muted.load(Relaxed)) {
            return; // voices that are not mixed are not kept
        }
        let header = PacketHeader {
            timestamp: self.codec().timestamp_at_48k(header.timestamp),
            ..header
        };
        self.queue
            .lock()
            .push(header, payload, audio_level, arrival_us);
    }

    /// The settings as they stand, for `configure` to change some of them.
    pub fn settings(&self) -> Settings {
        let (display, profile) = {
            let control = self.control.lock();
            (control.display.clone(), control.profile)
        };
        let playout = self.queue.lock().mode();
        Settings {
            display,
            muted: self.is_muted(),
            volume_percent: self.volume_percent(),
            playout,
            profile,
        }
    }

    /// Applies new settings, all but `muted` (which goes through `Room::set_muted`, or
    /// `set_muted` outside a room). The codecs follow at the next tick.
    pub fn apply(&self, settings: &Settings) {
        self.change_control(|c| {
            c.display.clone_from(&settings.display);
            c.profile = settings.profile;
        });
        self.volume_percent.store(settings.volume_percent, Relaxed);
        self.queue.lock().set_mode(settings.playout);
    }

    /// A new negotiation's codec and payload type; the codecs follow at the next tick.
    pub fn set_media(&self, codec: AudioCodec, payload_type: u8) {
        self.codec.store(codec_index(codec), Relaxed);
        self.payload_type.store(payload_type, Relaxed);
        self.change_control(|c| {
            c.codec = codec;
            c.payload_type = payload_type;
        });
    }

    /// The payload type the participant's audio comes with (and its mix goes out with).
    pub fn payload_type(&self) -> u8 {
        self.payload_type.load(Relaxed)
    }

    /// `resetdecoder`, and moving to another room: what is queued is dropped and the decoder
    /// starts afresh.
    pub fn reset_voice(&self) {
        self.queue.lock().reset();
        self.restart_voice();
    }

    fn restart_voice(&self) {
        self.change_control(|c| c.voice_epoch += 1);
    }

    fn change_control(&self, change: impl FnOnce(&mut Control)) {
        change(&mut self.control.lock());
        self.control_version.fetch_add(1, Relaxed);
    }

    /// The codec state, for a mixer thread; `None` while another mixer thread has it (the
    /// participant is moving between rooms): it sits this tick out.
    pub fn try_media(&self) -> Option<crate::locks::Guard<'_, Media>> {
        self.media.try_lock()
    }

    /// Brings the codecs in line with what requests asked for and with the room's rate. Called
    /// by the mixer with `media` held.
    pub fn sync_media(&self, media: &mut Media, room_rate: u32) -> Result<(), CodecError> {
        if media.rate != room_rate {
            media.voice = Voice::with_codec(room_rate, media.codec)?;
            media.downlink.set_rate(room_rate)?;
            media.gate.reset();
            media.talk = TalkDetector::default();
            media.rate = room_rate;
        }
        let version = self.control_version.load(Relaxed);
        if version == media.applied {
            return Ok(());
        }
        let (profile, codec, payload_type, voice_epoch) = {
            let c = self.control.lock();
            let wanted = (c.profile, c.codec, c.payload_type, c.voice_epoch);
            drop(c);
            wanted
        };
        media.applied = version;
        media.downlink.payload_type = payload_type;
        if codec != media.codec {
            media.voice = Voice::with_codec(media.rate, codec)?;
            media.downlink.set_codec(codec)?;
            media.gate.reset();
            media.talk = TalkDetector::default();
            media.codec = codec;
        }
        if voice_epoch != media.voice_epoch {
            media.voice_epoch = voice_epoch;
            media.voice.reset();
            media.gate.reset();
            media.talk = TalkDetector::default();
        }
        media.downlink.set_profile(profile)
    }

    /// Reports a talking change decided by the mixer; returns whether it is a change.
    pub fn set_talking(&self, talking: bool) -> bool {
        self.talking.swap(talking, Relaxed) != talking
    }

    pub fn queue_stats(&self) -> JitterStats {
        self.queue.lock().stats
    }

    /// The jitter queue, for the mixer to pull from and plain RTP to push into.
    pub fn queue(&self) -> &OrderedMutex<JitterQueue> {
        &self.queue
    }

    /// Ends the participant's media (kicked, or its room destroyed): Janus closes the
    /// PeerConnection, when there is one; a plain-RTP socket is closed.
    pub fn close_media(&self) {
        match &self.transport {
            Transport::WebRtc => {
                if self.is_setup() && !self.detached.load(Relaxed) {
                    self.endpoint.close_pc();
                }
            }
            Transport::PlainRtp(link) => link.close(),
        }
    }

    /// The participant as rooms list it: `{"userid","display","setup","muted","talking"}`, and
    /// `"suspended": true` while suspended (absent otherwise, as in AudioBridge).
    pub fn describe(&self) -> Value {
        let mut v = json!({
            "userid": self.user_id(),
            "setup": self.is_setup(),
            "muted": self.is_muted(),
            "talking": self.is_talking(),
        });
        if let Some(display) = self.display() {
            v["display"] = Value::String(display);
        }
        if self.is_suspended() {
            v["suspended"] = Value::Bool(true);
        }
        v
    }

    /// What Janus's Admin API shows of the participant's reception.
    pub fn describe_reception(&self) -> Value {
        json!({
            "codec": self.codec().name(),
            "queue": self.describe_playout(),
            "rejected_packets": self.rejected_packets.load(Relaxed),
            "foreign_packets": self.foreign_packets.load(Relaxed),
        })
    }

    /// The jitter queue as operators see it: its mode, the delay it aims at and the delay it
    /// holds, the jitter estimate, and what it concealed, skipped, stretched and dropped.
    pub fn describe_playout(&self) -> Value {
        let (stats, state, mode, queued) = {
            let queue = self.queue.lock();
            (queue.stats, queue.delay_state(), queue.mode(), queue.len())
        };
        let ms = |us: i64| (us as f64 / 100.0).round() / 10.0;
        json!({
            "mode": match mode {
                Mode::Adaptive => json!("adaptive"),
                Mode::Fixed(n) => json!(n),
            },
            "target_ms": ms(state.target_us),
            "depth_ms": ms(state.depth_us.max(0)),
            "jitter_ms": ms(state.jitter_us),
            "queued": queued,
            "received": stats.received,
            "concealed": stats.lost,
            "skipped": stats.skipped,
            "stretched": stats.stretched,
            "late": stats.late,
            "duplicates": stats.duplicates,
            "overflow_drops": stats.overflow_drops,
            "rate_drops": stats.rate_drops,
            "underruns": stats.underruns,
        })
    }
}

impl PacketSink for Participant {
    fn send(&self, packet: &[u8]) {
        if self.detached.load(Relaxed) {
            return;
        }
        match &self.transport {
            Transport::WebRtc => self.endpoint.relay_rtp(packet),
            Transport::PlainRtp(link) => link.send(packet),
        }
    }
}

/// Logs a codec failure of a participant's media, rarely.
pub fn log_codec_error(user_id: u64, error: &CodecError, count: u64) {
    if count.is_power_of_two() {
        log!(
            Error,
            "Participant {user_id}: codec failure ({error}); {count} so far"
        );
    }
}
