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
}
