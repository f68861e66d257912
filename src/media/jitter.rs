//! The per-participant jitter queue: packets reordered by sequence number, held until they are
//! due, and told apart as played, lost (with or without a successor that can carry Opus FEC for
//! it) or simply not there yet.
//!
//! Playout runs in real time: every tick consumes one slot. A packet missing at its slot is
//! concealed and its slot is gone (it is late if it comes after), so a burst of loss never adds
//! latency. How long packets are held comes in two modes:
//!
//! - **Adaptive** (the default): the queue holds each packet for as long as the network's
//!   jitter requires (`media::delay`'s estimate) and no longer. A slot is due when its sending
//!   time plus the path's fastest transit plus the target delay has passed. When the target
//!   grows the queue waits a tick (the decoder conceals a frame if the participant is being
//!   mixed); when it shrinks a packet is skipped. Both happen preferably while the participant
//!   is not speaking, or on a quiet frame, so the adaptation is inaudible; a large gap is
//!   corrected at once. The target never exceeds `MAX_TARGET_US`.
//! - **Fixed** (`prebuffer` given on `join`, `configure` or the room): playout starts once so
//!   many packets are queued; a sender silent for longer stalls the queue, which starts afresh,
//!   pre-buffered, from the next packet. With 0 nothing is held back, late packets are played
//!   too, and an empty queue is simply silence.
//!
//! Janus's RTP threads push; the mixer pulls one 20 ms slot per tick. Payload buffers are
//! recycled between the two so the steady state allocates nothing.

use crate::media::delay::DelayEstimator;
use std::collections::VecDeque;

/// A gap of more lost packets than this is a sender restart, not loss: playout resyncs.
const MAX_CONCEALED_GAP: u64 = 25;
/// A packet this far behind playout is from an older stream; the queue starts afresh.
const RESTART_DISTANCE: u64 = 1000;
/// Recycled buffers kept around; more would just be memory.
const MAX_SPARE_BUFFERS: usize = 16;
/// Without pre-buffering the queue still holds at most this much (one second).
const MAX_UNBUFFERED_QUEUE: usize = 50;
/// Fewest empty slots concealed before the queue counts as stalled.
const MIN_STALL_SLOTS: u32 = 2;
/// The most delay the adaptive queue adds: 200 ms. More would by itself push a call past the
/// 150 ms one-way budget of ITU-T G.114; on a worse path, concealing the rare later packet is
/// the better trade.
pub const MAX_TARGET_US: i64 = 200_000;
/// Packets a participant may send per second; the rest are dropped and counted (Opus at its
/// shortest frame, 10 ms, needs 100; a flood needs none).
pub const MAX_PACKETS_PER_SECOND: u32 = 250;
/// One 20 ms frame, in microseconds.
const FRAME_US: i64 = 20_000;
/// Holding more than the target by this much, the queue skips a packet to catch up: a frame
/// (the delay moves in whole frames) and 5 ms, so a target that wavers a little does not make
/// the queue skip and wait by turns.
const SHRINK_SLACK_US: i64 = FRAME_US + 5_000;
/// A deviation this large is corrected at once, even in the middle of speech.
const FORCE_US: i64 = 5 * FRAME_US;
/// Ticks a pending correction may wait for a quiet moment before it is made anyway.
const MAX_WAIT_TICKS: u32 = 25;
/// Packets skipped in one tick at most, so catching up never runs long on the mixer thread.
const MAX_SKIPS_PER_TICK: u32 = 3;
/// A fixed queue that held more than its pre-buffer at every tick for this long (one second)
/// drops a packet: it started deeper than asked (packets bunched at the start), or its sender's
/// clock runs fast, and the delay stays what was asked.
const TRIM_AFTER_TICKS: u32 = 50;

pub struct QueuedPacket {
    sequence: u64,
    /// Sending time on the sender's clock (µs), from the RTP timestamp.
    sent_us: i64,
    pub payload: Vec<u8>,
    pub audio_level: Option<u8>,
}

/// What the mixer gets for one slot.
#[derive(Debug, PartialEq, Eq)]
pub enum Playout {
    /// The next packet, its payload swapped into the caller's buffer.
    Packet { audio_level: Option<u8> },
    /// One packet was lost and its successor (in the caller's buffer, NOT consumed) may carry
    /// FEC for it.
    LostBeforeNext,
    /// A packet was lost and nothing usable follows it yet: conceal.
    Lost,
    /// The buffer is growing: no slot is consumed this tick (conceal a frame if the voice is
    /// being mixed).
    Stretch,
    /// Still pre-buffering, or the queue ran dry: nothing to play.
    Nothing,
}

/// What the mixer knows of the participant's voice, to time the adaptation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayoutHint {
    /// Not speaking (not mixed): adapting now cannot be heard.
    pub quiet: bool,
    /// A packet whose RFC 6464 level is above this (quieter) is a quiet moment inside speech.
    pub quiet_level: u8,
}

