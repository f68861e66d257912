//! Request dispatch: which requests are answered at once, which are queued for the handler
//! thread, and which are unknown. Every reply, error or not, is built here.

use crate::api::access_requests;
use crate::api::announcement_requests as files;
use crate::api::body::Body;
use crate::api::errors::{ApiError, ApiResult, ErrorCode};
use crate::api::forwarding_requests as forwarding;
use crate::api::jsep::OfferInput;
use crate::api::json_text;
use crate::api::link_requests as links;
use crate::api::moderation;
use crate::api::participant_requests::{self as own, AsyncReply};
use crate::api::recording_requests;
use crate::api::room_moderation;
use crate::api::room_requests::{self as rooms, Caller};
use crate::conference::plugin::Plugin;
use crate::conference::session::Session;
use serde_json::{Value, json};

const ASYNC_REQUESTS: [&str; 4] = ["join", "configure", "changeroom", "leave"];

/// What `handle_message` does with a request.
pub enum Dispatch {
    /// Answered at once with this JSON.
    Reply(Value),
    /// To be queued and answered by an event.
    Queue,
}

/// A request that came on a handle (`handle_message`).
pub fn dispatch(session: &Session, text: &str) -> Dispatch {
    let outcome = parse(text).and_then(|message| {
        let body = Body::new(&message)?;
        let request = body.request()?;
        if ASYNC_REQUESTS.contains(&request) {
            return Ok(None);
        }
        if request == "resetdecoder" {
            return own::reset_decoder(session).map(Some);
        }
        synchronous(&session.plugin, &body, request, Caller::Client).map(Some)
    });
    match outcome {
        Ok(Some(reply)) => Dispatch::Reply(reply),
        Ok(None) => Dispatch::Queue,
        Err(e) => Dispatch::Reply(e.to_event()),
    }
}

/// A request that came through Janus's Admin API (`handle_admin_message`).
pub fn admin(plugin: &Plugin, text: &str) -> Value {
    let outcome = parse(text).and_then(|message| {
        let body = Body::new(&message)?;
        let request = body.request()?;
        if ASYNC_REQUESTS.contains(&request) || request == "resetdecoder" {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "Request {request} needs a handle; it is not available through the Admin API"
                ),
            ));
        }
        synchronous(plugin, &body, request, Caller::Admin)
    });
    outcome.unwrap_or_else(|e| e.to_event())
}

/// A queued request, on the handler thread.
pub fn asynchronous(session: &Session, text: &str, offer: &OfferInput) -> ApiResult<AsyncReply> {
    let message = parse(text)?;
    let body = Body::new(&message)?;
    let request = body.request()?;
    let offer = offer.check()?;
    match request {
        "join" => own::join(session, &body, offer),
        "configure" => own::configure(session, &body, offer),
        "changeroom" => own::change_room(session, &body, offer),
        "leave" => own::leave(session),
        other => Err(unknown(other)),
    }
}

fn synchronous(plugin: &Plugin, body: &Body, request: &str, caller: Caller) -> ApiResult<Value> {
    match request {
        "create" => rooms::create(plugin, body, caller),
        "edit" => rooms::edit(plugin, body),
        "destroy" => rooms::destroy(plugin, body),
        "exists" => rooms::exists(plugin, body),
        "list" => rooms::list(plugin, caller),
        "listparticipants" => rooms::list_participants(plugin, body, caller),
        "kick" => moderation::kick(plugin, body),
        "mute" => moderation::set_muted(plugin, body, true),
        "unmute" => moderation::set_muted(plugin, body, false),
        "suspend" => moderation::set_suspended(plugin, body, true),
        "resume" => moderation::set_suspended(plugin, body, false),
        "kick_all" => room_moderation::kick_all(plugin, body),
        "mute_room" => room_moderation::set_room_muted(plugin, body, true),
        "unmute_room" => room_moderation::set_room_muted(plugin, body, false),
        "allowed" => access_requests::allowed(plugin, body),
        "enable_recording" => recording_requests::enable_recording(plugin, body),
        "rtp_forward" => forwarding::rtp_forward(plugin, body, caller),
        "stop_rtp_forward" => forwarding::stop_rtp_forward(plugin, body, caller),
        "listforwarders" => forwarding::list_forwarders(plugin, body),
        "play_file" => files::play_file(plugin, body, caller),
        "is_playing" => files::is_playing(plugin, body, caller),
        "stop_file" => files::stop_file(plugin, body, caller),
        "stop_all_files" => files::stop_all_files(plugin, body, caller),
        "listannouncements" => files::list_announcements(plugin, body),
        "link" => links::link(plugin, body, caller),
        "unlink" => links::unlink(plugin, body, caller),
        "stats" if caller == Caller::Admin => Ok(stats(plugin)),
        other => Err(unknown(other)),
    }
}

/// What an operator watches (Admin API only): rooms, participants, how punctual the mixer
/// threads are, and whether the recorder keeps up with the disk.
fn stats(plugin: &Plugin) -> Value {
    let rooms = plugin.rooms.all();
    let mut playout = Vec::new();
    for room in &rooms {
        for p in room.participants() {
            let mut v = p.describe_playout();
            v["id"] = json!(room.id);
            v["userid"] = json!(p.user_id());
            playout.push(v);
        }
    }
    json!({
        "audioroom": "success",
        "rooms": rooms.len(),
        "participants": playout.len(),
        "playout": playout,
        "mixer": plugin.services.mixers.describe(),
        "recorder": {"dropped_frames": plugin.services.recorder.dropped_frames()},
    })
}

fn unknown(request: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        format!("Unknown request ({request})"),
    )
}

fn parse(text: &str) -> ApiResult<Value> {
    if text.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::NoMessage, "No message"));
    }
    json_text::parse(text)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("JSON error: {e}")))
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
