//! Janus as Rust sees it: the callbacks the C glue registers at `init`, wrapped as the
//! conference's [`Endpoint`] (one handle) and [`Host`] (Janus as a whole), and the log sink.
//!
//! Rust never includes Janus headers. A Janus handle is an opaque pointer that is only ever
//! passed back to the C glue, and only while Rust holds a reference on it (or the glue's session
//! does, for the borrowed handle of a session).

use crate::conference::endpoint::{Endpoint, Host};
use crate::log::{self, AudioroomLogLevel};
use serde_json::Value;
use std::ffi::{CString, c_char, c_int, c_void};
use std::sync::{Arc, RwLock};

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
    /// Writes a permanent room's section into the plugin's configuration file through Janus's
    /// config API, replacing the section of that name, and saves the file. `items_json` is a
    /// JSON object whose values are strings (items) or arrays of strings (arrays). Returns 0
    /// when the file was written; the glue logs why not. Called on request threads only.
    pub save_room:
        Option<unsafe extern "C" fn(section: *const c_char, items_json: *const c_char) -> c_int>,
    /// Takes a section out of the configuration file and saves the file; 0 when written.
    pub remove_room: Option<unsafe extern "C" fn(section: *const c_char) -> c_int>,
}

/// Written at `init` and `destroy` only; read for a copy and released at once.
static CALLBACKS: RwLock<Option<AudioroomHostCallbacks>> = RwLock::new(None);

pub fn install(callbacks: Option<AudioroomHostCallbacks>) {
    *CALLBACKS.write().unwrap_or_else(|e| e.into_inner()) = callbacks;
    log::install(callbacks.and(Some(log_line as log::Sink)));
}

fn callbacks() -> Option<AudioroomHostCallbacks> {
    *CALLBACKS.read().unwrap_or_else(|e| e.into_inner())
}

fn c_text(text: &str) -> CString {
    // Interior NULs cannot come from serde_json output; strip them from free text.
    CString::new(text.replace('\0', "")).unwrap_or_default()
}

fn log_line(level: AudioroomLogLevel, line: &str) {
    if let Some(log) = callbacks().and_then(|c| c.log) {
        let text = c_text(line);
        // SAFETY: the glue's callback takes a NUL-terminated string valid for the call.
        unsafe { log(level, text.as_ptr()) }
    }
}

fn notify(handle: *mut c_void, event: &Value) {
    let Some(cb) = callbacks() else { return };
    let (Some(notify), Some(enabled)) = (cb.notify_event, cb.events_is_enabled) else {
        return;
    };
    // SAFETY: `handle` is NULL or a handle this process holds a reference on; the text is
    // NUL-terminated and outlives the call.
    unsafe {
        if enabled() {
            let text = c_text(&event.to_string());
            notify(handle, text.as_ptr())
        }
    }
}

/// Janus as a whole, for events not tied to a handle.
pub struct JanusHost;

impl Host for JanusHost {
    fn notify_handlers(&self, event: &Value) {
        notify(std::ptr::null_mut(), event);
    }

    fn save_room(&self, section: &str, items: &Value) -> Result<(), String> {
        let save = callbacks()
            .and_then(|c| c.save_room)
            .ok_or("the glue cannot save rooms")?;
        let (section, items) = (c_text(section), c_text(&items.to_string()));
        // SAFETY: NUL-terminated strings that outlive the call.
        let written = unsafe { save(section.as_ptr(), items.as_ptr()) };
        written_or_logged(written)
    }

    fn remove_room(&self, section: &str) -> Result<(), String> {
        let remove = callbacks()
            .and_then(|c| c.remove_room)
            .ok_or("the glue cannot save rooms")?;
        let section = c_text(section);
        // SAFETY: a NUL-terminated string that outlives the call.
        let written = unsafe { remove(section.as_ptr()) };
        written_or_logged(written)
    }
}

fn written_or_logged(result: c_int) -> Result<(), String> {
    if result == 0 {
        Ok(())
    } else {
        Err("the configuration file was not written (Janus's log says why)".into())
    }
}

/// A Janus handle (`janus_plugin_session *`). A counted handle holds one Janus reference, so
/// the pointer stays valid for as long as it lives; drop releases it.
///
/// The handle a session gets in `create_session` is borrowed, not counted: Janus calls
/// `create_session` before it initialises the handle's reference count (ice.c in 1.1.x), so a
/// reference taken there would be wiped and its release would later free the handle early.
/// The C glue's session holds the plugin's reference for as long as the borrowed one is used.
pub struct JanusHandle {
    ptr: *mut c_void,
    counted: bool,
}

// SAFETY: the pointer is only dereferenced by the C glue, and Janus's handle API is
// thread-safe.
unsafe impl Send for JanusHandle {}
unsafe impl Sync for JanusHandle {}

impl JanusHandle {
    /// Uses `ptr` without a reference of its own.
    ///
    /// # Safety
    /// `ptr` must stay a live Janus handle for as long as the value lives (the glue's session
    /// keeps it so); what [`Endpoint::retain`] makes of it is counted and may outlive it.
    pub unsafe fn borrow(ptr: *mut c_void) -> Self {
        JanusHandle {
            ptr,
            counted: false,
        }
    }
}

impl Endpoint for JanusHandle {
    fn push_event(&self, event: &Value) {
        let Some(push) = callbacks().and_then(|c| c.push_event) else {
            return;
        };
        let event = c_text(&event.to_string());
        // SAFETY: the handle is live (see the type's comment); the strings outlive the call.
        unsafe {
            push(self.ptr, std::ptr::null(), event.as_ptr(), std::ptr::null());
        }
    }

    fn relay_rtp(&self, packet: &[u8]) {
        if let Some(relay) = callbacks().and_then(|c| c.relay_rtp) {
            // SAFETY: the handle is live; the glue copies the packet before returning.
            unsafe { relay(self.ptr, packet.as_ptr(), packet.len()) }
        }
    }

    fn close_pc(&self) {
        if let Some(close) = callbacks().and_then(|c| c.close_pc) {
            // SAFETY: the handle is live.
            unsafe { close(self.ptr) }
        }
    }

    fn notify_handlers(&self, event: &Value) {
        notify(self.ptr, event);
    }

    fn retain(&self) -> Arc<dyn Endpoint> {
        if let Some(handle_ref) = callbacks().and_then(|c| c.handle_ref) {
            // SAFETY: the handle is live, so a reference can be taken on it.
            unsafe { handle_ref(self.ptr) }
        }
        Arc::new(JanusHandle {
            ptr: self.ptr,
            counted: true,
        })
    }
}

impl Drop for JanusHandle {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        if let Some(handle_unref) = callbacks().and_then(|c| c.handle_unref) {
            // SAFETY: this value holds one reference, released exactly once here.
            unsafe { handle_unref(self.ptr) }
        }
    }
}

impl std::fmt::Debug for JanusHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JanusHandle({:p})", self.ptr)
    }
}
