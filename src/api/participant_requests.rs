//! The requests about one's own presence (docs/API.md, section 3): join, configure,
//! changeroom, leave, and the synchronous resetdecoder. Each answers the caller with an event
//! and tells the room.

use crate::api::body::{Body, MAX_SAFE_INTEGER};
use crate::api::credentials::{check_token, moderator};
use crate::api::errors::{ApiError, ApiResult, ErrorCode};
use crate::api::jsep::{Answer, Offer};
use crate::api::room_requests::{check_pin, find_room};
use crate::conference::config::MAX_PREBUFFER;
use crate::conference::events::Notices;
use crate::conference::participant::{DEFAULT_OPUS_PT, Participant, Settings, Transport};
use crate::conference::room::Room;
use crate::conference::session::{NegotiatedMedia, Session};
use crate::media::audio_codec::AudioCodec;
use crate::media::codec::EncoderProfile;
use crate::media::jitter::Mode;
use crate::media::plain_rtp::{DEFAULT_OPUS_PAYLOAD_TYPE, PlainRtpLink, PlainRtpRequest, Sources};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The event answering an asynchronous request, and the SDP answer it must carry.
#[derive(Debug)]
pub struct AsyncReply {
    pub event: Value,
    pub answer: Option<Answer>,
}

pub fn join(session: &Session, body: &Body, offer: Option<Offer>) -> ApiResult<AsyncReply> {
    let plugin = &session.plugin;
    let room = find_room(plugin, &body.room_id("id")?)?;
    check_pin(&room, body.opt_string("pin")?)?;
    check_token(&room, body.opt_string("token")?)?;
    let moderator = moderator(&room, body.opt_string("secret")?)?;
    if session.joined().is_some() {
        return Err(ApiError::new(
            ErrorCode::AlreadyJoined,
            "Already in a room (use changeroom to move)",
        ));
    }
    let wanted = read_codec(body, "codec")?;
    let plain = plain_rtp_request(body, &room, wanted)?;
    if plain.is_some() && offer.is_some() {
        return Err(ApiError::invalid("rtp", "absent when an SDP offer is sent"));
    }
    let user_id = choose_user_id(body, &room, None)?;
    // A WebRTC participant joining again keeps what its PeerConnection negotiated.
    let negotiated = match offer {
        Some(offer) => Some(offer.negotiate(wanted)?),
        None => session.negotiated(),
    };
    let base = Settings {
        display: None,
        muted: false,
        volume_percent: 100,
        playout: room.settings().default_playout,
        profile: EncoderProfile {
            fec: match &plain {
                Some(request) => request.fec,
                None => negotiated.is_some_and(|n| n.fec),
            },
            ..EncoderProfile::default()
        },
    };
    let settings = read_settings(body, base)?;
    let participant = match (plain, session.participant()) {
        (Some(request), _) => {
            let link = PlainRtpLink::bind(plugin.local_ip, plugin.config.rtp_port_range, &request)
                .map_err(|e| {
                    ApiError::new(
                        ErrorCode::UnknownError,
                        format!("Cannot open an RTP port: {e}"),
                    )
                })?;
            let media = (request.codec, request.payload_type);
            let transport = Transport::PlainRtp(link);
            new_participant(session, transport, user_id, &settings, &room, media)?
        }
        (None, Some(existing)) if !existing.is_plain_rtp() => {
            if wanted.is_some() {
                existing.set_requested_codec(wanted);
            }
            existing.set_user_id(user_id);
            existing.reset_voice();
            existing.apply(&settings);
            existing.set_muted(settings.muted);
            existing
        }
        (None, _) => {
            // Without an offer yet: the codec asked for, with its payload type until the
            // offer says otherwise.
            let media = negotiated.map_or_else(
                || {
                    let codec = wanted.unwrap_or_default();
                    (
                        codec,
                        codec.static_payload_type().unwrap_or(DEFAULT_OPUS_PT),
                    )
                },
                |n| (n.codec, n.payload_type),
            );
            let participant =
                new_participant(session, Transport::WebRtc, user_id, &settings, &room, media)?;
            participant.set_requested_codec(wanted);
            participant
        }
    };
    let answered = offer.and(negotiated);
    if let Some(negotiated) = answered {
        accept_offer(session, &participant, negotiated);
    }
    participant.set_moderator(moderator);
    let mut notices = Notices::new();
    let others = room
        .add(&participant, &mut notices)
        .map_err(|e| ApiError::from_add(&room.id, e))?;
    session.entered(&participant, &room);
    notices.tell_handlers(
        Some(&participant),
        json!({"event": "joined", "id": room.id, "userid": user_id, "display": participant.display()}),
    );
    plugin.send(notices);
    let mut event =
        json!({"audioroom": "joined", "id": room.id, "userid": user_id, "participants": others});
    if let Transport::PlainRtp(link) = participant.transport() {
        event["rtp"] = json!({
            "ip": link.local.ip().to_string(),
            "port": link.local.port(),
            "payload_type": link.payload_type,
            "codec": link.codec.name(),
        });
    }
    tell_room_muted(&room, &mut event);
    Ok(AsyncReply {
        event,
        answer: answered.map(|n| answer_for(n, &room)),
    })
}

