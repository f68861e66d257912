//! Janus as Rust sees it: the callbacks the C glue registers at `init`, a reference-counted
//! handle type, and logging through Janus's logger.
//!
//! Rust never includes Janus headers. A Janus handle is an opaque pointer that is only ever
//! passed back to the C glue, and only while Rust holds a reference on it.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::RwLock;

/// Janus's log levels (`LOG_FATAL` .. `LOG_DBG` in Janus's debug.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AudioroomLogLevel {
    Fatal = 1,
    Error = 2,
    Warn = 3,
    Info = 4,
    Verbose = 5,
    Huge = 6,
    Debug = 7,
}

/// What the C glue lets Rust do to Janus. Every pointer may be NULL; a NULL callback is a no-op.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct AudioroomHostCallbacks {
    /// Prints one line (no trailing newline) through Janus's logger.
    pub log: Option<unsafe extern "C" fn(level: AudioroomLogLevel, line: *const c_char)>,
    /// Pushes an event (JSON text) to a handle; `transaction` and `jsep_json` may be NULL.
    pub push_event: Option<
        unsafe extern "C" fn(
            handle: *mut c_void,
            transaction: *const c_char,
            event_json: *const c_char,
            jsep_json: *const c_char,
        ) -> c_int,
    >,
    /// Sends one RTP packet (header included) to a handle's PeerConnection.
    pub relay_rtp:
        Option<unsafe extern "C" fn(handle: *mut c_void, packet: *const u8, length: usize)>,
    /// Asks Janus to close a handle's PeerConnection.
    pub close_pc: Option<unsafe extern "C" fn(handle: *mut c_void)>,
    /// Hands an event (JSON text) to Janus's event handlers; `handle` may be NULL.
    pub notify_event: Option<unsafe extern "C" fn(handle: *mut c_void, event_json: *const c_char)>,
    /// Whether Janus has event handlers enabled.
    pub events_is_enabled: Option<unsafe extern "C" fn() -> bool>,
    /// Takes one reference on a handle (`janus_refcount_increase(&handle->ref)`).
    pub handle_ref: Option<unsafe extern "C" fn(handle: *mut c_void)>,
    /// Drops one reference on a handle.
    pub handle_unref: Option<unsafe extern "C" fn(handle: *mut c_void)>,
}

static CALLBACKS: RwLock<Option<AudioroomHostCallbacks>> = RwLock::new(None);

pub fn install(callbacks: Option<AudioroomHostCallbacks>) {
    *CALLBACKS.write().unwrap_or_else(|e| e.into_inner()) = callbacks;
}

fn callbacks() -> Option<AudioroomHostCallbacks> {
    *CALLBACKS.read().unwrap_or_else(|e| e.into_inner())
}

fn c_text(text: &str) -> CString {
    // Interior NULs cannot come from serde_json output; strip them from free text.
    CString::new(text.replace('\0', "")).unwrap_or_default()
}

pub fn log(level: AudioroomLogLevel, line: &str) {
    match callbacks().and_then(|c| c.log) {
        Some(log) => {
            let text = c_text(line);
            unsafe { log(level, text.as_ptr()) }
        }
        None if cfg!(test) && std::env::var_os("AUDIOROOM_TEST_LOG").is_some() => {
            eprintln!("[{level:?}] {line}")
        }
        None => {}
    }
}

/// `log!(Warn, "format {}", args)`: a line through Janus's logger at that level.
#[macro_export]
macro_rules! log {
    ($level:ident, $($arg:tt)*) => {
        $crate::host::log($crate::host::AudioroomLogLevel::$level, &format!($($arg)*))
    };
}

/// Sends an event to Janus's event handlers when the plugin and Janus both have them enabled.
pub fn notify_event(handle: Option<&JanusHandle>, event: &serde_json::Value) {
    let Some(cb) = callbacks() else { return };
    let (Some(notify), Some(enabled)) = (cb.notify_event, cb.events_is_enabled) else {
        return;
    };
    if unsafe { enabled() } {
        let text = c_text(&event.to_string());
        let ptr = handle.map_or(std::ptr::null_mut(), |h| h.ptr);
        unsafe { notify(ptr, text.as_ptr()) }
    }
}

/// A Janus handle (`janus_plugin_session *`). A counted handle holds one Janus reference, so
/// the pointer stays valid for as long as it lives; drop releases it. Cloning always yields a
/// counted handle.
///
/// The handle a session gets in `create_session` is borrowed, not counted: Janus calls
/// `create_session` before it initialises the handle's reference count (ice.c in 1.1.x), so a
/// reference taken there would be wiped and its release would later free the handle early.
/// The C glue's session holds the plugin's reference for as long as the borrowed one is used.
pub struct JanusHandle {
    ptr: *mut c_void,
    counted: bool,
}

// The pointer is only dereferenced by the C glue, and Janus's handle API is thread-safe.
unsafe impl Send for JanusHandle {}
unsafe impl Sync for JanusHandle {}

impl JanusHandle {
    /// Takes a reference on `ptr`.
    ///
    /// # Safety
    /// `ptr` must be a live Janus handle.
    pub unsafe fn acquire(ptr: *mut c_void) -> Self {
        if let Some(handle_ref) = callbacks().and_then(|c| c.handle_ref) {
            handle_ref(ptr);
        }
        JanusHandle { ptr, counted: true }
    }

    /// Uses `ptr` without a reference of its own.
    ///
    /// # Safety
    /// `ptr` must stay a live Janus handle for as long as the value lives (the glue's session
    /// keeps it so); its clones are counted and may outlive it.
    pub unsafe fn borrow(ptr: *mut c_void) -> Self {
        JanusHandle {
            ptr,
            counted: false,
        }
    }

    pub fn push_event(
        &self,
        transaction: Option<&str>,
        event: &serde_json::Value,
        jsep: Option<&serde_json::Value>,
    ) {
        let Some(push) = callbacks().and_then(|c| c.push_event) else {
            return;
        };
        let transaction = transaction.map(c_text);
        let event = c_text(&event.to_string());
        let jsep = jsep.map(|j| c_text(&j.to_string()));
        unsafe {
            push(
                self.ptr,
                transaction
                    .as_ref()
                    .map_or(std::ptr::null(), |t| t.as_ptr()),
                event.as_ptr(),
                jsep.as_ref().map_or(std::ptr::null(), |j| j.as_ptr()),
            );
        }
    }

    pub fn relay_rtp(&self, packet: &[u8]) {
        if let Some(relay) = callbacks().and_then(|c| c.relay_rtp) {
            unsafe { relay(self.ptr, packet.as_ptr(), packet.len()) }
        }
    }

    pub fn close_pc(&self) {
        if let Some(close) = callbacks().and_then(|c| c.close_pc) {
            unsafe { close(self.ptr) }
        }
    }
}

impl Clone for JanusHandle {
    fn clone(&self) -> Self {
        unsafe { JanusHandle::acquire(self.ptr) }
    }
}

impl Drop for JanusHandle {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        if let Some(handle_unref) = callbacks().and_then(|c| c.handle_unref) {
            unsafe { handle_unref(self.ptr) }
        }
    }
}

impl PartialEq for JanusHandle {
    fn eq(&self, other: &Self) -> bool {
        self.ptr == other.ptr
    }
}

impl std::fmt::Debug for JanusHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JanusHandle({:p})", self.ptr)
    }
}
