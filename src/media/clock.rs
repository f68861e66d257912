//! The one monotonic clock of the media path, in microseconds: packets are stamped with it when
//! they arrive (on Janus's RTP threads, or when a plain-RTP socket is drained) and mixer ticks
//! read it, so arrival times and playout times can be compared.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the first call in this process.
pub fn now_us() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}