pub fn configure(session: &Session, body: &Body, offer: Option<Offer>) -> ApiResult<AsyncReply> {
    let (participant, room) = joined(session)?;
    let mut settings = read_settings(body, participant.settings())?;
    let destination = read_destination(body, &participant)?;
    let negotiated = offer
        .map(|o| o.negotiate(participant.requested_codec()))
        .transpose()?;
    if let Some(negotiated) = negotiated {
        settings.profile.fec = negotiated.fec;
    }
    participant.apply(&settings);
    if let (Some(remote), Transport::PlainRtp(link)) = (destination, participant.transport()) {
        link.set_remote(remote);
    }
    let mut notices = Notices::new();
    room.set_muted(&participant, settings.muted, &mut notices);
    if let Some(negotiated) = negotiated {
        accept_offer(session, &participant, negotiated);
    }
    let event =
        json!({"audioroom": "event", "id": room.id, "participants": [participant.describe()]});
    room.tell_all(Some(&participant), &event, &mut notices);
    notices.tell_handlers(
        Some(&participant),
        json!({"event": "configured", "id": room.id, "userid": participant.user_id(), "muted": settings.muted}),
    );
    session.plugin.send(notices);
    Ok(AsyncReply {
        event: json!({"audioroom": "event", "id": room.id, "result": "ok"}),
        answer: negotiated.map(|n| answer_for(n, &room)),
    })
}

pub fn change_room(session: &Session, body: &Body, offer: Option<Offer>) -> ApiResult<AsyncReply> {
    let plugin = &session.plugin;
    let (participant, old_room) = joined(session)?;
    let room = find_room(plugin, &body.room_id("id")?)?;
    if Arc::ptr_eq(&room, &old_room) {
        return Err(ApiError::new(
            ErrorCode::AlreadyJoined,
            format!("Already in room {}", room.id),
        ));
    }
    check_pin(&room, body.opt_string("pin")?)?;
    check_token(&room, body.opt_string("token")?)?;
    let moderator = moderator(&room, body.opt_string("secret")?)?;
    if body.has("rtp") {
        return Err(ApiError::invalid(
            "rtp",
            "absent in changeroom (the RTP link stays)",
        ));
    }
    if participant.is_plain_rtp() {
        check_rtp_allowed(&room)?;
    }
    let user_id = choose_user_id(body, &room, Some(participant.user_id()))?;
    let mut base = participant.settings();
    base.muted = false;
    base.playout = room.settings().default_playout;
    let mut settings = read_settings(body, base)?;
    let negotiated = offer
        .map(|o| o.negotiate(participant.requested_codec()))
        .transpose()?;
    if let Some(negotiated) = negotiated {
        settings.profile.fec = negotiated.fec;
    }
    let old_user_id = participant.user_id();
    let old_settings = participant.settings();
    let old_moderator = participant.is_moderator();
    let mut notices = Notices::new();
    old_room.remove(&participant, &mut notices);
    let moved = move_into(
        session,
        &participant,
        &room,
        (user_id, moderator),
        &settings,
        &mut notices,
    );
    let others = match moved {
        Ok(others) => others,
        Err(error) => {
            // Back where it was, rather than in no room at all.
            let _ = move_into(
                session,
                &participant,
                &old_room,
                (old_user_id, old_moderator),
                &old_settings,
                &mut notices,
            );
            plugin.send(notices);
            return Err(error);
        }
    };
    if let Some(negotiated) = negotiated {
        accept_offer(session, &participant, negotiated);
    }
    notices.tell_handlers(
        Some(&participant),
        json!({"event": "left", "id": old_room.id, "userid": old_user_id}),
    );
    notices.tell_handlers(
        Some(&participant),
        json!({"event": "joined", "id": room.id, "userid": user_id, "display": participant.display()}),
    );
    plugin.send(notices);
    let mut event = json!({"audioroom": "roomchanged", "id": room.id, "userid": user_id, "participants": others});
    tell_room_muted(&room, &mut event);
    Ok(AsyncReply {
        event,
        answer: negotiated.map(|n| answer_for(n, &room)),
    })
}

