//! A running plugin for the API's tests: its mixer, recorder and events threads as in Janus,
//! stand-ins for Janus's handles (`FakeEndpoint`) and for Janus itself (`FakeHost`), folders of
//! its own under the system's temporary folder, and requests asked as a client or through the
//! Admin API would ask them.

use super::dispatch::{Dispatch, admin, asynchronous, dispatch};
use super::jsep::OfferInput;
use crate::conference::config::Config;
use crate::conference::plugin::Plugin;
use crate::conference::session::Session;
use crate::conference::testing::{FakeEndpoint, FakeHost};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

pub struct TestPlugin {
    pub plugin: Arc<Plugin>,
    /// What Janus's event handlers were told, and the sections of permanent rooms.
    pub host: Arc<FakeHost>,
    /// Its folder: `recordings/`, `jobs/`, and whatever a test puts there.
    pub root: PathBuf,
    sessions: Vec<(Session, Arc<FakeEndpoint>)>,
}

impl TestPlugin {
    /// Starts a plugin, recording nothing and with one mixer thread unless `tune` says
    /// otherwise; `name` keeps each test's folder apart.
    pub fn start(name: &str, tune: impl FnOnce(&mut Config)) -> TestPlugin {
        let root = std::env::temp_dir().join(format!("audioroom-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut config = Config {
            archive_path: root.join("recordings"),
            job_path: root.join("jobs"),
            recording_enabled: false,
            mixer_threads: 1,
            ..Config::default()
        };
        tune(&mut config);
        let host = Arc::new(FakeHost::default());
        let plugin = Plugin::start(config, host.clone()).unwrap();
        TestPlugin {
            plugin,
            host,
            root,
            sessions: Vec::new(),
        }
    }

    /// A new handle; its index.
    pub fn handle(&mut self) -> usize {
        let endpoint = FakeEndpoint::new();
        let session = Session::new(self.plugin.clone(), endpoint.session_endpoint());
        self.sessions.push((session, endpoint));
        self.sessions.len() - 1
    }

    pub fn session(&self, at: usize) -> &Session {
        &self.sessions[at].0
    }

    /// What handle `at` was sent: its events, its packets, whether it was closed.
    pub fn endpoint(&self, at: usize) -> &Arc<FakeEndpoint> {
        &self.sessions[at].1
    }

    /// The reply to `body` as the client on handle `at` gets it (an asynchronous request's
    /// event, or its error as an event).
    pub fn ask(&self, at: usize, body: Value) -> Value {
        ask(self.session(at), body)
    }

    /// The reply to `body` through the Admin API.
    pub fn admin(&self, body: Value) -> Value {
        admin(&self.plugin, &body.to_string())
    }
}

/// The reply to `body` as the client on `session` gets it: at once, or as the event of a queued
/// request (its error as an event).
pub fn ask(session: &Session, body: Value) -> Value {
    let text = body.to_string();
    match dispatch(session, &text) {
        Dispatch::Reply(reply) => reply,
        Dispatch::Queue => match asynchronous(session, &text, &OfferInput::None) {
            Ok(reply) => reply.event,
            Err(error) => error.to_event(),
        },
    }
}

impl Drop for TestPlugin {
    fn drop(&mut self) {
        for (session, _) in &self.sessions {
            session.destroy();
        }
        self.sessions.clear();
        self.plugin.shutdown();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
