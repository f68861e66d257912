//! Talking detection from RFC 6464 audio levels, with AudioBridge's parameters: the average
//! level over `audio_active_packets` packets compared against `audio_level_average`
//! (both in -dBov, so lower means louder).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TalkSettings {
    pub active_packets: u32,
    pub level_average: u8,
}

impl Default for TalkSettings {
    fn default() -> Self {
        TalkSettings {
            active_packets: 100,
            level_average: 25,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct TalkDetector {
    sum: u32,
    count: u32,
    talking: bool,
}

impl TalkDetector {
    pub fn talking(&self) -> bool {
        self.talking
    }

    /// Counts one packet's level; returns the new state when it changes.
    pub fn observe(&mut self, level: u8, settings: TalkSettings) -> Option<bool> {
        self.sum += level.min(127) as u32;
        self.count += 1;
        if self.count < settings.active_packets.max(1) {
            return None;
        }
        let average = self.sum / self.count;
        self.sum = 0;
        self.count = 0;
        let talking = average < settings.level_average as u32;
        (talking != self.talking).then(|| {
            self.talking = talking;
            talking
        })
    }

    pub fn reset(&mut self) -> Option<bool> {
        let was = self.talking;
        *self = TalkDetector::default();
        was.then_some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn talking_starts_and_stops_on_the_window_average() {
        let settings = TalkSettings {
            active_packets: 10,
            level_average: 25,
        };
        let mut d = TalkDetector::default();
        let changes: Vec<_> = (0..10).filter_map(|_| d.observe(10, settings)).collect();
        assert_eq!(changes, [true]);
        let changes: Vec<_> = (0..10).filter_map(|_| d.observe(20, settings)).collect();
        assert!(changes.is_empty(), "still talking: no new event");
        let changes: Vec<_> = (0..10).filter_map(|_| d.observe(127, settings)).collect();
        assert_eq!(changes, [false]);
        d.observe(0, settings);
        assert_eq!(d.reset(), None, "a partial window has not started talking");
    }
}
