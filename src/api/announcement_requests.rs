//! Announcements (docs/API.md, section 2.18): `play_file`, `is_playing`, `stop_file`,
//! `stop_all_files` and `listannouncements`, as AudioBridge has them, with `id` for the room.
//! The room's secret is needed, and with `lock_play_file` the configured `admin_key` too (not
//! for `listannouncements`, as in AudioBridge). Files are opened here, on the request thread:
//! a missing, unreadable or unplayable file is an error for the request, never for the room.

use crate::api::body::{Body, is_valid_room_id};
use crate::api::credentials::check_admin_key;
use crate::api::errors::{ApiError, ApiResult, ErrorCode};
use crate::api::room_requests::{Caller, check_secret, find_room};
use crate::conference::announcement::{Announcement, Refused, resolve};
use crate::conference::events::Notices;
use crate::conference::plugin::Plugin;
use crate::conference::room_announcements::{MAX_ANNOUNCEMENTS, PlayError};
use crate::media::announcement_file::AnnouncementFile;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn play_file(plugin: &Plugin, body: &Body, caller: Caller) -> ApiResult<Value> {
    check_admin_key(plugin, body, caller, plugin.config.lock_play_file)?;
    let id = body.room_id("id")?;
    let filename = body.string("filename")?;
    let file_id = match body.opt_string("file_id")? {
        Some(file_id) => checked_file_id(file_id)?,
        None => random_file_id(),
    };
    let looping = body.opt_bool("loop")?.unwrap_or(false);
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    if room.announcement(&file_id).is_some() {
        return Err(file_id_exists(&file_id));
    }
    let cannot_play = |reason: String| {
        ApiError::new(
            ErrorCode::UnknownError,
            format!("Cannot play {filename}: {reason}"),
        )
    };
    let path = resolve(&plugin.config.announcements_path, filename).map_err(|e| match e {
        Refused::Outside => ApiError::invalid("filename", "a file inside announcements_path"),
        Refused::Unreadable(reason) => cannot_play(reason),
    })?;
    let file = AnnouncementFile::open(&path, room.sampling_rate).map_err(cannot_play)?;
    let playback = plugin
        .services
        .announcements
        .play(file, room.sampling_rate, looping)
        .map_err(cannot_play)?;
    let announcement = Arc::new(Announcement::new(
        file_id.clone(),
        filename.to_owned(),
        looping,
        playback,
    ));
    if let Err(refused) = room.play(announcement.clone()) {
        announcement.end();
        return Err(match refused {
            PlayError::Destroyed => ApiError::no_such_room(&id),
            PlayError::FileIdTaken => file_id_exists(&file_id),
            PlayError::TooMany => ApiError::new(
                ErrorCode::UnknownError,
                format!("Room {id} plays {MAX_ANNOUNCEMENTS} files, the most it may play at once"),
            ),
        });
    }
    crate::log!(
        Info,
        "Room {id}: playing {} as {file_id}{}",
        path.display(),
        if looping { ", looped" } else { "" }
    );
    Ok(json!({"audioroom": "success", "id": id, "file_id": file_id}))
}

pub fn is_playing(plugin: &Plugin, body: &Body, caller: Caller) -> ApiResult<Value> {
    check_admin_key(plugin, body, caller, plugin.config.lock_play_file)?;
    let id = body.room_id("id")?;
    let file_id = body.string("file_id")?;
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    // An unknown id is not playing (as in AudioBridge): the question has an answer.
    let playing = room.announcement(file_id).is_some_and(|a| a.is_playing());
    Ok(json!({"audioroom": "success", "id": id, "file_id": file_id, "playing": playing}))
}

pub fn stop_file(plugin: &Plugin, body: &Body, caller: Caller) -> ApiResult<Value> {
    check_admin_key(plugin, body, caller, plugin.config.lock_play_file)?;
    let id = body.room_id("id")?;
    let file_id = body.string("file_id")?;
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    let mut notices = Notices::new();
    let stopped = room.stop_announcement(file_id, &mut notices);
    plugin.send(notices);
    if !stopped {
        return Err(ApiError::new(
            ErrorCode::NoSuchAnnouncement,
            format!("No such announcement ({file_id}) in room {id}"),
        ));
    }
    Ok(json!({"audioroom": "success", "id": id, "file_id": file_id}))
}

pub fn stop_all_files(plugin: &Plugin, body: &Body, caller: Caller) -> ApiResult<Value> {
    check_admin_key(plugin, body, caller, plugin.config.lock_play_file)?;
    let id = body.room_id("id")?;
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    let mut notices = Notices::new();
    let stopped = room.stop_all_announcements(&mut notices);
    plugin.send(notices);
    Ok(json!({"audioroom": "success", "id": id, "file_id_list": stopped}))
}

pub fn list_announcements(plugin: &Plugin, body: &Body) -> ApiResult<Value> {
    let id = body.room_id("id")?;
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    Ok(json!({
        "audioroom": "announcements",
        "id": id,
        "announcements": room.describe_announcements(),
    }))
}

/// A `file_id` follows the rule of room ids: 1 to 256 bytes without control characters.
fn checked_file_id(file_id: &str) -> ApiResult<String> {
    if is_valid_room_id(file_id) {
        Ok(file_id.to_owned())
    } else {
        Err(ApiError::invalid(
            "file_id",
            "a string of 1 to 256 bytes without control characters",
        ))
    }
}

/// A random UUID (version 4), as AudioBridge names files it was given no id for.
fn random_file_id() -> String {
    let bits: u128 = rand::random();
    let bits = (bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn file_id_exists(file_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::IdExists,
        format!("File ID {file_id} already exists"),
    )
}
