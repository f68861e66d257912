//! The synchronous requests about rooms (SPEC §3): create, edit, destroy, exists, list,
//! listparticipants, and the moderator's kick, mute and unmute.

use crate::body::Body;
use crate::codec::SAMPLING_RATES;
use crate::config::MAX_PREBUFFER;
use crate::errors::{ApiError, ApiResult};
use crate::notices::Notices;
use crate::plugin::Plugin;
use crate::room::{Room, RoomSettings};
use crate::talk::TalkSettings;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Who is asking: a client on a handle, or an operator through Janus's Admin API (already
/// authenticated by Janus, so `admin_key` is not asked for and private rooms are listed).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Caller {
    Client,
    Admin,
}

pub fn create(plugin: &Plugin, body: &Body, caller: Caller) -> ApiResult<Value> {
    if let (Some(key), Caller::Client) = (&plugin.config.admin_key, caller) {
        if body.string("admin_key")? != key {
            return Err(ApiError::unauthorized("admin_key"));
        }
    }
    let id = match body.opt_room_id("id")? {
        Some(id) => id,
        None => unused_room_id(plugin),
    };
    let sampling_key = if body.has("sampling") || !body.has("sampling_rate") {
        "sampling"
    } else {
        "sampling_rate"
    };
    let sampling_rate = match body.has(sampling_key) {
        false => 48000,
        true => body
            .opt_uint(sampling_key, 0, u32::MAX as u64)
            .ok()
            .flatten()
            .map(|n| n as u32)
            .filter(|n| SAMPLING_RATES.contains(n))
            .ok_or_else(|| ApiError::invalid(sampling_key, "8000, 12000, 16000, 24000 or 48000"))?,
    };
    let settings = RoomSettings {
        description: body
            .opt_string("description")?
            .map_or_else(|| format!("Room {id}"), str::to_owned),
        secret: body.opt_string("secret")?.map(str::to_owned),
        pin: body.opt_string("pin")?.map(str::to_owned),
        is_private: body.opt_bool("is_private")?.unwrap_or(false),
        audiolevel_event: body.opt_bool("audiolevel_event")?.unwrap_or(false),
        talk: TalkSettings {
            active_packets: body
                .opt_uint("audio_active_packets", 1, 3000)?
                .map_or(TalkSettings::default().active_packets, |n| n as u32),
            level_average: body
                .opt_uint("audio_level_average", 1, 127)?
                .map_or(TalkSettings::default().level_average, |n| n as u8),
        },
        allow_rtp_participants: body.opt_bool("allow_rtp_participants")?.unwrap_or(false),
        default_prebuffer: body
            .opt_uint("default_prebuffering", 0, MAX_PREBUFFER as u64)?
            .map_or(plugin.config.mixer_prebuffering, |n| n as u32),
    };
    let record = body
        .opt_bool("record")?
        .unwrap_or(plugin.config.recording_enabled);
    let room = plugin.rooms.insert(Arc::new(Room::new(
        id.clone(),
        sampling_rate,
        settings,
        record,
    )))?;
    crate::log!(
        Verbose,
        "Room {} created ({} Hz, record {})",
        room.id,
        sampling_rate,
        record
    );
    plugin.notify_handlers(None, json!({"event": "created", "id": id}));
    Ok(json!({"audioroom": "created", "id": id}))
}

fn unused_room_id(plugin: &Plugin) -> String {
    loop {
        let id = format!("{:016x}", rand::random::<u64>());
        if !plugin.rooms.contains(&id) {
            return id;
        }
    }
}

pub fn edit(plugin: &Plugin, body: &Body) -> ApiResult<Value> {
    let id = body.room_id("id")?;
    let room = plugin.rooms.find(&id)?;
    room.check_secret(body.opt_string("secret")?)?;
    let description = body.opt_string("new_description")?;
    let secret = body.opt_string("new_secret")?;
    let pin = body.opt_string("new_pin")?;
    let is_private = body.opt_bool("new_is_private")?;
    let mut settings = room.settings();
    if let Some(d) = description {
        settings.description = d.to_owned();
    }
    if let Some(s) = secret {
        settings.secret = (!s.is_empty()).then(|| s.to_owned());
    }
    if let Some(p) = pin {
        settings.pin = (!p.is_empty()).then(|| p.to_owned());
    }
    if let Some(p) = is_private {
        settings.is_private = p;
    }
    Ok(json!({"audioroom": "edited", "id": id}))
}

