//! Links between servers (docs/API.md, section 2.20): `link` opens (or points) this room's end
//! of a link to the same room on another Janus, `unlink` closes it. They need the room's secret
//! when it has one, and with `lock_rtp_forward` the configured `admin_key` too: a link sends the
//! room's sound elsewhere, as a forwarder does.

use crate::api::body::Body;
use crate::api::credentials::check_admin_key;
use crate::api::errors::{ApiError, ApiResult, ErrorCode};
use crate::api::participant_requests::{read_ip, read_port, rename};
use crate::api::room_requests::{Caller, check_secret, find_room};
use crate::conference::events::Notices;
use crate::conference::link::LinkRequest;
use crate::conference::participant::Transport;
use crate::conference::plugin::Plugin;
use crate::conference::room_links::{LinkError, MAX_LINKS, Removal};
use crate::media::plain_rtp::DEFAULT_OPUS_PAYLOAD_TYPE;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// A link's queue: two packets by default (40 ms: a server-to-server path jitters little, and
/// every hop pays it), at most five.
pub const DEFAULT_PREBUFFERING: u64 = 2;
pub const MAX_PREBUFFERING: u64 = 5;
/// Seconds of silence before a link is removed.
pub const DEFAULT_TIMEOUT_S: u64 = 10;

const MAX_ID_BYTES: usize = 64;
const MAX_PEER_BYTES: usize = 256;

pub fn link(plugin: &Plugin, body: &Body, caller: Caller) -> ApiResult<Value> {
    check_admin_key(plugin, body, caller, plugin.config.lock_rtp_forward)?;
    let id = body.room_id("id")?;
    let link_id = match body.opt_string("link_id")? {
        Some(l) => valid_link_id(l)?.to_owned(),
        None => format!("{:016x}", rand::random::<u64>()),
    };
    let (remote, payload_type) = read_rtp(body)?;
    let upstream = body.opt_bool("upstream")?.unwrap_or(false);
    let prebuffering = body
        .opt_uint("prebuffering", 1, MAX_PREBUFFERING)?
        .unwrap_or(DEFAULT_PREBUFFERING) as u32;
    let timeout_s = body
        .opt_uint("timeout", 2, 3600)?
        .unwrap_or(DEFAULT_TIMEOUT_S);
    let peer = body.opt_string("peer")?;
    if peer.is_some_and(|p| p.len() > MAX_PEER_BYTES || p.chars().any(char::is_control)) {
        return Err(ApiError::invalid(
            "peer",
            "text of at most 256 bytes without control characters",
        ));
    }
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    let link = match room.find_link(&link_id) {
        // The far side's port, now known: the link's second step.
        Some(existing) => {
            let Some(remote) = remote else {
                return Err(ApiError::new(
                    ErrorCode::IdExists,
                    format!("Link {link_id} already exists in room {id} (give rtp to point it)"),
                ));
            };
            existing.set_remote(remote);
            crate::log!(Info, "Room {id}: link {link_id} sends to {remote}");
            existing
        }
        None => {
            let request = LinkRequest {
                id: link_id.clone(),
                remote,
                payload_type: payload_type.unwrap_or(DEFAULT_OPUS_PAYLOAD_TYPE),
                upstream,
                peer: peer.map(str::to_owned),
                timeout_us: timeout_s * 1_000_000,
                prebuffering,
            };
            let local = (plugin.local_ip, plugin.config.rtp_port_range);
            let mut notices = Notices::new();
            let added = room.add_link(request, local, &mut notices);
            plugin.send(notices);
            let link = added.map_err(|e| link_error(e, &id, &link_id))?;
            crate::log!(
                Info,
                "Room {id}: link {link_id} opened{}",
                peer.map(|p| format!(" to {p}")).unwrap_or_default()
            );
            link
        }
    };
    let Transport::PlainRtp(rtp) = link.participant.transport() else {
        unreachable!("a link is plain RTP");
    };
    Ok(json!({
        "audioroom": "linked",
        "id": id,
        "link_id": link_id,
        "rtp": {
            "ip": rtp.local.ip().to_string(),
            "port": rtp.local.port(),
            "payload_type": rtp.payload_type,
        },
    }))
}

pub fn unlink(plugin: &Plugin, body: &Body, caller: Caller) -> ApiResult<Value> {
    check_admin_key(plugin, body, caller, plugin.config.lock_rtp_forward)?;
    let id = body.room_id("id")?;
    let link_id = body.string("link_id")?;
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    let mut notices = Notices::new();
    let removed = room.remove_link(link_id, Removal::Unlinked, &mut notices);
    plugin.send(notices);
    if !removed {
        return Err(no_such_link(&id, link_id));
    }
    crate::log!(Info, "Room {id}: link {link_id} closed");
    Ok(json!({"audioroom": "unlinked", "id": id, "link_id": link_id}))
}

fn valid_link_id(id: &str) -> ApiResult<&str> {
    let ok = (1..=MAX_ID_BYTES).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Ok(id)
    } else {
        Err(ApiError::invalid(
            "link_id",
            "1 to 64 letters, digits, '.', '_', ':' or '-'",
        ))
    }
}

/// `rtp`: the far side's `ip` and `port` (both or neither), and the Opus `payload_type`.
fn read_rtp(body: &Body) -> ApiResult<(Option<SocketAddr>, Option<u8>)> {
    let Some(rtp) = body.opt_object("rtp")? else {
        return Ok((None, None));
    };
    let rtp = Body::new(rtp)?;
    let payload_type = rtp
        .opt_uint("payload_type", 0, 127)
        .map_err(|e| rename(e, "rtp.payload_type"))?
        .map(|pt| pt as u8);
    let remote = match (read_ip(&rtp)?, read_port(&rtp)?) {
        (Some(ip), Some(port)) => Some(SocketAddr::new(ip, port)),
        (None, None) => None,
        (Some(_), None) => return Err(ApiError::missing("rtp.port")),
        (None, Some(_)) => return Err(ApiError::missing("rtp.ip")),
    };
    Ok((remote, payload_type))
}

fn no_such_link(room: &str, link_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NoSuchLink,
        format!("No such link ({link_id}) in room {room}"),
    )
}

fn link_error(e: LinkError, room: &str, link_id: &str) -> ApiError {
    match e {
        LinkError::Destroyed => ApiError::no_such_room(room),
        LinkError::IdTaken => ApiError::new(
            ErrorCode::IdExists,
            format!("Link {link_id} already exists in room {room}"),
        ),
        LinkError::TooMany => ApiError::new(
            ErrorCode::UnknownError,
            format!("Room {room} has {MAX_LINKS} links, the most it may have"),
        ),
        LinkError::UpstreamTaken(up) => ApiError::new(
            ErrorCode::UpstreamTaken,
            format!("Room {room} already has an upstream link ({up}): a room joins one tree"),
        ),
        LinkError::Failed(reason) => ApiError::new(ErrorCode::UnknownError, reason),
    }
}
