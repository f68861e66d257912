//! The one path of events out of the plugin: to participants' clients (Janus `push_event`) and
//! to Janus's event handlers (`notify_event`).
//!
//! Events are collected in [`Notices`] while locks are held and sent once they are released:
//! Janus takes its own session locks inside `push_event` and holds them while it calls into the
//! plugin, so sending under one of our locks could close a cycle. Requests send on their own
//! thread ([`Events::send`]); mixer threads hand their notices to the events thread
//! ([`Events::post`]) so a tick never waits on Janus's locks or transports.

use crate::conference::endpoint::{Endpoint, Host};
use crate::conference::participant::Participant;
use crate::locks::{self, OrderedMutex};
use serde_json::Value;
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

#[derive(Default)]
#[must_use = "notices must be sent once the locks are released"]
pub struct Notices {
    to_clients: Vec<(Arc<dyn Endpoint>, Value)>,
    to_handlers: Vec<(Option<Arc<dyn Endpoint>>, Value)>,
}

impl Notices {
    pub fn new() -> Self {
        Self::default()
    }

    /// An event for one participant's client (nothing once its handle is gone).
    pub fn tell(&mut self, participant: &Participant, event: Value) {
        if let Some(endpoint) = participant.live_endpoint() {
            self.to_clients.push((endpoint.clone(), event));
        }
    }

    /// The same event to every participant but `except`.
    pub fn tell_all(
        &mut self,
        participants: &[Arc<Participant>],
        except: Option<&Participant>,
        event: &Value,
    ) {
        for p in participants {
            if except.is_none_or(|e| !std::ptr::eq(e, Arc::as_ptr(p))) {
                self.tell(p, event.clone());
            }
        }
    }

    /// An event for Janus's event handlers, naming the participant's handle when given.
    pub fn tell_handlers(&mut self, about: Option<&Participant>, event: Value) {
        let endpoint = about.map(|p| p.endpoint().clone());
        self.to_handlers.push((endpoint, event));
    }

    pub fn append(&mut self, mut other: Notices) {
        self.to_clients.append(&mut other.to_clients);
        self.to_handlers.append(&mut other.to_handlers);
    }

    pub fn is_empty(&self) -> bool {
        self.to_clients.is_empty() && self.to_handlers.is_empty()
    }
}

/// Where notices go.
pub struct Events {
    host: Arc<dyn Host>,
    /// The plugin's `events` setting: also tell Janus's event handlers.
    handlers: bool,
    outbox: OrderedMutex<Option<Sender<Notices>>>,
    thread: OrderedMutex<Option<JoinHandle<()>>>,
}

impl Events {
    pub fn start(host: Arc<dyn Host>, handlers: bool) -> std::io::Result<Arc<Events>> {
        let (sender, receiver) = channel::<Notices>();
        let events = Arc::new(Events {
            host,
            handlers,
            outbox: OrderedMutex::leaf("events outbox", Some(sender)),
            thread: OrderedMutex::leaf("events thread", None),
        });
        let weak = Arc::downgrade(&events);
        let thread = std::thread::Builder::new()
            .name("audioroom events".into())
            .spawn(move || {
                for notices in receiver {
                    if let Some(events) = weak.upgrade() {
                        events.send(notices);
                    }
                }
            })?;
        *events.thread.lock() = Some(thread);
        Ok(events)
    }

    /// Sends now, on this thread; call with no lock held.
    pub fn send(&self, notices: Notices) {
        locks::expect_none_held("sending events");
        for (endpoint, event) in notices.to_clients {
            endpoint.push_event(&event);
        }
        if self.handlers {
            for (endpoint, event) in notices.to_handlers {
                match endpoint {
                    Some(endpoint) => endpoint.notify_handlers(&event),
                    None => self.host.notify_handlers(&event),
                }
            }
        }
    }

    /// Hands the notices to the events thread (mixer threads: never wait on Janus).
    pub fn post(&self, notices: Notices) {
        if notices.is_empty() {
            return;
        }
        let sender = self.outbox.lock().clone();
        if let Some(sender) = sender {
            let _ = sender.send(notices);
        }
    }

    /// Delivers what is queued, then ends the events thread.
    pub fn stop(&self) {
        self.outbox.lock().take();
        let thread = self.thread.lock().take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}
