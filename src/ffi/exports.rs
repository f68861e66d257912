//! The C API of the Rust core: every `extern "C"` function, and with `host` the only raw
//! pointers and `unsafe` of the crate (libopus aside, wrapped in `media::encoder`).
//!
//! Every function runs inside a panic boundary: a panic is logged and turned into a result
//! code or an error reply, never an unwind into Janus. NULL arguments are errors, never
//! crashes, and `_free(NULL)` does nothing. `include/audioroom.h` is generated from this file
//! by cbindgen (see build.rs).

use crate::api::dispatch::{self as requests, Dispatch};
use crate::api::errors::{ApiError, ErrorCode};
use crate::api::jsep::{Answer, Offer, OfferInput};
use crate::api::permanent_rooms;
use crate::conference::config::{Config, SetError};
use crate::conference::plugin::Plugin;
use crate::conference::session::Session;
use crate::ffi::host::{self, AudioroomHostCallbacks, JanusHandle, JanusHost};
use crate::locks::OrderedMutex;
use crate::log;
use crate::media::audio_codec::AudioCodec;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// Result codes of the C API.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioroomResult {
    Ok = 0,
    /// A required pointer was NULL, or a string was not UTF-8.
    InvalidArgument = 1,
    /// The plugin is not initialized (or already destroyed).
    NotInitialized = 2,
    /// `init` failed; the reason was logged.
    InitFailed = 3,
    /// A configuration key the plugin does not know (ignored, logged).
    UnknownKey = 4,
    /// A configuration value that is not valid (the default stays, logged).
    BadValue = 5,
    /// An internal error was caught and logged.
    InternalError = 6,
}

/// What `audioroom_session_message` decided.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioroomDispatch {
    /// `*out_reply` holds the synchronous reply (success or error).
    Reply = 0,
    /// The request is asynchronous: queue it and call `audioroom_session_async_message`.
    Queue = 1,
}

/// What kind of JSEP came with a request.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioroomJsepKind {
    /// No JSEP.
    None = 0,
    /// A parsed SDP offer; the other fields describe its first audio m-line.
    Offer = 1,
    /// A JSEP that cannot be used; `error` says why.
    Invalid = 2,
}

/// The audio codec of an SDP answer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AudioroomCodec {
    /// Opus, with the fmtp line the answer's other fields describe.
    #[default]
    Opus = 0,
    /// G.711 µ-law.
    Pcmu = 1,
    /// G.711 A-law.
    Pcma = 2,
}

/// The audio parameters of an SDP offer, as the glue read them with Janus's sdp-utils.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct AudioroomOffer {
    pub kind: AudioroomJsepKind,
    /// Payload type of Opus in the offer, or -1 when Opus is not offered.
    pub opus_payload_type: c_int,
    /// Payload type of PCMU in the offer, or -1 when PCMU is not offered.
    pub pcmu_payload_type: c_int,
    /// Payload type of PCMA in the offer, or -1 when PCMA is not offered.
    pub pcma_payload_type: c_int,
    /// Id of the RFC 6464 audio-level extension, or -1 when not offered.
    pub audio_level_ext_id: c_int,
    /// Whether `useinbandfec=1` was offered.
    pub fec: bool,
    /// Why the JSEP cannot be used (kind Invalid); may be NULL.
    pub error: *const c_char,
}

/// What the SDP answer must carry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AudioroomAnswer {
    /// The one codec to answer with.
    pub codec: AudioroomCodec,
    pub payload_type: c_int,
    /// The audio-level extension id to accept, or -1.
    pub audio_level_ext_id: c_int,
    pub fec: bool,
    /// The room's rate, for Opus's `maxplaybackrate`.
    pub sampling_rate: c_int,
}

/// Configuration being collected before `audioroom_plugin_init`.
pub struct AudioroomConfig(Config);

/// The plugin's state for one Janus handle.
pub struct AudioroomSession(Session);

static PLUGIN: OrderedMutex<Option<Arc<Plugin>>> = OrderedMutex::leaf("plugin", None);

fn plugin() -> Option<Arc<Plugin>> {
    PLUGIN.lock().clone()
}

/// Runs `body`, turning a panic into `fallback` and a log line.
fn guard<T>(what: &str, fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log!(Error, "Internal error in {what}: {detail}");
            fallback
        }
    }
}