pub fn destroy(plugin: &Plugin, body: &Body) -> ApiResult<Value> {
    let id = body.room_id("id")?;
    let room = plugin.rooms.find(&id)?;
    room.check_secret(body.opt_string("secret")?)?;
    if plugin.rooms.remove(&id).is_none() {
        return Err(ApiError::no_such_room(&id));
    }
    let (participants, recording) = room.destroy();
    let event = json!({"audioroom": "destroyed", "id": id});
    let mut notices = Notices::new();
    notices.add_to_all(&participants, None, &event);
    notices.send();
    for p in &participants {
        p.close_media();
    }
    if let Some(recording) = recording {
        recording.finish();
    }
    crate::log!(Verbose, "Room {id} destroyed");
    plugin.notify_handlers(None, json!({"event": "destroyed", "id": id}));
    Ok(event)
}

pub fn exists(plugin: &Plugin, body: &Body) -> ApiResult<Value> {
    let id = body.room_id("id")?;
    let exists = plugin.rooms.contains(&id);
    Ok(json!({"audioroom": "success", "id": id, "exists": exists}))
}

pub fn list(plugin: &Plugin, caller: Caller) -> ApiResult<Value> {
    let list: Vec<Value> = plugin
        .rooms
        .all()
        .iter()
        .filter(|room| caller == Caller::Admin || !room.settings().is_private)
        .map(|room| room.describe())
        .collect();
    Ok(json!({"audioroom": "success", "list": list}))
}

pub fn list_participants(plugin: &Plugin, body: &Body) -> ApiResult<Value> {
    let id = body.room_id("id")?;
    let room = plugin.rooms.find(&id)?;
    let participants: Vec<Value> = room.participants().iter().map(|p| p.describe()).collect();
    Ok(json!({"audioroom": "participants", "id": id, "participants": participants}))
}

/// `kick`: the participant leaves the room and its PeerConnection is closed.
pub fn kick(plugin: &Plugin, body: &Body) -> ApiResult<Value> {
    let (room, target) = moderated_target(plugin, body)?;
    let event = json!({"audioroom": "event", "id": room.id, "kicked": target.user_id()});
    let mut notices = room.notify(None, &event);
    if let Some(leaving) = room.remove(&target) {
        notices.append(leaving);
    }
    notices.send();
    target.close_media();
    Ok(json!({"audioroom": "success"}))
}

/// `mute` / `unmute` by a moderator; the room hears the change.
pub fn set_muted(plugin: &Plugin, body: &Body, muted: bool) -> ApiResult<Value> {
    let (room, target) = moderated_target(plugin, body)?;
    if target.muted.swap(muted, Relaxed) != muted {
        target.reset_decoder();
        if muted {
            room.quieten(&target).send();
        }
        let event =
            json!({"audioroom": "event", "id": room.id, "participants": [target.describe()]});
        room.notify(None, &event).send();
    }
    Ok(json!({"audioroom": "success"}))
}

fn moderated_target(
    plugin: &Plugin,
    body: &Body,
) -> ApiResult<(Arc<Room>, Arc<crate::participant::Participant>)> {
    let id = body.room_id("id")?;
    let user_id = body.user_id("userid")?;
    let room = plugin.rooms.find(&id)?;
    room.check_secret(body.opt_string("secret")?)?;
    let target = room.find(user_id).ok_or_else(|| {
        ApiError::new(
            crate::errors::ErrorCode::NoSuchUser,
            format!("No such user ({user_id}) in room {id}"),
        )
    })?;
    Ok((room, target))
}
