//! An Ogg Opus stream (RFC 7845) made of the Opus packets a participant sent, as they were
//! sent: nothing is decoded or encoded again.
//!
//! Time is kept by granule positions, which count 48 kHz samples whatever the rates: each
//! packet advances it by the duration its TOC byte says (RFC 6716, section 3.1), and a gap
//! (packets lost, or none sent) is filled with 1-byte packets, a TOC byte with no frame data,
//! which every decoder plays as 20 ms of loss concealment fading to silence. So a player, ffmpeg
//! or a speech-to-text system decodes each packet at exactly the moment it was played in the
//! room, with no knowledge of this plugin.
//!
//! Pre-skip is one such 20 ms filler in front of the first packet: the decoder drops it, so the
//! first real packet's first sample is sample 0 of the decoded track, on the same grid as the
//! mixer's own decoding of it (what the room's WAV holds). A pre-skip of 312 (an encoder's
//! look-ahead) would shift the track 6.5 ms against the mix; 0 makes `opusinfo` warn.
//!
//! Crash safety is the caller's: `flush` writes every page but the one holding the last packet
//! (kept so that `finish` can mark it end-of-stream; an empty last page makes `opusinfo` warn).
//! Each page is one `write` of whole bytes, so a file cut short holds whole pages and decoders
//! read it up to the last one.

use std::io::{self, Write};

/// 48 kHz samples in one 20 ms tick of the mixer: the unit of the recording's clock.
pub const TICK_SAMPLES: u64 = 960;
/// See the module's comment: one filler packet's worth.
const PRE_SKIP: u64 = TICK_SAMPLES;
/// The most lacing values (packet pieces of up to 255 bytes) an Ogg page holds.
const MAX_SEGMENTS: usize = 255;
/// The longest Opus packet, 120 ms (RFC 6716, section 3.2.5).
const MAX_PACKET_SAMPLES: u64 = 5760;

/// What the stream's headers say.
pub struct StreamInfo<'a> {
    /// The Ogg stream's serial number (random, so that streams can be chained or multiplexed).
    pub serial: u32,
    /// The rate the audio was captured at, for information (the room's rate).
    pub input_rate: u32,
    /// `KEY=value` comments of the OpusTags header.
    pub comments: &'a [String],
}

struct Pending {
    packet: Vec<u8>,
    /// Granule position at the end of this packet.
    granule: u64,
}

pub struct OggOpusWriter<W: Write> {
    out: W,
    serial: u32,
    sequence: u32,
    /// Packets not yet on a page, oldest first.
    pending: Vec<Pending>,
    /// Granule position at the end of the last packet taken (pre-skip included).
    granule: u64,
    /// Granule position at the end of the last page written.
    granule_on_disk: u64,
    /// The TOC byte of the last packet, for the fillers of the next gap.
    last_toc: Option<u8>,
    /// Bytes of whole pages written, so a failed write can be cut back to them.
    pub bytes_on_disk: u64,
    page: Vec<u8>,
}

impl<W: Write> OggOpusWriter<W> {
    /// Writes the identification and comment headers, each on its own page (RFC 7845,
    /// section 3).
    pub fn new(out: W, info: &StreamInfo) -> io::Result<Self> {
        let mut writer = OggOpusWriter {
            out,
            serial: info.serial,
            sequence: 0,
            pending: Vec::new(),
            granule: 0,
            granule_on_disk: 0,
            last_toc: None,
            bytes_on_disk: 0,
            page: Vec::with_capacity(8192),
        };
        let mut head = b"OpusHead".to_vec();
        head.push(1); // version
        head.push(1); // channels: the room is mono; a stereo packet decodes downmixed
        head.extend_from_slice(&(PRE_SKIP as u16).to_le_bytes());
        head.extend_from_slice(&info.input_rate.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // channel mapping family 0: mono or stereo
        writer.write_page(&[&head], 0, PageFlags::FIRST)?;
        let mut tags = b"OpusTags".to_vec();
        let vendor = crate::PLUGIN_PACKAGE.as_bytes();
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&(info.comments.len() as u32).to_le_bytes());
        for comment in info.comments {
            tags.extend_from_slice(&(comment.len() as u32).to_le_bytes());
            tags.extend_from_slice(comment.as_bytes());
        }
        writer.write_page(&[&tags], 0, PageFlags::NONE)?;
        Ok(writer)
    }

    /// The output, as written so far.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Samples (48 kHz) of audio taken so far, from the first packet's start.
    pub fn samples(&self) -> u64 {
        self.granule.saturating_sub(PRE_SKIP)
    }

    /// Samples (48 kHz) of audio on pages written so far.
    pub fn samples_on_disk(&self) -> u64 {
        self.granule_on_disk.saturating_sub(PRE_SKIP)
    }

    /// Takes a packet that starts `at` samples (48 kHz) after the first packet's start. A gap
    /// before it is filled; a packet that would start before the end of the last one (packets
    /// longer than a tick played one per tick) follows it directly, since Ogg cannot overlap.
    /// A packet whose TOC makes no sense is refused (false) and changes nothing.
    pub fn push(&mut self, packet: Vec<u8>, at: u64) -> io::Result<bool> {
        let Some(duration) = packet_samples(&packet) else {
            return Ok(false);
        };
        let toc = packet[0];
        if self.last_toc.is_none() {
            // The pre-skip, played by the decoder and dropped.
            self.take(filler(toc), PRE_SKIP)?;
        }
        let target = PRE_SKIP + at;
        while self.granule + TICK_SAMPLES <= target {
            self.take(filler(self.last_toc.unwrap_or(toc)), TICK_SAMPLES)?;
        }
        self.last_toc = Some(toc);
        self.take(packet, duration)?;
        Ok(true)
    }

