//! How much a participant's packets are delayed on their way, and so how much buffering their
//! voice needs: the adaptive jitter buffer's estimate (see `jitter`).
//!
//! Each packet's transit is its arrival time minus the time its RTP timestamp says it was sent
//! (plus an unknown constant: the clocks are not shared). Over a sliding window of the last 10
//! seconds, the smallest transit is the path's base and the 97th percentile above it is the
//! jitter: the delay to wait for, beyond the fastest packets, so that 97 % of them arrive in
//! time (as WebRTC's NetEQ sizes its buffer from a high percentile). On top, a packet delayed
//! more than the target allows sets a peak at once (a burst of late packets raises the target
//! quickly), which then decays by 10 ms a second (a calm stretch lowers it slowly: 200 ms of
//! spike are forgotten in 20 s).

use std::collections::VecDeque;

/// Transits remembered: 10 s of 20 ms packets.
const WINDOW: usize = 500;
/// The percentile of transit above the base that the buffer absorbs.
const PERCENTILE: f64 = 0.97;
/// How fast a peak is forgotten, in microseconds per second.
const PEAK_DECAY_US_PER_S: u64 = 10_000;
/// A transit this far off the base is a new stream (a sender that restarted its timestamps,
/// or stopped sending and came back with the wall clock's), not delay: the estimate starts
/// afresh. Nobody buffers a second for a conversation.
const RESTART_US: i64 = 1_000_000;
/// Opus RTP timestamps run at 48 kHz.
const CLOCK_HZ: i64 = 48_000;

#[derive(Clone, Debug, Default)]
pub struct DelayEstimator {
    /// Transits (arrival minus sending time, µs) of the last packets, oldest first.
    transits: VecDeque<i64>,
    /// Smallest transit in the window, and the percentile above it (µs), as last computed.
    base: Option<i64>,
    jitter_us: i64,
    /// The delay above the base of a packet later than the target allowed, decaying, and when
    /// it was last decayed.
    peak_us: i64,
    peak_at_us: u64,
    /// Packets counted since the percentile was last computed.
    since_update: u32,
    /// Extends 32-bit timestamps: the last one seen, extended.
    last_timestamp: Option<i64>,
}

impl DelayEstimator {
    /// The sending time (µs, on the sender's clock) of an RTP timestamp, extended across wraps.
    pub fn sending_time_us(&mut self, timestamp: u32) -> i64 {
        let extended = match self.last_timestamp {
            None => timestamp as i64,
            Some(last) => last + (timestamp.wrapping_sub(last as u32) as i32) as i64,
        };
        self.last_timestamp = Some(extended);
        extended * 1_000_000 / CLOCK_HZ
    }

    /// Counts a packet that arrived at `arrival_us` with sending time `sent_us`.
    pub fn observe(&mut self, arrival_us: u64, sent_us: i64) {
        let transit = arrival_us as i64 - sent_us;
        if self
            .base
            .is_some_and(|base| (transit - base).abs() > RESTART_US)
        {
            self.restart();
        }
        if let Some(base) = self.base {
            let above = transit - base;
            if above > self.target_us(arrival_us) {
                // Later than the buffer allows: raise the target at once.
                self.peak_us = above;
                self.peak_at_us = arrival_us;
            }
        }
        if self.transits.len() == WINDOW {
            self.transits.pop_front();
        }
        self.transits.push_back(transit);
        if self.base.is_none_or(|base| transit < base) {
            self.base = Some(transit);
        }
        self.since_update += 1;
        // Recomputing sorts the window: every half second is often enough.
        if self.since_update >= 25 || self.transits.len() < 25 {
            self.update();
        }
    }

    /// The delay (µs above the base) the buffer should hold now.
    pub fn target_us(&mut self, now_us: u64) -> i64 {
        let elapsed = now_us.saturating_sub(self.peak_at_us);
        let decay = (elapsed * PEAK_DECAY_US_PER_S / 1_000_000) as i64;
        if decay > 0 {
            self.peak_us = (self.peak_us - decay).max(0);
            self.peak_at_us = now_us;
        }
        self.jitter_us.max(self.peak_us)
    }

    /// The path's smallest transit (µs), once a packet came.
    pub fn base_us(&self) -> Option<i64> {
        self.base
    }

    /// The jitter estimate (µs): the percentile of transit above the base.
    pub fn jitter_us(&self) -> i64 {
        self.jitter_us
    }

    /// Forgets the path (a new sender, or one that restarted).
    pub fn restart(&mut self) {
        *self = DelayEstimator::default();
    }

    fn update(&mut self) {
        self.since_update = 0;
        let mut sorted: Vec<i64> = self.transits.iter().copied().collect();
        sorted.sort_unstable();
        let base = sorted[0];
        let at = ((sorted.len() - 1) as f64 * PERCENTILE).round() as usize;
        self.base = Some(base);
        self.jitter_us = sorted[at] - base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets of 20 ms sent on time, arriving after `extra(k)` µs of delay on top of 30 ms.
    fn run(packets: u64, extra: impl Fn(u64) -> u64) -> DelayEstimator {
        let mut estimator = DelayEstimator::default();
        for k in 0..packets {
            let timestamp = (1_000_000 + k * 960) as u32;
            let sent = estimator.sending_time_us(timestamp);
            estimator.observe(k * 20_000 + 30_000 + extra(k), sent);
        }
        estimator
    }

    #[test]
    fn a_clean_path_has_no_jitter_and_a_jittery_one_its_high_percentile() {
        let mut clean = run(300, |_| 0);
        assert_eq!(clean.jitter_us(), 0);
        assert_eq!(clean.target_us(6_000_000), 0);
        // Uniform 0-40 ms (a deterministic scramble of k).
        let mut jittery = run(600, |k| (k * 7919 % 41) * 1000);
        let jitter = jittery.jitter_us();
        assert!((37_000..=40_000).contains(&jitter), "{jitter} µs");
        assert_eq!(jittery.target_us(12_000_000), jitter);
    }

    #[test]
    fn a_late_packet_raises_the_target_at_once_and_it_decays_slowly() {
        let mut e = run(100, |_| 0);
        let sent = e.sending_time_us((1_000_000 + 100 * 960) as u32);
        e.observe(100 * 20_000 + 30_000 + 200_000, sent);
        let spike_at = 100 * 20_000 + 230_000;
        assert_eq!(e.target_us(spike_at), 200_000, "raised at once");
        assert_eq!(
            e.target_us(spike_at + 10_000_000),
            100_000,
            "halved in 10 s"
        );
        assert_eq!(e.target_us(spike_at + 20_000_000), 0, "gone in 20 s");
    }

    #[test]
    fn timestamps_wrap_and_a_restarted_sender_starts_afresh() {
        let mut e = DelayEstimator::default();
        let near_wrap = u32::MAX - 960 * 10;
        for k in 0..40u64 {
            let sent = e.sending_time_us(near_wrap.wrapping_add((k * 960) as u32));
            e.observe(k * 20_000, sent);
        }
        assert_eq!(e.jitter_us(), 0, "the wrap is not a jump");
        // The sender restarts with a random timestamp: a new base, no giant jitter.
        for k in 40..80u64 {
            let sent = e.sending_time_us((0x7000_0000 + k * 960) as u32);
            e.observe(k * 20_000, sent);
        }
        assert_eq!(e.jitter_us(), 0);
    }
}
