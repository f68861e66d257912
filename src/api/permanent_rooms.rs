//! What a permanent room's section of the configuration file holds, and how it becomes a room
//! again at start-up (docs/API.md, section 2.17). A section holds the room's `create` fields as
//! Janus's config API stores them (text, and a list for `allowed`), so a room is loaded through
//! the very code, checks and defaults of `create`; where it is written is `conference::permanent`.

use crate::api::body::Body;
use crate::api::errors::ApiError;
use crate::api::room_requests::{Caller, build_room};
use crate::conference::config::parse_bool;
use crate::conference::permanent::room_id_of_section;
use crate::conference::plugin::Plugin;
use crate::conference::room::Room;
use crate::log;
use crate::media::jitter::Mode;
use serde_json::{Map, Value, json};

/// How a key's text is read back into the JSON type `create` expects.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Flag,
    Number,
    Tokens,
}

/// The `create` fields a section may hold.
const KEYS: &[(&str, Kind)] = &[
    ("description", Kind::Text),
    ("sampling_rate", Kind::Number),
    ("sampling", Kind::Number),
    ("secret", Kind::Text),
    ("pin", Kind::Text),
    ("is_private", Kind::Flag),
    ("audiolevel_event", Kind::Flag),
    ("audio_active_packets", Kind::Number),
    ("audio_level_average", Kind::Number),
    ("speech_level", Kind::Number),
    ("speech_hangover", Kind::Number),
    ("max_speakers", Kind::Number),
    ("mix_all", Kind::Flag),
    ("allow_rtp_participants", Kind::Flag),
    ("rtp_symmetric", Kind::Flag),
    ("default_prebuffering", Kind::Number),
    ("record", Kind::Flag),
    ("record_participants", Kind::Flag),
    ("recording_pattern", Kind::Text),
    ("allowed", Kind::Tokens),
];

/// The room's section as it stands, every value as text (as Janus's config API writes them);
/// `None` once the room is destroyed. The access list is saved only while it is checked.
pub fn items(room: &Room) -> Option<Value> {
    let state = room.state();
    if state.destroyed {
        return None;
    }
    let s = &state.settings;
    let text = |v: &dyn ToString| Value::String(v.to_string());
    let mut items = Map::new();
    items.insert("description".into(), text(&s.description));
    items.insert("sampling_rate".into(), text(&room.sampling_rate));
    if let Some(secret) = &s.secret {
        items.insert("secret".into(), text(secret));
    }
    if let Some(pin) = &s.pin {
        items.insert("pin".into(), text(pin));
    }
    items.insert("is_private".into(), text(&s.is_private));
    items.insert("audiolevel_event".into(), text(&s.audiolevel_event));
    items.insert("audio_active_packets".into(), text(&s.talk.active_packets));
    items.insert("audio_level_average".into(), text(&s.talk.level_average));
    items.insert("speech_level".into(), text(&s.mixing.speech.threshold));
    let hangover_ms = s.mixing.speech.hangover_frames * 20;
    items.insert("speech_hangover".into(), text(&hangover_ms));
    items.insert("max_speakers".into(), text(&s.mixing.max_speakers));
    items.insert("mix_all".into(), text(&s.mixing.mix_all));
    items.insert(
        "allow_rtp_participants".into(),
        text(&s.allow_rtp_participants),
    );
    items.insert("rtp_symmetric".into(), text(&s.rtp_symmetric));
    // An adaptive room says nothing: it follows the configuration's default, as one created
    // without `default_prebuffering` does.
    if let Mode::Fixed(packets) = s.default_playout {
        items.insert("default_prebuffering".into(), text(&packets));
    }
    // A recording that failed on disk is still what the room wants: it records after a restart.
    let record = !matches!(state.recording, crate::conference::room::Recording::Off);
    items.insert("record".into(), text(&record));
    items.insert("record_participants".into(), text(&s.record_participants));
    if let Some(pattern) = &s.recording_pattern {
        items.insert("recording_pattern".into(), text(pattern));
    }
    if s.access.enabled {
        items.insert("allowed".into(), json!(s.access.tokens));
    }
    drop(state);
    Some(Value::Object(items))
}

/// Saves the room's section; whether the file was written (a failure is logged).
pub fn save(plugin: &Plugin, room: &Room) -> bool {
    match plugin.permanent.save(&room.id, || items(room)) {
        Ok(()) => true,
        Err(e) => {
            log!(
                Error,
                "Room {} could not be saved in the configuration file: {e}",
                room.id
            );
            false
        }
    }
}

/// Removes the room's section; whether the file was written (a failure is logged).
pub fn remove(plugin: &Plugin, id: &str) -> bool {
    match plugin.permanent.remove(id) {
        Ok(()) => true,
        Err(e) => {
            log!(
                Error,
                "Room {id} could not be removed from the configuration file: {e}"
            );
            false
        }
    }
}

/// Makes the room of one section of the configuration file (at start-up); returns its id, or
/// why the section was left out.
pub fn load(plugin: &Plugin, section: &str, items: &Value) -> Result<String, String> {
    let id = room_id_of_section(section).ok_or_else(|| {
        "not a room section: its name should be room- followed by the encoded id (see docs/API.md)"
            .to_owned()
    })?;
    let Value::Object(items) = items else {
        return Err("not a section of items".into());
    };
    let mut body = Map::new();
    body.insert("request".into(), json!("create"));
    body.insert("id".into(), json!(id));
    for (key, value) in items {
        let Some(&(_, kind)) = KEYS.iter().find(|(known, _)| known == key) else {
            log!(
                Warn,
                "Configuration: unknown key '{key}' in section {section} ignored"
            );
            continue;
        };
        body.insert(key.clone(), typed(kind, value));
    }
    let body = Value::Object(body);
    let reply = Body::new(&body).and_then(|body| build_room(plugin, &body, Caller::Admin));
    reply
        .map(|room| room.id.clone())
        .map_err(|e: ApiError| e.reason)
}

/// A value as `create` expects it; text that does not read as its kind is kept as text, so
/// that `create` names the key and what it should be.
fn typed(kind: Kind, value: &Value) -> Value {
    let Value::String(text) = value else {
        return value.clone();
    };
    match kind {
        Kind::Text | Kind::Tokens => value.clone(),
        Kind::Flag => parse_bool(text).map_or_else(|_| value.clone(), Value::Bool),
        Kind::Number => text
            .trim()
            .parse::<u64>()
            .map_or_else(|_| value.clone(), |n| json!(n)),
    }
}
