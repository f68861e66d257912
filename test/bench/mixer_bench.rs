//! Mixer-only benchmark (no Janus, no sockets): one room's `RoomMix::tick` for N participants
//! of whom T talk, fed the same pre-encoded Opus the load generator sends, timed against the
//! codec floor (decode T talker packets + encode T+1 mixes per 20 ms at the same complexity).
//!
//!   cargo build --release --examples
//!   target/release/examples/mixer_bench --participants 100 --talkers 3
//!   target/release/examples/mixer_bench --participants 10 --talkers 2 --floor-only --json
//!   valgrind --tool=callgrind target/release/examples/mixer_bench -n 30 -t 3 --ticks 200 --no-floor
//!
//! The run is deterministic (fixed signals, fixed tick count, no clocks in the mixed path), so
//! two callgrind runs with the same arguments count the same instructions (to within the
//! random SSRCs the RTP headers get).

#[path = "common.rs"]
mod common;
#[path = "noise.rs"]
mod noise;
#[path = "profiles.rs"]
mod profiles;

use audioroom::locks::OrderedMutex;
use audioroom::media::codec::{Decoder, Encoder, EncoderProfile, MAX_OPUS_PACKET};
use audioroom::media::downlink::Downlink;
use audioroom::media::jitter::{JitterQueue, Mode, PacketHeader};
use audioroom::media::speech::SpeechGate;
use audioroom::media::voice::Voice;
use audioroom::mixer::speakers::MixPolicy;
use audioroom::mixer::tick::{Member, PacketSink, RoomMix, TickReport};
use common::*;
use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

/// Ticks mixed before timing starts (fills the pre-buffers, settles the encoders).
const WARMUP_TICKS: usize = 50;

struct Peer {
    voice: Voice,
    gate: SpeechGate,
    downlink: Downlink,
    queue: OrderedMutex<JitterQueue>,
    frames: Arc<Vec<Frame>>,
    ssrc: u32,
    seq: u16,
    pos: usize,
    talker: bool,
}

#[derive(Default)]
struct CountingSink {
    packets: Cell<u64>,
    bytes: Cell<u64>,
}

impl PacketSink for CountingSink {
    fn send(&self, packet: &[u8]) {
        self.packets.set(self.packets.get() + 1);
        self.bytes.set(self.bytes.get() + packet.len() as u64);
    }
}

struct Options {
    participants: usize,
    talkers: usize,
    ticks: usize,
    complexity: u8,
    /// A fixed pre-buffer, or the adaptive jitter buffer (the plugin's default).
    prebuffer: Option<u32>,
    json: bool,
    floor: bool,
    mixer: bool,
    /// One tick per 20 ms of real time (cold caches between ticks, as in Janus).
    paced: bool,
    /// What the listeners send (profiles.rs); the sip profile's packets carry no level.
    profile: profiles::Profile,
    /// Mix everyone, as AudioBridge does (the room option `mix_all`).
    mix_all: bool,
}

