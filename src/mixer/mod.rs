//! Mixing: one room's 20 ms tick (`tick`, pure and stepped by tests without clocks or threads),
//! the full-mix stream encoded once for many listeners (`shared_stream`), and the few threads
//! that serve every occupied room's deadline (`pool`, with its punctuality in `timing`).
//!
//! Lower layers: `locks`, `log`, `media`. Nothing here names `archive`, `conference`, `api` or
//! `ffi`: the pool ticks anything that is [`pool::Mixable`], and a tick sends packets to any
//! [`tick::PacketSink`].

pub mod pool;
pub mod shared_stream;
pub mod speakers;
pub mod tick;
pub mod timing;
