//! Which members are mixed in a tick: those who speak (their speech gate is open), or everyone
//! when the room mixes all as AudioBridge does; with the gate, at most `max_speakers` of them,
//! the loudest, and those already mixed keep their place against a newcomer who is not clearly
//! louder, so nobody flickers in and out of the mix.

use crate::media::speech::SpeechSettings;

/// How a room chooses whom it mixes (docs/API.md, section 2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MixPolicy {
    pub speech: SpeechSettings,
    /// Most members mixed at once.
    pub max_speakers: usize,
    /// Mix every member who is set up and not muted, whether speaking or not (no gate, no
    /// cap): AudioBridge's way.
    pub mix_all: bool,
}

/// 4: beyond three or four voices at once a conversation is noise, and the cap bounds a room's
/// encoding to `max_speakers + 1` encodes per tick however many talk over each other.
pub const DEFAULT_MAX_SPEAKERS: usize = 4;

impl Default for MixPolicy {
    fn default() -> Self {
        MixPolicy {
            speech: SpeechSettings::default(),
            max_speakers: DEFAULT_MAX_SPEAKERS,
            mix_all: false,
        }
    }
}

/// How much louder (dB) a newcomer must be to push out a member already mixed.
const INCUMBENT_ADVANTAGE: f32 = 6.0;

/// One member who could be mixed this tick.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    pub index: usize,
    /// Recent loudness in dB below full scale (lower is louder).
    pub loudness: f32,
    /// Mixed in the previous tick.
    pub incumbent: bool,
}

/// Keeps the `max` loudest of `candidates` (in place), incumbents favoured.
pub fn choose(candidates: &mut Vec<Candidate>, max: usize) {
    if candidates.len() <= max {
        return;
    }
    let rank = |c: &Candidate| {
        c.loudness
            - if c.incumbent {
                INCUMBENT_ADVANTAGE
            } else {
                0.0
            }
    };
    candidates.sort_by(|a, b| rank(a).total_cmp(&rank(b)).then(a.index.cmp(&b.index)));
    candidates.truncate(max);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(index: usize, loudness: f32, incumbent: bool) -> Candidate {
        Candidate {
            index,
            loudness,
            incumbent,
        }
    }

    fn chosen(mut candidates: Vec<Candidate>, max: usize) -> Vec<usize> {
        choose(&mut candidates, max);
        let mut indexes: Vec<usize> = candidates.iter().map(|c| c.index).collect();
        indexes.sort();
        indexes
    }

    #[test]
    fn the_loudest_win_and_incumbents_keep_their_place_against_a_slightly_louder_voice() {
        let all = vec![
            candidate(0, 30.0, false),
            candidate(1, 20.0, false),
            candidate(2, 40.0, false),
        ];
        assert_eq!(chosen(all.clone(), 5), [0, 1, 2], "room for everyone");
        assert_eq!(chosen(all, 2), [0, 1], "the two loudest");
        let with_incumbent = vec![
            candidate(0, 30.0, false),
            candidate(1, 20.0, false),
            candidate(2, 34.0, true),
        ];
        assert_eq!(
            chosen(with_incumbent, 2),
            [1, 2],
            "4 dB louder is not enough"
        );
        let clearly_louder = vec![candidate(0, 25.0, false), candidate(2, 34.0, true)];
        assert_eq!(chosen(clearly_louder, 1), [0], "9 dB louder is");
    }
}
