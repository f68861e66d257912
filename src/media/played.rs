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

#[cfg(test)]
mod tests {
    use crate::locks::OrderedMutex;
    use crate::media::jitter::{JitterQueue, Mode, PacketHeader};
    use crate::media::voice::{DecodeRule, Voice, VoiceFrame};

    /// A participant who is not speaking: its quiet packets are not decoded.
    const QUIET: DecodeRule = DecodeRule {
        threshold: 45,
        speaking: false,
        mix_all: false,
    };

    #[test]
    fn a_voice_keeps_every_packet_it_plays_decoded_or_not_and_nothing_for_a_loss() {
        // No pre-buffering: the queue holds all of them and plays at once.
        let queue = OrderedMutex::leaf("queue", JitterQueue::new(Mode::Fixed(0)));
        let header = |sequence: u16| PacketHeader {
            ssrc: 9,
            sequence,
            timestamp: sequence as u32 * 960,
        };
        let mut voice = Voice::new(48000).unwrap();
        let mut played = Vec::new();
        // Packets 0 and 1 quiet, 2 lost, 3 loud (decoded), 4 quiet; then nothing.
        let packets: [(u16, &[u8], u8); 4] = [
            (0, &[0xf8, 0xff, 0xfe], 90),
            (1, &[0xf8, 0xff, 0xfd], 90),
            (3, &[0xf8, 0xff, 0xfe], 20),
            (4, &[0xf8, 0xff, 0xfc], 90),
        ];
        for (sequence, payload, level) in packets {
            queue.lock().push(header(sequence), payload, Some(level), 0);
        }
        for _ in 0..6 {
            voice.played.start_tick(true);
            let frame = voice.next_frame(&queue, QUIET, 0);
            let now: Vec<Vec<u8>> = voice.played.iter().map(<[u8]>::to_vec).collect();
            played.push((frame, now));
        }
        let kinds: Vec<&str> = played
            .iter()
            .map(|(f, _)| match f {
                VoiceFrame::Audio { .. } => "audio",
                VoiceFrame::Quiet { .. } => "quiet",
                VoiceFrame::Nothing => "nothing",
            })
            .collect();
        assert_eq!(
            kinds,
            ["quiet", "quiet", "nothing", "audio", "quiet", "nothing"]
        );
        let packets: Vec<Vec<Vec<u8>>> = played.into_iter().map(|(_, p)| p).collect();
        assert_eq!(
            packets,
            [
                vec![vec![0xf8, 0xff, 0xfe]],
                vec![vec![0xf8, 0xff, 0xfd]],
                vec![],
                vec![vec![0xf8, 0xff, 0xfe]],
                vec![vec![0xf8, 0xff, 0xfc]],
                vec![],
            ]
        );
        // Not asked for: nothing kept.
        queue
            .lock()
            .push(header(5), &[0xf8, 0xff, 0xfe], Some(20), 0);
        voice.played.start_tick(false);
        voice.next_frame(&queue, QUIET, 0);
        assert_eq!(voice.played.iter().count(), 0);
    }
}
