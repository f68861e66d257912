//! The mixer stepped tick by tick on real Opus frames of synthetic tones: what each listener
//! hears is decoded and measured by Goertzel, as a person in the room would judge it.

use super::*;
use crate::media::codec::test_signals::{goertzel_db, rms_db, tone};
use crate::media::codec::{Decoder, Encoder, EncoderProfile, MAX_OPUS_PACKET};
use crate::media::rtp;
use std::cell::RefCell;

const RATE: u32 = 48000;
const FRAME: usize = 960;

/// A participant in a test room: what it sends, and everything it is sent.
struct TestPeer {
    freq: f64,
    amplitude: f64,
    encoder: Encoder,
    voice: Voice,
    downlink: Downlink,
    queue: OrderedMutex<JitterQueue>,
    speaks: bool,
    volume_percent: u32,
    /// Ticks in which this peer talks; outside them it sends packets flagged silent (level
    /// 127), as a browser does when its user stops talking. `None`: always as constructed.
    talks_in: Option<fn(usize) -> bool>,
    received: Capture,
}

/// Everything a peer is sent.
#[derive(Default)]
struct Capture(RefCell<Vec<Vec<u8>>>);

impl PacketSink for Capture {
    fn send(&self, packet: &[u8]) {
        self.0.borrow_mut().push(packet.to_vec());
    }
}

impl TestPeer {
    fn new(freq: f64, amplitude: f64) -> Self {
        TestPeer {
            freq,
            amplitude,
            encoder: Encoder::new(
                RATE,
                EncoderProfile {
                    bitrate: Some(64000),
                    ..Default::default()
                },
            )
            .unwrap(),
            voice: Voice::new(RATE).unwrap(),
            downlink: Downlink::new(
                RATE,
                EncoderProfile {
                    bitrate: Some(64000),
                    ..Default::default()
                },
                111,
            )
            .unwrap(),
            queue: OrderedMutex::leaf("queue", JitterQueue::new(0)),
            speaks: true,
            volume_percent: 100,
            talks_in: None,
            received: Capture::default(),
        }
    }

    fn silent() -> Self {
        Self::new(0.0, 0.0)
    }

    /// Sends this tick's frame of its tone (or nothing when silent).
    fn send_frame(&mut self, tick: usize) {
        let talking = match self.talks_in {
            Some(talks) => talks(tick),
            None if self.amplitude == 0.0 => return,
            None => true,
        };
        let pcm = if talking {
            tone(RATE, self.freq, self.amplitude, tick * FRAME, FRAME)
        } else {
            vec![0; FRAME]
        };
        let level = if talking { 30 } else { rtp::SILENT_AUDIO_LEVEL };
        let mut packet = [0u8; MAX_OPUS_PACKET];
        let len = self.encoder.encode(&pcm, &mut packet).unwrap();
        self.queue
            .lock()
            .push(42, tick as u16, &packet[..len], Some(level));
    }

    /// Decodes everything received, in order, checking the RTP numbering on the way.
    fn heard(&self) -> Vec<i16> {
        let mut decoder = Decoder::new(RATE).unwrap();
        let mut out = Vec::new();
        let mut pcm = vec![0i16; FRAME * 6];
        let mut last: Option<(u16, u32, u32)> = None;
        for packet in self.received.0.borrow().iter() {
            let p = rtp::parse(packet, None).unwrap();
            if let Some((seq, ts, ssrc)) = last {
                assert_eq!(
                    p.sequence,
                    seq.wrapping_add(1),
                    "continuous sequence numbers"
                );
                assert_eq!(p.timestamp, ts.wrapping_add(960), "continuous timestamps");
                assert_eq!(p.ssrc, ssrc, "one SSRC");
            }
            last = Some((p.sequence, p.timestamp, p.ssrc));
            let n = decoder.decode(p.payload, &mut pcm).unwrap();
            out.extend_from_slice(&pcm[..n]);
        }
        out
    }
}

/// Runs `ticks` ticks of a room of `peers`; returns the stats of the last tick.
fn run(mix: &mut RoomMix, peers: &mut [TestPeer], ticks: std::ops::Range<usize>) -> TickReport {
    let mut stats = TickReport::default();
    for tick in ticks {
        for p in peers.iter_mut() {
            p.send_frame(tick);
        }
        let mut members: Vec<Member> = peers
            .iter_mut()
            .map(|p| Member {
                voice: &mut p.voice,
                downlink: &mut p.downlink,
                queue: &p.queue,
                speaks: p.speaks,
                listens: true,
                volume_percent: p.volume_percent,
                sink: &p.received,
            })
            .collect();
        stats = mix.tick(&mut members);
    }
    stats
}

/// Levels of the given tones in the second half of what `peer` heard.
fn levels(peer: &TestPeer, freqs: &[f64]) -> Vec<f64> {
    let heard = peer.heard();
    let tail = &heard[heard.len() / 2..];
    freqs.iter().map(|&f| goertzel_db(tail, RATE, f)).collect()
}