/// A participant arriving in a muted room is told so (`"muted": true`, the room's mute, as in
/// the room's mute event); AudioBridge tells nobody.
fn tell_room_muted(room: &Room, event: &mut Value) {
    if room.is_muted() {
        event["muted"] = Value::Bool(true);
    }
}

pub fn leave(session: &Session) -> ApiResult<AsyncReply> {
    let (participant, room) = session.leave().ok_or_else(ApiError::not_joined)?;
    Ok(AsyncReply {
        event: json!({"audioroom": "left", "id": room.id, "userid": participant.user_id()}),
        answer: None,
    })
}

pub fn reset_decoder(session: &Session) -> ApiResult<Value> {
    let (participant, _room) = joined(session)?;
    participant.reset_voice();
    Ok(json!({"audioroom": "success"}))
}

/// Puts a participant who is in no room into `room` with these settings, as this user id and
/// moderator or not.
fn move_into(
    session: &Session,
    participant: &Arc<Participant>,
    room: &Arc<Room>,
    (user_id, moderator): (u64, bool),
    settings: &Settings,
    notices: &mut Notices,
) -> ApiResult<Vec<Value>> {
    participant.set_user_id(user_id);
    participant.set_moderator(moderator);
    participant.reset_voice();
    participant.apply(settings);
    participant.set_muted(settings.muted);
    let others = room
        .add(participant, notices)
        .map_err(|e| ApiError::from_add(&room.id, e))?;
    session.entered(participant, room);
    Ok(others)
}

fn joined(session: &Session) -> ApiResult<(Arc<Participant>, Arc<Room>)> {
    session.joined().ok_or_else(ApiError::not_joined)
}

fn new_participant(
    session: &Session,
    transport: Transport,
    user_id: u64,
    settings: &Settings,
    room: &Room,
    media: (AudioCodec, u8),
) -> ApiResult<Arc<Participant>> {
    let participant = Participant::new(
        session.endpoint().retain(),
        transport,
        user_id,
        settings,
        room.sampling_rate,
        media,
    )
    .map_err(libopus)?;
    Ok(Arc::new(participant))
}

fn accept_offer(session: &Session, participant: &Participant, negotiated: NegotiatedMedia) {
    participant.set_media(negotiated.codec, negotiated.payload_type);
    session.set_negotiated(negotiated);
}

fn answer_for(negotiated: NegotiatedMedia, room: &Room) -> Answer {
    Answer {
        codec: negotiated.codec,
        payload_type: negotiated.payload_type,
        audio_level_ext: negotiated.audio_level_ext,
        fec: negotiated.fec,
        sampling_rate: room.sampling_rate,
    }
}

const CODEC_RULE: &str = "opus, pcmu or pcma";

/// A codec field (`codec`, `rtp.codec`): `opus`, `pcmu` or `pcma`, in any case.
fn read_codec(body: &Body, key: &str) -> ApiResult<Option<AudioCodec>> {
    match body.opt_string(key)? {
        None => Ok(None),
        Some(name) => AudioCodec::parse(name)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(key, CODEC_RULE)),
    }
}

/// `configure`'s `rtp`: where a plain-RTP participant's mix goes from now on (`ip` and
/// `port`, both required; nothing else of the link changes).
fn read_destination(body: &Body, participant: &Participant) -> ApiResult<Option<SocketAddr>> {
    let Some(rtp) = body.opt_object("rtp")? else {
        return Ok(None);
    };
    if !participant.is_plain_rtp() {
        return Err(ApiError::invalid("rtp", "absent for a WebRTC participant"));
    }
    let rtp = Body::new(rtp)?;
    let ip = read_ip(&rtp)?.ok_or_else(|| ApiError::missing("rtp.ip"))?;
    let port = read_port(&rtp)?.ok_or_else(|| ApiError::missing("rtp.port"))?;
    Ok(Some(SocketAddr::new(ip, port)))
}

pub(crate) fn read_ip(rtp: &Body) -> ApiResult<Option<IpAddr>> {
    rtp.opt_string("ip")
        .map_err(|e| rename(e, "rtp.ip"))?
        .map(|ip| {
            ip.parse()
                .map_err(|_| ApiError::invalid("rtp.ip", "an IPv4 or IPv6 address"))
        })
        .transpose()
}

pub(crate) fn read_port(rtp: &Body) -> ApiResult<Option<u16>> {
    Ok(rtp
        .opt_uint("port", 1, 65535)
        .map_err(|e| rename(e, "rtp.port"))?
        .map(|p| p as u16))
}

fn libopus(e: crate::media::codec::CodecError) -> ApiError {
    ApiError::new(ErrorCode::LibopusError, e.to_string())
}

