//! What a moderator (who knows the room's `secret`) does to one participant: `kick`, `mute`,
//! `unmute`, `suspend` and `resume` (docs/API.md, sections 2.7, 2.8 and 2.14).

use crate::api::body::Body;
use crate::api::errors::{ApiError, ApiResult, ErrorCode};
use crate::api::room_requests::{check_secret, find_room};
use crate::conference::events::Notices;
use crate::conference::participant::Participant;
use crate::conference::plugin::Plugin;
use crate::conference::room::Room;
use serde_json::{Value, json};
use std::sync::Arc;

/// `kick`: the participant leaves the room and its PeerConnection is closed.
pub fn kick(plugin: &Plugin, body: &Body) -> ApiResult<Value> {
    let (room, target) = moderated_target(plugin, body)?;
    let event = json!({"audioroom": "event", "id": room.id, "kicked": target.user_id()});
    let mut notices = Notices::new();
    room.tell_all(None, &event, &mut notices);
    if room.remove(&target, &mut notices) {
        let about = json!({"event": "kicked", "id": room.id, "userid": target.user_id()});
        notices.tell_handlers(Some(&target), about);
    }
    plugin.send(notices);
    target.close_media();
    Ok(json!({"audioroom": "success"}))
}

/// `mute` / `unmute`; when the state changes the room hears it.
pub fn set_muted(plugin: &Plugin, body: &Body, muted: bool) -> ApiResult<Value> {
    let (room, target) = moderated_target(plugin, body)?;
    let mut notices = Notices::new();
    if room.set_muted(&target, muted, &mut notices) {
        let event =
            json!({"audioroom": "event", "id": room.id, "participants": [target.describe()]});
        room.tell_all(None, &event, &mut notices);
        let kind = if muted { "muted" } else { "unmuted" };
        let about = json!({"event": kind, "id": room.id, "userid": target.user_id()});
        notices.tell_handlers(Some(&target), about);
    }
    plugin.send(notices);
    Ok(json!({"audioroom": "success"}))
}

/// `suspend` / `resume`: the participant stays in the room but is neither heard nor sent the
/// mix until resumed. The room's secret is needed even to suspend oneself (AudioBridge lets a
/// participant resume itself without it, undoing a moderator's suspension).
pub fn set_suspended(plugin: &Plugin, body: &Body, suspended: bool) -> ApiResult<Value> {
    let (room, target) = moderated_target(plugin, body)?;
    let mut notices = Notices::new();
    room.set_suspended(&target, suspended, &mut notices);
    plugin.send(notices);
    Ok(json!({"audioroom": "success"}))
}

fn moderated_target(plugin: &Plugin, body: &Body) -> ApiResult<(Arc<Room>, Arc<Participant>)> {
    let id = body.room_id("id")?;
    let user_id = body.user_id("userid")?;
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    let target = room.find(user_id).ok_or_else(|| {
        ApiError::new(
            ErrorCode::NoSuchUser,
            format!("No such user ({user_id}) in room {id}"),
        )
    })?;
    Ok((room, target))
}