    /// Writes every page but the one holding the last packet (`finish` ends the stream with
    /// it).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending.len() > 1 {
            let last = self.pending.pop().expect("more than one pending");
            self.write_pending(PageFlags::NONE)?;
            self.pending.push(last);
        }
        Ok(())
    }

    /// Writes what is left on a last page marked end-of-stream, and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.pending.is_empty() {
            self.write_pending(PageFlags::LAST)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    fn take(&mut self, packet: Vec<u8>, duration: u64) -> io::Result<()> {
        let segments = |p: &Vec<u8>| p.len() / 255 + 1;
        let queued: usize = self.pending.iter().map(|p| segments(&p.packet)).sum();
        if queued + segments(&packet) > MAX_SEGMENTS {
            self.write_pending(PageFlags::NONE)?;
        }
        self.granule += duration;
        self.pending.push(Pending {
            packet,
            granule: self.granule,
        });
        Ok(())
    }

    fn write_pending(&mut self, flags: PageFlags) -> io::Result<()> {
        let Some(granule) = self.pending.last().map(|p| p.granule) else {
            return Ok(());
        };
        let pending = std::mem::take(&mut self.pending);
        let packets: Vec<&[u8]> = pending.iter().map(|p| p.packet.as_slice()).collect();
        self.write_page(&packets, granule, flags)?;
        self.granule_on_disk = granule;
        Ok(())
    }

    /// One page (RFC 3533, section 6) holding whole packets, written with one `write_all`.
    fn write_page(&mut self, packets: &[&[u8]], granule: u64, flags: PageFlags) -> io::Result<()> {
        let page = &mut self.page;
        page.clear();
        page.extend_from_slice(b"OggS");
        page.push(0); // version
        page.push(flags.0);
        page.extend_from_slice(&granule.to_le_bytes());
        page.extend_from_slice(&self.serial.to_le_bytes());
        page.extend_from_slice(&self.sequence.to_le_bytes());
        page.extend_from_slice(&[0; 4]); // CRC, computed below
        let lacing: Vec<u8> = packets
            .iter()
            .flat_map(|p| {
                std::iter::repeat_n(255u8, p.len() / 255)
                    .chain(std::iter::once((p.len() % 255) as u8))
            })
            .collect();
        page.push(lacing.len() as u8);
        page.extend_from_slice(&lacing);
        for p in packets {
            page.extend_from_slice(p);
        }
        let crc = ogg_crc(page);
        page[22..26].copy_from_slice(&crc.to_le_bytes());
        self.out.write_all(page)?;
        self.sequence += 1;
        self.bytes_on_disk += page.len() as u64;
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct PageFlags(u8);

impl PageFlags {
    const NONE: PageFlags = PageFlags(0);
    /// Beginning of stream.
    const FIRST: PageFlags = PageFlags(2);
    /// End of stream.
    const LAST: PageFlags = PageFlags(4);
}

/// How long an Opus packet plays, in 48 kHz samples, from its TOC byte (and frame count byte);
/// `None` for a packet no decoder would accept.
pub fn packet_samples(packet: &[u8]) -> Option<u64> {
    let (&toc, rest) = packet.split_first()?;
    let config = toc >> 3;
    let frame = match config {
        // SILK: 10, 20, 40, 60 ms
        0..=11 => [480, 960, 1920, 2880][(config % 4) as usize],
        // Hybrid: 10, 20 ms
        12..=15 => [480, 960][(config % 2) as usize],
        // CELT: 2.5, 5, 10, 20 ms
        _ => [120, 240, 480, 960][(config % 4) as usize],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => (rest.first()? & 0x3f) as u64,
    };
    let samples = frame * frames;
    (frames > 0 && samples <= MAX_PACKET_SAMPLES).then_some(samples)
}

/// A 20 ms packet of nothing in the mode and bandwidth of `toc`: the TOC byte alone, code 0,
/// whose empty frame decoders conceal as a loss (RFC 6716, section 3.2.1).
fn filler(toc: u8) -> Vec<u8> {
    let config = toc >> 3;
    let twenty_ms = match config {
        0..=11 => (config & !3) | 1,
        12..=15 => config | 1,
        _ => config | 3,
    };
    vec![(twenty_ms << 3) | (toc & 0x04)]
}

/// Ogg's CRC-32: polynomial 0x04c11db7, not reflected, initial value and final XOR 0.
pub(super) fn ogg_crc(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = [0u32; 256];
        for (i, entry) in table.iter_mut().enumerate() {
            let mut r = (i as u32) << 24;
            for _ in 0..8 {
                r = if r & 0x8000_0000 != 0 {
                    (r << 1) ^ 0x04c1_1db7
                } else {
                    r << 1
                };
            }
            *entry = r;
        }
        table
    });
    bytes.iter().fold(0u32, |crc, &b| {
        (crc << 8) ^ table[((crc >> 24) as u8 ^ b) as usize]
    })
}

#[cfg(test)]
#[path = "ogg_opus_tests.rs"]
mod tests;
