//! Secrets, PINs, tokens and the admin key, compared in constant time: how long a comparison
//! takes says nothing about how much of a guess was right.

use crate::api::body::Body;
use crate::api::errors::{ApiError, ApiResult, ErrorCode};
use crate::api::room_requests::Caller;
use crate::conference::plugin::Plugin;
use crate::conference::room::Room;

/// Whether `given` equals `expected`, looking at every byte of both whatever they hold (the
/// time depends only on the longer length).
pub fn same(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut difference = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        difference |= usize::from(x ^ y);
    }
    // Keeps the compiler from turning the loop back into an early exit.
    std::hint::black_box(difference) == 0
}

/// The `token` of `join` and `changeroom` when the room checks its access list (489 when
/// absent or not listed). Every listed token is compared, found or not.
pub fn check_token(room: &Room, given: Option<&str>) -> ApiResult<()> {
    let state = room.state();
    let access = &state.settings.access;
    if !access.enabled {
        return Ok(());
    }
    let listed = given.is_some_and(|token| {
        access
            .tokens
            .iter()
            .fold(false, |found, known| found | same(token, known))
    });
    drop(state);
    if listed {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Unauthorized,
            "Unauthorized (not in the allowed list)",
        ))
    }
}

/// The `secret` of `join` and `changeroom`: whoever gives the room's secret is a moderator,
/// exempt from `mute_room`. A wrong secret is 489. In a room without a secret nobody is a
/// moderator and a `secret` is ignored (AudioBridge made anyone who sent one an admin there).
pub fn moderator(room: &Room, given: Option<&str>) -> ApiResult<bool> {
    let state = room.state();
    let outcome = match (state.settings.secret.as_deref(), given) {
        (Some(secret), Some(given)) if same(given, secret) => Ok(true),
        (Some(_), Some(_)) => Err(ApiError::unauthorized("secret")),
        (_, None) | (None, Some(_)) => Ok(false),
    };
    drop(state);
    outcome
}

/// The configured `admin_key`, for a client's request that `lock` (`lock_rtp_forward`,
/// `lock_play_file`) puts under it: 483 when missing, 489 when wrong. Operators through the
/// Admin API, already authenticated by Janus, are not asked.
pub fn check_admin_key(plugin: &Plugin, body: &Body, caller: Caller, lock: bool) -> ApiResult<()> {
    match (&plugin.config.admin_key, caller) {
        (Some(key), Caller::Client) if lock => {
            if same(body.string("admin_key")?, key) {
                Ok(())
            } else {
                Err(ApiError::unauthorized("admin_key"))
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_every_byte_and_the_length_agree() {
        assert!(same("s3cret", "s3cret"));
        assert!(same("", ""));
        assert!(same("café ☕", "café ☕"));
        for (a, b) in [
            ("s3cret", "s3creT"),
            ("s3cret", "s3cre"),
            ("s3cre", "s3cret"),
            ("", "x"),
            ("x", ""),
            ("s3cret\0", "s3cret"),
        ] {
            assert!(!same(a, b), "{a:?} vs {b:?}");
        }
    }
}
