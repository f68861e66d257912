//! The plugin's API (docs/API.md): requests parsed and validated (`body`, `jsep`), dispatched
//! (`dispatch`) to the requests about rooms (`room_requests`), about one's own presence
//! (`participant_requests`), of moderators (`moderation` for one participant,
//! `room_moderation` for the whole room), about who may join (`access_requests`), about the
//! recording (`recording_requests`), files played into a room (`announcement_requests`) and
//! where its mix is forwarded (`forwarding_requests`), links to the same room on other servers
//! (`link_requests`); secrets compared in constant time (`credentials`), rooms
//! kept in the configuration file (`permanent_rooms`), and every error a client can get
//! (`errors`).
//!
//! Lower layers: `locks`, `log`, `media`, `archive`, `mixer`, `conference`. Nothing here names
//! `ffi`.

pub mod access_requests;
pub mod announcement_requests;
pub mod body;
#[cfg(test)]
mod controls_tests;
pub mod credentials;
pub mod dispatch;
pub mod errors;
pub mod forwarding_requests;
pub mod jsep;
pub mod json_text;
pub mod link_requests;
#[cfg(test)]
mod link_requests_tests;
#[cfg(test)]
mod media_requests_tests;
pub mod moderation;
pub mod participant_requests;
pub mod permanent_rooms;
pub mod recording_requests;
pub mod room_moderation;
pub mod room_requests;
#[cfg(test)]
mod stress_tests;
#[cfg(test)]
mod test_plugin;
