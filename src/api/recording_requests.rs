//! `enable_recording` (docs/API.md, section 2.16): a room's recording switched off and on while
//! it runs, and the name its recordings get (`recording_pattern`, also taken by `create`).

use crate::api::body::Body;
use crate::api::errors::{ApiError, ApiResult};
use crate::api::room_requests::{check_secret, find_room};
use crate::conference::events::Notices;
use crate::conference::plugin::Plugin;
use serde_json::{Value, json};

const PATTERN_RULE: &str = "a relative file name without .. components or control characters";

/// `record: false` finishes the recording (its WAV closed, its job file written, as `destroy`
/// does); `record: true` starts a new one (new file, new `uid`).
pub fn enable_recording(plugin: &Plugin, body: &Body) -> ApiResult<Value> {
    let id = body.room_id("id")?;
    let record = body
        .opt_bool("record")?
        .ok_or_else(|| ApiError::missing("record"))?;
    let pattern = read_recording_pattern(body)?;
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    let mut notices = Notices::new();
    let change = room.set_recording(record, pattern, &mut notices);
    plugin.send(notices);
    if let Some(recording) = change.to_finish {
        recording.finish();
    }
    crate::log!(
        Verbose,
        "Room {id}: recording {}",
        if change.recording { "on" } else { "off" }
    );
    Ok(json!({"audioroom": "success", "id": id, "record": change.recording}))
}

/// A room's own `recording_pattern`: relative to `archive_path` (sub-folders allowed) and never
/// leaving it, whoever sends it.
pub fn read_recording_pattern(body: &Body) -> ApiResult<Option<String>> {
    let Some(pattern) = body.opt_string("recording_pattern")? else {
        return Ok(None);
    };
    let escapes = pattern.starts_with('/') || pattern.split('/').any(|part| part == "..");
    if pattern.is_empty() || escapes || pattern.chars().any(char::is_control) {
        return Err(ApiError::invalid("recording_pattern", PATTERN_RULE));
    }
    Ok(Some(pattern.to_owned()))
}