/// # Safety
/// `ptr` must be NULL or a NUL-terminated string that outlives `'a`.
unsafe fn text<'a>(ptr: *const c_char) -> Option<&'a str> {
    if ptr.is_null() {
        None
    } else {
        // SAFETY: non-NULL and NUL-terminated, as the caller promises.
        unsafe { CStr::from_ptr(ptr) }.to_str().ok()
    }
}

fn into_c_string(text: String) -> *mut c_char {
    CString::new(text.replace('\0', ""))
        .unwrap_or_default()
        .into_raw()
}

/// Creates an empty configuration holding the defaults.
#[unsafe(no_mangle)]
pub extern "C" fn audioroom_config_new() -> *mut AudioroomConfig {
    guard("audioroom_config_new", std::ptr::null_mut(), || {
        Box::into_raw(Box::new(AudioroomConfig(Config::default())))
    })
}

/// Sets one key of section `general`. Unknown keys and bad values are logged; a bad value
/// leaves the default in place.
///
/// # Safety
/// `config` must come from `audioroom_config_new`; `key` and `value` must be NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_config_set(
    config: *mut AudioroomConfig,
    key: *const c_char,
    value: *const c_char,
) -> AudioroomResult {
    guard(
        "audioroom_config_set",
        AudioroomResult::InternalError,
        || {
            // SAFETY: the caller passes a configuration from `audioroom_config_new` (or NULL)
            // and NUL-terminated strings (or NULL).
            let (config, key, value) = unsafe { (config.as_mut(), text(key), text(value)) };
            let (Some(config), Some(key), Some(value)) = (config, key, value) else {
                return AudioroomResult::InvalidArgument;
            };
            match config.0.set(key, value) {
                Ok(()) => AudioroomResult::Ok,
                Err(SetError::UnknownKey) => {
                    log!(Warn, "Configuration: unknown key '{key}' ignored");
                    AudioroomResult::UnknownKey
                }
                Err(SetError::BadValue(expected)) => {
                    log!(
                        Warn,
                        "Configuration: bad value '{value}' for {key} (expected {expected}); keeping the default"
                    );
                    AudioroomResult::BadValue
                }
            }
        },
    )
}

/// Frees a configuration; NULL is a no-op.
///
/// # Safety
/// `config` must come from `audioroom_config_new` and not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_config_free(config: *mut AudioroomConfig) {
    guard("audioroom_config_free", (), || {
        if !config.is_null() {
            // SAFETY: made by `audioroom_config_new` and given back exactly once.
            drop(unsafe { Box::from_raw(config) });
        }
    })
}

/// Starts the plugin: registers Janus's callbacks, prepares the folders, starts the mixer,
/// recorder and event threads. The configuration is only read.
///
/// # Safety
/// `config` must come from `audioroom_config_new`; `callbacks` must point to a valid table
/// whose functions stay callable until `audioroom_plugin_destroy` returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_plugin_init(
    config: *const AudioroomConfig,
    callbacks: *const AudioroomHostCallbacks,
) -> AudioroomResult {
    guard("audioroom_plugin_init", AudioroomResult::InitFailed, || {
        // SAFETY: NULL or valid pointers, as documented above.
        let (config, callbacks) = unsafe { (config.as_ref(), callbacks.as_ref()) };
        let (Some(config), Some(callbacks)) = (config, callbacks) else {
            return AudioroomResult::InvalidArgument;
        };
        if plugin().is_some() {
            log!(Error, "The plugin is already initialized");
            return AudioroomResult::InitFailed;
        }
        host::install(Some(*callbacks));
        match Plugin::start(config.0.clone(), Arc::new(JanusHost)) {
            Ok(started) => {
                *PLUGIN.lock() = Some(started);
                AudioroomResult::Ok
            }
            Err(reason) => {
                log!(Fatal, "Audioroom cannot start: {reason}");
                host::install(None);
                AudioroomResult::InitFailed
            }
        }
    })
}

