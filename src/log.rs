//! Logging through Janus's logger. The C boundary installs the sink at `init`; every layer logs
//! with `log!(Level, "...")` without knowing where the line goes. Without a sink (unit tests)
//! lines are dropped, or printed to stderr with `AUDIOROOM_TEST_LOG=1`.

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

/// Where lines go: a plain function, so logging takes no lock of ours beyond this read lock.
pub type Sink = fn(AudioroomLogLevel, &str);

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

pub fn install(sink: Option<Sink>) {
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = sink;
}

pub fn log(level: AudioroomLogLevel, line: &str) {
    let sink = *SINK.read().unwrap_or_else(|e| e.into_inner());
    match sink {
        Some(sink) => sink(level, line),
        None if std::env::var_os("AUDIOROOM_TEST_LOG").is_some() => {
            eprintln!("[{level:?}] {line}")
        }
        None => {}
    }
}

/// `log!(Warn, "format {}", args)`: a line through Janus's logger at that level.
#[macro_export]
macro_rules! log {
    ($level:ident, $($arg:tt)*) => {
        $crate::log::log($crate::log::AudioroomLogLevel::$level, &format!($($arg)*))
    };
}