fn parse_options() -> Options {
    let mut o = Options {
        participants: 10,
        talkers: 2,
        ticks: 1500,
        complexity: 4,
        prebuffer: None,
        json: false,
        floor: true,
        mixer: true,
        paced: false,
        profile: profiles::Profile::Silence,
        mix_all: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let value = |i: usize| -> &str {
        args.get(i + 1)
            .unwrap_or_else(|| panic!("{} needs a value", args[i]))
    };
    while i < args.len() {
        match args[i].as_str() {
            "-n" | "--participants" => o.participants = value(i).parse().expect("participants"),
            "-t" | "--talkers" => o.talkers = value(i).parse().expect("talkers"),
            "--ticks" => o.ticks = value(i).parse().expect("ticks"),
            "--complexity" | "--quality" => o.complexity = value(i).parse().expect("complexity"),
            "--prebuffer" => o.prebuffer = Some(value(i).parse().expect("prebuffer")),
            "--profile" => o.profile = value(i).parse().unwrap_or_else(|e: String| panic!("{e}")),
            "--json" => {
                o.json = true;
                i += 1;
                continue;
            }
            "--floor-only" => {
                o.mixer = false;
                i += 1;
                continue;
            }
            "--mix-all" => {
                o.mix_all = true;
                i += 1;
                continue;
            }
            "--paced" => {
                o.paced = true;
                i += 1;
                continue;
            }
            "--signals" => {
                print_signals();
                std::process::exit(0);
            }
            "--no-floor" => {
                o.floor = false;
                i += 1;
                continue;
            }
            "-h" | "--help" => {
                eprintln!(
                    "usage: mixer_bench [-n|--participants N=10] [-t|--talkers T=2] [--ticks K=1500]\n\
                     \x20                  [--complexity C=4] [--prebuffer P (default: adaptive)] [--json] [--floor-only] [--no-floor] [--paced]\n\
                     \x20                  [--mix-all]   (mix every participant, as AudioBridge; default: speakers only)\n\
                     \x20                  [--profile silence|open-mic|sip]   (what the listeners send; default silence)\n\
                     \x20      mixer_bench --signals   (levels and sizes of what the participants send)"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other} (try --help)"),
        }
        i += 2;
    }
    assert!(
        o.talkers <= o.participants,
        "more talkers than participants"
    );
    assert!(o.complexity <= 10, "complexity is 0..=10");
    o
}

fn profile(complexity: u8) -> EncoderProfile {
    EncoderProfile {
        complexity,
        ..Default::default()
    }
}

fn talker_loops(talkers: usize) -> Vec<Arc<Vec<Frame>>> {
    let voices = talkers.clamp(1, 6);
    (0..voices).map(|i| Arc::new(talker_frames(i))).collect()
}

/// The mixer: returns (CPU µs per tick, wall µs per tick, average tick stats, packets sent).
fn run_mixer(o: &Options, loops: &[Arc<Vec<Frame>>]) -> (f64, f64, [f64; 3], u64, f64) {
    let listener_loops = o.profile.listener_loops();
    let mut peers: Vec<Peer> = (0..o.participants)
        .map(|i| {
            let talker = i < o.talkers;
            let listener = &listener_loops[i % listener_loops.len()];
            Peer {
                voice: Voice::new(RATE).expect("voice"),
                gate: SpeechGate::default(),
                downlink: Downlink::new(RATE, profile(o.complexity), PAYLOAD_TYPE)
                    .expect("downlink"),
                queue: OrderedMutex::leaf(
                    "queue",
                    JitterQueue::new(o.prebuffer.map_or(Mode::Adaptive, Mode::Fixed)),
                ),
                frames: if talker {
                    loops[i % loops.len()].clone()
                } else {
                    listener.clone()
                },
                ssrc: 0x1000 + i as u32,
                seq: (i * 1000) as u16,
                pos: if talker {
                    (i * 37) % LOOP_FRAMES
                } else if o.profile == profiles::Profile::Silence {
                    0 // as before profiles existed
                } else {
                    (i * 41) % listener.len() // as in loadgen: no two listeners in lock-step
                },
                talker,
            }
        })
        .collect();
    let sinks: Vec<CountingSink> = (0..o.participants)
        .map(|_| CountingSink::default())
        .collect();
    let mut mix = RoomMix::new(RATE);
    let mut totals = [0u64; 3];
    let level = o.profile.audio_level();
    let policy = MixPolicy {
        mix_all: o.mix_all,
        ..MixPolicy::default()
    };
    let ticks = std::cell::Cell::new(0u64);
    let step = |peers: &mut Vec<Peer>, mix: &mut RoomMix| -> TickReport {
        // Simulated time: every packet arrives 5 ms after it was sent, mixed 5 ms later.
        let tick = ticks.get();
        ticks.set(tick + 1);
        for p in peers.iter_mut() {
            let f = &p.frames[p.pos];
            let header = PacketHeader {
                ssrc: p.ssrc,
                sequence: p.seq,
                timestamp: tick as u32 * 960,
            };
            let level = level.then_some(f.level);
            p.queue
                .lock()
                .push(header, &f.payload, level, tick * 20_000 + 5_000);
            p.seq = p.seq.wrapping_add(1);
            p.pos = (p.pos + 1) % p.frames.len();
        }
        let mut members: Vec<Member> = peers
            .iter_mut()
            .zip(&sinks)
            .map(|(p, sink)| {
                Member::new(&mut p.voice, &mut p.gate, &mut p.downlink, &p.queue, sink)
            })
            .collect();
        mix.tick(&mut members, &policy, tick * 20_000 + 10_000)
    };
    for _ in 0..WARMUP_TICKS {
        step(&mut peers, &mut mix);
    }
    let packets_before: u64 = sinks.iter().map(|s| s.packets.get()).sum();
    let cpu0 = thread_cpu();
    let wall0 = Instant::now();
    let mut deadline = Instant::now();
    // When each paced tick finished, i.e. when its packets would leave: the spacing a listener
    // would see from the mixer alone on this machine (no Janus, no sockets).
    let mut finished: Vec<Instant> = Vec::with_capacity(o.ticks);
    for _ in 0..o.ticks {
        if o.paced {
            deadline += std::time::Duration::from_millis(20);
            if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let s = step(&mut peers, &mut mix);
        if o.paced {
            finished.push(Instant::now());
        }
        totals[0] += s.speakers as u64;
        totals[1] += s.private_encodes as u64;
        totals[2] += s.shared_encodes as u64;
    }
    let mut spacing_ms: Vec<f64> = finished
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1e3)
        .collect();
    spacing_ms.sort_by(f64::total_cmp);
    let spacing = |q: f64| {
        spacing_ms
            .get(((spacing_ms.len().max(1) - 1) as f64 * q) as usize)
            .copied()
    };
    PACED_SPACING.with(|c| c.set((spacing(0.5), spacing(0.99))));
    let cpu = thread_cpu() - cpu0;
    let wall = wall0.elapsed().as_secs_f64();
    let packets = sinks.iter().map(|s| s.packets.get()).sum::<u64>() - packets_before;
    let bytes: u64 = sinks.iter().map(|s| s.bytes.get()).sum();
    let per_tick = |x: u64| x as f64 / o.ticks as f64;
    let _ = peers.iter().filter(|p| p.talker).count();
    (
        cpu / o.ticks as f64 * 1e6,
        wall / o.ticks as f64 * 1e6,
        [
            per_tick(totals[0]),
            per_tick(totals[1]),
            per_tick(totals[2]),
        ],
        packets,
        bytes as f64 / sinks.iter().map(|s| s.packets.get()).sum::<u64>().max(1) as f64,
    )
}

/// The codec floor: per tick, decode every talker's packet and encode talkers+1 mixes (each
/// talker's mix-minus and the full mix) with libopus at the given complexity. Returns CPU µs
/// per tick.
fn run_floor(o: &Options, loops: &[Arc<Vec<Frame>>]) -> f64 {
    if o.talkers == 0 {
        return 0.0;
    }
    let t = o.talkers;
    let mut decoders: Vec<Decoder> = (0..t).map(|_| Decoder::new(RATE).unwrap()).collect();
    let mut encoders: Vec<Encoder> = (0..=t)
        .map(|_| Encoder::new(RATE, profile(o.complexity)).unwrap())
        .collect();
    let mut positions: Vec<usize> = (0..t).map(|i| (i * 37) % LOOP_FRAMES).collect();
    let mut pcm = vec![vec![0i16; FRAME * 6]; t];
    let mut total = vec![0i32; FRAME];
    let mut mixed = vec![0i16; FRAME];
    let mut packet = [0u8; MAX_OPUS_PACKET];
    let mut step = || {
        total.fill(0);
        for i in 0..t {
            let frames = &loops[i % loops.len()];
            let f = &frames[positions[i]];
            positions[i] = (positions[i] + 1) % frames.len();
            decoders[i].decode(&f.payload, &mut pcm[i]).unwrap();
            for (s, &x) in total.iter_mut().zip(&pcm[i][..FRAME]) {
                *s += x as i32;
            }
        }
        for (e, enc) in encoders.iter_mut().enumerate() {
            for (k, m) in mixed.iter_mut().enumerate() {
                let own = if e < t { pcm[e][k] as i32 } else { 0 };
                *m = (total[k] - own).clamp(-32768, 32767) as i16;
            }
            std::hint::black_box(enc.encode(&mixed, &mut packet).unwrap());
        }
    };
    for _ in 0..WARMUP_TICKS {
        step();
    }
    let cpu0 = thread_cpu();
    let mut deadline = Instant::now();
    for _ in 0..o.ticks {
        if o.paced {
            deadline += std::time::Duration::from_millis(20);
            if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        step();
    }
    (thread_cpu() - cpu0) / o.ticks as f64 * 1e6
}

/// What the talkers and listeners send: audio levels and packet sizes of each voice's loop.
fn print_signals() {
    let show = |name: String, frames: &[Frame]| {
        let mut levels: Vec<f64> = frames.iter().map(|f| f.level as f64).collect();
        levels.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let bytes =
            frames.iter().map(|f| f.payload.len()).sum::<usize>() as f64 / frames.len() as f64;
        let voiced = levels.iter().filter(|&&l| l < 50.0).count() as f64 / levels.len() as f64;
        println!(
            "{name}: {} frames, RFC 6464 level min {} / p50 {} / max {}, {:.0} % of frames louder than -50 dBov, {:.1} bytes of Opus per packet",
            frames.len(),
            levels[0],
            percentile(&levels, 50.0),
            levels[levels.len() - 1],
            voiced * 100.0,
            bytes
        );
    };
    for i in 0..6 {
        show(format!("talker voice {i}"), &talker_frames(i));
    }
    show("listener (silence)".into(), &silence_frames());
    for v in 0..noise::NOISE_VARIANTS {
        show(
            format!("listener (room noise {v}, open-mic and sip)"),
            &noise::noise_frames(v),
        );
    }
}

thread_local! {
    /// p50 and p99 spacing (ms) of the last paced mixer run.
    static PACED_SPACING: std::cell::Cell<(Option<f64>, Option<f64>)> = const { std::cell::Cell::new((None, None)) };
}

fn main() {
    let o = parse_options();
    let loops = talker_loops(o.talkers);
    let floor = if o.floor {
        Some(run_floor(&o, &loops))
    } else {
        None
    };
    let mixer = if o.mixer {
        Some(run_mixer(&o, &loops))
    } else {
        None
    };
    // Per participant-second: a tick serves N participants for 20 ms.
    let per_participant_second =
        |us_per_tick: f64| us_per_tick * 1e-6 * 50.0 / o.participants.max(1) as f64;
    if o.json {
        let mut v = serde_json::json!({
            "participants": o.participants,
            "talkers": o.talkers,
            "ticks": o.ticks,
            "complexity": o.complexity,
            "prebuffer": o.prebuffer.map_or("adaptive".to_string(), |n| n.to_string()),
            "rate": RATE,
        });
        if let Some(f) = floor {
            v["floor_us_per_tick"] = f.into();
            v["floor_cpu_s_per_participant_s"] = per_participant_second(f).into();
        }
        if let Some((cpu, wall, s, packets, bytes)) = mixer {
            v["mixer_us_per_tick"] = cpu.into();
            v["mixer_wall_us_per_tick"] = wall.into();
            v["mixer_cpu_s_per_participant_s"] = per_participant_second(cpu).into();
            v["speakers_per_tick"] = s[0].into();
            v["private_encodes_per_tick"] = s[1].into();
            v["shared_encodes_per_tick"] = s[2].into();
            v["packets_per_tick"] = (packets as f64 / o.ticks as f64).into();
            v["bytes_per_packet"] = bytes.into();
            if let Some(f) = floor {
                v["mixer_over_floor"] = (cpu / f).into();
            }
            if o.paced {
                let (p50, p99) = PACED_SPACING.with(|c| c.get());
                v["paced_spacing_p50_ms"] = p50.into();
                v["paced_spacing_p99_ms"] = p99.into();
            }
        }
        println!("{v}");
        return;
    }
    println!(
        "room of {} participants, {} talking; 48 kHz, Opus complexity {}, prebuffer {}; {} ticks of 20 ms",
        o.participants,
        o.talkers,
        o.complexity,
        o.prebuffer
            .map_or("adaptive".to_string(), |n| n.to_string()),
        o.ticks
    );
    if let Some(f) = floor {
        println!(
            "codec floor  (decode {} + encode {} per tick): {:9.1} µs/tick  = {:.3} ms CPU per participant-second",
            o.talkers,
            o.talkers + 1,
            f,
            per_participant_second(f) * 1e3
        );
    }
    if let Some((cpu, wall, s, packets, _)) = mixer {
        println!(
            "RoomMix::tick (CPU {:.1} µs, wall {:.1} µs)        : {:9.1} µs/tick  = {:.3} ms CPU per participant-second",
            cpu,
            wall,
            cpu,
            per_participant_second(cpu) * 1e3
        );
        println!(
            "  per tick: {:.2} voices mixed, {:.2} private encodes, {:.2} shared encodes, {:.1} packets sent",
            s[0],
            s[1],
            s[2],
            packets as f64 / o.ticks as f64
        );
        if let Some(f) = floor {
            if f > 0.0 {
                println!("  mixer / floor = {:.2}", cpu / f);
            }
        }
    }
}
