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
use crate::media::codec::EncoderProfile;
use crate::media::jitter::Mode;
use crate::media::plain_rtp::{PlainRtpLink, PlainRtpRequest, Sources};
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
    let plain = plain_rtp_request(body, &room)?;
    if plain.is_some() && offer.is_some() {
        return Err(ApiError::invalid("rtp", "absent when an SDP offer is sent"));
    }
    let user_id = choose_user_id(body, &room, None)?;
    // A WebRTC participant joining again keeps what its PeerConnection negotiated.
    let negotiated = offer.map(NegotiatedMedia::from).or(session.negotiated());
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
            let payload_type = request.payload_type;
            let transport = Transport::PlainRtp(link);
            new_participant(session, transport, user_id, &settings, &room, payload_type)?
        }
        (None, Some(existing)) if !existing.is_plain_rtp() => {
            existing.set_user_id(user_id);
            existing.reset_voice();
            existing.apply(&settings);
            existing.set_muted(settings.muted);
            existing
        }
        (None, _) => {
            let payload_type = negotiated.map_or(DEFAULT_OPUS_PT, |n| n.opus_payload_type);
            new_participant(
                session,
                Transport::WebRtc,
                user_id,
                &settings,
                &room,
                payload_type,
            )?
        }
    };
    if let Some(offer) = offer {
        accept_offer(session, &participant, offer);
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
        event["rtp"] = json!({"ip": link.local.ip().to_string(), "port": link.local.port(), "payload_type": link.payload_type});
    }
    tell_room_muted(&room, &mut event);
    Ok(AsyncReply {
        event,
        answer: offer.map(|o| answer_for(o, &room)),
    })
}

pub fn configure(session: &Session, body: &Body, offer: Option<Offer>) -> ApiResult<AsyncReply> {
    let (participant, room) = joined(session)?;
    let mut settings = read_settings(body, participant.settings())?;
    if let Some(offer) = offer {
        settings.profile.fec = offer.fec;
    }
    participant.apply(&settings);
    let mut notices = Notices::new();
    room.set_muted(&participant, settings.muted, &mut notices);
    if let Some(offer) = offer {
        accept_offer(session, &participant, offer);
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
        answer: offer.map(|o| answer_for(o, &room)),
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
    if let Some(offer) = offer {
        settings.profile.fec = offer.fec;
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
    if let Some(offer) = offer {
        accept_offer(session, &participant, offer);
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
        answer: offer.map(|o| answer_for(o, &room)),
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
    payload_type: u8,
) -> ApiResult<Arc<Participant>> {
    let participant = Participant::new(
        session.endpoint().retain(),
        transport,
        user_id,
        settings,
        room.sampling_rate,
        payload_type,
    )
    .map_err(libopus)?;
    Ok(Arc::new(participant))
}

fn accept_offer(session: &Session, participant: &Participant, offer: Offer) {
    participant.set_payload_type(offer.opus_payload_type);
    session.set_negotiated(offer.into());
}

fn answer_for(offer: Offer, room: &Room) -> Answer {
    Answer {
        payload_type: offer.opus_payload_type,
        audio_level_ext: offer.audio_level_ext,
        fec: offer.fec,
        sampling_rate: room.sampling_rate,
    }
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

/// The `rtp` object of a plain-RTP `join`; 489 in rooms that do not allow it.
fn plain_rtp_request(body: &Body, room: &Room) -> ApiResult<Option<PlainRtpRequest>> {
    let Some(rtp) = body.opt_object("rtp")? else {
        return Ok(None);
    };
    check_rtp_allowed(room)?;
    let rtp = Body::new(rtp)?;
    let ip: IpAddr = rtp
        .string("ip")
        .map_err(|e| rename(e, "rtp.ip"))?
        .parse()
        .map_err(|_| ApiError::invalid("rtp.ip", "an IPv4 or IPv6 address"))?;
    let port = rtp
        .opt_uint("port", 1, 65535)
        .map_err(|e| rename(e, "rtp.port"))?
        .ok_or_else(|| ApiError::missing("rtp.port"))?;
    let payload_type = rtp
        .opt_uint("payload_type", 0, 127)
        .map_err(|e| rename(e, "rtp.payload_type"))?
        .unwrap_or(DEFAULT_OPUS_PT as u64);
    let audio_level_ext = rtp
        .opt_uint("audiolevel_ext", 1, 14)
        .map_err(|e| rename(e, "rtp.audiolevel_ext"))?;
    let fec = rtp
        .opt_bool("fec")
        .map_err(|e| rename(e, "rtp.fec"))?
        .unwrap_or(false);
    let sources = if room.settings().rtp_symmetric {
        Sources::Latch
    } else {
        Sources::Declared(ip)
    };
    Ok(Some(PlainRtpRequest {
        remote: SocketAddr::new(ip, port as u16),
        payload_type: payload_type as u8,
        audio_level_ext: audio_level_ext.map(|n| n as u8),
        fec,
        sources,
    }))
}

/// Names a nested field in full (`rtp.port`) in an error about it.
fn rename(e: ApiError, full_name: &str) -> ApiError {
    let short = full_name.rsplit('.').next().unwrap_or(full_name);
    ApiError::new(
        e.code,
        e.reason
            .replacen(&format!("({short}"), &format!("({full_name}"), 1),
    )
}
