//! The synchronous requests about rooms (docs/API.md, section 2): create, edit, destroy,
//! exists, list and listparticipants, and the checks other requests share (room, secret, pin).

use crate::api::body::Body;
use crate::api::credentials::same;
use crate::api::errors::{ApiError, ApiResult};
use crate::api::permanent_rooms;
use crate::api::recording_requests::read_recording_pattern;
use crate::conference::access::AccessList;
use crate::conference::config::{MAX_HANGOVER_MS, MAX_PREBUFFER, MAX_SPEAKERS};
use crate::conference::events::Notices;
use crate::conference::plugin::Plugin;
use crate::conference::room::{Room, RoomSettings};
use crate::media::codec::SAMPLING_RATES;
use crate::media::jitter::Mode;
use crate::media::speech::frames_of_ms;
use crate::media::talk::TalkSettings;
use crate::mixer::speakers::MixPolicy;
use serde_json::{Value, json};
use std::sync::Arc;

/// Who is asking: a client on a handle, or an operator through Janus's Admin API (already
/// authenticated by Janus, so `admin_key` is not asked for and private rooms are listed).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Caller {
    Client,
    Admin,
}

pub fn create(plugin: &Plugin, body: &Body, caller: Caller) -> ApiResult<Value> {
    let room = build_room(plugin, body, caller)?;
    let id = room.id.clone();
    let mut notices = Notices::new();
    notices.tell_handlers(None, json!({"event": "created", "id": id}));
    plugin.send(notices);
    let mut reply = json!({"audioroom": "created", "id": id});
    if body.opt_bool("permanent")? == Some(true) {
        reply["permanent"] = json!(permanent_rooms::save(plugin, &room));
    }
    Ok(reply)
}

