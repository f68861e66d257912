//! The conference: rooms and who is in them. The plugin as a whole (`plugin`, built from its
//! `config` and the `services` rooms share), the registry of rooms (`rooms`), one room with its
//! tick (`room`), what moderators do to it (`room_moderation`), its recording switched off and
//! on (`room_recording`), files played into it (`announcement`, `room_announcements`), where its
//! mix is forwarded (`forwarder`, `room_forwarders`), its links to the same room on other servers
//! (`link`, `room_links`), who may join it (`access`), rooms kept in the configuration file
//! (`permanent`), one participant (`participant`), one Janus handle (`session`), the events they
//! raise (`events`), and what they need of Janus (`endpoint`).
//!
//! Lower layers: `locks`, `log`, `media`, `archive`, `mixer`. Nothing here names `api` or
//! `ffi`: requests call in, and Janus is reached through the traits of `endpoint`.

pub mod access;
pub mod announcement;
pub mod config;
pub mod endpoint;
pub mod events;
pub mod forwarder;
pub mod link;
pub mod participant;
pub mod permanent;
pub mod plugin;
pub mod room;
pub mod room_announcements;
pub mod room_forwarders;
pub mod room_links;
pub mod room_moderation;
pub mod room_recording;
#[cfg(test)]
mod room_tracks_tests;
pub mod rooms;
pub mod services;
pub mod session;
#[cfg(test)]
pub mod testing;
