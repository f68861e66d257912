//! RTP forwarders (docs/API.md, section 2.19): `rtp_forward`, `stop_rtp_forward` and
//! `listforwarders`, as AudioBridge has them, with `id` for the room. The room's secret is
//! needed, and with `lock_rtp_forward` the configured `admin_key` too (not for
//! `listforwarders`, as in AudioBridge).

use crate::api::body::Body;
use crate::api::credentials::check_admin_key;
use crate::api::errors::{ApiError, ApiResult, ErrorCode};
use crate::api::room_requests::{Caller, check_secret, find_room};
use crate::conference::plugin::Plugin;
use crate::conference::room_forwarders::{ForwardError, MAX_FORWARDERS};
use crate::media::audio_codec::AudioCodec;
use crate::media::plain_rtp::DEFAULT_OPUS_PAYLOAD_TYPE;
use crate::media::rtp_forwarder::ForwarderSettings;
use crate::media::srtp::{MASTER_LEN, Suite, decode_base64};
use serde_json::{Value, json};
use std::net::{SocketAddr, ToSocketAddrs};

pub fn rtp_forward(plugin: &Plugin, body: &Body, caller: Caller) -> ApiResult<Value> {
    check_admin_key(plugin, body, caller, plugin.config.lock_rtp_forward)?;
    let id = body.room_id("id")?;
    let host = body.string("host")?;
    let port = body
        .opt_uint("port", 1, 65535)?
        .ok_or_else(|| ApiError::missing("port"))? as u16;
    let family = match body.opt_string("host_family")? {
        None => None,
        Some("ipv4") => Some(false),
        Some("ipv6") => Some(true),
        Some(_) => return Err(ApiError::invalid("host_family", "ipv4 or ipv6")),
    };
    let codec = match body.opt_string("codec")? {
        None => AudioCodec::Opus,
        Some(name) => AudioCodec::parse(name)
            .ok_or_else(|| ApiError::invalid("codec", "opus, pcmu or pcma"))?,
    };
    let payload_type = body.opt_uint("ptype", 0, 127)?.map_or_else(
        || {
            codec
                .static_payload_type()
                .unwrap_or(DEFAULT_OPUS_PAYLOAD_TYPE)
        },
        |pt| pt as u8,
    );
    let ssrc = body.opt_uint("ssrc", 0, u32::MAX as u64)?.map(|s| s as u32);
    let srtp = read_srtp(body)?;
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    let destination = resolve(host, port, family)?;
    let settings = ForwarderSettings {
        destination,
        codec,
        payload_type,
        ssrc: 0,
        srtp,
    };
    let forwarder = room.add_forwarder(settings, ssrc).map_err(|e| match e {
        ForwardError::Destroyed => ApiError::no_such_room(&id),
        ForwardError::TooMany => ApiError::new(
            ErrorCode::UnknownError,
            format!("Room {id} has {MAX_FORWARDERS} forwarders, the most it may have"),
        ),
        ForwardError::Socket(e) => ApiError::new(
            ErrorCode::UnknownError,
            format!("Cannot open a socket for the forwarder: {e}"),
        ),
    })?;
    crate::log!(
        Info,
        "Room {id}: forwarding the mix ({}) to {destination} as stream {}",
        codec.name(),
        forwarder.stream_id
    );
    Ok(json!({
        "audioroom": "success",
        "id": id,
        "stream_id": forwarder.stream_id,
        "host": destination.ip().to_string(),
        "port": destination.port(),
    }))
}

pub fn stop_rtp_forward(plugin: &Plugin, body: &Body, caller: Caller) -> ApiResult<Value> {
    check_admin_key(plugin, body, caller, plugin.config.lock_rtp_forward)?;
    let id = body.room_id("id")?;
    let stream_id = body
        .opt_uint("stream_id", 0, u32::MAX as u64)?
        .ok_or_else(|| ApiError::missing("stream_id"))? as u32;
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    if !room.remove_forwarder(stream_id) {
        return Err(ApiError::new(
            ErrorCode::NoSuchForwarder,
            format!("No such forwarder ({stream_id}) in room {id}"),
        ));
    }
    crate::log!(Info, "Room {id}: forwarder {stream_id} stopped");
    Ok(json!({"audioroom": "success", "id": id, "stream_id": stream_id}))
}

pub fn list_forwarders(plugin: &Plugin, body: &Body) -> ApiResult<Value> {
    let id = body.room_id("id")?;
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    Ok(json!({
        "audioroom": "forwarders",
        "id": id,
        "rtp_forwarders": room.describe_forwarders(),
    }))
}

/// `srtp_suite` (32 or 80) and `srtp_crypto` (the base64 of 30 bytes of master key and salt),
/// both or neither. AudioBridge forwards in clear when only one is given; here it is an error.
fn read_srtp(body: &Body) -> ApiResult<Option<(Suite, [u8; MASTER_LEN])>> {
    let suite = match body.opt_uint("srtp_suite", 0, u64::MAX) {
        Ok(None) => None,
        Ok(Some(bits)) => Some(Suite::from_bits(bits).ok_or_else(suite_rule)?),
        Err(_) => return Err(suite_rule()),
    };
    let crypto = body.opt_string("srtp_crypto")?;
    match (suite, crypto) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ApiError::missing("srtp_crypto")),
        (None, Some(_)) => Err(ApiError::missing("srtp_suite")),
        (Some(suite), Some(text)) => {
            let master = decode_base64(text)
                .and_then(|bytes| <[u8; MASTER_LEN]>::try_from(bytes).ok())
                .ok_or_else(|| {
                    ApiError::invalid("srtp_crypto", "the base64 of a 30-byte master key and salt")
                })?;
            Ok(Some((suite, master)))
        }
    }
}

fn suite_rule() -> ApiError {
    ApiError::invalid("srtp_suite", "32 or 80")
}

/// The first address `host` resolves to (of the family asked for, if any). Names are looked up
/// by the system's resolver on this request thread, as AudioBridge does.
fn resolve(host: &str, port: u16, ipv6: Option<bool>) -> ApiResult<SocketAddr> {
    let unresolved = || ApiError::invalid("host", "an address, or a name that resolves");
    (host, port)
        .to_socket_addrs()
        .map_err(|_| unresolved())?
        .find(|a| ipv6.is_none_or(|v6| a.is_ipv6() == v6))
        .ok_or_else(unresolved)
}
