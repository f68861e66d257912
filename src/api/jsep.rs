//! The media side of an SDP offer as the C glue reads it with Janus's sdp-utils, and what the
//! answer must say. The glue parses and writes SDP; Rust decides.

use crate::api::errors::{ApiError, ErrorCode};
use crate::conference::session::NegotiatedMedia;
use crate::media::audio_codec::AudioCodec;

/// What the glue found in a request's JSEP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OfferInput {
    /// The request carried no JSEP.
    None,
    Offer(Offer),
    /// The JSEP could not be used; the reason says why (493).
    Invalid(String),
}

/// An offer's audio parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// The payload type of each codec the offer has (first audio m-line).
    pub opus_payload_type: Option<u8>,
    pub pcmu_payload_type: Option<u8>,
    pub pcma_payload_type: Option<u8>,
    /// RFC 6464 extension id, when offered.
    pub audio_level_ext: Option<u8>,
    /// `useinbandfec=1` was offered: the peer decodes our FEC, and sends its own.
    pub fec: bool,
}

/// What the answer the glue writes must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub codec: AudioCodec,
    pub payload_type: u8,
    pub audio_level_ext: Option<u8>,
    pub fec: bool,
    pub sampling_rate: u32,
}

impl OfferInput {
    /// Turns an unusable JSEP into the 493 the request fails with.
    pub fn check(&self) -> Result<Option<Offer>, ApiError> {
        match self {
            OfferInput::None => Ok(None),
            OfferInput::Offer(offer) => Ok(Some(*offer)),
            OfferInput::Invalid(reason) => {
                Err(ApiError::new(ErrorCode::InvalidSdp, reason.clone()))
            }
        }
    }
}

impl Offer {
    fn payload_type(&self, codec: AudioCodec) -> Option<u8> {
        match codec {
            AudioCodec::Opus => self.opus_payload_type,
            AudioCodec::Pcmu => self.pcmu_payload_type,
            AudioCodec::Pcma => self.pcma_payload_type,
        }
    }

    /// The codec the participant gets: `wanted` (`codec` on `join`) when the offer has it,
    /// else Opus, else PCMU, else PCMA (493 when the offer has none of what is needed).
    pub fn negotiate(&self, wanted: Option<AudioCodec>) -> Result<NegotiatedMedia, ApiError> {
        let choice = match wanted {
            Some(codec) => self
                .payload_type(codec)
                .map(|pt| (codec, pt))
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidSdp,
                        format!(
                            "The SDP offer has no {} audio",
                            codec.name().to_ascii_uppercase().replace("OPUS", "Opus")
                        ),
                    )
                })?,
            None => [AudioCodec::Opus, AudioCodec::Pcmu, AudioCodec::Pcma]
                .into_iter()
                .find_map(|codec| self.payload_type(codec).map(|pt| (codec, pt)))
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidSdp,
                        "The SDP offer has no Opus, PCMU or PCMA audio",
                    )
                })?,
        };
        Ok(NegotiatedMedia {
            codec: choice.0,
            payload_type: choice.1,
            audio_level_ext: self.audio_level_ext,
            fec: choice.0 == AudioCodec::Opus && self.fec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codec_is_the_one_asked_for_else_opus_else_g711() {
        let browser = Offer {
            opus_payload_type: Some(111),
            pcmu_payload_type: Some(0),
            pcma_payload_type: Some(8),
            fec: true,
            ..Offer::default()
        };
        let phone = Offer {
            pcma_payload_type: Some(8),
            ..Offer::default()
        };
        let n = browser.negotiate(None).unwrap();
        assert_eq!(
            (n.codec, n.payload_type, n.fec),
            (AudioCodec::Opus, 111, true)
        );
        let n = browser.negotiate(Some(AudioCodec::Pcmu)).unwrap();
        assert_eq!(
            (n.codec, n.payload_type, n.fec),
            (AudioCodec::Pcmu, 0, false)
        );
        let n = phone.negotiate(None).unwrap();
        assert_eq!((n.codec, n.payload_type), (AudioCodec::Pcma, 8));
        let e = phone.negotiate(Some(AudioCodec::Pcmu)).unwrap_err();
        assert_eq!(
            (e.code, e.reason.as_str()),
            (ErrorCode::InvalidSdp, "The SDP offer has no PCMU audio")
        );
        let e = phone.negotiate(Some(AudioCodec::Opus)).unwrap_err();
        assert_eq!(e.reason, "The SDP offer has no Opus audio");
        let e = Offer::default().negotiate(None).unwrap_err();
        assert_eq!(e.reason, "The SDP offer has no Opus, PCMU or PCMA audio");
    }
}
