//! The tick with G.711 members, announcements and forwarders, stepped on synthetic tones: what
//! each listener (and each forwarder's receiver) hears is decoded and measured by Goertzel.

use super::*;
use crate::media::audio_codec::AudioCodec;
use crate::media::codec::test_signals::{goertzel_db, tone, tone_and_residual_db};
use crate::media::codec::{Decoder, Encoder, EncoderProfile, MAX_OPUS_PACKET};
use crate::media::jitter::{Mode, PacketHeader};
use crate::media::rtp;
use crate::media::speech::frame_level;
use std::cell::RefCell;

const RATE: u32 = 48000;
const FRAME: usize = 960;

#[derive(Default)]
struct Capture(RefCell<Vec<Vec<u8>>>);

impl PacketSink for Capture {
    fn send(&self, packet: &[u8]) {
        self.0.borrow_mut().push(packet.to_vec());
    }
}

/// A participant speaking `codec` both ways: sends its tone (when `talks(tick)`), and keeps
/// everything it is sent.
struct Peer {
    codec: AudioCodec,
    freq: f64,
    talks: fn(usize) -> bool,
    encoder: Encoder,
    voice: Voice,
    gate: SpeechGate,
    downlink: Downlink,
    queue: OrderedMutex<JitterQueue>,
    received: Capture,
}

impl Peer {
    fn new(codec: AudioCodec, freq: f64) -> Self {
        let pt = codec.static_payload_type().unwrap_or(111);
        Peer {
            codec,
            freq,
            talks: |_| true,
            encoder: Encoder::new(RATE, EncoderProfile::default()).unwrap(),
            voice: Voice::with_codec(RATE, codec).unwrap(),
            gate: SpeechGate::default(),
            downlink: Downlink::with_codec(RATE, codec, EncoderProfile::default(), pt).unwrap(),
            queue: OrderedMutex::leaf("queue", JitterQueue::new(Mode::Adaptive)),
            received: Capture::default(),
        }
    }

    fn listener(codec: AudioCodec) -> Self {
        Peer {
            talks: |_| false,
            ..Peer::new(codec, 0.0)
        }
    }

    fn send_frame(&mut self, tick: usize) {
        if self.freq == 0.0 {
            return;
        }
        let talking = (self.talks)(tick);
        let amplitude = if talking { 8000.0 } else { 0.0 };
        let (payload, clock_step) = match self.codec.law() {
            None => {
                let pcm = tone(RATE, self.freq, amplitude, tick * FRAME, FRAME);
                let mut packet = [0u8; MAX_OPUS_PACKET];
                let len = self.encoder.encode(&pcm, &mut packet).unwrap();
                (packet[..len].to_vec(), 960)
            }
            Some(law) => {
                let pcm = tone(8000, self.freq, amplitude, tick * 160, 160);
                let mut payload = vec![0u8; 160];
                law.encode(&pcm, &mut payload);
                (payload, 160)
            }
        };
        let level = frame_level(&tone(RATE, self.freq, amplitude, tick * FRAME, FRAME));
        let header = PacketHeader {
            ssrc: 7,
            sequence: tick as u16,
            timestamp: self.codec.timestamp_at_48k(tick as u32 * clock_step),
        };
        let arrival = tick as u64 * 20_000 + 5_000;
        self.queue
            .lock()
            .push(header, &payload, Some(level), arrival);
    }

    /// Everything received, decoded at its codec's rate, RTP numbering checked.
    fn heard(&self) -> (Vec<i16>, u32) {
        heard(self.codec, &self.received.0.borrow())
    }

    fn member(&mut self) -> Member<'_> {
        Member::new(
            &mut self.voice,
            &mut self.gate,
            &mut self.downlink,
            &self.queue,
            &self.received,
        )
    }
}

/// Decodes a stream of RTP packets of `codec`; returns the audio and its rate.
fn heard(codec: AudioCodec, packets: &[Vec<u8>]) -> (Vec<i16>, u32) {
    let mut out = Vec::new();
    let mut decoder = Decoder::new(RATE).unwrap();
    let mut pcm = vec![0i16; FRAME * 6];
    let mut last: Option<(u16, u32)> = None;
    for packet in packets {
        let p = rtp::parse(packet, None).unwrap();
        if let Some((seq, ts)) = last {
            assert_eq!(
                p.sequence,
                seq.wrapping_add(1),
                "continuous sequence numbers"
            );
            assert_eq!(
                p.timestamp,
                ts.wrapping_add(codec.frame_ticks()),
                "continuous timestamps"
            );
        }
        last = Some((p.sequence, p.timestamp));
        match codec.law() {
            None => {
                let n = decoder.decode(p.payload, &mut pcm).unwrap();
                out.extend_from_slice(&pcm[..n]);
            }
            Some(law) => {
                assert_eq!(p.payload.len(), 160, "20 ms of G.711");
                let mut frame = [0i16; 160];
                law.decode(p.payload, &mut frame);
                out.extend_from_slice(&frame);
            }
        }
    }
    let rate = if codec.law().is_some() { 8000 } else { RATE };
    (out, rate)
}

