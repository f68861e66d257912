//! What the conference needs from Janus, as two small traits that the C boundary implements
//! (`ffi::host`): nothing above `ffi` holds a raw pointer or calls into C, and tests put
//! recorders in Janus's place.

use serde_json::Value;
use std::sync::Arc;

/// One Janus handle: where a participant's events and (for WebRTC) media go.
pub trait Endpoint: Send + Sync {
    /// Pushes an event to the handle's client, outside any transaction.
    fn push_event(&self, event: &Value);
    /// Sends one RTP packet (header included) to the handle's PeerConnection.
    fn relay_rtp(&self, packet: &[u8]);
    /// Asks Janus to close the handle's PeerConnection.
    fn close_pc(&self);
    /// Tells Janus's event handlers, naming this handle.
    fn notify_handlers(&self, event: &Value);
    /// A copy that keeps the handle alive for as long as it lives (Janus's reference count),
    /// for a participant or an event that outlives the current call.
    fn retain(&self) -> Arc<dyn Endpoint>;
}

/// Janus as a whole.
pub trait Host: Send + Sync {
    /// Tells Janus's event handlers about something not tied to a handle.
    fn notify_handlers(&self, event: &Value);
    /// Writes a permanent room's section (`room-…`) into the plugin's configuration file
    /// through Janus's config API, replacing the section of that name; `items` is a JSON
    /// object of strings and arrays of strings. Disk work: request threads only.
    fn save_room(&self, section: &str, items: &Value) -> Result<(), String> {
        let _ = (section, items);
        Err("this host cannot save rooms".into())
    }
    /// Takes a permanent room's section out of the configuration file.
    fn remove_room(&self, section: &str) -> Result<(), String> {
        let _ = section;
        Err("this host cannot save rooms".into())
    }
}