impl PlayoutHint {
    /// Nothing is known: adapt whenever needed.
    pub fn any() -> PlayoutHint {
        PlayoutHint {
            quiet: true,
            quiet_level: 127,
        }
    }
}

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    /// Packets that came after their slot was played (or concealed), dropped.
    pub late: u64,
    pub duplicates: u64,
    pub overflow_drops: u64,
    /// Slots concealed: lost, or late.
    pub lost: u64,
    pub underruns: u64,
    /// Packets skipped to lower the delay (adaptive mode).
    pub skipped: u64,
    /// Ticks waited to raise the delay (adaptive mode).
    pub stretched: u64,
    /// Packets dropped for coming faster than `MAX_PACKETS_PER_SECOND`.
    pub rate_drops: u64,
}

/// How the queue holds packets (see the module's comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Adaptive,
    /// So many packets queued before playout starts.
    Fixed(u32),
}

/// The state of the adaptive delay, for operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DelayState {
    /// The delay the queue aims at, above the path's fastest transit (µs).
    pub target_us: i64,
    /// The delay it holds now (µs): how long the slot played last had been due.
    pub depth_us: i64,
    /// The jitter estimate (µs).
    pub jitter_us: i64,
}

pub struct JitterQueue {
    mode: Mode,
    packets: VecDeque<QueuedPacket>,
    spare: Vec<Vec<u8>>,
    ssrc: Option<u32>,
    /// Highest extended sequence number seen, the reference for extending 16-bit ones.
    highest: Option<u64>,
    /// Extended sequence number of the next slot to play.
    next: Option<u64>,
    /// Sending time of the last slot played (µs), and how long a slot lasts.
    last_played_sent_us: Option<i64>,
    slot_us: i64,
    prebuffering: bool,
    /// Consecutive slots with nothing queued, concealed so far.
    empty_slots: u32,
    /// Fixed mode: ticks in a row that began with more than the pre-buffer queued.
    deep_ticks: u32,
    delay: DelayEstimator,
    state: DelayState,
    /// Ticks a wanted correction has waited for a quiet moment.
    waited: u32,
    /// Packets accepted in the current second, and when it began (µs).
    rate_count: u32,
    rate_window_us: u64,
    pub stats: JitterStats,
}

