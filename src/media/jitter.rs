//! The per-participant jitter queue: packets reordered by sequence number, pre-buffered before
//! playout starts, and told apart as played, lost (with or without a successor that can carry
//! Opus FEC for it) or simply not there yet.
//!
//! Playout runs in real time: every tick consumes one slot. A packet missing at its slot is
//! concealed and its slot is gone (it is late if it comes after), so a burst of loss never adds
//! latency. A sender silent for longer than the pre-buffer stalls the queue: playout stops and
//! starts afresh, pre-buffered, from the next packet. With a pre-buffer of 0 nothing is held
//! back, late packets are played too, and an empty queue is simply silence.
//!
//! Janus's RTP threads push; the mixer pulls one 20 ms slot per tick. Payload buffers are
//! recycled between the two so the steady state allocates nothing.

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

pub struct QueuedPacket {
    sequence: u64,
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
    /// Still pre-buffering, or the queue ran dry: nothing to play.
    Nothing,
}

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    pub late: u64,
    pub duplicates: u64,
    pub overflow_drops: u64,
    pub lost: u64,
    pub underruns: u64,
}

pub struct JitterQueue {
    prebuffer: usize,
    packets: VecDeque<QueuedPacket>,
    spare: Vec<Vec<u8>>,
    ssrc: Option<u32>,
    /// Highest extended sequence number seen, the reference for extending 16-bit ones.
    highest: Option<u64>,
    /// Extended sequence number of the next slot to play.
    next: Option<u64>,
    prebuffering: bool,
    /// Consecutive slots with nothing queued, concealed so far.
    empty_slots: u32,
    pub stats: JitterStats,
}

impl JitterQueue {
    pub fn new(prebuffer: u32) -> Self {
        JitterQueue {
            prebuffer: prebuffer as usize,
            packets: VecDeque::new(),
            spare: Vec::new(),
            ssrc: None,
            highest: None,
            next: None,
            prebuffering: prebuffer > 0,
            empty_slots: 0,
            stats: JitterStats::default(),
        }
    }

    pub fn prebuffer(&self) -> u32 {
        self.prebuffer as u32
    }

    /// A new pre-buffer size takes effect at once; packets already queued stay.
    pub fn set_prebuffer(&mut self, prebuffer: u32) {
        self.prebuffer = prebuffer as usize;
        if self.prebuffer == 0 {
            self.prebuffering = false;
        }
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
        self.prebuffering = self.prebuffer > 0;
    }

    /// Queues one packet.
    pub fn push(&mut self, ssrc: u32, sequence: u16, payload: &[u8], audio_level: Option<u8>) {
        if self.ssrc != Some(ssrc) {
            self.reset();
            self.ssrc = Some(ssrc);
        }
        self.stats.received += 1;
        let extended = self.extend(sequence);
        if let Some(next) = self.next {
            if extended < next {
                if next - extended > RESTART_DISTANCE {
                    // The sender started over with the same SSRC.
                    self.reset();
                    self.ssrc = Some(ssrc);
                    return self.push(ssrc, sequence, payload, audio_level);
                }
                if self.prebuffer > 0 {
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
                payload: buffer,
                audio_level,
            },
        );
        let limit = if self.prebuffer > 0 {
            2 * self.prebuffer
        } else {
            MAX_UNBUFFERED_QUEUE
        };
        {
            while self.packets.len() > limit {
                let oldest = self.packets.pop_front().expect("queue is not empty");
                self.stats.overflow_drops += 1;
                self.recycle(oldest.payload);
                self.next = self.packets.front().map(|p| p.sequence);
            }
        }
    }

    /// Plays one slot. On `Packet` and `LostBeforeNext` the payload is in `buffer`.
    pub fn pop(&mut self, buffer: &mut Vec<u8>) -> Playout {
        if self.prebuffering {
            if self.packets.len() < self.prebuffer.max(1) {
                return Playout::Nothing;
            }
            // Playout (re)starts at the oldest packet queued.
            self.prebuffering = false;
            self.next = None;
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
                return self.pop(buffer);
            }
            self.stats.lost += 1;
            self.next = Some(next + 1);
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
            self.next = Some(next + 1);
        }
        let old = std::mem::replace(buffer, head.payload);
        self.recycle(old);
        Playout::Packet {
            audio_level: head.audio_level,
        }
    }