/// Makes the room of one section of the configuration file, at start-up after
/// `audioroom_plugin_init`. `section` is the section's name (`room-<encoded id>`; others are
/// logged and ignored), `items_json` a JSON object of its items: strings, and arrays of strings.
/// `BadValue` when the section makes no room (the reason is logged).
///
/// # Safety
/// `section` and `items_json` must be NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_plugin_load_room(
    section: *const c_char,
    items_json: *const c_char,
) -> AudioroomResult {
    guard(
        "audioroom_plugin_load_room",
        AudioroomResult::InternalError,
        || {
            // SAFETY: NULL or NUL-terminated strings, as documented above.
            let (section, items) = unsafe { (text(section), text(items_json)) };
            let (Some(section), Some(items)) = (section, items) else {
                return AudioroomResult::InvalidArgument;
            };
            let Some(plugin) = plugin() else {
                return AudioroomResult::NotInitialized;
            };
            let items = serde_json::from_str(items).unwrap_or(serde_json::Value::Null);
            match permanent_rooms::load(&plugin, section, &items) {
                Ok(id) => {
                    log!(Info, "Room {id} loaded from section {section}");
                    AudioroomResult::Ok
                }
                Err(reason) => {
                    log!(Error, "Configuration: section {section} ignored: {reason}");
                    AudioroomResult::BadValue
                }
            }
        },
    )
}

/// Stops the plugin (Janus shutdown): mixing stops, every recording is finished and its job
/// file written before this returns. Sessions must be destroyed and freed first.
#[unsafe(no_mangle)]
pub extern "C" fn audioroom_plugin_destroy() {
    guard("audioroom_plugin_destroy", (), || {
        let stopped = PLUGIN.lock().take();
        if let Some(plugin) = stopped {
            plugin.shutdown();
        }
        host::install(None);
    })
}

/// Creates the state for a new handle; NULL when the plugin is not running. No reference is
/// taken on the handle here: the caller's session must keep it alive until
/// `audioroom_session_free`.
///
/// # Safety
/// `handle` must be a live `janus_plugin_session`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_session_new(handle: *mut c_void) -> *mut AudioroomSession {
    guard("audioroom_session_new", std::ptr::null_mut(), || {
        let Some(plugin) = plugin() else {
            return std::ptr::null_mut();
        };
        if handle.is_null() {
            return std::ptr::null_mut();
        }
        // Borrowed: Janus has not initialised the handle's reference count yet (see host.rs).
        // SAFETY: a live handle, which the glue's session keeps alive until
        // `audioroom_session_free`, after which the borrowed value is gone.
        let handle = unsafe { JanusHandle::borrow(handle) };
        Box::into_raw(Box::new(AudioroomSession(Session::new(
            plugin,
            Box::new(handle),
        ))))
    })
}

/// Frees a session; call after `audioroom_session_destroy`, before releasing the handle.
/// NULL is a no-op.
///
/// # Safety
/// `session` must come from `audioroom_session_new` and not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_session_free(session: *mut AudioroomSession) {
    guard("audioroom_session_free", (), || {
        if !session.is_null() {
            // SAFETY: made by `audioroom_session_new` and given back exactly once.
            let session = unsafe { Box::from_raw(session) };
            session.0.destroy();
        }
    })
}

/// Handles a request from `handle_message`. Synchronous requests (and every error) are
/// answered at once in `*out_reply` (free it with `audioroom_string_free`); asynchronous ones
/// return `Queue`.
///
/// # Safety
/// `session` must be live; `message_json` NUL-terminated; `out_reply` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_session_message(
    session: *const AudioroomSession,
    message_json: *const c_char,
    out_reply: *mut *mut c_char,
) -> AudioroomDispatch {
    // SAFETY: the caller's pointers are NULL or valid, as documented above.
    let (session, message, out_reply) =
        unsafe { (session.as_ref(), text(message_json), out_reply.as_mut()) };
    let Some(out_reply) = out_reply else {
        return AudioroomDispatch::Reply;
    };
    let reply = guard("audioroom_session_message", Err(internal_error()), || {
        let session = session.ok_or_else(not_initialized)?;
        let message = message.ok_or_else(no_message)?;
        Ok(requests::dispatch(&session.0, message))
    });
    let (dispatch, text) = match reply {
        Ok(Dispatch::Queue) => (AudioroomDispatch::Queue, None),
        Ok(Dispatch::Reply(reply)) => (AudioroomDispatch::Reply, Some(reply)),
        Err(error) => (AudioroomDispatch::Reply, Some(error.to_event())),
    };
    *out_reply = text.map_or(std::ptr::null_mut(), |t| into_c_string(t.to_string()));
    dispatch
}