impl JitterQueue {
    pub fn new(mode: Mode) -> Self {
        JitterQueue {
            mode,
            packets: VecDeque::new(),
            spare: Vec::new(),
            ssrc: None,
            highest: None,
            next: None,
            last_played_sent_us: None,
            slot_us: FRAME_US,
            prebuffering: mode.prebuffer() > 0,
            empty_slots: 0,
            deep_ticks: 0,
            delay: DelayEstimator::default(),
            state: DelayState::default(),
            waited: 0,
            rate_count: 0,
            rate_window_us: 0,
            stats: JitterStats::default(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A new mode takes effect at once; packets already queued stay.
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
        if mode.prebuffer() == 0 {
            self.prebuffering = false;
        }
    }

    pub fn delay_state(&self) -> DelayState {
        self.state
    }

    pub fn len(&self) -> usize {
        self.packets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Forgets everything queued and the stream's numbering (a new sender, or a room change).
    pub fn reset(&mut self) {
        while let Some(p) = self.packets.pop_front() {
            self.recycle(p.payload);
        }
        self.ssrc = None;
        self.highest = None;
        self.next = None;
        self.last_played_sent_us = None;
        self.delay.restart();
        self.state = DelayState::default();
        self.prebuffering = self.mode.prebuffer() > 0;
    }

    /// Queues one packet that arrived at `arrival_us` (on `media::clock`).
    pub fn push(
        &mut self,
        header: PacketHeader,
        payload: &[u8],
        audio_level: Option<u8>,
        arrival_us: u64,
    ) {
        if !self.within_rate(arrival_us) {
            self.stats.rate_drops += 1;
            return;
        }
        if self.ssrc != Some(header.ssrc) {
            self.reset();
            self.ssrc = Some(header.ssrc);
        }
        self.stats.received += 1;
        let extended = self.extend(header.sequence);
        let sent_us = self.delay.sending_time_us(header.timestamp);
        self.delay.observe(arrival_us, sent_us);
        if let Some(next) = self.next {
            if extended < next {
                if next - extended > RESTART_DISTANCE {
                    // The sender started over with the same SSRC.
                    self.reset();
                    self.ssrc = Some(header.ssrc);
                    return self.push(header, payload, audio_level, arrival_us);
                }
                if self.mode.holds_late_packets_back() {
                    self.stats.late += 1;
                    return;
                }
            }
        }
        // Insert in order, searching from the back where in-order packets land.
        let mut at = self.packets.len();
        while at > 0 && self.packets[at - 1].sequence >= extended {
            if self.packets[at - 1].sequence == extended {
                self.stats.duplicates += 1;
                return;
            }
            at -= 1;
        }
        let mut buffer = self.spare.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(payload);
        self.packets.insert(
            at,
            QueuedPacket {
                sequence: extended,
                sent_us,
                payload: buffer,
                audio_level,
            },
        );
        let limit = match self.mode {
            Mode::Fixed(0) => MAX_UNBUFFERED_QUEUE,
            Mode::Fixed(n) => 2 * n as usize,
            // Twice the most the target allows, and a frame.
            Mode::Adaptive => (2 * MAX_TARGET_US / FRAME_US) as usize + 1,
        };
        while self.packets.len() > limit {
            let oldest = self.packets.pop_front().expect("queue is not empty");
            self.stats.overflow_drops += 1;
            self.recycle(oldest.payload);
            self.next = self.packets.front().map(|p| p.sequence);
        }
    }

    /// Plays one slot at `now_us`. On `Packet` and `LostBeforeNext` the payload is in `buffer`.
    pub fn pop(&mut self, buffer: &mut Vec<u8>, now_us: u64, hint: PlayoutHint) -> Playout {
        if self.mode == Mode::Adaptive {
            if let Some(playout) = self.adapt(now_us, hint) {
                return playout;
            }
        } else if self.prebuffering {
            if self.packets.len() < (self.mode.prebuffer() as usize).max(1) {
                return Playout::Nothing;
            }
            // Playout (re)starts at the oldest packet queued.
            self.prebuffering = false;
            self.next = None;
            self.deep_ticks = 0;
        } else if self.mode.prebuffer() > 0 {
            let deep = self.packets.len() > self.mode.prebuffer() as usize;
            self.deep_ticks = if deep { self.deep_ticks + 1 } else { 0 };
            if self.deep_ticks >= TRIM_AFTER_TICKS {
                self.deep_ticks = 0;
                self.skip_one();
            }
        }
        let Some(head) = self.packets.front() else {
            return self.empty_slot();
        };
        self.empty_slots = 0;
        let next = *self.next.get_or_insert(head.sequence);
        if head.sequence > next {
            let gap = head.sequence - next;
            if gap > MAX_CONCEALED_GAP {
                self.next = Some(head.sequence);
                return self.pop(buffer, now_us, hint);
            }
            self.stats.lost += 1;
            self.next = Some(next + 1);
            self.last_played_sent_us = Some(head.sent_us - gap as i64 * self.slot_us);
            if gap == 1 {
                buffer.clear();
                buffer.extend_from_slice(&head.payload);
                return Playout::LostBeforeNext;
            }
            return Playout::Lost;
        }
        // head.sequence == next, or a late packet let through because pre-buffering is off.
        let head = self.packets.pop_front().expect("head exists");
        if head.sequence == next {
            self.advance(next);
            self.slot_us = self.slot_duration(&head).unwrap_or(self.slot_us);
            self.last_played_sent_us = Some(head.sent_us);
        }
        let old = std::mem::replace(buffer, head.payload);
        self.recycle(old);
        Playout::Packet {
            audio_level: head.audio_level,
        }
    }

    /// Adaptive mode, before a slot is played: waits while the next slot is not yet due, skips
    /// packets while the queue holds too much, preferably at quiet moments. Returns what to
    /// play instead of the slot, if anything.
    fn adapt(&mut self, now_us: u64, hint: PlayoutHint) -> Option<Playout> {
        let target = self.delay.target_us(now_us).min(MAX_TARGET_US);
        self.state.target_us = target;
        self.state.jitter_us = self.delay.jitter_us();
        // A sender that jumped far ahead (it restarted, or half a second was lost) is followed
        // from where it is now, before any delay is measured against its old numbering.
        if let (Some(next), Some(head)) = (self.next, self.packets.front()) {
            if head.sequence > next + MAX_CONCEALED_GAP {
                self.next = Some(head.sequence);
                self.last_played_sent_us = None;
            }
        }
        for _ in 0..=MAX_SKIPS_PER_TICK {
            let (Some(base), Some(due)) = (self.delay.base_us(), self.next_slot_sent_us()) else {
                return None; // nothing yet: empty_slot decides
            };
            let depth = now_us as i64 - base - due;
            self.state.depth_us = depth;
            let quiet_head = self.packets.front().is_some_and(|p| {
                Some(p.sequence) == self.next && p.audio_level.is_some_and(|l| l > hint.quiet_level)
            });
            if depth < target {
                // Not yet due: the buffer grows by a tick. Before playout starts that is just
                // waiting. A slot whose packet is not here waits for it rather than concealing
                // it away. A participant who is being mixed hears a concealed frame, so a
                // packet that is here waits for a quiet moment unless far behind.
                if self.next.is_none() {
                    return Some(Playout::Nothing);
                }
                let here = self
                    .packets
                    .front()
                    .is_some_and(|p| Some(p.sequence) == self.next);
                if !here
                    || hint.quiet
                    || quiet_head
                    || target - depth >= FORCE_US
                    || self.waited_long()
                {
                    self.waited = 0;
                    self.stats.stretched += 1;
                    return Some(Playout::Stretch);
                }
                return None;
            }
            if depth >= target + SHRINK_SLACK_US {
                // Holding too much: skip a packet, at a quiet moment unless far ahead.
                let forced = depth - target >= FORCE_US + FRAME_US || self.waited_long();
                if (hint.quiet || quiet_head || forced) && self.skip_one() {
                    self.waited = 0;
                    continue;
                }
                return None;
            }
            self.waited = 0;
            return None;
        }
        None // caught up as far as one tick may: the rest at the next
    }

    /// Counts a tick a correction waited; true once it waited long enough.
    fn waited_long(&mut self) -> bool {
        self.waited += 1;
        self.waited > MAX_WAIT_TICKS
    }

    /// Drops the next slot's packet (or just the slot, if its packet is missing) to lower the
    /// delay; false when there is nothing after it to play instead.
    fn skip_one(&mut self) -> bool {
        let Some(next) = self.next else { return false };
        if self.packets.iter().all(|p| p.sequence <= next) {
            return false;
        }
        if self.packets.front().is_some_and(|p| p.sequence == next) {
            let skipped = self.packets.pop_front().expect("head exists");
            self.last_played_sent_us = Some(skipped.sent_us);
            self.recycle(skipped.payload);
        } else if let Some(sent) = self.last_played_sent_us {
            self.last_played_sent_us = Some(sent + self.slot_us);
        }
        self.stats.skipped += 1;
        self.advance(next);
        true
    }

    /// The sending time of the slot to play next: its packet's, or extrapolated.
    fn next_slot_sent_us(&self) -> Option<i64> {
        match (self.next, self.packets.front()) {
            (Some(next), Some(head)) if head.sequence >= next => {
                Some(head.sent_us - (head.sequence - next) as i64 * self.slot_us)
            }
            (None, Some(head)) => Some(head.sent_us),
            _ => self.last_played_sent_us.map(|sent| sent + self.slot_us),
        }
    }

    /// How long a packet lasts, from the sending time of the one after it.
    fn slot_duration(&self, played: &QueuedPacket) -> Option<i64> {
        let after = self.packets.front()?;
        let slots = (after.sequence - played.sequence) as i64;
        let span = (after.sent_us - played.sent_us) / slots.max(1);
        (5_000..=120_000).contains(&span).then_some(span)
    }

    fn advance(&mut self, played: u64) {
        self.next = Some(played + 1);
    }

    /// A slot came with nothing queued for it.
    fn empty_slot(&mut self) -> Playout {
        let stall_after = match self.mode {
            Mode::Fixed(0) => return Playout::Nothing,
            Mode::Fixed(n) => n,
            Mode::Adaptive => (self.state.target_us / FRAME_US) as u32 + 1,
        };
        if self.next.is_none() {
            return Playout::Nothing;
        }
        self.empty_slots += 1;
        if self.empty_slots > stall_after.max(MIN_STALL_SLOTS) {
            // The sender stopped (or the network did): start afresh when it comes back.
            self.stats.underruns += 1;
            self.prebuffering = self.mode.prebuffer() > 0;
            self.next = None;
            self.last_played_sent_us = None;
            self.empty_slots = 0;
            return Playout::Nothing;
        }
        self.stats.lost += 1;
        if let Some(next) = self.next {
            self.advance(next);
        }
        if let Some(sent) = self.last_played_sent_us {
            self.last_played_sent_us = Some(sent + self.slot_us);
        }
        Playout::Lost
    }

    /// Counts a packet against the rate limit; false when it is over.
    fn within_rate(&mut self, arrival_us: u64) -> bool {
        if arrival_us.saturating_sub(self.rate_window_us) >= 1_000_000 {
            self.rate_window_us = arrival_us;
            self.rate_count = 0;
        }
        self.rate_count += 1;
        self.rate_count <= MAX_PACKETS_PER_SECOND
    }

    fn extend(&mut self, sequence: u16) -> u64 {
        // Start numbering well above zero so that a few packets "before" the first stay valid.
        const ORIGIN: u64 = 1 << 32;
        let extended = match self.highest {
            None => ORIGIN + sequence as u64,
            Some(highest) => {
                let delta = sequence.wrapping_sub(highest as u16) as i16 as i64;
                (highest as i64 + delta).max(0) as u64
            }
        };
        if self.highest.is_none_or(|h| extended > h) {
            self.highest = Some(extended);
        }
        extended
    }

    fn recycle(&mut self, buffer: Vec<u8>) {
        if self.spare.len() < MAX_SPARE_BUFFERS {
            self.spare.push(buffer);
        }
    }
}

impl Mode {
    /// Packets held before playout starts (0 in adaptive mode: the schedule decides).
    pub fn prebuffer(self) -> u32 {
        match self {
            Mode::Fixed(n) => n,
            Mode::Adaptive => 0,
        }
    }

    /// Whether a packet that comes after its slot is dropped (all but `Fixed(0)`).
    fn holds_late_packets_back(self) -> bool {
        self != Mode::Fixed(0)
    }
}

/// The RTP header fields the queue needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketHeader {
    pub ssrc: u32,
    pub sequence: u16,
    pub timestamp: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(seq: u16) -> Vec<u8> {
        seq.to_be_bytes().to_vec()
    }

    fn header(ssrc: u32, sequence: u16) -> PacketHeader {
        PacketHeader {
            ssrc,
            sequence,
            timestamp: sequence as u32 * 960,
        }
    }

    /// A fixed-mode queue (these tests step slots, not time).
    fn fixed(prebuffer: u32) -> JitterQueue {
        JitterQueue::new(Mode::Fixed(prebuffer))
    }

    /// Runs ticks in real time: before tick i the packets `arrivals[i]` come in, then one slot
    /// plays. Each slot is described as the sequence number played, "L<n>" (lost, and packet n
    /// in the buffer for FEC), "C" (conceal) or "-" (nothing).
    fn timeline(q: &mut JitterQueue, arrivals: &[&[u16]]) -> Vec<String> {
        let mut buf = Vec::new();
        arrivals
            .iter()
            .map(|seqs| {
                for &s in *seqs {
                    q.push(header(7, s), &payload(s), None, 0);
                }
                match q.pop(&mut buf, 0, PlayoutHint::any()) {
                    Playout::Packet { .. } => u16::from_be_bytes([buf[0], buf[1]]).to_string(),
                    Playout::LostBeforeNext => format!("L{}", u16::from_be_bytes([buf[0], buf[1]])),
                    Playout::Lost | Playout::Stretch => "C".into(),
                    Playout::Nothing => "-".into(),
                }
            })
            .collect()
    }

    #[test]
    fn in_order_packets_play_after_the_prebuffer_fills() {
        let mut q = fixed(3);
        let out = timeline(&mut q, &[&[10], &[11], &[12], &[13], &[14], &[15]]);
        assert_eq!(out, ["-", "-", "10", "11", "12", "13"]);
        assert_eq!(
            q.len(),
            2,
            "three slots of latency: two queued and one playing"
        );
    }

    #[test]
    fn a_fixed_queue_that_started_deep_comes_back_to_its_prebuffer_within_seconds() {
        let mut q = fixed(2);
        // Four packets bunched at the start, then one per tick: two slots deeper than asked.
        let mut arrivals: Vec<Vec<u16>> = vec![vec![0, 1, 2, 3]];
        arrivals.extend((4..200).map(|s| vec![s]));
        let refs: Vec<&[u16]> = arrivals.iter().map(|a| &a[..]).collect();
        let out = timeline(&mut q, &refs);
        assert_eq!(out[0], "0", "playout starts at once with four queued");
        assert_eq!(
            q.stats.skipped, 2,
            "one packet a second until the depth is two"
        );
        assert_eq!(q.len(), 1, "steady: one queued and one playing, as asked");
        assert_eq!(out.last().unwrap(), "198");
    }

    #[test]
    fn reordered_packets_come_out_in_order() {
        let mut q = fixed(3);
        let out = timeline(&mut q, &[&[1], &[0], &[3, 2], &[], &[5, 4], &[], &[]]);
        assert_eq!(out, ["-", "-", "0", "1", "2", "3", "4"]);
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut q = fixed(2);
        let out = timeline(&mut q, &[&[1, 1], &[2, 1], &[3, 2], &[4, 3], &[]]);
        assert_eq!(out, ["-", "1", "2", "3", "4"]);
        // 1 twice while queued, then copies of 2 and 3 after they played.
        assert_eq!(q.stats.duplicates + q.stats.late, 4);
    }

    #[test]
    fn a_single_loss_offers_the_successor_for_fec() {
        let mut q = fixed(2);
        let out = timeline(&mut q, &[&[1], &[2], &[], &[4], &[5], &[6]]);
        assert_eq!(out, ["-", "1", "2", "L4", "4", "5"]);
        assert_eq!(q.stats.lost, 1);
    }

    #[test]
    fn a_burst_loss_is_concealed_slot_by_slot_without_adding_latency() {
        let mut q = fixed(3);
        let arrivals: Vec<&[u16]> = vec![
            &[1],
            &[2],
            &[3],
            &[4],
            &[],
            &[],
            &[],
            &[8],
            &[9],
            &[10],
            &[11],
        ];
        let out = timeline(&mut q, &arrivals);
        assert_eq!(
            out,
            ["-", "-", "1", "2", "3", "4", "C", "C", "L8", "8", "9"]
        );
        assert_eq!(q.stats.lost, 3);
    }

    #[test]
    fn a_stalled_sender_restarts_prebuffered_without_concealing_the_past() {
        let mut q = fixed(2);
        let mut arrivals: Vec<&[u16]> = vec![&[1], &[2], &[3]];
        arrivals.extend(std::iter::repeat_n(&[][..], 6));
        arrivals.extend([&[60][..], &[61], &[62]]);
        let out = timeline(&mut q, &arrivals);
        assert_eq!(
            out,
            ["-", "1", "2", "3", "C", "C", "-", "-", "-", "-", "60", "61"]
        );
        assert_eq!(q.stats.underruns, 1);
    }

    #[test]
    fn a_huge_gap_resyncs_instead_of_concealing_forever() {
        let mut q = fixed(1);
        let out = timeline(&mut q, &[&[1], &[500], &[501]]);
        assert_eq!(out, ["1", "500", "501"]);
    }

    #[test]
    fn sequence_numbers_wrap_at_65535() {
        let mut q = fixed(3);
        let out = timeline(&mut q, &[&[65534], &[0], &[65535], &[1], &[3, 2], &[4]]);
        assert_eq!(out, ["-", "-", "65534", "65535", "0", "1"]);
        assert_eq!(q.stats.lost, 0);
    }

    #[test]
    fn late_packets_are_dropped_unless_prebuffering_is_off() {
        let mut q = fixed(2);
        let out = timeline(&mut q, &[&[10], &[11], &[], &[], &[12, 13], &[14]]);
        // 12 missed its slot (concealed) and is dropped when it comes.
        assert_eq!(out, ["-", "10", "11", "C", "13", "14"]);
        assert_eq!(q.stats.late, 1);

        let mut q = fixed(0);
        let out = timeline(&mut q, &[&[10], &[], &[12], &[11], &[13]]);
        // No pre-buffering: plays at once, an empty slot is just silence, and 11 arriving
        // after 12's FEC slot is still played.
        assert_eq!(out, ["10", "-", "L12", "11", "12"]);
        assert_eq!(q.stats.late, 0);
    }

    #[test]
    fn a_queue_past_twice_its_size_drops_its_oldest() {
        let mut q = fixed(2);
        let out = timeline(&mut q, &[&[1, 2, 3, 4, 5, 6], &[7], &[8]]);
        assert_eq!(q.stats.overflow_drops, 2);
        // Dropped packets are not reported as lost.
        assert_eq!(out, ["3", "4", "5"]);
        assert_eq!(q.stats.lost, 0);
    }

    #[test]
    fn a_new_ssrc_or_a_restart_starts_afresh() {
        let mut q = fixed(1);
        assert_eq!(timeline(&mut q, &[&[100], &[101]]), ["100", "101"]);
        q.push(header(8, 40000), &payload(40000), None, 0);
        assert_eq!(timeline(&mut q, &[&[]]), ["40000"]);
        // Same SSRC, numbering restarted far behind.
        q.push(header(8, 20000), &payload(20000), None, 0);
        assert_eq!(timeline(&mut q, &[&[]]), ["20000"]);
    }

    #[test]
    fn buffers_are_recycled() {
        let mut q = fixed(1);
        let mut buf = Vec::with_capacity(64);
        for s in 0..100u16 {
            q.push(header(1, s), &[1, 2, 3], Some(127), 0);
            assert_eq!(
                q.pop(&mut buf, 0, PlayoutHint::any()),
                Playout::Packet {
                    audio_level: Some(127)
                }
            );
        }
        assert!(q.spare.len() <= MAX_SPARE_BUFFERS);
        assert_eq!(buf, [1, 2, 3]);
    }

    // ---- Adaptive mode: synthetic arrival schedules --------------------------------------

    /// The path's base transit in these simulations.
    const BASE_US: u64 = 30_000;

    #[derive(Default, Debug)]
    struct Outcome {
        /// (packet index, time from its fastest possible arrival to its playout, µs)
        played: Vec<(u64, u64)>,
        lost: u64,
        stretched: u64,
        skipped: u64,
        late: u64,
        /// Target delay after each tick (µs).
        targets: Vec<i64>,
    }

    impl Outcome {
        /// Median and 90th percentile of the added delay (ms) of packets played from `from`.
        fn delay_ms(&self, from: u64) -> (f64, f64) {
            let mut d: Vec<u64> = self
                .played
                .iter()
                .filter(|p| p.0 >= from)
                .map(|p| p.1)
                .collect();
            d.sort_unstable();
            let at = |q: f64| d[((d.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
            (at(0.5), at(0.9))
        }
    }

    /// Sends `count` packets of 20 ms (packet k at k·20 ms, with its RTP timestamp), each
    /// arriving `BASE_US` plus `extra(k)` later (`None`: lost); ticks every 20 ms at `phase_us`.
    fn simulate(count: u64, phase_us: u64, extra: impl Fn(u64) -> Option<u64>) -> Outcome {
        simulate_with(count, phase_us, |k| extra(k).map(|e| (k, k * 960, e)))
    }

    /// As `simulate`, `packet(k)` giving its sequence number, timestamp and extra delay.
    fn simulate_with(
        count: u64,
        phase_us: u64,
        packet: impl Fn(u64) -> Option<(u64, u64, u64)>,
    ) -> Outcome {
        let mut q = JitterQueue::new(Mode::Adaptive);
        let mut arrivals: Vec<(u64, u64, PacketHeader)> = (0..count)
            .filter_map(|k| {
                let (sequence, timestamp, extra) = packet(k)?;
                let header = PacketHeader {
                    ssrc: 9,
                    sequence: sequence as u16,
                    timestamp: timestamp as u32,
                };
                Some((k * 20_000 + BASE_US + extra, k, header))
            })
            .collect();
        arrivals.sort_by_key(|a| a.0);
        let mut next_arrival = 0;
        let mut out = Outcome::default();
        let mut buf = Vec::new();
        let ticks = count + 20;
        for n in 0..ticks {
            let now = n * 20_000 + phase_us;
            while next_arrival < arrivals.len() && arrivals[next_arrival].0 <= now {
                let (at, k, header) = arrivals[next_arrival];
                q.push(header, &k.to_be_bytes(), None, at);
                next_arrival += 1;
            }
            match q.pop(&mut buf, now, PlayoutHint::any()) {
                Playout::Packet { .. } => {
                    let k = u64::from_be_bytes(buf[..8].try_into().unwrap());
                    out.played.push((k, now - (k * 20_000 + BASE_US)));
                }
                // After the last packet the sender has simply stopped.
                Playout::Lost | Playout::LostBeforeNext if n < count => out.lost += 1,
                Playout::Lost | Playout::LostBeforeNext => {}
                Playout::Stretch => out.stretched += 1,
                Playout::Nothing => {}
            }
            out.targets.push(q.delay_state().target_us);
        }
        out.skipped = q.stats.skipped;
        out.late = q.stats.late;
        out
    }

    /// A deterministic scramble of k into 0..=max.
    fn scramble(k: u64, max: u64) -> u64 {
        (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17) % (max + 1)
    }

    #[test]
    fn on_a_clean_path_a_packet_waits_at_most_a_tick() {
        for phase in [1_000, 9_000, 19_000] {
            let out = simulate(500, phase, |_| Some(0));
            assert_eq!(
                (out.lost, out.stretched, out.skipped),
                (0, 0, 0),
                "phase {phase}"
            );
            assert_eq!(out.played.len(), 500, "phase {phase}");
            let (median, p90) = out.delay_ms(50);
            assert!(
                median < 20.0 && p90 < 20.0,
                "phase {phase}: {median} / {p90} ms"
            );
            assert_eq!(*out.targets.last().unwrap(), 0);
        }
    }

    #[test]
    fn uniform_jitter_is_absorbed_at_the_delay_it_needs() {
        // 0-40 ms extra, so packets also arrive out of order.
        let out = simulate(3000, 7_000, |k| Some(scramble(k, 40) * 1000));
        let (median, p90) = out.delay_ms(500);
        let concealed = out.lost as f64 / 3000.0;
        assert!(concealed < 0.01, "{:.2} % concealed", concealed * 100.0);
        assert!(median <= 60.0, "median {median} ms");
        assert!(p90 <= 70.0, "p90 {p90} ms");
        let target = *out.targets.last().unwrap();
        assert!((35_000..=41_000).contains(&target), "target {target} µs");
    }

    #[test]
    fn a_delay_spike_raises_the_delay_at_once_and_it_comes_back_within_30_seconds() {
        // Clean, but the packets sent during 200 ms at t = 10 s are held and arrive together.
        let spike = |k: u64| {
            let sent = k * 20_000;
            let (start, end) = (10_000_000, 10_200_000);
            Some(if (start..end).contains(&sent) {
                end - sent
            } else {
                0
            })
        };
        let out = simulate(3000, 5_000, spike);
        let at = |seconds: f64| out.targets[(seconds * 50.0) as usize];
        assert_eq!(at(9.9), 0, "clean before");
        assert!(at(10.5) >= 150_000, "raised at once: {}", at(10.5));
        // The added delay of packets played 30 s after the spike is back near the clean path's.
        let (clean_median, _) = simulate(3000, 5_000, |_| Some(0)).delay_ms(50);
        let late: Vec<u64> = out
            .played
            .iter()
            .filter(|p| p.0 >= 2000)
            .map(|p| p.1)
            .collect();
        let worst = *late.iter().max().unwrap() as f64 / 1000.0;
        assert!(
            worst <= clean_median + 20.0,
            "{worst} ms vs {clean_median} ms clean"
        );
        assert!(at(30.0) <= 20_000, "target back down: {}", at(30.0));
        // The spike itself costs its 10 packets at most.
        assert!(out.lost <= 12, "{} concealed", out.lost);
    }

    #[test]
    fn loss_bursts_are_concealed_without_adding_delay() {
        let out = simulate(500, 3_000, |k| (!(200..205).contains(&k)).then_some(0));
        // Two frames concealed; after that the sender counts as stopped, until it is back.
        assert!((2..=5).contains(&out.lost), "{} concealed", out.lost);
        let (_, p90) = out.delay_ms(250);
        assert!(p90 < 20.0, "{p90} ms");
    }

    #[test]
    fn timestamps_that_wrap_or_jump_and_a_restarted_sender_keep_playing() {
        // Timestamps wrap at 2^32 after packet 100; sequence numbers wrap too.
        let near = u32::MAX as u64 - 100 * 960 + 1;
        let out = simulate_with(400, 4_000, |k| Some((65_400 + k, near + k * 960, 0)));
        assert_eq!((out.played.len(), out.lost), (400, 0));
        // The sender pauses 2 s (DTX) and resumes: its timestamps jump with the time.
        let out = simulate_with(400, 4_000, |k| match k {
            100..200 => None,
            _ => Some((k.min(100) + k.saturating_sub(200), k * 960, 0)),
        });
        let (_, p90) = out.delay_ms(250);
        assert!(p90 < 20.0, "after a pause: {p90} ms");
        // It restarts: sequence and timestamp from new random bases, same SSRC.
        let out = simulate_with(400, 4_000, |k| {
            Some(if k < 200 {
                (k, k * 960, 0)
            } else {
                (30_000 + k, 0x7000_0000 + k * 960, 0)
            })
        });
        let (_, p90) = out.delay_ms(250);
        assert!(out.played.len() >= 395, "{} played", out.played.len());
        assert!(p90 < 20.0, "after a restart: {p90} ms");
    }

    /// A queue that played 50 packets on time, then saw one packet arrive 30 ms late (so its
    /// target rose to 30 ms) while later ones keep arriving on time; returns what the next
    /// ticks play for `hint` and a level per packet.
    fn after_a_late_packet(hint: PlayoutHint, level: impl Fn(u64) -> u8) -> Vec<Playout> {
        let mut q = JitterQueue::new(Mode::Adaptive);
        let mut buf = Vec::new();
        for k in 0..50u64 {
            q.push(
                header(9, k as u16),
                &payload(k as u16),
                Some(20),
                k * 20_000,
            );
            q.pop(&mut buf, k * 20_000 + 1_000, hint);
        }
        q.push(
            header(9, 50),
            &payload(50),
            Some(level(50)),
            50 * 20_000 + 30_000,
        );
        let mut kinds = Vec::new();
        for k in 51..100u64 {
            q.push(
                header(9, k as u16),
                &payload(k as u16),
                Some(level(k)),
                k * 20_000,
            );
            kinds.push(q.pop(&mut buf, k * 20_000 + 1_000, hint));
            if k == 51 {
                assert!(q.delay_state().target_us >= 29_000, "{:?}", q.delay_state());
            }
        }
        kinds
    }

    #[test]
    fn the_buffer_grows_at_a_quiet_moment_and_only_waits_so_long_for_one() {
        let speaking = PlayoutHint {
            quiet: false,
            quiet_level: 45,
        };
        let stretch_at = |kinds: &[Playout]| kinds.iter().position(|k| *k == Playout::Stretch);
        // Not speaking: at once.
        let quiet = after_a_late_packet(PlayoutHint::any(), |_| 20);
        assert_eq!(stretch_at(&quiet), Some(0), "{quiet:?}");
        // Speaking loud all along: it waits, then grows anyway.
        let loud = after_a_late_packet(speaking, |_| 20);
        let at = stretch_at(&loud).expect("grows in the end");
        assert!((20..=30).contains(&at), "after waiting {at} ticks");
        // Speaking, with a quiet frame (packet 62, played a tick behind its arrival): it grows
        // right there, the gap falling on the quiet frame.
        let pause = after_a_late_packet(speaking, |k| if k == 62 { 70 } else { 20 });
        let at = stretch_at(&pause).expect("grows");
        assert_eq!(
            pause[at + 1],
            Playout::Packet {
                audio_level: Some(70)
            },
            "{pause:?}"
        );
        assert!(at < 15, "{at}");
    }

    #[test]
    fn a_flood_beyond_the_rate_limit_is_dropped_and_counted() {
        let mut q = JitterQueue::new(Mode::Adaptive);
        // 1,000 packets within one second: the first 250 are taken.
        for k in 0..1000u16 {
            q.push(header(9, k), &payload(k), None, k as u64 * 1_000);
        }
        assert_eq!(q.stats.rate_drops, 750);
        assert_eq!(q.stats.received, MAX_PACKETS_PER_SECOND as u64);
        // The next second starts afresh.
        q.push(header(9, 1000), &payload(1000), None, 1_100_000);
        assert_eq!(q.stats.received, MAX_PACKETS_PER_SECOND as u64 + 1);
        assert!(
            q.len() <= (2 * MAX_TARGET_US / FRAME_US) as usize + 1,
            "bounded: {}",
            q.len()
        );
    }
}
