//! Who is speaking: one participant's speech gate, decided every 20 ms frame from the packet's
//! RFC 6464 level when the sender puts one in (browsers do), or from the decoded frame's
//! energy when it does not (SIP gateways). Both are on the RFC 6464 scale: -dBov, 0 loudest,
//! 127 digital silence.
//!
//! A participant becomes a speaker on the very frame that is at least as loud as the threshold
//! (that frame is mixed: no word loses its onset) and stays one for the hangover after its last
//! loud frame, so word endings, which fade below any threshold, and the short pauses between
//! words are mixed too. Everyone else is not mixed: the noise of open microphones stays out of
//! everyone's ear, and their packets need not even be decoded when they carry a level.

/// The room's gate settings (`speech_level`, `speech_hangover` in docs/API.md, section 2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpeechSettings {
    /// A frame at least this loud (this many dB below full scale, or less) is speech.
    pub threshold: u8,
    /// Frames a speaker stays one after its last loud frame.
    pub hangover_frames: u32,
}

/// -45 dBov: speech through a browser's or phone's gain control sits at -15 to -35 dBov and
/// its soft onsets near -40, while a quiet room heard by an open microphone is -50 to -70.
pub const DEFAULT_THRESHOLD: u8 = 45;
/// 400 ms: longer than the gaps between words (mostly under 250 ms) and a word's fading tail,
/// short enough that a speaker who stops is out of the mix (with its noise) within half a
/// second.
pub const DEFAULT_HANGOVER_MS: u32 = 400;

impl Default for SpeechSettings {
    fn default() -> Self {
        SpeechSettings {
            threshold: DEFAULT_THRESHOLD,
            hangover_frames: DEFAULT_HANGOVER_MS / 20,
        }
    }
}

/// Milliseconds to whole 20 ms frames (rounded up: a hangover is never shorter than asked).
pub fn frames_of_ms(ms: u32) -> u32 {
    ms.div_ceil(20)
}

/// One participant's gate.
#[derive(Clone, Debug, Default)]
pub struct SpeechGate {
    /// Frames of hangover left; > 0 while speaking.
    hangover_left: u32,
    /// The loudest recent level, decaying, for choosing the loudest speakers.
    loudness: f32,
}

impl SpeechGate {
    /// Speaking as of the last frame (a loud frame or its hangover).
    pub fn is_speaking(&self) -> bool {
        self.hangover_left > 0
    }

    /// How loud the participant has been lately, in dB below full scale (lower is louder);
    /// 127 when silent.
    pub fn loudness(&self) -> f32 {
        127.0 - self.loudness
    }

    /// Counts one frame's level (`None`: nothing arrived); returns whether the participant is
    /// speaking in this frame.
    pub fn update(&mut self, level: Option<u8>, settings: &SpeechSettings) -> bool {
        let level = level.unwrap_or(127).min(127);
        if level <= settings.threshold {
            self.hangover_left = settings.hangover_frames.max(1);
        } else {
            self.hangover_left = self.hangover_left.saturating_sub(1);
        }
        // Peak-hold with a slow decay (about 10 dB a second) so a speaker between two words
        // keeps its place among the loudest.
        let strength = 127.0 - level as f32;
        self.loudness = (self.loudness - 0.2).max(strength).max(0.0);
        self.is_speaking()
    }

    /// Starts afresh (a new room, a reset decoder).
    pub fn reset(&mut self) {
        *self = SpeechGate::default();
    }
}

/// The RFC 6464 level of a frame of samples: its RMS in dB below full scale, 0..=127.
pub fn frame_level(pcm: &[i16]) -> u8 {
    if pcm.is_empty() {
        return 127;
    }
    let energy: f64 = pcm.iter().map(|&s| (s as f64) * (s as f64)).sum();
    let rms = (energy / pcm.len() as f64).sqrt() / 32768.0;
    if rms <= 0.0 {
        return 127;
    }
    (-20.0 * rms.log10()).round().clamp(0.0, 127.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::test_signals::tone;

    #[test]
    fn the_level_of_a_frame_is_its_rms_below_full_scale() {
        // A sine of amplitude A has an RMS of A/sqrt(2): 0.5 full scale is -9 dBov.
        assert_eq!(frame_level(&tone(48000, 440.0, 16384.0, 0, 960)), 9);
        assert_eq!(frame_level(&tone(48000, 440.0, 164.0, 0, 960)), 49);
        assert_eq!(frame_level(&[0; 960]), 127);
        assert_eq!(frame_level(&[i16::MIN; 960]), 0);
        assert_eq!(frame_level(&[]), 127);
    }

    #[test]
    fn a_speaker_starts_on_the_first_loud_frame_and_stops_after_the_hangover() {
        let settings = SpeechSettings {
            threshold: 45,
            hangover_frames: frames_of_ms(400),
        };
        assert_eq!(settings.hangover_frames, 20);
        let mut gate = SpeechGate::default();
        assert!(!gate.update(Some(60), &settings), "noise is not speech");
        assert!(!gate.update(None, &settings));
        assert!(gate.update(Some(44), &settings), "the onset frame counts");
        assert!(
            gate.update(Some(45), &settings),
            "at the threshold is speech"
        );
        // 19 quiet frames are still within the hangover; the 20th ends it.
        for frame in 0..19 {
            assert!(gate.update(Some(70), &settings), "hangover frame {frame}");
        }
        assert!(!gate.update(Some(70), &settings), "over after 400 ms");
        assert!(gate.update(Some(20), &settings), "speaking again");
        gate.reset();
        assert!(!gate.is_speaking());
    }

    #[test]
    fn loudness_holds_the_recent_peak_and_decays_slowly() {
        let settings = SpeechSettings::default();
        let mut loud = SpeechGate::default();
        let mut soft = SpeechGate::default();
        loud.update(Some(20), &settings);
        soft.update(Some(40), &settings);
        for _ in 0..10 {
            loud.update(Some(90), &settings);
            soft.update(Some(38), &settings);
        }
        assert!(
            loud.loudness() < soft.loudness(),
            "a pause of 200 ms keeps the louder first"
        );
        assert!((loud.loudness() - 22.0).abs() < 0.01);
    }
}
