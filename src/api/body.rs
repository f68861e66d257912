//! Typed, validated access to the fields of a request body.
//!
//! Every getter turns a missing or mistyped field into the exact error of docs/API.md section 1.5, naming the
//! element, so request handlers never inspect raw JSON themselves. JSON `null` counts as a wrong
//! type, not as absence: a client that sends `"id": null` has a bug worth reporting.

use crate::api::errors::{ApiError, ApiResult};
use serde_json::{Map, Value};

/// Largest integer a JavaScript client can hold exactly (2^53 - 1).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Longest room id in bytes of UTF-8.
pub const MAX_ROOM_ID_BYTES: usize = 256;

const ROOM_ID_RULE: &str = "a string of 1 to 256 bytes without control characters";

pub struct Body<'a> {
    fields: &'a Map<String, Value>,
}

impl<'a> Body<'a> {
    /// A body must be a JSON object (481 otherwise).
    pub fn new(message: &'a Value) -> ApiResult<Self> {
        match message.as_object() {
            Some(fields) => Ok(Body { fields }),
            None => Err(ApiError::new(
                crate::api::errors::ErrorCode::InvalidJson,
                "JSON error: not an object",
            )),
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    /// The request name.
    pub fn request(&self) -> ApiResult<&'a str> {
        self.string("request")
    }

    pub fn string(&self, key: &str) -> ApiResult<&'a str> {
        self.opt_string(key)?.ok_or_else(|| ApiError::missing(key))
    }

    pub fn opt_string(&self, key: &str) -> ApiResult<Option<&'a str>> {
        match self.fields.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ApiError::invalid(key, "a string")),
        }
    }

    pub fn opt_bool(&self, key: &str) -> ApiResult<Option<bool>> {
        match self.fields.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::invalid(key, "a boolean")),
        }
    }

    /// An unsigned integer within `min..=max`; the reason spells out the range.
    pub fn opt_uint(&self, key: &str, min: u64, max: u64) -> ApiResult<Option<u64>> {
        match self.fields.get(key) {
            None => Ok(None),
            Some(value) => match value.as_u64() {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(ApiError::invalid(
                    key,
                    &format!("an integer from {min} to {max}"),
                )),
            },
        }
    }

    /// A room id: a string of 1..=256 bytes with no control characters (484 otherwise).
    pub fn room_id(&self, key: &str) -> ApiResult<String> {
        self.opt_room_id(key)?.ok_or_else(|| ApiError::missing(key))
    }

    pub fn opt_room_id(&self, key: &str) -> ApiResult<Option<String>> {
        match self.opt_string(key)? {
            None => Ok(None),
            Some(id) if is_valid_room_id(id) => Ok(Some(id.to_owned())),
            Some(_) => Err(ApiError::invalid(key, ROOM_ID_RULE)),
        }
    }

    /// A participant id: a positive integer a JavaScript client can hold exactly.
    pub fn opt_user_id(&self, key: &str) -> ApiResult<Option<u64>> {
        match self.fields.get(key) {
            None => Ok(None),
            Some(value) => match value.as_u64() {
                Some(n) if (1..=MAX_SAFE_INTEGER).contains(&n) => Ok(Some(n)),
                _ => Err(ApiError::invalid(key, "a positive integer below 2^53")),
            },
        }
    }

    pub fn user_id(&self, key: &str) -> ApiResult<u64> {
        self.opt_user_id(key)?.ok_or_else(|| ApiError::missing(key))
    }

    /// An optional array of strings (`allowed`).
    pub fn opt_strings(&self, key: &str) -> ApiResult<Option<Vec<String>>> {
        match self.fields.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .map(Some)
                .ok_or_else(|| ApiError::invalid(key, "an array of strings")),
            Some(_) => Err(ApiError::invalid(key, "an array of strings")),
        }
    }

    /// An optional JSON object (for nested parameters such as `rtp`).
    pub fn opt_object(&self, key: &str) -> ApiResult<Option<&'a Value>> {
        match self.fields.get(key) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v)),
            Some(_) => Err(ApiError::invalid(key, "an object")),
        }
    }
}

pub fn is_valid_room_id(id: &str) -> bool {
    (1..=MAX_ROOM_ID_BYTES).contains(&id.len()) && !id.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::errors::ErrorCode;
    use serde_json::json;

    #[test]
    fn room_ids_are_bounded_strings_without_control_characters() {
        let ok = [
            "a".to_string(),
            "café ☕".to_string(),
            "x".repeat(256),
            "../x".into(),
        ];
        for id in ok {
            let msg = json!({ "id": id });
            assert_eq!(Body::new(&msg).unwrap().room_id("id").unwrap(), id);
        }
        let bad = [
            json!({"id": ""}),
            json!({"id": "x".repeat(257)}),
            json!({"id": "a\u{0}b"}),
            json!({"id": "tab\there"}),
            json!({"id": "c1\u{85}"}),
        ];
        for msg in bad {
            let err = Body::new(&msg).unwrap().room_id("id").unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidElement, "{msg}");
            assert_eq!(
                err.reason,
                "Invalid element (id should be a string of 1 to 256 bytes without control characters)"
            );
        }
        // 256 bytes of UTF-8 is the limit, not 256 characters.
        let msg = json!({"id": "é".repeat(129)});
        assert!(Body::new(&msg).unwrap().room_id("id").is_err());
    }

    #[test]
    fn wrong_types_name_the_element() {
        let msg = json!({"id": 5, "muted": "yes", "quality": 11, "userid": 0, "d": null});
        let body = Body::new(&msg).unwrap();
        assert_eq!(
            body.room_id("id").unwrap_err().reason,
            "Invalid element (id should be a string)"
        );
        assert_eq!(
            body.opt_bool("muted").unwrap_err().reason,
            "Invalid element (muted should be a boolean)"
        );
        assert_eq!(
            body.opt_uint("quality", 0, 10).unwrap_err().reason,
            "Invalid element (quality should be an integer from 0 to 10)"
        );
        assert_eq!(
            body.opt_user_id("userid").unwrap_err().reason,
            "Invalid element (userid should be a positive integer below 2^53)"
        );
        assert_eq!(
            body.opt_string("d").unwrap_err().code,
            ErrorCode::InvalidElement
        );
        assert_eq!(
            body.room_id("missing").unwrap_err().code,
            ErrorCode::MissingElement
        );
    }

    #[test]
    fn user_ids_stay_below_two_to_the_53() {
        let msg = json!({"a": MAX_SAFE_INTEGER, "b": MAX_SAFE_INTEGER + 1, "c": -3, "d": 1.5});
        let body = Body::new(&msg).unwrap();
        assert_eq!(body.opt_user_id("a").unwrap(), Some(MAX_SAFE_INTEGER));
        for key in ["b", "c", "d"] {
            assert!(body.opt_user_id(key).is_err(), "{key}");
        }
    }

    #[test]
    fn a_body_must_be_an_object() {
        let err = Body::new(&json!([1, 2])).err().unwrap();
        assert_eq!(err.code, ErrorCode::InvalidJson);
    }
}
