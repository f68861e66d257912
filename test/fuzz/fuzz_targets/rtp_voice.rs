//! `rtp_voice`: one participant's uplink from the wire to the mixer's frame. Datagrams are
//! parsed (`media::rtp::parse`), valid ones pushed into a `JitterQueue` with arrival times the
//! input chooses (early, late, reordered, bursts, long silences), and ticks pull 20 ms frames
//! through `Voice::next_frame` under varying `DecodeRule`s: real libopus decoding, FEC and
//! concealment of whatever payloads the fuzzer makes.
//!
//! Input: `<mode> <rate and level id>` then operations, each led by a byte `op`:
//! - `op % 4` 0 or 1: a datagram (`<len> <bytes>`), arriving `(op >> 2) * 500` µs before now;
//! - `op % 4` 2: a tick, `20 ms + ((op >> 2) - 16) ms` after the last, then `<rule>`;
//! - `op % 4` 3: a control: the queue's mode changed, the queue or the decoder reset, or a
//!   pause of seconds (the sender stops).
#![no_main]

use audioroom::locks::OrderedMutex;
use audioroom::media::codec::{SAMPLING_RATES, frame_samples};
use audioroom::media::jitter::{JitterQueue, Mode};
use audioroom::media::rtp;
use audioroom::media::voice::{DecodeRule, Voice, VoiceFrame};
use libfuzzer_sys::fuzz_target;

/// The most a queue may hold in any mode (`Fixed(50)` holds up to twice its pre-buffer).
const MAX_QUEUED: usize = 100;

fn mode(byte: u8) -> Mode {
    if byte & 0x80 == 0 {
        Mode::Adaptive
    } else {
        Mode::Fixed((byte & 0x7f) as u32 % 51)
    }
}

fn rule(byte: u8) -> DecodeRule {
    DecodeRule {
        threshold: (byte & 0x3f) * 2,
        speaking: byte & 0x80 != 0,
        mix_all: byte & 0x40 != 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode_byte, setup, ops @ ..] = data else {
        return;
    };
    let rate = SAMPLING_RATES[*setup as usize % SAMPLING_RATES.len()];
    let level_id = match (setup >> 3) % 16 {
        0 => None,
        id => Some(id),
    };
    let queue = OrderedMutex::leaf("fuzz queue", JitterQueue::new(mode(*mode_byte)));
    let mut voice = Voice::new(rate).expect("a decoder at every room rate");
    // The media clock starts at 0 when the process does; start near it so that arrivals
    // stamped "before" it are tried too.
    let mut now: u64 = (*setup as u64) * 1000;
    let mut ops = ops.iter();
    while let Some(&op) = ops.next() {
        match op % 4 {
            0 | 1 => {
                let Some(&len) = ops.next() else { break };
                let datagram: Vec<u8> = ops.by_ref().take(len as usize).copied().collect();
                let arrival = now.saturating_sub((op >> 2) as u64 * 500);
                if let Ok(p) = rtp::parse(&datagram, level_id) {
                    assert!(p.payload.len() <= datagram.len());
                    // As `Session::incoming_rtp` and `PlainRtpLink::drain` do: no empty ones.
                    if !p.payload.is_empty() {
                        queue
                            .lock()
                            .push(p.header(), p.payload, p.audio_level, arrival);
                    }
                }
            }
            2 => {
                let step = 20_000i64 + ((op >> 2) as i64 - 16) * 1000;
                now += step.max(0) as u64;
                let Some(&r) = ops.next() else { break };
                let frame = voice.next_frame(&queue, rule(r), now);
                if let VoiceFrame::Audio { level } | VoiceFrame::Quiet { level } = frame {
                    assert!(level <= 127, "level {level}");
                }
                assert_eq!(voice.frame().len(), frame_samples(rate));
            }
            _ => match (op >> 2) % 8 {
                0 => queue.lock().set_mode(Mode::Adaptive),
                1 => {
                    let n = ops.next().copied().unwrap_or(0);
                    queue.lock().set_mode(mode(n | 0x80));
                }
                2 => queue.lock().reset(),
                3 => voice.reset(),
                4 => now += 1_000_000 * (1 + (op >> 5) as u64),
                _ => now += 1000 * (op >> 5) as u64,
            },
        }
        assert!(
            queue.lock().len() <= MAX_QUEUED,
            "{} queued",
            queue.lock().len()
        );
    }
});
