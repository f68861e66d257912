//! The mixer stepped tick by tick on real Opus frames of synthetic tones and room noise: what
//! each listener hears is decoded and measured by Goertzel, as a person in the room would
//! judge it.

use super::*;
use crate::media::codec::test_signals::{goertzel_db, noise, rms_db, tone, tone_and_residual_db};
use crate::media::codec::{Decoder, Encoder, EncoderProfile, MAX_OPUS_PACKET};
use crate::media::downlink::CONVERGING_FRAMES;
use crate::media::jitter::{Mode, PacketHeader};
use crate::media::rtp;
use crate::media::speech::frame_level;
use std::cell::RefCell;

const RATE: u32 = 48000;
const FRAME: usize = 960;

/// A participant in a test room: what it sends, and everything it is sent.
struct TestPeer {
    freq: f64,
    amplitude: f64,
    encoder: Encoder,
    voice: Voice,
    gate: SpeechGate,
    downlink: Downlink,
    queue: OrderedMutex<JitterQueue>,
    sends: bool,
    volume_percent: u32,
    /// Ticks in which this peer talks; outside them it sends `between`. `None`: always as
    /// constructed.
    talks_in: Option<fn(usize) -> bool>,
    between: Between,
    /// Packets carry RFC 6464 levels computed from the signal, as browsers send them; without,
    /// as SIP gateways send.
    levels: bool,
    /// A different noise for every peer.
    seed: u64,
    received: Capture,
}