#[test]
fn every_listener_hears_everyone_but_themselves() {
    let mut mix = RoomMix::new(RATE);
    let mut peers = vec![
        TestPeer::new(440.0, 8000.0),
        TestPeer::new(1000.0, 8000.0),
        TestPeer::new(2000.0, 8000.0),
    ];
    run(&mut mix, &mut peers, 0..100);
    let freqs = [440.0, 1000.0, 2000.0];
    for (i, peer) in peers.iter().enumerate() {
        let l = levels(peer, &freqs);
        for (j, level) in l.iter().enumerate() {
            if i == j {
                assert!(
                    *level < -50.0,
                    "peer {i} hears itself at {level:.1} dB: {l:?}"
                );
            } else {
                assert!(
                    *level > -16.0 && *level < -10.0,
                    "peer {i} hears peer {j} at {level:.1} dB: {l:?}"
                );
            }
        }
    }
}

#[test]
fn the_muted_are_not_heard_but_hear() {
    let mut mix = RoomMix::new(RATE);
    let mut peers = vec![
        TestPeer::new(440.0, 8000.0),
        TestPeer::new(1000.0, 8000.0),
        TestPeer::new(2000.0, 8000.0),
    ];
    peers[2].speaks = false;
    run(&mut mix, &mut peers, 0..100);
    let freqs = [440.0, 1000.0, 2000.0];
    let a = levels(&peers[0], &freqs);
    let c = levels(&peers[2], &freqs);
    assert!(a[2] < -50.0, "muted C is not heard: {a:?}");
    assert!(c[0] > -16.0 && c[1] > -16.0, "muted C hears A and B: {c:?}");
}

#[test]
fn volume_scales_a_voice_in_everyone_elses_mix() {
    let mut mix = RoomMix::new(RATE);
    let mut peers = vec![
        TestPeer::new(440.0, 8000.0),
        TestPeer::new(1000.0, 8000.0),
        TestPeer::silent(),
    ];
    peers[1].volume_percent = 50;
    run(&mut mix, &mut peers, 0..100);
    let l = levels(&peers[2], &[440.0, 1000.0]);
    let difference = l[0] - l[1];
    assert!(
        (difference - 6.02).abs() < 1.0,
        "50% volume is -6 dB: {l:?}"
    );
    // And B still does not hear itself: the subtraction uses the scaled contribution.
    assert!(levels(&peers[1], &[1000.0])[0] < -50.0);
}

#[test]
fn two_full_scale_voices_never_wrap_around() {
    let mut mix = RoomMix::new(RATE);
    let mut peers = vec![
        TestPeer::new(440.0, 32767.0),
        TestPeer::new(1000.0, 32767.0),
        TestPeer::silent(),
    ];
    run(&mut mix, &mut peers, 0..150);
    let heard = peers[2].heard();
    let tail = &heard[heard.len() / 2..];
    let t440 = goertzel_db(tail, RATE, 440.0);
    let t1000 = goertzel_db(tail, RATE, 1000.0);
    assert!(
        t440 > -10.0 && t1000 > -10.0,
        "both tones, limited: {t440:.1} {t1000:.1}"
    );
    // A wrapped or clipped sum would spray intermodulation and harmonics around.
    for product in [120.0, 560.0, 880.0, 1440.0, 1560.0, 2000.0, 2440.0, 3000.0] {
        let p = goertzel_db(tail, RATE, product);
        assert!(
            p < t440 - 35.0,
            "{product} Hz at {p:.1} dB next to tones at {t440:.1} dB"
        );
    }
    assert!(
        tail.iter().all(|s| s.unsigned_abs() < 32767),
        "no sample pinned at full scale"
    );
}

#[test]
fn listeners_share_one_encode_and_talkers_get_their_own() {
    let mut mix = RoomMix::new(RATE);
    let mut peers = vec![
        TestPeer::new(440.0, 8000.0),
        TestPeer::silent(),
        TestPeer::silent(),
        TestPeer::silent(),
    ];
    let stats = run(&mut mix, &mut peers, 0..50);
    assert_eq!(
        stats,
        TickReport {
            speakers: 1,
            private_encodes: 1,
            shared_encodes: 1
        }
    );
    // The three listeners were sent the same payload in their own RTP streams.
    let last: Vec<Vec<u8>> = peers[1..]
        .iter()
        .map(|p| p.received.0.borrow().last().unwrap().clone())
        .collect();
    let payloads: Vec<&[u8]> = last.iter().map(|p| &p[12..]).collect();
    assert!(payloads.windows(2).all(|w| w[0] == w[1]));
    let ssrcs: Vec<u32> = last
        .iter()
        .map(|p| rtp::parse(p, None).unwrap().ssrc)
        .collect();
    assert!(ssrcs[0] != ssrcs[1] && ssrcs[1] != ssrcs[2]);
    for listener in &peers[1..] {
        assert!(levels(listener, &[440.0])[0] > -16.0);
    }
}

