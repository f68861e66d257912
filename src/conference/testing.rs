//! Stand-ins for Janus in unit tests: endpoints and a host that record what they are given.

use crate::conference::endpoint::{Endpoint, Host};
use crate::locks::OrderedMutex;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// A handle whose client events, relayed packets and closing are recorded.
#[derive(Default)]
pub struct FakeEndpoint {
    pub events: OrderedMutex<Vec<Value>>,
    pub handler_events: OrderedMutex<Vec<Value>>,
    pub packets: AtomicU64,
    pub closed: AtomicBool,
}

impl Default for OrderedMutex<Vec<Value>> {
    fn default() -> Self {
        OrderedMutex::leaf("fake events", Vec::new())
    }
}

impl FakeEndpoint {
    pub fn new() -> Arc<FakeEndpoint> {
        Arc::new(FakeEndpoint::default())
    }

    /// A borrowed-handle stand-in for a session: every call lands in `self`.
    pub fn session_endpoint(self: &Arc<Self>) -> Box<dyn Endpoint> {
        Box::new(Shared(self.clone()))
    }

    pub fn events(&self) -> Vec<Value> {
        self.events.lock().clone()
    }

    pub fn take_events(&self) -> Vec<Value> {
        std::mem::take(&mut *self.events.lock())
    }
}

struct Shared(Arc<FakeEndpoint>);

impl Endpoint for Shared {
    fn push_event(&self, event: &Value) {
        self.0.push_event(event)
    }
    fn relay_rtp(&self, packet: &[u8]) {
        self.0.relay_rtp(packet)
    }
    fn close_pc(&self) {
        self.0.close_pc()
    }
    fn notify_handlers(&self, event: &Value) {
        self.0.notify_handlers(event)
    }
    fn retain(&self) -> Arc<dyn Endpoint> {
        Arc::new(Shared(self.0.clone()))
    }
}

impl Endpoint for FakeEndpoint {
    fn push_event(&self, event: &Value) {
        self.events.lock().push(event.clone());
    }
    fn relay_rtp(&self, _packet: &[u8]) {
        self.packets.fetch_add(1, Relaxed);
    }
    fn close_pc(&self) {
        self.closed.store(true, Relaxed);
    }
    fn notify_handlers(&self, event: &Value) {
        self.handler_events.lock().push(event.clone());
    }
    fn retain(&self) -> Arc<dyn Endpoint> {
        unreachable!("use session_endpoint()")
    }
}

/// Janus as a whole: records what event handlers are told, and keeps the sections of permanent
/// rooms as the configuration file would.
pub struct FakeHost {
    pub events: OrderedMutex<Vec<Value>>,
    pub sections: OrderedMutex<BTreeMap<String, Value>>,
}

impl Default for FakeHost {
    fn default() -> Self {
        FakeHost {
            events: OrderedMutex::default(),
            sections: OrderedMutex::leaf("fake sections", BTreeMap::new()),
        }
    }
}

impl Host for FakeHost {
    fn notify_handlers(&self, event: &Value) {
        self.events.lock().push(event.clone());
    }

    fn save_room(&self, section: &str, items: &Value) -> Result<(), String> {
        self.sections
            .lock()
            .insert(section.to_owned(), items.clone());
        Ok(())
    }

    fn remove_room(&self, section: &str) -> Result<(), String> {
        self.sections.lock().remove(section);
        Ok(())
    }
}
