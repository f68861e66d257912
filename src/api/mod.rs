//! The plugin's API (docs/API.md): requests parsed and validated (`body`, `jsep`), dispatched
//! (`dispatch`) to the requests about rooms (`room_requests`), about one's own presence
//! (`participant_requests`) and of moderators (`moderation`), and every error a client can get
//! (`errors`).
//!
//! Lower layers: `locks`, `log`, `media`, `archive`, `mixer`, `conference`. Nothing here names
//! `ffi`.

pub mod body;
pub mod dispatch;
pub mod errors;
pub mod jsep;
pub mod moderation;
pub mod participant_requests;
pub mod room_requests;
#[cfg(test)]
mod stress_tests;