#[test]
fn a_talker_alone_is_still_sent_a_stream_of_silence() {
    let mut mix = RoomMix::new(RATE);
    let mut peers = vec![TestPeer::new(440.0, 8000.0), TestPeer::new(1000.0, 8000.0)];
    peers[1].speaks = false;
    run(&mut mix, &mut peers, 0..100);
    assert_eq!(
        peers[0].received.0.borrow().len(),
        100,
        "a packet every tick"
    );
    let heard = peers[0].heard();
    assert!(
        rms_db(&heard[heard.len() / 2..]) < -80.0,
        "and it is silence"
    );
}

/// Level of `freq` in one frame and how far below it everything else is (both in dB): the tone
/// is fitted by least squares and the rest is what a click or gap would leave.
fn tone_and_residual_db(frame: &[i16], freq: f64) -> (f64, f64) {
    let w = 2.0 * std::f64::consts::PI * freq / RATE as f64;
    let (mut ss, mut cc, mut sc, mut xs, mut xc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (n, &x) in frame.iter().enumerate() {
        let (s, c, x) = ((w * n as f64).sin(), (w * n as f64).cos(), x as f64);
        ss += s * s;
        cc += c * c;
        sc += s * c;
        xs += x * s;
        xc += x * c;
    }
    let det = ss * cc - sc * sc;
    let (a, b) = ((xs * cc - xc * sc) / det, (xc * ss - xs * sc) / det);
    let (mut tone_energy, mut rest_energy) = (0.0, 0.0);
    for (n, &x) in frame.iter().enumerate() {
        let fit = a * (w * n as f64).sin() + b * (w * n as f64).cos();
        tone_energy += fit * fit;
        rest_energy += (x as f64 - fit).powi(2);
    }
    let level = 10.0
        * (tone_energy / frame.len() as f64 / (32768.0f64 * 32768.0 / 2.0))
            .max(1e-20)
            .log10();
    (
        level,
        10.0 * (rest_energy / tone_energy.max(1e-9)).max(1e-20).log10(),
    )
}

#[test]
fn a_listener_moving_between_its_own_stream_and_the_shared_one_hears_no_gap_or_click() {
    // A talks all along; B talks in bursts and sends packets flagged silent in between; C only
    // listens. B hears A's tone throughout, from its own stream while it talks and from the
    // shared stream while it does not.
    let mut mix = RoomMix::new(RATE);
    let mut peers = vec![
        TestPeer::new(440.0, 8000.0),
        TestPeer::new(1000.0, 8000.0),
        TestPeer::silent(),
    ];
    peers[1].talks_in = Some(|tick| (tick / 40) % 2 == 0);
    // What participants get by default (libopus picks the bitrate), where a careless switch
    // is audible.
    for peer in &mut peers {
        peer.downlink = Downlink::new(RATE, EncoderProfile::default(), 111).unwrap();
    }
    let mut sources = Vec::new();
    for tick in 0..240 {
        run(&mut mix, &mut peers, tick..tick + 1);
        sources.push(if peers[1].downlink.private_last_tick {
            'P'
        } else {
            'S'
        });
    }
    let switches = sources.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        switches >= 5,
        "B moved between streams: {}",
        sources.iter().collect::<String>()
    );

    let heard = peers[1].heard();
    let frames: Vec<(f64, f64)> = heard
        .chunks(FRAME)
        .skip(10)
        .map(|f| tone_and_residual_db(f, 440.0))
        .collect();
    let mut levels: Vec<f64> = frames.iter().map(|f| f.0).collect();
    levels.sort_by(f64::total_cmp);
    let median = levels[levels.len() / 2];
    let mut report = String::new();
    let mut bad_frames = Vec::new();
    for (i, (level, residual)) in frames.iter().enumerate() {
        let tick = i + 10;
        if (level - median).abs() > 3.0 || *residual > -20.0 {
            bad_frames.push(tick);
            report += &format!(
                "tick {tick} ({}): tone {level:.1} dB (median {median:.1}), rest {residual:.1} dB\n",
                sources[tick.min(sources.len() - 1)]
            );
        }
    }
    if std::env::var_os("AUDIOROOM_TEST_REPORT").is_some() {
        for (i, (level, residual)) in frames.iter().enumerate() {
            eprintln!(
                "{} {} {level:.1} {residual:.1}",
                i + 10,
                sources[(i + 10).min(sources.len() - 1)]
            );
        }
    }
    // Not one frame with a gap or a click: the listener's own encoder takes over from the
    // shared one (and the shared one tolerates the way back).
    assert!(
        bad_frames.is_empty(),
        "{} disturbed frames over {switches} switches:\n{report}",
        bad_frames.len()
    );
    assert!(
        frames.iter().all(|f| f.0 > median - 6.0),
        "a frame lost the tone:\n{report}"
    );
}
