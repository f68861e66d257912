//! A thread that pushes events raised on the mixer threads (talking, plain-RTP setup), so a
//! tick never waits on Janus's session locks or transports.

use crate::notices::Notices;
use crate::sync::lock;
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;

pub struct Outbox {
    sender: Mutex<Option<Sender<Notices>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Outbox {
    pub fn start() -> std::io::Result<Outbox> {
        let (sender, receiver) = channel::<Notices>();
        let thread = std::thread::Builder::new()
            .name("audioroom events".into())
            .spawn(move || {
                for notices in receiver {
                    notices.send();
                }
            })?;
        Ok(Outbox {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn send(&self, notices: Notices) {
        if let Some(sender) = lock(&self.sender).as_ref() {
            let _ = sender.send(notices);
        }
    }

    /// Delivers what is queued, then ends the thread.
    pub fn stop(&self) {
        lock(&self.sender).take();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}
