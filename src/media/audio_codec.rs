//! Which codec a stream speaks: Opus (WebRTC's, at any room rate) or G.711 (PCMU or PCMA, at
//! 8 kHz: phones and SIP trunks). A participant uses one both ways; a forwarder sends one.

use crate::media::g711::Law;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    #[default]
    Opus,
    Pcmu,
    Pcma,
}

/// Opus's RTP clock runs at 48 kHz whatever the codec's rate (RFC 7587); G.711's at 8 kHz.
const OPUS_CLOCK: u32 = 48_000;
const G711_CLOCK: u32 = 8_000;

impl AudioCodec {
    /// `opus`, `pcmu` or `pcma`, in any case (as AudioBridge and SDP take them).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "opus" => Some(AudioCodec::Opus),
            "pcmu" => Some(AudioCodec::Pcmu),
            "pcma" => Some(AudioCodec::Pcma),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AudioCodec::Opus => "opus",
            AudioCodec::Pcmu => "pcmu",
            AudioCodec::Pcma => "pcma",
        }
    }

    /// The G.711 law, for PCMU and PCMA.
    pub fn law(self) -> Option<Law> {
        match self {
            AudioCodec::Opus => None,
            AudioCodec::Pcmu => Some(Law::Mu),
            AudioCodec::Pcma => Some(Law::A),
        }
    }

    /// RFC 3551's static payload types: 0 for PCMU, 8 for PCMA. Opus has none.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            AudioCodec::Opus => None,
            AudioCodec::Pcmu => Some(0),
            AudioCodec::Pcma => Some(8),
        }
    }

    /// The rate of the stream's RTP timestamps.
    pub fn rtp_clock(self) -> u32 {
        match self {
            AudioCodec::Opus => OPUS_CLOCK,
            AudioCodec::Pcmu | AudioCodec::Pcma => G711_CLOCK,
        }
    }

    /// RTP timestamp units in one 20 ms frame.
    pub fn frame_ticks(self) -> u32 {
        self.rtp_clock() / 50
    }

    /// A timestamp of this codec's clock in Opus's 48 kHz units, which the jitter queue counts
    /// in (the product wraps as the timestamp does, so differences stay right).
    pub fn timestamp_at_48k(self, timestamp: u32) -> u32 {
        timestamp.wrapping_mul(OPUS_CLOCK / self.rtp_clock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_payload_types_and_clocks() {
        assert_eq!(AudioCodec::parse("PCMU"), Some(AudioCodec::Pcmu));
        assert_eq!(AudioCodec::parse("opus"), Some(AudioCodec::Opus));
        assert_eq!(AudioCodec::parse("g722"), None);
        assert_eq!(AudioCodec::Pcma.static_payload_type(), Some(8));
        assert_eq!(AudioCodec::Pcmu.frame_ticks(), 160);
        assert_eq!(AudioCodec::Opus.frame_ticks(), 960);
        // A G.711 timestamp wraps at 2^32 like any; its 48 kHz image keeps differences exact.
        let before = u32::MAX - 79;
        let after = before.wrapping_add(160);
        let step = AudioCodec::Pcmu
            .timestamp_at_48k(after)
            .wrapping_sub(AudioCodec::Pcmu.timestamp_at_48k(before));
        assert_eq!(step, 960);
    }
}
