//! The Ogg Opus writer: pages as libogg and ffmpeg expect them, and audio that decodes at the
//! moment each packet was played, gaps included.

use super::*;
use crate::archive::ogg_read::{decode, head, pages};
use crate::media::codec::test_signals::{goertzel_db, tone};
use crate::media::codec::{Encoder, EncoderProfile, MAX_OPUS_PACKET};

const RATE: u32 = 48000;
const TICK: usize = 960;

fn info() -> StreamInfo<'static> {
    StreamInfo {
        serial: 0x1234_5678,
        input_rate: 16000,
        comments: &[],
    }
}

/// 20 ms packets of a tone, as a sender's encoder makes them, `frames` in a row from `start`.
fn packets(encoder: &mut Encoder, freq: f64, start: usize, frames: usize) -> Vec<Vec<u8>> {
    (start..start + frames)
        .map(|i| {
            let mut p = [0u8; MAX_OPUS_PACKET];
            let len = encoder
                .encode(&tone(RATE, freq, 8000.0, i * TICK, TICK), &mut p)
                .unwrap();
            p[..len].to_vec()
        })
        .collect()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn the_crc_is_the_one_ffmpeg_writes() {
    // The first two pages of an Ogg Opus file written by ffmpeg's muxer (libavformat 62).
    for page in [
        "4f676753000200000000000000002d6e37c800000000e4e91a8901134f707573486561640101380180bb0000000000",
        "4f676753000000000000000000002d6e37c801000000464770d801364f707573546167730d0000004c61766636322e31322e3130320100000015000000656e636f6465723d4c61766636322e31322e313032",
    ] {
        let mut page = hex(page);
        let stored = u32::from_le_bytes(page[22..26].try_into().unwrap());
        page[22..26].fill(0);
        assert_eq!(ogg_crc(&page), stored);
    }
}

#[test]
fn durations_come_from_the_toc() {
    assert_eq!(packet_samples(&[0x08, 1, 2]), Some(960), "SILK NB 20 ms");
    assert_eq!(packet_samples(&[0x18]), Some(2880), "SILK NB 60 ms");
    assert_eq!(packet_samples(&[0x78, 1]), Some(960), "hybrid FB 20 ms");
    assert_eq!(
        packet_samples(&[0xf8, 0xff, 0xfe]),
        Some(960),
        "CELT FB 20 ms"
    );
    assert_eq!(packet_samples(&[0xe0]), Some(120), "CELT FB 2.5 ms");
    assert_eq!(packet_samples(&[0x79, 1, 1]), Some(1920), "two frames");
    assert_eq!(
        packet_samples(&[0xfb, 3, 0]),
        Some(2880),
        "code 3: three frames"
    );
    assert_eq!(packet_samples(&[0xfb, 7, 0]), None, "140 ms is too long");
    assert_eq!(packet_samples(&[0xfb, 0]), None, "no frames");
    assert_eq!(packet_samples(&[0xfb]), None, "no frame count");
    assert_eq!(packet_samples(&[]), None);
}

#[test]
fn fillers_are_twenty_ms_of_the_same_mode_and_bandwidth() {
    for toc in [0x08u8, 0x18, 0x00, 0x60, 0x78, 0xe0, 0xfc, 0x0d] {
        let f = filler(toc);
        assert_eq!(f.len(), 1);
        assert_eq!(packet_samples(&f), Some(960), "{toc:#x} -> {:#x}", f[0]);
        // Same mode and bandwidth (the config's upper bits, per mode) and stereo flag.
        assert_eq!(f[0] & 0x04, toc & 0x04);
        let (a, b) = (toc >> 3, f[0] >> 3);
        assert_eq!((a < 12, a < 16), (b < 12, b < 16), "{toc:#x}");
    }
}

#[test]
fn a_gap_is_concealed_and_what_follows_plays_at_its_time() {
    let mut encoder = Encoder::new(RATE, EncoderProfile::default()).unwrap();
    let first = packets(&mut encoder, 440.0, 0, 25);
    let second = packets(&mut encoder, 1000.0, 35, 25);
    let mut writer = OggOpusWriter::new(Vec::new(), &info()).unwrap();
    for (i, p) in first.into_iter().enumerate() {
        assert!(writer.push(p, (i * TICK) as u64).unwrap());
    }
    // Ticks 25 to 34 sent nothing.
    for (i, p) in second.into_iter().enumerate() {
        assert!(writer.push(p, ((35 + i) * TICK) as u64).unwrap());
    }
    assert_eq!(writer.samples(), 60 * TICK as u64);
    let bytes = writer.finish().unwrap();

    let pages = pages(&bytes);
    assert_eq!(head(&pages[0]), (1, 960, 16000));
    assert_eq!(pages[0].flags, 2, "beginning of stream");
    assert_eq!(&pages[1].packets[0][..8], b"OpusTags");
    assert_eq!(pages.last().unwrap().flags, 4, "end of stream");
    assert_eq!(pages.last().unwrap().granule, 960 + 60 * 960);
    for (n, page) in pages.iter().enumerate() {
        assert_eq!((page.sequence, page.serial), (n as u32, 0x1234_5678));
    }
    let fillers = pages[2..]
        .iter()
        .flat_map(|p| &p.packets)
        .filter(|p| p.len() == 1)
        .count();
    assert_eq!(fillers, 11, "the pre-skip and ten ticks of gap");

    let pcm = decode(&bytes);
    assert_eq!(pcm.len(), 60 * TICK);
    let at =
        |from: usize, to: usize, freq: f64| goertzel_db(&pcm[from * TICK..to * TICK], RATE, freq);
    assert!(at(2, 24, 440.0) > -20.0, "{}", at(2, 24, 440.0));
    assert!(
        at(27, 34, 440.0) < -40.0,
        "concealment fades: {}",
        at(27, 34, 440.0)
    );
    assert!(at(27, 34, 1000.0) < -40.0);
    assert!(at(36, 60, 1000.0) > -20.0, "{}", at(36, 60, 1000.0));
    assert!(at(36, 60, 440.0) < -40.0);
    // The second tone starts where it was played, give or take the codec's delay (6.5 ms).
    let onset = (30 * TICK..40 * TICK)
        .step_by(48)
        .find(|&i| goertzel_db(&pcm[i..i + 480], RATE, 1000.0) > -30.0)
        .unwrap();
    let expected = 35 * TICK;
    assert!(
        onset + 480 >= expected && onset <= expected + 480,
        "onset at {} ms, expected {} ms",
        onset / 48,
        expected / 48
    );
}

#[test]
fn flushing_leaves_whole_pages_with_all_but_the_last_packet() {
    let mut encoder = Encoder::new(RATE, EncoderProfile::default()).unwrap();
    let mut writer = OggOpusWriter::new(Vec::new(), &info()).unwrap();
    for (i, p) in packets(&mut encoder, 440.0, 0, 50).into_iter().enumerate() {
        writer.push(p, (i * TICK) as u64).unwrap();
    }
    writer.flush().unwrap();
    assert_eq!(writer.samples_on_disk(), 49 * TICK as u64);
    assert_eq!(writer.bytes_on_disk, writer.get_ref().len() as u64);
    // What a crash would leave: a file without an end-of-stream page, still playable.
    let on_disk = writer.get_ref().clone();
    let pcm = decode(&on_disk);
    assert_eq!(pcm.len(), 49 * TICK);
    assert!(goertzel_db(&pcm[TICK..], RATE, 440.0) > -20.0);
    // A torn page at the end (a write cut short) is left out.
    let torn = [on_disk.as_slice(), &on_disk[..40]].concat();
    assert_eq!(decode(&torn).len(), 49 * TICK);
    let bytes = writer.finish().unwrap();
    assert_eq!(decode(&bytes).len(), 50 * TICK);
}

#[test]
fn long_packets_and_packets_that_would_overlap_follow_each_other() {
    let profile = EncoderProfile::default();
    let mut encoder = Encoder::new(RATE, profile).unwrap();
    let mut writer = OggOpusWriter::new(Vec::new(), &info()).unwrap();
    // 40 ms packets, one every other tick, then one per tick (a quiet participant's packets
    // are played one per tick whatever their length): they are laid end to end.
    let mut long = Vec::new();
    for i in 0..10 {
        let mut p = [0u8; MAX_OPUS_PACKET];
        let pcm = tone(RATE, 440.0, 8000.0, i * 2 * TICK, 2 * TICK);
        let len = encoder.encode(&pcm, &mut p).unwrap();
        long.push(p[..len].to_vec());
    }
    assert_eq!(packet_samples(&long[0]), Some(1920));
    for (i, p) in long[..5].iter().enumerate() {
        writer.push(p.clone(), (2 * i * TICK) as u64).unwrap();
    }
    assert_eq!(writer.samples(), 10 * TICK as u64);
    for (i, p) in long[5..].iter().enumerate() {
        writer.push(p.clone(), ((10 + i) * TICK) as u64).unwrap();
    }
    assert_eq!(writer.samples(), 20 * TICK as u64, "no overlap, no gap");
    assert!(
        !writer.push(vec![0xfb, 0], 0).unwrap(),
        "an invalid packet is refused"
    );
    assert!(!writer.push(Vec::new(), 0).unwrap());
    assert_eq!(writer.samples(), 20 * TICK as u64);
    let pcm = decode(&writer.finish().unwrap());
    assert_eq!(pcm.len(), 20 * TICK);
    assert!(goertzel_db(&pcm[TICK..], RATE, 440.0) > -20.0);
}

#[test]
fn a_page_never_holds_more_than_255_lacing_values() {
    let mut writer = OggOpusWriter::new(Vec::new(), &info()).unwrap();
    // Big packets (600 bytes: three lacing values each), a thousand of them.
    for i in 0..1000u64 {
        let mut p = vec![0xfc; 600];
        p[0] = 0xf8;
        writer.push(p, i * 960).unwrap();
    }
    let bytes = writer.finish().unwrap();
    let pages = pages(&bytes);
    assert!(pages.len() > 10);
    for page in &pages {
        let lacing: usize = page.packets.iter().map(|p| p.len() / 255 + 1).sum();
        assert!(lacing <= 255);
    }
    assert_eq!(pages.last().unwrap().granule, 960 + 1000 * 960);
}
