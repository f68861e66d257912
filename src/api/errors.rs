//! The error codes of the plugin's API (docs/API.md, section 6) and the error event every failed request gets.

use crate::conference::room::AddError;
use serde_json::{Value, json};
use std::fmt;

/// Error codes as clients see them in `error_code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    NoMessage = 480,
    InvalidJson = 481,
    InvalidRequest = 482,
    MissingElement = 483,
    InvalidElement = 484,
    NoSuchRoom = 485,
    RoomExists = 486,
    NotJoined = 487,
    LibopusError = 488,
    Unauthorized = 489,
    IdExists = 490,
    AlreadyJoined = 491,
    NoSuchUser = 492,
    InvalidSdp = 493,
    /// `stop_rtp_forward` of a `stream_id` the room does not have.
    NoSuchForwarder = 495,
    /// `stop_file` of a `file_id` the room is not playing.
    NoSuchAnnouncement = 496,
    /// `unlink` of a `link_id` the room does not have.
    NoSuchLink = 497,
    /// A second upstream `link` for one room (links must form a tree).
    UpstreamTaken = 498,
    UnknownError = 499,
}

/// A request that failed: the code and a reason that names the element at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub reason: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.into(),
        }
    }

    /// `"Missing element (id)"`.
    pub fn missing(element: &str) -> Self {
        Self::new(
            ErrorCode::MissingElement,
            format!("Missing element ({element})"),
        )
    }

    /// `"Invalid element (id should be a string)"`.
    pub fn invalid(element: &str, should_be: &str) -> Self {
        Self::new(
            ErrorCode::InvalidElement,
            format!("Invalid element ({element} should be {should_be})"),
        )
    }

    pub fn no_such_room(id: &str) -> Self {
        Self::new(ErrorCode::NoSuchRoom, format!("No such room ({id})"))
    }

    pub fn id_exists(user_id: u64) -> Self {
        Self::new(
            ErrorCode::IdExists,
            format!("User ID {user_id} already exists"),
        )
    }

    pub fn not_joined() -> Self {
        Self::new(ErrorCode::NotJoined, "Not in a room (join first)")
    }

    pub fn unauthorized(element: &str) -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            format!("Unauthorized (wrong {element})"),
        )
    }

    /// `{"audioroom":"event","error_code":N,"error":"<reason>"}`.
    pub fn to_event(&self) -> Value {
        json!({
            "audioroom": "event",
            "error_code": self.code as u16,
            "error": self.reason,
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code as u16, self.reason)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A room that refused a participant, as the client is told.
    pub fn from_add(room_id: &str, error: AddError) -> Self {
        match error {
            AddError::Destroyed => ApiError::no_such_room(room_id),
            AddError::UserIdTaken(user_id) => ApiError::id_exists(user_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_event_has_the_contract_shape() {
        let event = ApiError::invalid("id", "a string").to_event();
        assert_eq!(
            event,
            json!({"audioroom":"event","error_code":484,"error":"Invalid element (id should be a string)"})
        );
        assert_eq!(
            ApiError::missing("id").to_event()["error"],
            "Missing element (id)"
        );
        assert_eq!(ApiError::missing("id").code as u16, 483);
    }
}
