//! When each participant spoke, on the room recording's clock: the speech gate that decides who
//! is mixed (`media::speech`), frame by frame, turned into segments for the job file.
//!
//! A segment opens on the frame that opens the gate and ends with the last frame loud enough to
//! be speech: a pause shorter than the gate's hangover does not split it (so a sentence is one
//! segment, not one per word), but the hangover itself, which only keeps word endings in the
//! mix, is not counted as speaking. It is the gate, not the mix: a speaker left out by
//! `max_speakers` still spoke.

use serde_json::{Value, json};
use std::collections::HashMap;

/// Milliseconds in a frame of the recording's clock (one mixer tick).
pub const FRAME_MS: u64 = 20;

/// One participant speaking, in frames of the recording: `start..end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpeechSegment {
    pub user_id: u64,
    pub start_frame: u64,
    pub end_frame: u64,
}

impl SpeechSegment {
    /// `{"userid", "start_ms", "end_ms"}`, milliseconds from the start of the recording.
    pub fn to_json(&self) -> Value {
        json!({
            "userid": self.user_id,
            "start_ms": self.start_frame * FRAME_MS,
            "end_ms": self.end_frame * FRAME_MS,
        })
    }
}

/// A segment still going on: from `start` to the end of its last loud frame so far.
struct Open {
    user_id: u64,
    start: u64,
    end: u64,
}

/// One recording's segments, its participants known by the caller's keys.
#[derive(Default)]
pub struct SpeechTimeline {
    open: HashMap<u64, Open>,
    done: Vec<SpeechSegment>,
}

impl SpeechTimeline {
    /// One frame of one participant: whether its gate is open, and whether the frame itself was
    /// loud enough to open it.
    pub fn observe(&mut self, key: u64, user_id: u64, frame: u64, speaking: bool, loud: bool) {
        let end = if loud { frame + 1 } else { frame };
        match (self.open.get_mut(&key), speaking) {
            (Some(open), true) if loud => open.end = end,
            (Some(_), true) => {}
            (Some(_), false) => self.close(key),
            (None, true) => {
                self.open.insert(
                    key,
                    Open {
                        user_id,
                        start: frame,
                        end,
                    },
                );
            }
            (None, false) => {}
        }
    }

    /// The participant left (or the recording ends): its segment, if any, ends.
    pub fn close(&mut self, key: u64) {
        if let Some(open) = self.open.remove(&key) {
            if open.end > open.start {
                self.done.push(SpeechSegment {
                    user_id: open.user_id,
                    start_frame: open.start,
                    end_frame: open.end,
                });
            }
        }
    }

    /// Every segment, those still open ended, in order of their start.
    pub fn finish(&mut self) -> Vec<SpeechSegment> {
        let keys: Vec<u64> = self.open.keys().copied().collect();
        for key in keys {
            self.close(key);
        }
        let mut segments = std::mem::take(&mut self.done);
        segments.sort_by_key(|s| (s.start_frame, s.user_id));
        segments
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::speech::{SpeechGate, SpeechSettings};

    /// Runs a real gate over per-frame levels (`None`: nothing arrived) and returns the
    /// segments, as the room does.
    fn segments(levels: &[Option<u8>], settings: &SpeechSettings) -> Vec<(u64, u64)> {
        let mut gate = SpeechGate::default();
        let mut timeline = SpeechTimeline::default();
        for (frame, &level) in levels.iter().enumerate() {
            let speaking = gate.update(level, settings);
            let loud = level.is_some_and(|l| l <= settings.threshold);
            timeline.observe(7, 42, frame as u64, speaking, loud);
        }
        timeline
            .finish()
            .iter()
            .map(|s| (s.start_frame, s.end_frame))
            .collect()
    }

    fn frames(spec: &[(usize, Option<u8>)]) -> Vec<Option<u8>> {
        spec.iter()
            .flat_map(|&(n, level)| std::iter::repeat_n(level, n))
            .collect()
    }

    #[test]
    fn a_turn_is_one_segment_from_its_first_to_its_last_loud_frame() {
        let settings = SpeechSettings {
            threshold: 45,
            hangover_frames: 20,
        };
        // Noise, a word, a 200 ms pause, a word, then quiet well past the hangover.
        let levels = frames(&[
            (10, Some(60)),
            (15, Some(30)),
            (10, Some(70)),
            (15, Some(30)),
            (40, Some(70)),
        ]);
        assert_eq!(segments(&levels, &settings), [(10, 50)]);
        // A pause longer than the hangover splits the turn; silence without packets is quiet.
        let levels = frames(&[(5, Some(30)), (25, None), (5, Some(30)), (3, Some(60))]);
        assert_eq!(segments(&levels, &settings), [(0, 5), (30, 35)]);
    }

    #[test]
    fn overlapping_speakers_each_have_their_segment_in_start_order_with_their_userid() {
        let mut timeline = SpeechTimeline::default();
        for frame in 0..100 {
            timeline.observe(1, 11, frame, (10..60).contains(&frame), true);
            timeline.observe(2, 22, frame, (40..90).contains(&frame), true);
        }
        // A third starts and leaves while speaking: closed where its last loud frame ended.
        timeline.observe(3, 33, 95, true, true);
        timeline.close(3);
        timeline.observe(3, 33, 96, false, false);
        let json: Vec<Value> = timeline.finish().iter().map(|s| s.to_json()).collect();
        assert_eq!(
            json,
            [
                json!({"userid": 11, "start_ms": 200, "end_ms": 1200}),
                json!({"userid": 22, "start_ms": 800, "end_ms": 1800}),
                json!({"userid": 33, "start_ms": 1900, "end_ms": 1920}),
            ]
        );
    }

    #[test]
    fn a_segment_still_open_at_the_end_is_ended_and_one_never_loud_is_not_kept() {
        let mut timeline = SpeechTimeline::default();
        timeline.observe(1, 5, 3, true, true);
        timeline.observe(1, 5, 4, true, false);
        // A gate found open without a loud frame (its hangover from before this recording).
        timeline.observe(2, 6, 3, true, false);
        assert_eq!(
            timeline.finish(),
            [SpeechSegment {
                user_id: 5,
                start_frame: 3,
                end_frame: 4
            }]
        );
        assert!(timeline.finish().is_empty(), "finished once");
    }
}