/// Handles a queued asynchronous request with its JSEP (`offer` may be NULL for none). The
/// event for the caller is returned in `*out_event`; when the result is true an SDP answer
/// described by `*out_answer` must be attached to it.
///
/// # Safety
/// `session` must be live; `message_json` NUL-terminated; `offer` NULL or valid; the out
/// pointers writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_session_async_message(
    session: *const AudioroomSession,
    message_json: *const c_char,
    offer: *const AudioroomOffer,
    out_event: *mut *mut c_char,
    out_answer: *mut AudioroomAnswer,
) -> bool {
    // SAFETY: the caller's pointers are NULL or valid, as documented above.
    let (session, message, offer, out_event, out_answer) = unsafe {
        (
            session.as_ref(),
            text(message_json),
            offer_input(offer),
            out_event.as_mut(),
            out_answer.as_mut(),
        )
    };
    let (Some(out_event), Some(out_answer)) = (out_event, out_answer) else {
        return false;
    };
    *out_answer = AudioroomAnswer::default();
    let outcome = guard(
        "audioroom_session_async_message",
        Err(internal_error()),
        || {
            let session = session.ok_or_else(not_initialized)?;
            let message = message.ok_or_else(no_message)?;
            requests::asynchronous(&session.0, message, &offer)
        },
    );
    match outcome {
        Ok(reply) => {
            *out_event = into_c_string(reply.event.to_string());
            match reply.answer {
                Some(answer) => {
                    *out_answer = c_answer(answer);
                    true
                }
                None => false,
            }
        }
        Err(error) => {
            *out_event = into_c_string(error.to_event().to_string());
            false
        }
    }
}

/// Handles a request from Janus's Admin API; the reply is in `*out_reply`.
///
/// # Safety
/// `message_json` NUL-terminated; `out_reply` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_admin_message(
    message_json: *const c_char,
    out_reply: *mut *mut c_char,
) -> AudioroomResult {
    // SAFETY: the caller's pointers are NULL or valid, as documented above.
    let (message, out_reply) = unsafe { (text(message_json), out_reply.as_mut()) };
    let Some(out_reply) = out_reply else {
        return AudioroomResult::InvalidArgument;
    };
    let reply = guard(
        "audioroom_admin_message",
        internal_error().to_event(),
        || {
            let Some(plugin) = plugin() else {
                return not_initialized().to_event();
            };
            match message {
                Some(message) => requests::admin(&plugin, message),
                None => no_message().to_event(),
            }
        },
    );
    *out_reply = into_c_string(reply.to_string());
    AudioroomResult::Ok
}

/// # Safety
/// `session` must be NULL or come from `audioroom_session_new` and not be freed yet.
unsafe fn live<'a>(session: *const AudioroomSession) -> Option<&'a Session> {
    // SAFETY: as the caller promises.
    unsafe { session.as_ref() }.map(|s| &s.0)
}

/// The PeerConnection of this handle is up.
///
/// # Safety
/// `session` must be live or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_session_setup_media(session: *const AudioroomSession) {
    // SAFETY: as documented above.
    let session = unsafe { live(session) };
    guard("audioroom_session_setup_media", (), || {
        if let Some(session) = session {
            session.setup_media();
        }
    })
}

/// One RTP packet from the PeerConnection; `audio_level` is the RFC 6464 level Janus parsed,
/// or -1. Only parses and queues.
///
/// # Safety
/// `session` must be live or NULL; `packet` must point to `length` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_session_incoming_rtp(
    session: *const AudioroomSession,
    packet: *const u8,
    length: usize,
    audio_level: c_int,
) {
    if packet.is_null() || length == 0 {
        return;
    }
    // SAFETY: as documented above.
    let (session, packet) = unsafe { (live(session), std::slice::from_raw_parts(packet, length)) };
    guard("audioroom_session_incoming_rtp", (), || {
        let Some(session) = session else {
            return;
        };
        let level = u8::try_from(audio_level).ok().filter(|l| *l <= 127);
        session.incoming_rtp(packet, level);
    })
}