    /// A slot came with nothing queued for it.
    fn empty_slot(&mut self) -> Playout {
        if self.prebuffer == 0 || self.next.is_none() {
            return Playout::Nothing;
        }
        self.empty_slots += 1;
        if self.empty_slots > (self.prebuffer as u32).max(MIN_STALL_SLOTS) {
            // The sender stopped (or the network did): start afresh when it comes back.
            self.stats.underruns += 1;
            self.prebuffering = true;
            self.next = None;
            self.empty_slots = 0;
            return Playout::Nothing;
        }
        self.stats.lost += 1;
        self.next = self.next.map(|n| n + 1);
        Playout::Lost
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

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(seq: u16) -> Vec<u8> {
        seq.to_be_bytes().to_vec()
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
                    q.push(7, s, &payload(s), None);
                }
                match q.pop(&mut buf) {
                    Playout::Packet { .. } => u16::from_be_bytes([buf[0], buf[1]]).to_string(),
                    Playout::LostBeforeNext => format!("L{}", u16::from_be_bytes([buf[0], buf[1]])),
                    Playout::Lost => "C".into(),
                    Playout::Nothing => "-".into(),
                }
            })
            .collect()
    }

    #[test]
    fn in_order_packets_play_after_the_prebuffer_fills() {
        let mut q = JitterQueue::new(3);
        let out = timeline(&mut q, &[&[10], &[11], &[12], &[13], &[14], &[15]]);
        assert_eq!(out, ["-", "-", "10", "11", "12", "13"]);
        assert_eq!(
            q.len(),
            2,
            "three slots of latency: two queued and one playing"
        );
    }

    #[test]
    fn reordered_packets_come_out_in_order() {
        let mut q = JitterQueue::new(3);
        let out = timeline(&mut q, &[&[1], &[0], &[3, 2], &[], &[5, 4], &[], &[]]);
        assert_eq!(out, ["-", "-", "0", "1", "2", "3", "4"]);
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut q = JitterQueue::new(2);
        let out = timeline(&mut q, &[&[1, 1], &[2, 1], &[3, 2], &[4, 3], &[]]);
        assert_eq!(out, ["-", "1", "2", "3", "4"]);
        // 1 twice while queued, then copies of 2 and 3 after they played.
        assert_eq!(q.stats.duplicates + q.stats.late, 4);
    }

    #[test]
    fn a_single_loss_offers_the_successor_for_fec() {
        let mut q = JitterQueue::new(2);
        let out = timeline(&mut q, &[&[1], &[2], &[], &[4], &[5], &[6]]);
        assert_eq!(out, ["-", "1", "2", "L4", "4", "5"]);
        assert_eq!(q.stats.lost, 1);
    }

    #[test]
    fn a_burst_loss_is_concealed_slot_by_slot_without_adding_latency() {
        let mut q = JitterQueue::new(3);
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
        let mut q = JitterQueue::new(2);
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
        let mut q = JitterQueue::new(1);
        let out = timeline(&mut q, &[&[1], &[500], &[501]]);
        assert_eq!(out, ["1", "500", "501"]);
    }

    #[test]
    fn sequence_numbers_wrap_at_65535() {
        let mut q = JitterQueue::new(3);
        let out = timeline(&mut q, &[&[65534], &[0], &[65535], &[1], &[3, 2], &[4]]);
        assert_eq!(out, ["-", "-", "65534", "65535", "0", "1"]);
        assert_eq!(q.stats.lost, 0);
    }

    #[test]
    fn late_packets_are_dropped_unless_prebuffering_is_off() {
        let mut q = JitterQueue::new(2);
        let out = timeline(&mut q, &[&[10], &[11], &[], &[], &[12, 13], &[14]]);
        // 12 missed its slot (concealed) and is dropped when it comes.
        assert_eq!(out, ["-", "10", "11", "C", "13", "14"]);
        assert_eq!(q.stats.late, 1);

        let mut q = JitterQueue::new(0);
        let out = timeline(&mut q, &[&[10], &[], &[12], &[11], &[13]]);
        // No pre-buffering: plays at once, an empty slot is just silence, and 11 arriving
        // after 12's FEC slot is still played.
        assert_eq!(out, ["10", "-", "L12", "11", "12"]);
        assert_eq!(q.stats.late, 0);
    }

    #[test]
    fn a_queue_past_twice_its_size_drops_its_oldest() {
        let mut q = JitterQueue::new(2);
        let out = timeline(&mut q, &[&[1, 2, 3, 4, 5, 6], &[7], &[8]]);
        assert_eq!(q.stats.overflow_drops, 2);
        // Dropped packets are not reported as lost.
        assert_eq!(out, ["3", "4", "5"]);
        assert_eq!(q.stats.lost, 0);
    }

    #[test]
    fn a_new_ssrc_or_a_restart_starts_afresh() {
        let mut q = JitterQueue::new(1);
        assert_eq!(timeline(&mut q, &[&[100], &[101]]), ["100", "101"]);
        q.push(8, 40000, &payload(40000), None);
        assert_eq!(timeline(&mut q, &[&[]]), ["40000"]);
        // Same SSRC, numbering restarted far behind.
        q.push(8, 20000, &payload(20000), None);
        assert_eq!(timeline(&mut q, &[&[]]), ["20000"]);
    }

    #[test]
    fn buffers_are_recycled() {
        let mut q = JitterQueue::new(1);
        let mut buf = Vec::with_capacity(64);
        for s in 0..100u16 {
            q.push(1, s, &[1, 2, 3], Some(127));
            assert_eq!(
                q.pop(&mut buf),
                Playout::Packet {
                    audio_level: Some(127)
                }
            );
        }
        assert!(q.spare.len() <= MAX_SPARE_BUFFERS);
        assert_eq!(buf, [1, 2, 3]);
    }
}
