//! A room's RTP forwarders (`rtp_forward`, `stop_rtp_forward`, `listforwarders`; docs/API.md
//! section 2.19), kept in the room's state. The tick sends each the full mix while the room is
//! ticked (someone is in it, or an announcement plays); `destroy` closes them.

use crate::conference::forwarder::Forwarder;
use crate::conference::room::Room;
use crate::media::rtp_forwarder::{ForwarderSettings, RtpForwarder};
use serde_json::Value;
use std::sync::Arc;

/// Forwarders one room may have.
pub const MAX_FORWARDERS: usize = 32;

/// Why `add_forwarder` refused.
#[derive(Debug)]
pub enum ForwardError {
    Destroyed,
    TooMany,
    /// The socket could not be opened.
    Socket(std::io::Error),
}

impl Room {
    /// Opens a forwarder and adds it under a new `stream_id`, which is also its SSRC unless
    /// `ssrc` is given (`None` or 0).
    pub fn add_forwarder(
        &self,
        settings: ForwarderSettings,
        ssrc: Option<u32>,
    ) -> Result<Arc<Forwarder>, ForwardError> {
        loop {
            // The socket is opened without the room's lock; an id drawn twice at once (one
            // chance in 2^32) just draws again.
            let stream_id = rand::random::<u32>().max(1);
            let settings = ForwarderSettings {
                ssrc: ssrc.filter(|s| *s != 0).unwrap_or(stream_id),
                ..settings.clone()
            };
            if self.state().destroyed {
                return Err(ForwardError::Destroyed);
            }
            let sender = RtpForwarder::open(settings).map_err(ForwardError::Socket)?;
            let mut state = self.state();
            if state.destroyed {
                return Err(ForwardError::Destroyed);
            }
            if state.forwarders.len() >= MAX_FORWARDERS {
                return Err(ForwardError::TooMany);
            }
            if state.forwarders.iter().any(|f| f.stream_id == stream_id) {
                continue;
            }
            let forwarder = Arc::new(Forwarder { stream_id, sender });
            state.forwarders.push(forwarder.clone());
            drop(state);
            return Ok(forwarder);
        }
    }

    /// Stops a forwarder; false when the room has none of that id.
    pub fn remove_forwarder(&self, stream_id: u32) -> bool {
        let mut state = self.state();
        let before = state.forwarders.len();
        state.forwarders.retain(|f| f.stream_id != stream_id);
        state.forwarders.len() != before
    }

    pub fn describe_forwarders(&self) -> Vec<Value> {
        let forwarders = self.state().forwarders.clone();
        forwarders.iter().map(|f| f.describe()).collect()
    }
}
