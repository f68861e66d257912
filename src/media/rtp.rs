//! RTP (RFC 3550) as the plugin needs it: parsing untrusted packets without panicking, reading
//! the RFC 6464 audio level from RFC 8285 header extensions, and writing outgoing headers.

use crate::media::jitter::PacketHeader;

pub const RTP_HEADER_LEN: usize = 12;

/// RFC 6464 level meaning digital silence (-127 dBov).
pub const SILENT_AUDIO_LEVEL: u8 = 127;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
    /// RFC 6464 level (0 loudest .. 127 silence), when the extension was found.
    pub audio_level: Option<u8>,
}

impl RtpPacket<'_> {
    /// What the jitter queue needs of the header.
    pub fn header(&self) -> PacketHeader {
        PacketHeader {
            ssrc: self.ssrc,
            sequence: self.sequence,
            timestamp: self.timestamp,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtpError {
    TooShort,
    NotVersion2,
    BadLength,
    Rtcp,
}

/// Parses a packet; `audio_level_id` is the negotiated RFC 6464 extension id, if any.
pub fn parse(buf: &[u8], audio_level_id: Option<u8>) -> Result<RtpPacket<'_>, RtpError> {
    if buf.len() < RTP_HEADER_LEN {
        return Err(RtpError::TooShort);
    }
    if buf[0] >> 6 != 2 {
        return Err(RtpError::NotVersion2);
    }
    // RTCP packet types 200..=204 (RFC 5761 demultiplexing) land on payload types 72..=76.
    if (200..=204).contains(&buf[1]) {
        return Err(RtpError::Rtcp);
    }
    let padding = buf[0] & 0x20 != 0;
    let extension = buf[0] & 0x10 != 0;
    let csrc_count = (buf[0] & 0x0f) as usize;
    let mut offset = RTP_HEADER_LEN + 4 * csrc_count;
    let mut end = buf.len();
    if padding {
        let pad = *buf.last().ok_or(RtpError::BadLength)? as usize;
        if pad == 0 || pad > end {
            return Err(RtpError::BadLength);
        }
        end -= pad;
    }
    let mut audio_level = None;
    if extension {
        let header = buf.get(offset..offset + 4).ok_or(RtpError::BadLength)?;
        let profile = u16::from_be_bytes([header[0], header[1]]);
        let words = u16::from_be_bytes([header[2], header[3]]) as usize;
        let body = buf
            .get(offset + 4..offset + 4 + 4 * words)
            .ok_or(RtpError::BadLength)?;
        if let Some(id) = audio_level_id {
            audio_level = find_audio_level(profile, body, id);
        }
        offset += 4 + 4 * words;
    }
    if offset > end {
        return Err(RtpError::BadLength);
    }
    Ok(RtpPacket {
        payload_type: buf[1] & 0x7f,
        marker: buf[1] & 0x80 != 0,
        sequence: u16::from_be_bytes([buf[2], buf[3]]),
        timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        payload: &buf[offset..end],
        audio_level,
    })
}

/// Looks for element `id` in a one-byte (0xBEDE) or two-byte (0x100x) extension block.
fn find_audio_level(profile: u16, body: &[u8], id: u8) -> Option<u8> {
    let two_byte = profile & 0xfff0 == 0x1000;
    if profile != 0xBEDE && !two_byte {
        return None;
    }
    let mut i = 0;
    while i < body.len() {
        if body[i] == 0 {
            i += 1; // padding
            continue;
        }
        let (element_id, len, data_at) = if two_byte {
            (body[i], *body.get(i + 1)? as usize, i + 2)
        } else {
            let b = body[i];
            if b >> 4 == 15 {
                return None; // reserved id: stop parsing, per RFC 8285
            }
            (b >> 4, (b & 0x0f) as usize + 1, i + 1)
        };
        if element_id == id {
            return body.get(data_at).map(|level| level & 0x7f);
        }
        i = data_at + len;
    }
    None
}

/// Writes a 12-byte RTP header (no CSRCs, no extension).
pub fn write_header(
    out: &mut [u8],
    payload_type: u8,
    marker: bool,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) {
    out[0] = 0x80;
    out[1] = (payload_type & 0x7f) | if marker { 0x80 } else { 0 };
    out[2..4].copy_from_slice(&sequence.to_be_bytes());
    out[4..8].copy_from_slice(&timestamp.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// Sequence numbers and timestamps of one outgoing stream, continuous for its whole life.
#[derive(Clone, Debug)]
pub struct OutboundStream {
    pub ssrc: u32,
    sequence: u16,
    timestamp: u32,
    started: bool,
    /// Timestamp units per 20 ms frame: 960 for Opus, 160 for G.711.
    frame_ticks: u32,
}

/// Opus RTP timestamps run at 48 kHz whatever the codec's rate (RFC 7587).
pub const OPUS_RTP_CLOCK: u32 = 48_000;
pub const FRAME_TICKS: u32 = OPUS_RTP_CLOCK / 50;

impl OutboundStream {
    pub fn new() -> Self {
        OutboundStream {
            ssrc: rand::random(),
            sequence: rand::random(),
            timestamp: rand::random(),
            started: false,
            frame_ticks: FRAME_TICKS,
        }
    }

    /// A stream with this SSRC whose numbering starts at random.
    pub fn with_ssrc(ssrc: u32) -> Self {
        OutboundStream {
            ssrc,
            ..Self::new()
        }
    }

    /// Timestamp units per 20 ms frame from now on (the codec's clock, see `AudioCodec`).
    pub fn set_frame_ticks(&mut self, frame_ticks: u32) {
        self.frame_ticks = frame_ticks;
    }

    /// The sequence number and timestamp the next packet will carry.
    pub fn next_numbers(&self) -> (u16, u32) {
        (self.sequence, self.timestamp)
    }

    /// Writes the header of the next 20 ms packet into `out[..12]`.
    pub fn next_header(&mut self, out: &mut [u8], payload_type: u8) {
        let marker = !self.started;
        self.started = true;
        write_header(
            out,
            payload_type,
            marker,
            self.sequence,
            self.timestamp,
            self.ssrc,
        );
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(self.frame_ticks);
    }

    /// Advances the timestamp over a stretch in which nothing was sent, so the receiver's clock
    /// keeps its pace.
    pub fn skip_frame(&mut self) {
        if self.started {
            self.timestamp = self.timestamp.wrapping_add(self.frame_ticks);
        }
    }
}

impl Default for OutboundStream {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(extension: Option<&[u8]>, csrcs: usize, payload: &[u8], padding: u8) -> Vec<u8> {
        let mut buf = vec![0u8; 12];
        write_header(&mut buf, 111, true, 0xfffe, 123456, 0xdeadbeef);
        buf[0] |= csrcs as u8;
        buf.extend(std::iter::repeat_n(0xcc, 4 * csrcs));
        if let Some(ext) = extension {
            buf[0] |= 0x10;
            buf.extend(ext);
        }
        buf.extend(payload);
        if padding > 0 {
            buf[0] |= 0x20;
            buf.extend(std::iter::repeat_n(0, padding as usize - 1));
            buf.push(padding);
        }
        buf
    }

    #[test]
    fn parses_header_fields_and_payload() {
        let buf = packet(None, 2, b"opus", 3);
        let p = parse(&buf, None).unwrap();
        assert_eq!(
            (p.payload_type, p.marker, p.sequence, p.timestamp, p.ssrc),
            (111, true, 0xfffe, 123456, 0xdeadbeef)
        );
        assert_eq!(p.payload, b"opus");
        assert_eq!(p.audio_level, None);
    }

    #[test]
    fn reads_the_audio_level_from_one_and_two_byte_extensions() {
        // One-byte: id 3 (len 1) = mid, id 1 (len 0) = level 0x80|42 (vad bit), then padding.
        let one = [0xBE, 0xDE, 0, 2, 0x31, b'a', b'b', 0x10, 0x80 | 42, 0, 0, 0];
        let buf = packet(Some(&one), 0, b"x", 0);
        assert_eq!(parse(&buf, Some(1)).unwrap().audio_level, Some(42));
        assert_eq!(parse(&buf, Some(2)).unwrap().audio_level, None);
        assert_eq!(parse(&buf, None).unwrap().payload, b"x");

        let two = [0x10, 0x00, 0, 1, 5, 1, 127, 0];
        let buf = packet(Some(&two), 0, b"y", 0);
        assert_eq!(parse(&buf, Some(5)).unwrap().audio_level, Some(127));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        assert_eq!(parse(&[], None), Err(RtpError::TooShort));
        assert_eq!(parse(&[0u8; 12], None), Err(RtpError::NotVersion2));
        let mut rtcp = packet(None, 0, b"", 0);
        rtcp[1] = 200;
        assert_eq!(parse(&rtcp, None), Err(RtpError::Rtcp));
        // Extension claims more words than there are.
        let buf = packet(Some(&[0xBE, 0xDE, 0, 9]), 0, b"", 0);
        assert_eq!(parse(&buf, Some(1)), Err(RtpError::BadLength));
        // CSRC count beyond the end.
        let mut buf = packet(None, 0, b"", 0);
        buf[0] |= 0x0f;
        assert_eq!(parse(&buf, None), Err(RtpError::BadLength));
        // Padding longer than the packet.
        let mut buf = packet(None, 0, b"ab", 0);
        buf[0] |= 0x20;
        *buf.last_mut().unwrap() = 200;
        assert_eq!(parse(&buf, None), Err(RtpError::BadLength));
        // Every truncation of a valid packet with extensions parses or errs, never panics.
        let one = [0xBE, 0xDE, 0, 2, 0x31, b'a', b'b', 0x10, 42, 0, 0, 0];
        let full = packet(Some(&one), 1, b"payload", 4);
        for len in 0..full.len() {
            let _ = parse(&full[..len], Some(1));
        }
        for seed in 0..2000u32 {
            let junk: Vec<u8> = (0..(seed % 40))
                .map(|i| (seed.wrapping_mul(2654435761).rotate_left(i)) as u8)
                .collect();
            let _ = parse(&junk, Some((seed % 15) as u8));
        }
    }

    #[test]
    fn outbound_streams_count_on_continuously() {
        let mut s = OutboundStream::new();
        let mut a = [0u8; 12];
        let mut b = [0u8; 12];
        s.next_header(&mut a, 111);
        s.skip_frame();
        s.next_header(&mut b, 111);
        let pa = parse(&a, None).unwrap();
        let pb = parse(&b, None).unwrap();
        assert!(pa.marker && !pb.marker);
        assert_eq!(pb.sequence, pa.sequence.wrapping_add(1));
        assert_eq!(pb.timestamp, pa.timestamp.wrapping_add(2 * FRAME_TICKS));
        assert_eq!(pa.ssrc, pb.ssrc);
    }
}
