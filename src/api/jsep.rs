//! The media side of an SDP offer as the C glue reads it with Janus's sdp-utils, and what the
//! answer must say. The glue parses and writes SDP; Rust decides.

use crate::api::errors::{ApiError, ErrorCode};
use crate::conference::session::NegotiatedMedia;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    pub opus_payload_type: u8,
    /// RFC 6464 extension id, when offered.
    pub audio_level_ext: Option<u8>,
    /// `useinbandfec=1` was offered: the peer decodes our FEC, and sends its own.
    pub fec: bool,
}

/// What the answer the glue writes must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
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

impl From<Offer> for NegotiatedMedia {
    fn from(offer: Offer) -> Self {
        NegotiatedMedia {
            opus_payload_type: offer.opus_payload_type,
            audio_level_ext: offer.audio_level_ext,
            fec: offer.fec,
        }
    }
}