/// What a peer sends when it does not talk.
#[derive(Clone, Copy)]
enum Between {
    /// Nothing at all.
    Nothing,
    /// Digital silence (level 127): a browser whose user is quiet, with a perfect microphone.
    Silence,
    /// An open microphone in a room: noise at this RMS (dBFS).
    Noise(f64),
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
            gate: SpeechGate::default(),
            downlink: Downlink::new(
                RATE,
                EncoderProfile {
                    bitrate: Some(64000),
                    ..Default::default()
                },
                111,
            )
            .unwrap(),
            queue: OrderedMutex::leaf("queue", JitterQueue::new(Mode::Adaptive)),
            sends: true,
            volume_percent: 100,
            talks_in: None,
            between: Between::Silence,
            levels: true,
            seed: (freq * 1000.0 + amplitude) as u64,
            received: Capture::default(),
        }
    }

    /// Listens and sends nothing.
    fn silent() -> Self {
        TestPeer {
            between: Between::Nothing,
            ..Self::new(0.0, 0.0)
        }
    }

    /// An open microphone in a quiet room: noise at `dbfs`, with levels or without.
    fn noisy(seed: u64, dbfs: f64, levels: bool) -> Self {
        TestPeer {
            between: Between::Noise(dbfs),
            levels,
            seed: seed + 1,
            ..Self::new(0.0, 0.0)
        }
    }

    /// Sends this tick's frame: its tone while talking, else what it sends between.
    fn send_frame(&mut self, tick: usize) {
        let talking = match self.talks_in {
            Some(talks) => talks(tick),
            None => self.amplitude > 0.0,
        };
        let pcm = match (talking, self.between) {
            (true, _) => tone(RATE, self.freq, self.amplitude, tick * FRAME, FRAME),
            (false, Between::Nothing) => return,
            (false, Between::Silence) => vec![0; FRAME],
            (false, Between::Noise(dbfs)) => noise(self.seed * 100_000 + tick as u64, dbfs, FRAME),
        };
        self.send_pcm(tick, &pcm);
    }

    fn send_pcm(&mut self, tick: usize, pcm: &[i16]) {
        let level = self.levels.then(|| frame_level(pcm));
        let mut packet = [0u8; MAX_OPUS_PACKET];
        let len = self.encoder.encode(pcm, &mut packet).unwrap();
        let header = PacketHeader {
            ssrc: 42,
            sequence: tick as u16,
            timestamp: tick as u32 * 960,
        };
        // Sent at its tick, here 5 ms later: a clean path.
        let arrival = tick as u64 * 20_000 + 5_000;
        self.queue
            .lock()
            .push(header, &packet[..len], level, arrival);
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

/// Runs `ticks` ticks of a room of `peers` with the default mixing; returns the stats of the
/// last tick.
fn run(mix: &mut RoomMix, peers: &mut [TestPeer], ticks: std::ops::Range<usize>) -> TickReport {
    run_with(mix, peers, ticks, &MixPolicy::default())
}

fn run_with(
    mix: &mut RoomMix,
    peers: &mut [TestPeer],
    ticks: std::ops::Range<usize>,
    policy: &MixPolicy,
) -> TickReport {
    let mut stats = TickReport::default();
    for tick in ticks {
        for p in peers.iter_mut() {
            p.send_frame(tick);
        }
        stats = step(mix, peers, policy, tick);
    }
    stats
}

/// Tick `tick` with what the peers have queued.
fn step(mix: &mut RoomMix, peers: &mut [TestPeer], policy: &MixPolicy, tick: usize) -> TickReport {
    let mut members: Vec<Member> = peers
        .iter_mut()
        .map(|p| {
            let mut m = Member::new(
                &mut p.voice,
                &mut p.gate,
                &mut p.downlink,
                &p.queue,
                &p.received,
            );
            m.sends = p.sends;
            m.volume_percent = p.volume_percent;
            m
        })
        .collect();
    mix.tick(&mut members, policy, tick as u64 * 20_000 + 10_000)
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
    peers[2].sends = false;
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
            decoded: 1,
            private_encodes: 1,
            shared_encodes: 1,
            forwarded: 0,
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
    peers[1].sends = false;
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

#[test]
fn a_listener_moving_between_its_own_stream_and_the_shared_one_hears_no_gap_or_click() {
    moving_between_streams(Between::Silence);
}

#[test]
fn a_speaker_going_quiet_in_a_noisy_room_hears_no_gap_or_click() {
    moving_between_streams(Between::Noise(-55.0));
}

fn moving_between_streams(between: Between) {
    // A talks all along; B talks in bursts and sends `between` in between (digital silence, or
    // its open microphone's room noise); C only listens. B hears A's tone throughout, from its
    // own stream while it speaks (and for the hangover after) and from the shared stream while
    // it does not.
    let mut mix = RoomMix::new(RATE);
    let mut peers = vec![
        TestPeer::new(440.0, 8000.0),
        TestPeer::new(1000.0, 8000.0),
        TestPeer::silent(),
    ];
    peers[1].talks_in = Some(|tick| (tick / 40) % 2 == 0);
    peers[1].between = between;
    // What participants get by default (libopus picks the bitrate), where a careless switch
    // is audible.
    for peer in &mut peers {
        peer.downlink = Downlink::new(RATE, EncoderProfile::default(), 111).unwrap();
    }
    let mut sources = Vec::new();
    for tick in 0..240 {
        run(&mut mix, &mut peers, tick..tick + 1);
        sources.push(if peers[1].downlink.private_last_tick() {
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
        .map(|f| tone_and_residual_db(f, RATE, 440.0))
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

// ---- Speaker gating: rooms of open microphones -------------------------------------------------

/// Ticks in which the three talkers of `open_mic_room` speak.
fn bursts(tick: usize) -> bool {
    (20..70).contains(&tick) || (120..170).contains(&tick)
}

/// Three talkers (tones, speaking in bursts, room noise between) and 27 listeners whose open
/// microphones send noise at -55 dBFS; with RFC 6464 levels (browsers) or without (SIP).
fn open_mic_room(levels: bool) -> Vec<TestPeer> {
    let mut peers: Vec<TestPeer> = [440.0, 1000.0, 2000.0]
        .iter()
        .map(|&f| TestPeer {
            talks_in: Some(bursts),
            between: Between::Noise(-55.0),
            levels,
            ..TestPeer::new(f, 6000.0)
        })
        .collect();
    peers.extend((0..27).map(|i| TestPeer::noisy(i, -55.0, levels)));
    peers
}

/// Runs `open_mic_room` for 200 ticks; returns every tick's report and what listener 10 heard.
fn run_open_mic_room(levels: bool, policy: &MixPolicy) -> (Vec<TickReport>, Vec<i16>) {
    let mut mix = RoomMix::new(RATE);
    let mut peers = open_mic_room(levels);
    let reports = (0..200)
        .map(|tick| run_with(&mut mix, &mut peers, tick..tick + 1, policy))
        .collect();
    (reports, peers[10].heard())
}

fn frames(heard: &[i16], ticks: std::ops::Range<usize>) -> &[i16] {
    &heard[ticks.start * FRAME..ticks.end * FRAME]
}

#[test]
fn a_room_of_open_microphones_mixes_only_its_talkers() {
    let gated = MixPolicy::default();
    let everyone = MixPolicy {
        mix_all: true,
        ..MixPolicy::default()
    };
    for levels in [true, false] {
        let (reports, heard) = run_open_mic_room(levels, &gated);
        let (_, heard_all) = run_open_mic_room(levels, &everyone);
        let what = if levels {
            "with levels"
        } else {
            "without levels (SIP)"
        };

        // Exactly the speakers' private encodes and one shared encode every tick, but for the
        // few frames a speaker who stops converges on the shared stream (media::downlink).
        let mut converging_until = 0;
        let mut extra = 0;
        for (tick, r) in reports.iter().enumerate() {
            assert_eq!(r.shared_encodes, 1, "tick {tick} {what}: {r:?}");
            if tick > 0 && r.speakers < reports[tick - 1].speakers {
                converging_until = tick + CONVERGING_FRAMES as usize;
            }
            if tick >= converging_until {
                assert_eq!(r.private_encodes, r.speakers, "tick {tick} {what}: {r:?}");
            }
            extra += r.private_encodes - r.speakers;
        }
        assert_eq!(extra, 2 * 3 * CONVERGING_FRAMES as usize, "{what}");
        let talking = reports[40];
        assert_eq!(talking.speakers, 3, "{what}: {talking:?}");
        // With levels only the speakers are decoded; without, the listeners' packets would have
        // to be decoded to be measured, but for those their own encoder flags as without voice.
        let decoded: usize = reports[100..110].iter().map(|r| r.decoded).sum();
        assert_eq!(talking.decoded, 3, "{what}");
        assert!(
            decoded <= 30,
            "{what}: {decoded} decodes in 10 quiet ticks of 30 open mics"
        );
        assert_eq!(
            reports[100].speakers, 0,
            "{what}: nobody speaks between bursts"
        );

        // Every listener hears the three tones.
        for f in [440.0, 1000.0, 2000.0] {
            let level = goertzel_db(frames(&heard, 30..70), RATE, f);
            assert!(level > -22.0, "{what}: {f} Hz at {level:.1} dB");
        }
        // Between the bursts (after the hangover): the noise of 30 open microphones is gone.
        let floor = rms_db(frames(&heard, 95..115));
        let floor_all = rms_db(frames(&heard_all, 95..115));
        assert!(
            floor < floor_all - 20.0,
            "{what}: noise floor {floor:.1} dB, mixing everyone {floor_all:.1} dB"
        );
        assert!(
            floor_all > -45.0,
            "{what}: 30 x -55 dBFS sum to about -40 dB: {floor_all:.1}"
        );
    }
}

#[test]
fn a_word_keeps_its_onset_and_its_tail() {
    a_word_keeps_its_onset_and_its_tail_when(true);
}

#[test]
fn a_word_keeps_its_onset_and_its_tail_without_levels() {
    a_word_keeps_its_onset_and_its_tail_when(false);
}

fn a_word_keeps_its_onset_and_its_tail_when(levels: bool) {
    // The talker speaks from tick 20 to 69; its word then fades to -52 dBFS (below the gate's
    // threshold) for 300 ms before the room noise returns.
    let make = || {
        let mut talker = TestPeer::new(700.0, 6000.0);
        talker.levels = levels;
        let listener = TestPeer::noisy(1, -60.0, true);
        vec![talker, listener]
    };
    let run_word = |policy: &MixPolicy| {
        let mut mix = RoomMix::new(RATE);
        let mut peers = make();
        for tick in 0..110 {
            let pcm = match tick {
                20..70 => tone(RATE, 700.0, 6000.0, tick * FRAME, FRAME),
                70..85 => tone(RATE, 700.0, 82.0, tick * FRAME, FRAME),
                _ => noise(99 + tick as u64, -60.0, FRAME),
            };
            peers[0].send_pcm(tick, &pcm);
            peers[1].send_frame(tick);
            step(&mut mix, &mut peers, policy, tick);
        }
        peers[1].heard()
    };
    let gated = run_word(&MixPolicy::default());
    let all = run_word(&MixPolicy {
        mix_all: true,
        ..MixPolicy::default()
    });
    let tone_at =
        |heard: &[i16], tick: usize| goertzel_db(frames(heard, tick..tick + 1), RATE, 700.0);
    // The first 20 ms of the word: as loud as when everyone is mixed.
    let (onset, onset_all) = (tone_at(&gated, 20), tone_at(&all, 20));
    assert!(onset > -30.0, "the onset is heard: {onset:.1} dB");
    assert!(
        (onset - onset_all).abs() < 1.0,
        "onset {onset:.1} vs {onset_all:.1} dB"
    );
    // 200 ms after the word: its tail is still mixed (hangover).
    let (tail, tail_all) = (tone_at(&gated, 80), tone_at(&all, 80));
    assert!(
        (tail - tail_all).abs() < 1.0,
        "tail {tail:.1} vs {tail_all:.1} dB"
    );
    assert!(tail > -60.0, "the tail is there: {tail:.1} dB");
    // 500 ms after: the gate is closed, the room noise stays out.
    let (after, after_all) = (
        rms_db(frames(&gated, 95..110)),
        rms_db(frames(&all, 95..110)),
    );
    assert!(
        after < after_all - 20.0,
        "closed: {after:.1} vs {after_all:.1} dB"
    );
}

#[test]
fn at_most_max_speakers_the_loudest_are_mixed() {
    let freqs = [400.0, 700.0, 1100.0, 1500.0, 2100.0, 2900.0];
    let amplitudes = [8000.0, 1500.0, 7000.0, 6000.0, 1000.0, 5000.0];
    let mut mix = RoomMix::new(RATE);
    let mut peers: Vec<TestPeer> = freqs
        .iter()
        .zip(amplitudes)
        .map(|(&f, a)| TestPeer::new(f, a))
        .collect();
    peers.push(TestPeer::silent());
    let policy = MixPolicy {
        max_speakers: 4,
        ..MixPolicy::default()
    };
    let report = run_with(&mut mix, &mut peers, 0..100, &policy);
    assert_eq!((report.speakers, report.private_encodes), (4, 4));
    let heard = levels(&peers[6], &freqs);
    for (i, level) in heard.iter().enumerate() {
        if amplitudes[i] >= 5000.0 {
            assert!(
                *level > -20.0,
                "{} Hz is among the loudest: {heard:?}",
                freqs[i]
            );
        } else {
            assert!(*level < -50.0, "{} Hz is left out: {heard:?}", freqs[i]);
        }
    }
}
