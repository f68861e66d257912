//! A room's RTP forwarder (`rtp_forward`): the full mix to a host and port, named by a
//! `stream_id`. To the mixer it is a sink of the shared stream of its encoding: an Opus
//! forwarder takes the payload of the default profile (complexity 4, libopus's bitrate, no FEC:
//! what plain-RTP listeners and browsers without FEC get), so it costs no encode when such a
//! listener is in the room, and one encode per tick for all of the room's Opus forwarders when
//! none is.

use crate::media::codec::EncoderProfile;
use crate::media::downlink::StreamKey;
use crate::media::rtp_forwarder::RtpForwarder;
use crate::mixer::tick::ForwardSink;
use serde_json::{Value, json};

pub struct Forwarder {
    pub stream_id: u32,
    pub sender: RtpForwarder,
}

impl Forwarder {
    /// As `listforwarders` (and `list`, for operators) shows it.
    pub fn describe(&self) -> Value {
        let settings = &self.sender.settings;
        let (sent, failed) = self.sender.counts();
        let mut v = json!({
            "stream_id": self.stream_id,
            "ip": settings.destination.ip().to_string(),
            "port": settings.destination.port(),
            "ssrc": settings.ssrc,
            "codec": settings.codec.name(),
            "ptype": settings.payload_type,
            "packets_sent": sent,
            "send_errors": failed,
        });
        if let Some((suite, _)) = settings.srtp {
            v["srtp"] = json!(true);
            v["srtp_suite"] = json!(suite.bits());
        }
        v
    }
}

impl ForwardSink for Forwarder {
    fn key(&self) -> StreamKey {
        StreamKey::of(self.sender.settings.codec, EncoderProfile::default())
    }

    fn forward(&self, payload: &[u8]) {
        self.sender.send(payload);
    }
}
