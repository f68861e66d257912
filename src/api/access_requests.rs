//! `allowed` (docs/API.md, section 2.15): a room's access list. While it is enabled, `join` and
//! `changeroom` must carry one of its tokens (checked in `api::credentials`).

use crate::api::body::Body;
use crate::api::errors::{ApiError, ApiResult};
use crate::api::permanent_rooms;
use crate::api::room_requests::{check_secret, find_room};
use crate::conference::plugin::Plugin;
use serde_json::{Value, json};

const ACTIONS: &str = "enable, disable, add or remove";

/// `enable` and `disable` switch checking on and off (the tokens stay); `add` and `remove`
/// change the tokens and need `allowed`. Nobody already in the room is sent away.
pub fn allowed(plugin: &Plugin, body: &Body) -> ApiResult<Value> {
    let id = body.room_id("id")?;
    let action = body.string("action")?;
    if !["enable", "disable", "add", "remove"].contains(&action) {
        return Err(ApiError::invalid("action", ACTIONS));
    }
    let tokens = body.opt_strings("allowed")?;
    let permanent = body.opt_bool("permanent")?;
    if matches!(action, "add" | "remove") && tokens.is_none() {
        return Err(ApiError::missing("allowed"));
    }
    let room = find_room(plugin, &id)?;
    check_secret(&room, body.opt_string("secret")?)?;
    let mut state = room.state();
    let access = &mut state.settings.access;
    match action {
        "enable" => access.enabled = true,
        "disable" => access.enabled = false,
        "add" => access.tokens.extend(tokens.unwrap_or_default()),
        _ => {
            for token in tokens.unwrap_or_default() {
                access.tokens.remove(&token);
            }
        }
    }
    let now = access.clone();
    drop(state);
    let mut reply = json!({
        "audioroom": "success",
        "id": id,
        "check_tokens": now.enabled,
        "allowed": now.tokens,
    });
    if permanent == Some(true) {
        reply["permanent"] = json!(permanent_rooms::save(plugin, &room));
    }
    Ok(reply)
}