fn tail_levels(peer: &Peer, freqs: &[f64]) -> Vec<f64> {
    let (heard, rate) = peer.heard();
    let tail = &heard[heard.len() / 2..];
    freqs.iter().map(|&f| goertzel_db(tail, rate, f)).collect()
}

/// A forwarder of the tests: the payloads it is given, numbered in its own stream.
struct TestForwarder {
    key: StreamKey,
    codec: AudioCodec,
    stream: RefCell<crate::media::rtp::OutboundStream>,
    packets: RefCell<Vec<Vec<u8>>>,
}

impl TestForwarder {
    fn new(codec: AudioCodec) -> Self {
        let key = match codec.law() {
            None => StreamKey::Opus(EncoderProfile::default()),
            Some(law) => StreamKey::G711(law),
        };
        let mut stream = crate::media::rtp::OutboundStream::new();
        stream.set_frame_ticks(codec.frame_ticks());
        TestForwarder {
            key,
            codec,
            stream: RefCell::new(stream),
            packets: RefCell::default(),
        }
    }
}

impl ForwardSink for TestForwarder {
    fn key(&self) -> StreamKey {
        self.key
    }

    fn forward(&self, payload: &[u8]) {
        let mut packet = vec![0u8; 12];
        self.stream.borrow_mut().next_header(&mut packet, 100);
        packet.extend_from_slice(payload);
        self.packets.borrow_mut().push(packet);
    }
}

/// Ticks `ticks` with `peers`, an announcement of `announce` Hz (if any) and `forwarders`;
/// returns the last tick's report.
fn run(
    mix: &mut RoomMix,
    peers: &mut [Peer],
    ticks: std::ops::Range<usize>,
    announce: Option<f64>,
    forwarders: &[&dyn ForwardSink],
) -> TickReport {
    let mut report = TickReport::default();
    for tick in ticks {
        for p in peers.iter_mut() {
            p.send_frame(tick);
        }
        let frame = announce.map(|f| tone(RATE, f, 6000.0, tick * FRAME, FRAME));
        let sources: Vec<&[i16]> = frame.iter().map(|f| &f[..]).collect();
        let mut members: Vec<Member> = peers.iter_mut().map(Peer::member).collect();
        let now = tick as u64 * 20_000 + 10_000;
        report = mix.tick_with(
            &mut members,
            &sources,
            forwarders,
            &MixPolicy::default(),
            now,
        );
    }
    report
}

#[test]
fn g711_and_opus_participants_hear_each_other_and_not_themselves() {
    for codec in [AudioCodec::Pcmu, AudioCodec::Pcma] {
        let mut mix = RoomMix::new(RATE);
        let mut peers = vec![
            Peer::new(AudioCodec::Opus, 440.0),
            Peer::new(codec, 1000.0),
            Peer::listener(AudioCodec::Opus),
            Peer::listener(codec),
            Peer::listener(codec),
        ];
        let report = run(&mut mix, &mut peers, 0..100, None, &[]);
        let freqs = [440.0, 1000.0];
        let a = tail_levels(&peers[0], &freqs);
        let b = tail_levels(&peers[1], &freqs);
        let d = tail_levels(&peers[3], &freqs);
        let all = format!("{codec:?}: A {a:?} B {b:?} D {d:?}");
        assert!(a[1] > -17.0 && a[0] < -50.0, "{all}");
        assert!(b[0] > -17.0 && b[1] < -45.0, "{all}");
        assert!(d[0] > -17.0 && d[1] > -17.0, "{all}");
        // Two private encodes (the talkers), one shared Opus stream and one shared G.711
        // stream for the two G.711 listeners.
        assert_eq!(
            (report.private_encodes, report.shared_encodes),
            (2, 2),
            "{all}"
        );
        assert_eq!(peers[3].received.0.borrow().last().unwrap()[1] & 0x7f, {
            codec.static_payload_type().unwrap()
        });
    }
}