/// The PeerConnection of this handle is gone: the participant leaves its room.
///
/// # Safety
/// `session` must be live or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_session_hangup_media(session: *const AudioroomSession) {
    // SAFETY: as documented above.
    let session = unsafe { live(session) };
    guard("audioroom_session_hangup_media", (), || {
        if let Some(session) = session {
            session.hangup_media();
        }
    })
}

/// The handle is being destroyed: the participant leaves, and no callback is started with
/// this handle after this returns.
///
/// # Safety
/// `session` must be live or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_session_destroy(session: *const AudioroomSession) {
    // SAFETY: as documented above.
    let session = unsafe { live(session) };
    guard("audioroom_session_destroy", (), || {
        if let Some(session) = session {
            session.destroy();
        }
    })
}

/// Whether the session was destroyed.
///
/// # Safety
/// `session` must be live or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_session_is_destroyed(session: *const AudioroomSession) -> bool {
    // SAFETY: as documented above.
    let session = unsafe { live(session) };
    guard("audioroom_session_is_destroyed", true, || {
        session.is_none_or(|s| s.is_destroyed())
    })
}

/// The session's state as JSON text for `query_session`; free with `audioroom_string_free`.
///
/// # Safety
/// `session` must be live or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_session_query(session: *const AudioroomSession) -> *mut c_char {
    // SAFETY: as documented above.
    let session = unsafe { live(session) };
    guard(
        "audioroom_session_query",
        std::ptr::null_mut(),
        || match session {
            Some(session) => into_c_string(session.describe().to_string()),
            None => std::ptr::null_mut(),
        },
    )
}

/// Frees a string returned by this API; NULL is a no-op.
///
/// # Safety
/// `text` must come from this API and not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn audioroom_string_free(text: *mut c_char) {
    guard("audioroom_string_free", (), || {
        if !text.is_null() {
            // SAFETY: made by `into_c_string` and given back exactly once.
            drop(unsafe { CString::from_raw(text) });
        }
    })
}

/// # Safety
/// `offer` must be NULL or valid, its `error` NULL or NUL-terminated.
unsafe fn offer_input(offer: *const AudioroomOffer) -> OfferInput {
    // SAFETY: as the caller promises.
    let Some(offer) = (unsafe { offer.as_ref() }) else {
        return OfferInput::None;
    };
    match offer.kind {
        AudioroomJsepKind::None => OfferInput::None,
        AudioroomJsepKind::Invalid => {
            // SAFETY: as the caller promises.
            let reason = unsafe { text(offer.error) };
            OfferInput::Invalid(reason.unwrap_or("Invalid JSEP").to_owned())
        }
        AudioroomJsepKind::Offer => OfferInput::Offer(Offer {
            opus_payload_type: payload_type(offer.opus_payload_type),
            pcmu_payload_type: payload_type(offer.pcmu_payload_type),
            pcma_payload_type: payload_type(offer.pcma_payload_type),
            audio_level_ext: u8::try_from(offer.audio_level_ext_id)
                .ok()
                .filter(|id| (1..=14).contains(id)),
            fec: offer.fec,
        }),
    }
}

/// A payload type the glue read (-1: not offered).
fn payload_type(value: c_int) -> Option<u8> {
    u8::try_from(value).ok().filter(|pt| *pt <= 127)
}

fn c_answer(answer: Answer) -> AudioroomAnswer {
    AudioroomAnswer {
        codec: match answer.codec {
            AudioCodec::Opus => AudioroomCodec::Opus,
            AudioCodec::Pcmu => AudioroomCodec::Pcmu,
            AudioCodec::Pcma => AudioroomCodec::Pcma,
        },
        payload_type: answer.payload_type as c_int,
        audio_level_ext_id: answer.audio_level_ext.map_or(-1, |id| id as c_int),
        fec: answer.fec,
        sampling_rate: answer.sampling_rate as c_int,
    }
}

fn not_initialized() -> ApiError {
    ApiError::new(ErrorCode::UnknownError, "Plugin not initialized")
}

fn no_message() -> ApiError {
    ApiError::new(ErrorCode::NoMessage, "No message")
}

fn internal_error() -> ApiError {
    ApiError::new(ErrorCode::UnknownError, "Internal error (logged)")
}
