//! Tests only: Ogg Opus files read back as a player would, pages checked (capture pattern,
//! CRC, sequence, flags), packets reassembled and decoded with libopus, pre-skip applied.

use crate::media::codec::Decoder;

#[derive(Debug)]
pub struct Page {
    pub flags: u8,
    pub granule: u64,
    pub serial: u32,
    pub sequence: u32,
    pub packets: Vec<Vec<u8>>,
}

/// Every whole page of `bytes` (a torn last page is left out, as demuxers do); panics on a
/// page whose CRC is wrong.
pub fn pages(bytes: &[u8]) -> Vec<Page> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 27 <= bytes.len() {
        let page = &bytes[at..];
        assert_eq!(&page[0..4], b"OggS", "capture pattern at {at}");
        let segments = page[26] as usize;
        if page.len() < 27 + segments {
            break;
        }
        let lacing = &page[27..27 + segments];
        let body: usize = lacing.iter().map(|&l| l as usize).sum();
        let size = 27 + segments + body;
        if page.len() < size {
            break;
        }
        let mut zeroed = page[..size].to_vec();
        zeroed[22..26].fill(0);
        let crc = u32::from_le_bytes(page[22..26].try_into().unwrap());
        assert_eq!(
            super::ogg_opus::ogg_crc(&zeroed),
            crc,
            "CRC of page at {at}"
        );
        let mut packets = Vec::new();
        let mut packet = Vec::new();
        let mut data = &page[27 + segments..size];
        for &l in lacing {
            packet.extend_from_slice(&data[..l as usize]);
            data = &data[l as usize..];
            if l < 255 {
                packets.push(std::mem::take(&mut packet));
            }
        }
        assert!(packet.is_empty(), "our pages hold whole packets");
        out.push(Page {
            flags: page[5],
            granule: u64::from_le_bytes(page[6..14].try_into().unwrap()),
            serial: u32::from_le_bytes(page[14..18].try_into().unwrap()),
            sequence: u32::from_le_bytes(page[18..22].try_into().unwrap()),
            packets,
        });
        at += size;
    }
    out
}

/// The OpusHead fields a player uses: (channels, pre-skip, input rate).
pub fn head(page: &Page) -> (u8, u16, u32) {
    let h = &page.packets[0];
    assert_eq!(&h[0..8], b"OpusHead");
    (
        h[9],
        u16::from_le_bytes([h[10], h[11]]),
        u32::from_le_bytes(h[12..16].try_into().unwrap()),
    )
}

/// The audio of a whole file at 48 kHz as a player gives it: every packet decoded in turn,
/// pre-skip dropped, cut at the last page's granule position.
pub fn decode(bytes: &[u8]) -> Vec<i16> {
    let pages = pages(bytes);
    let (_, pre_skip, _) = head(&pages[0]);
    let mut decoder = Decoder::new(48000).unwrap();
    let mut out = Vec::new();
    let mut buffer = vec![0i16; 5760];
    for page in &pages[2..] {
        for packet in &page.packets {
            let n = decoder.decode(packet, &mut buffer).unwrap();
            out.extend_from_slice(&buffer[..n]);
        }
    }
    let end = pages.last().map_or(0, |p| p.granule as usize);
    out.truncate(end);
    out.drain(..(pre_skip as usize).min(out.len()));
    out
}