/// The `userid` asked for (490 when taken), else `preferred` when free in `room`, else a
/// random unused one.
fn choose_user_id(body: &Body, room: &Room, preferred: Option<u64>) -> ApiResult<u64> {
    match body.opt_user_id("userid")? {
        Some(id) if room.find(id).is_some() => Err(ApiError::id_exists(id)),
        Some(id) => Ok(id),
        None => Ok(preferred
            .filter(|id| room.find(*id).is_none())
            .unwrap_or_else(|| unused_user_id(room))),
    }
}

fn check_rtp_allowed(room: &Room) -> ApiResult<()> {
    if room.settings().allow_rtp_participants {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Unauthorized,
            format!("Room {} does not allow plain RTP participants", room.id),
        ))
    }
}

fn unused_user_id(room: &Room) -> u64 {
    loop {
        let id = rand::random::<u64>() % MAX_SAFE_INTEGER + 1;
        if room.find(id).is_none() {
            return id;
        }
    }
}

/// The fields `join`, `configure` and `changeroom` share, applied over `base`.
fn read_settings(body: &Body, base: Settings) -> ApiResult<Settings> {
    let mut s = base;
    if let Some(display) = body.opt_string("display")? {
        s.display = Some(display.to_owned());
    }
    if let Some(muted) = body.opt_bool("muted")? {
        s.muted = muted;
    }
    if let Some(volume) = body.opt_uint("volume", 0, 1000)? {
        s.volume_percent = volume as u32;
    }
    if let Some(prebuffer) = body.opt_uint("prebuffer", 0, MAX_PREBUFFER as u64)? {
        s.playout = Mode::Fixed(prebuffer as u32);
    }
    if let Some(quality) = body.opt_uint("quality", 0, 10)? {
        s.profile.complexity = quality as u8;
    }
    if let Some(bitrate) = body.opt_uint("bitrate", 0, 512_000)? {
        s.profile.bitrate = (bitrate > 0).then_some(bitrate as u32);
    }
    if let Some(loss) = body.opt_uint("expected_loss", 0, 100)? {
        s.profile.expected_loss = loss as u8;
    }
    Ok(s)
}

/// The `rtp` object of a plain-RTP `join`; 489 in rooms that do not allow it. Without `ip`
/// and `port` the participant is a send-only source: heard, sent nothing. Its codec is
/// `rtp.codec`, else `join`'s `codec` (as AudioBridge takes it), else Opus.
fn plain_rtp_request(
    body: &Body,
    room: &Room,
    codec: Option<AudioCodec>,
) -> ApiResult<Option<PlainRtpRequest>> {
    let Some(rtp) = body.opt_object("rtp")? else {
        return Ok(None);
    };
    check_rtp_allowed(room)?;
    let rtp = Body::new(rtp)?;
    let ip = read_ip(&rtp)?;
    let port = read_port(&rtp)?;
    let remote = match (ip, port) {
        (Some(ip), Some(port)) => Some(SocketAddr::new(ip, port)),
        (None, None) => None,
        (None, Some(_)) => return Err(ApiError::missing("rtp.ip")),
        (Some(_), None) => return Err(ApiError::missing("rtp.port")),
    };
    let codec = read_codec(&rtp, "codec")
        .map_err(|e| rename(e, "rtp.codec"))?
        .or(codec)
        .unwrap_or_default();
    let payload_type = rtp
        .opt_uint("payload_type", 0, 127)
        .map_err(|e| rename(e, "rtp.payload_type"))?
        .map_or_else(
            || {
                codec
                    .static_payload_type()
                    .unwrap_or(DEFAULT_OPUS_PAYLOAD_TYPE)
            },
            |pt| pt as u8,
        );
    let audio_level_ext = rtp
        .opt_uint("audiolevel_ext", 1, 14)
        .map_err(|e| rename(e, "rtp.audiolevel_ext"))?;
    let fec = rtp
        .opt_bool("fec")
        .map_err(|e| rename(e, "rtp.fec"))?
        .unwrap_or(false);
    let sources = match remote {
        Some(remote) if !room.settings().rtp_symmetric => Sources::Declared(remote.ip()),
        _ => Sources::Latch,
    };
    Ok(Some(PlainRtpRequest {
        remote,
        codec,
        payload_type,
        audio_level_ext: audio_level_ext.map(|n| n as u8),
        fec,
        sources,
    }))
}

/// Names a nested field in full (`rtp.port`) in an error about it.
pub(crate) fn rename(e: ApiError, full_name: &str) -> ApiError {
    let short = full_name.rsplit('.').next().unwrap_or(full_name);
    ApiError::new(
        e.code,
        e.reason
            .replacen(&format!("({short}"), &format!("({full_name}"), 1),
    )
}
