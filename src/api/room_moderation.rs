//! What a moderator (who knows the room's `secret`) does to a whole room: `kick_all`,
//! `mute_room` and `unmute_room` (docs/API.md, sections 2.13 and 2.14).

use crate::api::body::Body;
use crate::api::errors::ApiResult;
use crate::api::room_requests::{check_secret, find_room};
use crate::conference::events::Notices;
use crate::conference::plugin::Plugin;
use crate::conference::room::Room;
use serde_json::{Value, json};
use std::sync::Arc;

/// `kick_all`: everyone leaves, the room stays. Each participant is told it was kicked, and
/// PeerConnections and plain-RTP sockets are closed.
pub fn kick_all(plugin: &Plugin, body: &Body) -> ApiResult<Value> {
    let room = moderated_room(plugin, body)?;
    let mut notices = Notices::new();
    let everyone = room.remove_everyone(&mut notices);
    plugin.send(notices);
    for p in &everyone {
        p.close_media();
    }
    crate::log!(
        Verbose,
        "Room {}: {} participants kicked",
        room.id,
        everyone.len()
    );
    Ok(json!({"audioroom": "success"}))
}

/// `mute_room` / `unmute_room`; a request that changes nothing succeeds and tells nobody.
pub fn set_room_muted(plugin: &Plugin, body: &Body, muted: bool) -> ApiResult<Value> {
    let room = moderated_room(plugin, body)?;
    let mut notices = Notices::new();
    room.set_room_muted(muted, &mut notices);
    plugin.send(notices);
    Ok(json!({"audioroom": "success"}))
}

fn moderated_room(plugin: &Plugin, body: &Body) -> ApiResult<Arc<Room>> {
    let id = body.room_id("id")?;
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    Ok(room)
}
