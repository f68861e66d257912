//! The Opus packets a participant's voice began to play in one tick, decoded or not: exactly
//! what they sent for that moment, for their own track of the room's recording. Kept only when
//! asked for, in buffers reused from tick to tick.

#[derive(Default)]
pub struct PlayedPackets {
    keep: bool,
    bytes: Vec<u8>,
    /// Where each packet ends in `bytes`.
    ends: Vec<usize>,
}

impl PlayedPackets {
    /// A new tick: the last one's packets are forgotten, and this one's kept only if `keep`.
    pub fn start_tick(&mut self, keep: bool) {
        self.keep = keep;
        self.bytes.clear();
        self.ends.clear();
    }

    /// A packet began to play.
    pub fn push(&mut self, packet: &[u8]) {
        if self.keep {
            self.bytes.extend_from_slice(packet);
            self.ends.push(self.bytes.len());
        }
    }

    /// The packets of this tick, in the order they played (two for 10 ms packets).
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.bytes[start..end])
    }
}
