//! Rooms that survive a restart (`permanent: true`, docs/API.md section 2.17): each is a section
//! `room-<encoded id>` of `janus.plugin.cm.audioroom.jcfg`, written and read by the C glue
//! through Janus's own config API, as AudioBridge keeps its `room-<id>` sections.
//!
//! Section names are libconfig names (`[A-Za-z*][-A-Za-z0-9_*]*`), and Janus finds a section by
//! its name ignoring case, so an id is encoded into lower-case letters, digits and `-`, with every
//! other byte (upper-case letters included) written `_` and two lower-case hex digits:
//! `Café ☕` → `room-_43af_c3_a9_20_e2_98_95`. Two ids never share a name, not even ignoring case,
//! and decoding reads letters in either case (a hand-written `room-Lobby` is the room `lobby`,
//! which is also the section Janus would replace when saving `lobby`).
//!
//! What a section holds (the room's `create` fields) is the API's business
//! (`api::permanent_rooms`); here is where and in what order it is written.

use crate::conference::endpoint::Host;
use crate::locks::{OrderedMutex, Rank};
use serde_json::Value;
use std::sync::Arc;

pub const SECTION_PREFIX: &str = "room-";

/// The section of the configuration file that holds room `id`.
pub fn section_name(id: &str) -> String {
    let mut name = String::with_capacity(SECTION_PREFIX.len() + 3 * id.len());
    name.push_str(SECTION_PREFIX);
    for byte in id.bytes() {
        if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' {
            name.push(byte as char);
        } else {
            name.push_str(&format!("_{byte:02x}"));
        }
    }
    name
}

/// The room id a section name stands for; `None` when it is no room section or cannot have
/// been written by [`section_name`] (letters are read in either case, as Janus compares names).
pub fn room_id_of_section(section: &str) -> Option<String> {
    let prefix = section.get(..SECTION_PREFIX.len())?;
    if !prefix.eq_ignore_ascii_case(SECTION_PREFIX) {
        return None;
    }
    let encoded = &section.as_bytes()[SECTION_PREFIX.len()..];
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut i = 0;
    while i < encoded.len() {
        let byte = encoded[i];
        if byte == b'_' {
            let hex = std::str::from_utf8(encoded.get(i + 1..i + 3)?).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if byte.is_ascii_alphanumeric() || byte == b'-' {
            bytes.push(byte.to_ascii_lowercase());
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(bytes).ok().filter(|id| !id.is_empty())
}

/// Saves and removes sections, one at a time: the `Saved` lock is held from the room's
/// snapshot to the end of the glue's write, so the file always ends with the last state decided.
pub struct PermanentRooms {
    host: Arc<dyn Host>,
    writing: OrderedMutex<()>,
}

impl PermanentRooms {
    pub fn new(host: Arc<dyn Host>) -> Self {
        PermanentRooms {
            host,
            writing: OrderedMutex::new(Rank::Saved, "permanent rooms", ()),
        }
    }

    /// Writes the section of room `id`, its items taken by `snapshot` under the lock (`None`:
    /// the room was destroyed meanwhile, nothing is written). Call with no lock held.
    pub fn save(&self, id: &str, snapshot: impl FnOnce() -> Option<Value>) -> Result<(), String> {
        let _writing = self.writing.lock();
        match snapshot() {
            Some(items) => self.host.save_room(&section_name(id), &items),
            None => Err(format!("room {id} was destroyed meanwhile")),
        }
    }

    /// Takes room `id`'s section out of the file. Call with no lock held.
    pub fn remove(&self, id: &str) -> Result<(), String> {
        let _writing = self.writing.lock();
        self.host.remove_room(&section_name(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_names_are_libconfig_names_unique_ignoring_case_and_reversible() {
        let ids = [
            "lobby",
            "Lobby",
            "LOBBY",
            "café ☕",
            "a_b",
            "a-b",
            "../x",
            "日本語 ルーム",
            "_41",
            "x".repeat(256).as_str(),
        ]
        .map(str::to_owned);
        let names: Vec<String> = ids.iter().map(|id| section_name(id)).collect();
        for (id, name) in ids.iter().zip(&names) {
            // libconfig: a letter first, then letters, digits, '-', '_' or '*'.
            assert!(name.starts_with("room-"), "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{name}"
            );
            assert_eq!(room_id_of_section(name).as_deref(), Some(id.as_str()));
        }
        let folded: std::collections::HashSet<String> =
            names.iter().map(|n| n.to_ascii_lowercase()).collect();
        assert_eq!(folded.len(), names.len(), "{names:?}");
        assert_eq!(section_name("Café ☕"), "room-_43af_c3_a9_20_e2_98_95");
        assert_eq!(section_name("a_b"), "room-a_5fb");
    }

    #[test]
    fn hand_written_sections_read_letters_in_either_case() {
        assert_eq!(room_id_of_section("room-Lobby").as_deref(), Some("lobby"));
        assert_eq!(room_id_of_section("ROOM-_4Cobby").as_deref(), Some("Lobby"));
        for bad in [
            "general",
            "room-",
            "room",
            "room-a_4",
            "room-a_zz",
            "room-a*b",
            "room-_ff",
            "rooms-x",
        ] {
            assert_eq!(room_id_of_section(bad), None, "{bad}");
        }
    }
}