#[test]
fn a_g711_talker_moving_between_its_own_stream_and_the_shared_one_hears_no_gap_or_click() {
    let mut mix = RoomMix::new(RATE);
    let mut peers = vec![
        Peer::new(AudioCodec::Opus, 440.0),
        Peer::new(AudioCodec::Pcmu, 1000.0),
        Peer::listener(AudioCodec::Pcmu),
    ];
    peers[1].talks = |tick| (tick / 40) % 2 == 0;
    let mut sources = String::new();
    for tick in 0..240 {
        run(&mut mix, &mut peers, tick..tick + 1, None, &[]);
        sources.push(if peers[1].downlink.private_last_tick() {
            'P'
        } else {
            'S'
        });
    }
    let switches = sources
        .as_bytes()
        .windows(2)
        .filter(|w| w[0] != w[1])
        .count();
    assert!(switches >= 5, "B moved between streams: {sources}");
    let (heard, rate) = peers[1].heard();
    let mut bad = Vec::new();
    for (i, frame) in heard.chunks(160).enumerate().skip(10) {
        let (level, residual) = tone_and_residual_db(frame, rate, 440.0);
        // G.711's own noise is about 38 dB below the tone; a click or a gap is far louder.
        if !(-18.0..-10.0).contains(&level) || residual > -25.0 {
            bad.push(format!(
                "tick {i} ({}): {level:.1} dB, rest {residual:.1} dB",
                &sources[i..=i]
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} switches; disturbed:\n{}",
        switches,
        bad.join("\n")
    );
}

#[test]
fn an_announcement_is_heard_by_everyone_talkers_included() {
    let mut mix = RoomMix::new(RATE);
    let mut peers = vec![
        Peer::new(AudioCodec::Opus, 440.0),
        Peer::new(AudioCodec::Pcmu, 1000.0),
        Peer::listener(AudioCodec::Opus),
    ];
    run(&mut mix, &mut peers, 0..100, Some(3000.0), &[]);
    for (i, peer) in peers.iter().enumerate() {
        let heard = tail_levels(peer, &[3000.0]);
        assert!(
            heard[0] > -17.0,
            "peer {i} hears the announcement: {heard:?}"
        );
    }
    assert!(
        goertzel_db(mix.full_mix(), RATE, 3000.0) > -17.0,
        "and so does the recording"
    );
}

#[test]
fn forwarders_take_the_shared_streams_payload_without_an_encode_of_their_own() {
    let mut mix = RoomMix::new(RATE);
    let mut peers = vec![
        Peer::new(AudioCodec::Opus, 440.0),
        Peer::new(AudioCodec::Opus, 1000.0),
        Peer::listener(AudioCodec::Opus),
    ];
    let before = run(&mut mix, &mut peers, 0..50, None, &[]);
    let opus = TestForwarder::new(AudioCodec::Opus);
    let again = TestForwarder::new(AudioCodec::Opus);
    let forwarders: [&dyn ForwardSink; 2] = [&opus, &again];
    let after = run(&mut mix, &mut peers, 50..150, None, &forwarders);
    assert_eq!(
        before.shared_encodes, after.shared_encodes,
        "no encode of their own"
    );
    assert_eq!(after.forwarded, 2);
    // The same payload as the listener's, in the forwarder's own numbering.
    let listener = peers[2].received.0.borrow();
    let forwarded = opus.packets.borrow();
    assert_eq!(
        listener.last().unwrap()[12..],
        forwarded.last().unwrap()[12..]
    );
    let (pcm, rate) = heard(AudioCodec::Opus, &forwarded);
    assert_eq!(pcm.len(), 100 * FRAME);
    let tail = &pcm[pcm.len() / 2..];
    assert!(goertzel_db(tail, rate, 440.0) > -17.0 && goertzel_db(tail, rate, 1000.0) > -17.0);
}

#[test]
fn a_g711_forwarder_hears_the_full_mix_even_of_an_empty_room_with_an_announcement() {
    let mut mix = RoomMix::new(16000);
    let pcmu = TestForwarder::new(AudioCodec::Pcmu);
    for tick in 0..100 {
        let frame = tone(16000, 600.0, 6000.0, tick * 320, 320);
        let report = mix.tick_with(&mut [], &[&frame[..]], &[&pcmu], &MixPolicy::default(), 0);
        assert_eq!((report.shared_encodes, report.forwarded), (1, 1));
    }
    let (pcm, rate) = heard(pcmu.codec, &pcmu.packets.borrow());
    assert_eq!((pcm.len(), rate), (100 * 160, 8000));
    let level = goertzel_db(&pcm[4000..], rate, 600.0);
    assert!((level - goertzel_db(&tone(8000, 600.0, 6000.0, 0, 8000), 8000, 600.0)).abs() < 1.0);
}
