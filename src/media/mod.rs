//! Media: what one stream of audio needs, knowing nothing of rooms or Janus. RTP packets in and
//! out, the jitter queue that orders them, the decoding of one participant's voice (uplink),
//! the encoding of what one listener hears (downlink), and the signal tools both use.
//!
//! Lower layers: `locks`, `log`. Nothing here names `archive`, `mixer`, `conference`, `api`
//! or `ffi`.

pub mod announcement_file;
pub mod announcement_reader;
pub mod audio_codec;
pub mod clock;
pub mod codec;
pub mod delay;
pub mod downlink;
pub mod encoder;
pub mod g711;
pub mod jitter;
pub mod limiter;
pub mod opus_vad;
pub mod plain_rtp;
pub mod played;
pub mod resample;
pub mod rtp;
pub mod rtp_forwarder;
pub mod silence;
pub mod speech;
pub mod srtp;
pub mod talk;
pub mod voice;
pub mod voice_decoder;