/// A room made and registered from `create`'s fields: the request's, or a permanent room's
/// section of the configuration file at start-up (`api::permanent_rooms`).
pub fn build_room(plugin: &Plugin, body: &Body, caller: Caller) -> ApiResult<Arc<Room>> {
    if let (Some(key), Caller::Client) = (&plugin.config.admin_key, caller) {
        if !same(body.string("admin_key")?, key) {
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
        mixing: read_mixing(body, plugin.config.mixing)?,
        allow_rtp_participants: body.opt_bool("allow_rtp_participants")?.unwrap_or(false),
        rtp_symmetric: body.opt_bool("rtp_symmetric")?.unwrap_or(false),
        default_playout: body
            .opt_uint("default_prebuffering", 0, MAX_PREBUFFER as u64)?
            .map_or(plugin.config.playout, |n| Mode::Fixed(n as u32)),
        access: body
            .opt_strings("allowed")?
            .map_or_else(AccessList::default, AccessList::with_tokens),
        recording_pattern: read_recording_pattern(body)?,
        record_participants: body
            .opt_bool("record_participants")?
            .unwrap_or(plugin.config.record_participants),
    };
    let record = body
        .opt_bool("record")?
        .unwrap_or(plugin.config.recording_enabled);
    body.opt_bool("permanent")?;
    let room = Arc::new(plugin.new_room(id.clone(), sampling_rate, settings, record));
    let room = plugin.rooms.insert(room).map_err(|room| {
        ApiError::new(
            crate::api::errors::ErrorCode::RoomExists,
            format!("Room {} already exists", room.id),
        )
    })?;
    crate::log!(
        Verbose,
        "Room {} created ({} Hz, record {})",
        room.id,
        sampling_rate,
        record
    );
    Ok(room)
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
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    let description = body.opt_string("new_description")?;
    let secret = body.opt_string("new_secret")?;
    let pin = body.opt_string("new_pin")?;
    let is_private = body.opt_bool("new_is_private")?;
    let permanent = body.opt_bool("permanent")?;
    let mut state = room.state();
    let settings = &mut state.settings;
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
    drop(state);
    let mut notices = Notices::new();
    notices.tell_handlers(None, json!({"event": "edited", "id": id}));
    plugin.send(notices);
    let mut reply = json!({"audioroom": "edited", "id": id});
    if permanent == Some(true) {
        reply["permanent"] = json!(permanent_rooms::save(plugin, &room));
    }
    Ok(reply)
}

pub fn destroy(plugin: &Plugin, body: &Body) -> ApiResult<Value> {
    let id = body.room_id("id")?;
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    let permanent = body.opt_bool("permanent")?;
    if plugin.rooms.remove(&id).is_none() {
        return Err(ApiError::no_such_room(&id));
    }
    let (participants, recording) = room.destroy();
    let event = json!({"audioroom": "destroyed", "id": id});
    let mut notices = Notices::new();
    notices.tell_all(&participants, None, &event);
    notices.tell_handlers(None, json!({"event": "destroyed", "id": id}));
    plugin.send(notices);
    for p in &participants {
        p.close_media();
    }
    if let Some(recording) = recording {
        recording.finish();
    }
    crate::log!(Verbose, "Room {id} destroyed");
    let mut reply = event;
    if permanent == Some(true) {
        reply["permanent"] = json!(permanent_rooms::remove(plugin, &id));
    }
    Ok(reply)
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
        .filter(|room| caller == Caller::Admin || !room.state().settings.is_private)
        .map(|room| {
            let mut entry = room.describe(caller == Caller::Admin);
            if caller == Caller::Admin {
                // Operators also see who may join.
                let access = room.settings().access;
                entry["check_tokens"] = json!(access.enabled);
                entry["allowed"] = json!(access.tokens);
            }
            entry
        })
        .collect();
    Ok(json!({"audioroom": "success", "list": list}))
}

pub fn list_participants(plugin: &Plugin, body: &Body, caller: Caller) -> ApiResult<Value> {
    let id = body.room_id("id")?;
    let room = find_room(plugin, &id)?;
    let participants: Vec<Value> = room
        .participants()
        .iter()
        .map(|p| {
            let mut v = p.describe();
            if caller == Caller::Admin {
                v["playout"] = p.describe_playout();
            }
            v
        })
        .chain(room.links().iter().map(|l| {
            let mut v = l.describe();
            if caller == Caller::Admin {
                v["playout"] = l.participant.describe_playout();
            }
            v
        }))
        .collect();
    Ok(json!({
        "audioroom": "participants",
        "id": id,
        "muted": room.is_muted(),
        "record": room.is_recording(),
        "participants": participants,
    }))
}

/// Whom a new room mixes: the plugin's defaults, changed by the request's fields.
fn read_mixing(body: &Body, defaults: MixPolicy) -> ApiResult<MixPolicy> {
    let mut mixing = defaults;
    if let Some(level) = body.opt_uint("speech_level", 1, 127)? {
        mixing.speech.threshold = level as u8;
    }
    if let Some(ms) = body.opt_uint("speech_hangover", 0, MAX_HANGOVER_MS as u64)? {
        mixing.speech.hangover_frames = frames_of_ms(ms as u32);
    }
    if let Some(max) = body.opt_uint("max_speakers", 1, MAX_SPEAKERS as u64)? {
        mixing.max_speakers = max as usize;
    }
    if let Some(all) = body.opt_bool("mix_all")? {
        mixing.mix_all = all;
    }
    Ok(mixing)
}

/// The room, or 485.
pub fn find_room(plugin: &Plugin, id: &str) -> ApiResult<Arc<Room>> {
    plugin
        .rooms
        .get(id)
        .ok_or_else(|| ApiError::no_such_room(id))
}

/// Checks a secret-protected request (489 on a wrong or missing secret).
pub fn check_secret(room: &Room, given: Option<&str>) -> ApiResult<()> {
    match room.state().settings.secret.as_deref() {
        Some(secret) if !given.is_some_and(|given| same(given, secret)) => {
            Err(ApiError::unauthorized("secret"))
        }
        _ => Ok(()),
    }
}

/// Checks the PIN of `join` and `changeroom` (489 on a wrong or missing PIN).
pub fn check_pin(room: &Room, given: Option<&str>) -> ApiResult<()> {
    match room.state().settings.pin.as_deref() {
        Some(pin) if !given.is_some_and(|given| same(given, pin)) => {
            Err(ApiError::unauthorized("pin"))
        }
        _ => Ok(()),
    }
}
