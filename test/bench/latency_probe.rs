//! Latency probe (test/bench/README.md, "Latency"): one plain-RTP talker and one plain-RTP
//! listener in a room. The talker sends tone bursts that start exactly on frame boundaries
//! (`tone.rs`); the listener sends room noise (`noise.rs`) and decodes the mix it gets back.
//! Added latency of a burst = arrival of the mix packet in which the burst starts (kernel
//! receive timestamp, SO_TIMESTAMPNS) + the onset's position inside that packet − the time the
//! talker's first burst packet was due to be sent (its 20 ms deadline, before any delay this
//! probe adds to imitate a network). Each packet's samples are timed from its arrival, as a
//! receiver that plays a packet the moment it comes would hear them; so the figure includes
//! the Opus algorithmic delay of two encode/decode passes (talker→plugin, plugin→listener),
//! which the probe also measures without any plugin and reports as `codec_reference_ms`.
//!
//! Paths (`--path`): `clean`; `jitter` (each talker packet delayed by a uniform 0-40 ms, so
//! packets can arrive reordered); `spike` (every 10 s, the packets of a 200 ms window are held
//! back and released together at its end). The spike windows fall between bursts, 400 ms after
//! one starts, so each burst's latency shows the state the plugin was left in.
//!
//! Several listeners may hear the one talker (`p -2`, `p -3`, ...: the cascade benchmark puts
//! them on linked servers, cascade.py): each is analysed alone, and the JSON line gives every
//! listener's analysis under `listeners` (the first listener's is also the line's own).
//!
//! Protocol (stdin/stdout), driven by latency.py and cascade.py:
//!   latency_probe --path clean|jitter|spike --warmup S --duration S [--burst-period-ms 1000]
//!                 [--burst-ms 200] [--jitter-ms 40] [--spike-every-s 10] [--spike-ms 200]
//!   → `port <P>` once the loops are encoded and the socket is bound
//!   ← `p 0 <ip> <port>` (the talker's plugin socket), `p -1 <ip> <port>` (the listener's;
//!     `p -2 ...`, `p -3 ...` for more listeners), `go`
//!   → `window-start` when the warm-up ends, `window-end` when the last counted burst has had
//!     time to come out, then one JSON line; the socket stays open until stdin closes.

#[path = "common.rs"]
mod common;
#[path = "noise.rs"]
mod noise;
#[path = "tone.rs"]
mod tone;
#[path = "udp.rs"]
mod udp;

use audioroom::media::codec::{Decoder, EncoderProfile};
use common::*;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use udp::*;

const FRAME_MS: u64 = 20;
/// Counted bursts stop this long before the end, so the last one has time to come out.
const TAIL: Duration = Duration::from_millis(1500);
/// The listener sends half a period after the talker.
const LISTENER_OFFSET: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Clean,
    Jitter,
    Spike,
}

struct Options {
    path: Path,
    warmup: f64,
    duration: f64,
    burst_frames: usize,
    period_frames: usize,
    jitter_ms: f64,
    spike_every_frames: u64,
    spike_frames: u64,
    ext_id: u8,
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("bad value for {name}: {v}"))
        })
        .unwrap_or(default)
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!(
            "usage: latency_probe --path clean|jitter|spike --warmup S --duration S [--burst-period-ms 1000] [--burst-ms 200] [--jitter-ms 40] [--spike-every-s 10] [--spike-ms 200] [--ext-id 1]"
        );
        eprintln!(
            "see the comment at the top of test/bench/latency_probe.rs for the stdin protocol"
        );
        std::process::exit(0);
    }
    let path = match arg(&args, "--path", "clean".to_string()).as_str() {
        "clean" => Path::Clean,
        "jitter" => Path::Jitter,
        "spike" => Path::Spike,
        other => panic!("unknown path {other} (clean, jitter, spike)"),
    };
    let frames = |ms: u64| (ms / FRAME_MS).max(1);
    let o = Options {
        path,
        warmup: arg(&args, "--warmup", 3.0),
        duration: arg(&args, "--duration", 20.0),
        burst_frames: frames(arg(&args, "--burst-ms", 200)) as usize,
        period_frames: frames(arg(&args, "--burst-period-ms", 1000)) as usize,
        jitter_ms: arg(&args, "--jitter-ms", 40.0),
        spike_every_frames: frames(arg::<u64>(&args, "--spike-every-s", 10) * 1000),
        spike_frames: frames(arg(&args, "--spike-ms", 200)),
        ext_id: arg(&args, "--ext-id", 1),
    };
    assert!(o.burst_frames <= 10, "at most 10 burst frames (200 ms)");
    assert!(
        o.period_frames >= o.burst_frames + 15,
        "the burst period must leave at least 300 ms between bursts"
    );
    o
}

/// One sent talker packet: frame number, when it was due (CLOCK_REALTIME), how late it left
/// after the time this probe wanted it to leave (its due time plus any delay added).
struct Sent {
    due: Duration,
    late_ms: f64,
}

/// One mix packet the listener got.
struct Arrival {
    seq: u64,
    at: Duration,
    payload: Vec<u8>,
}

fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn percentiles(mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(|a, b| a.total_cmp(b));
    serde_json::json!({
        "p50": percentile(&v, 50.0),
        "p90": percentile(&v, 90.0),
        "p99": percentile(&v, 99.0),
        "max": v.last().copied(),
        "n": v.len(),
    })
}

/// The onset delay and the burst-frame check through two Opus passes and no plugin: the
/// talker's own packets decoded, re-encoded as a plugin would (complexity 4, bitrate left to
/// libopus), decoded again. Two loops, the second measured (decoder and encoder warm).
fn codec_reference(talker: &[Frame], burst: usize) -> (Option<f64>, usize) {
    let mut first = Decoder::new(RATE).expect("decoder");
    let mut pcm = vec![0i16; FRAME * 6];
    let mut decoded = Vec::new();
    for f in talker.iter().chain(talker) {
        let n = first.decode(&f.payload, &mut pcm).expect("decode");
        decoded.extend_from_slice(&pcm[..n]);
    }
    let plugin = EncoderProfile {
        complexity: 4,
        ..Default::default()
    };
    let again = encode(&decoded, plugin);
    let mut second = Decoder::new(RATE).expect("decoder");
    let mut out = Vec::new();
    for f in &again {
        let n = second.decode(&f.payload, &mut pcm).expect("decode");
        out.extend_from_slice(&pcm[..n]);
    }
    let loop_start = talker.len() * FRAME;
    let Some(&onset) = tone::onsets(&out)
        .iter()
        .find(|&&n| n + FRAME >= loop_start)
    else {
        return (None, burst);
    };
    let broken = (0..burst)
        .filter(|&m| !tone::frame_intact(&out, onset + m * FRAME, burst, m))
        .count();
    (
        Some((onset as f64 - loop_start as f64) / RATE as f64 * 1e3),
        broken,
    )
}

fn main() {
    let o = options();
    // The talker's loop is one burst period, encoded twice in a row and the second copy kept,
    // so the loop's seam sounds like any other period.
    let period_pcm = tone::talker_period(o.burst_frames, o.period_frames, 7);
    let twice: Vec<i16> = period_pcm.iter().chain(&period_pcm).copied().collect();
    let talker: Vec<Frame> = encode(&twice, sender_profile()).split_off(o.period_frames);
    let (codec_ms, codec_broken) = codec_reference(&talker, o.burst_frames);

    let socket = bind_loopback();
    say(&format!("port {}", socket.local_addr().unwrap().port()));
    let mut talker_dest = None;
    // Listener j (`p -(j+1) ...`), where its mixes come from.
    let mut listener_dests: Vec<Option<SocketAddr>> = Vec::new();
    let commands = stdin_lines();
    for line in commands.iter() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["go"] => break,
            ["p", role, ip, port] => {
                let ip: IpAddr = ip.parse().expect("ip");
                assert!(ip.is_loopback(), "the probe only talks to loopback");
                let dest = SocketAddr::new(ip, port.parse().expect("port"));
                let role: i64 = role.parse().expect("role: 0 or -1, -2, ...");
                if role == 0 {
                    talker_dest = Some(dest);
                } else {
                    let j = (-role - 1) as usize;
                    if listener_dests.len() <= j {
                        listener_dests.resize(j + 1, None);
                    }
                    listener_dests[j] = Some(dest);
                }
            }
            [] => {}
            _ => panic!("unexpected input: {line}"),
        }
    }
    let talker_dest = talker_dest.expect("no talker (p 0 ...)");
    let listener_dests: Vec<SocketAddr> = listener_dests
        .into_iter()
        .enumerate()
        .map(|(j, d)| d.unwrap_or_else(|| panic!("no listener p -{}", j + 1)))
        .collect();
    assert!(!listener_dests.is_empty(), "no listener (p -1 ...)");
    // Each listener its own room-noise loop.
    let listeners: Vec<Vec<Frame>> = (0..listener_dests.len()).map(noise::noise_frames).collect();

    let period = Duration::from_millis(FRAME_MS);
    let start = Instant::now() + Duration::from_millis(20);
    let counted_from = start + Duration::from_secs_f64(o.warmup);
    let counted_until = counted_from + Duration::from_secs_f64(o.duration);
    let end = counted_until + TAIL;
    // First burst frame that counts, and the spikes: 400 ms after the burst two periods later,
    // then every spike period.
    let first_counted = (o.warmup * 50.0).ceil() as u64;
    let first_burst = first_counted.div_ceil(o.period_frames as u64) * o.period_frames as u64;
    let first_spike = first_burst + 2 * o.period_frames as u64 + 20;
    let spike_of = |k: u64| -> Option<u64> {
        if o.path != Path::Spike || k < first_spike {
            return None;
        }
        let s = (k - first_spike) / o.spike_every_frames;
        let from = first_spike + s * o.spike_every_frames;
        (k < from + o.spike_frames).then_some(from + o.spike_frames)
    };
    let mut dice = Noise::new(99);
    let mut pending: BinaryHeap<Reverse<(Instant, u64, Duration)>> = BinaryHeap::new();
    let mut sent: Vec<Sent> = Vec::new();
    let mut spikes_released: Vec<Duration> = Vec::new();
    let mut arrivals: Vec<Vec<Arrival>> = listener_dests.iter().map(|_| Vec::new()).collect();
    let mut talker_mixes = 0u64;
    let mut unknown = 0u64;
    let (mut k, mut l) = (0u64, 0u64);
    let mut buf = [0u8; 2048];
    let mut packet = [0u8; 1600];
    let ssrc_t = 0x7a1c_0001u32;
    let mut window_started = false;

    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if !window_started && now >= counted_from {
            window_started = true;
            say("window-start");
        }
        // The talker's frame k is due: decide when it leaves.
        let due = start + period * k as u32;
        if now >= due {
            let release = match o.path {
                Path::Clean => due,
                Path::Jitter => {
                    due + Duration::from_secs_f64((dice.next() + 1.0) / 2.0 * o.jitter_ms / 1e3)
                }
                Path::Spike => spike_of(k).map_or(due, |f| start + period * f as u32),
            };
            // The due time on the receive timestamps' clock.
            let due_real = realtime_now().saturating_sub(now - due);
            pending.push(Reverse((release, k, due_real)));
            sent.push(Sent {
                due: due_real,
                late_ms: f64::NAN,
            });
            if spike_of(k).is_some() && spike_of(k + 1).is_none() {
                spikes_released.push(due_real + (release - due));
            }
            k += 1;
            continue;
        }
        let listener_due = start + period * l as u32 + LISTENER_OFFSET;
        if now >= listener_due {
            for (j, (loop_, dest)) in listeners.iter().zip(&listener_dests).enumerate() {
                let frame = &loop_[l as usize % loop_.len()];
                let len = rtp_packet(
                    &mut packet,
                    l as u16,
                    (l as u32).wrapping_mul(FRAME_TICKS),
                    0x7a1c_0002 + j as u32,
                    Some(o.ext_id),
                    frame,
                    l == 0,
                );
                let _ = socket.send_to(&packet[..len], dest);
            }
            l += 1;
            continue;
        }
        while let Some(Reverse((release, frame_no, _))) = pending.peek().copied() {
            if release > now {
                break;
            }
            pending.pop();
            let frame = &talker[frame_no as usize % talker.len()];
            let len = rtp_packet(
                &mut packet,
                frame_no as u16,
                (frame_no as u32).wrapping_mul(FRAME_TICKS),
                ssrc_t,
                Some(o.ext_id),
                frame,
                frame_no == 0,
            );
            let _ = socket.send_to(&packet[..len], talker_dest);
            sent[frame_no as usize].late_ms = (Instant::now() - release).as_secs_f64() * 1e3;
        }
        while let Some((len, from, at)) = receive(&socket, &mut buf) {
            let listener = listener_dests.iter().position(|d| *d == from);
            if let (Some(j), true) = (listener, len > 12) {
                let cc = (buf[0] & 0x0f) as usize;
                let mut offset = 12 + 4 * cc;
                if buf[0] & 0x10 != 0 && len >= offset + 4 {
                    offset +=
                        4 + 4 * u16::from_be_bytes([buf[offset + 2], buf[offset + 3]]) as usize;
                }
                if offset < len {
                    arrivals[j].push(Arrival {
                        seq: u16::from_be_bytes([buf[2], buf[3]]) as u64,
                        at,
                        payload: buf[offset..len].to_vec(),
                    });
                }
            } else if from == talker_dest {
                talker_mixes += 1;
            } else {
                unknown += 1;
            }
        }
        let mut wake = (start + period * k as u32).min(start + period * l as u32 + LISTENER_OFFSET);
        if let Some(Reverse((release, _, _))) = pending.peek() {
            wake = wake.min(*release);
        }
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
    say("window-end");

    let analysed: Vec<serde_json::Value> = arrivals
        .iter()
        .enumerate()
        .map(|(j, heard)| {
            analyse(
                &o,
                &sent,
                heard,
                first_burst,
                (counted_from, counted_until, start),
                &spikes_released,
                j,
            )
        })
        .collect();
    let mut result = analysed[0].clone();
    if analysed.len() > 1 {
        result["listeners"] = serde_json::Value::Array(analysed);
    }
    let late: Vec<f64> = sent
        .iter()
        .map(|s| s.late_ms)
        .filter(|x| x.is_finite())
        .collect();
    let obj = result.as_object_mut().unwrap();
    obj.insert("codec_reference_ms".into(), serde_json::json!(codec_ms));
    obj.insert(
        "codec_reference_broken_frames".into(),
        serde_json::json!(codec_broken),
    );
    obj.insert("talker_send_late_ms".into(), percentiles(late));
    obj.insert(
        "talker_mixes_received".into(),
        serde_json::json!(talker_mixes),
    );
    obj.insert("unknown_source_packets".into(), serde_json::json!(unknown));
    say(&result.to_string());
    // Keep the socket until the driver has torn the room down (stdin closes).
    for _ in commands.iter() {}
}

/// Decodes listener `listener`'s mix and finds every counted burst in it.
fn analyse(
    o: &Options,
    sent: &[Sent],
    arrivals: &[Arrival],
    first_burst: u64,
    (counted_from, counted_until, start): (Instant, Instant, Instant),
    spikes: &[Duration],
    listener: usize,
) -> serde_json::Value {
    // The mix in sequence order (the plugins' packets do not reorder on loopback, but be
    // sure), each packet timed by its arrival; a missing packet is concealed, timed 20 ms
    // after the one before it.
    let mut order: Vec<(u64, usize)> = Vec::new();
    let mut highest: Option<u64> = None;
    for (i, a) in arrivals.iter().enumerate() {
        let ext = match highest {
            None => (1u64 << 32) + a.seq,
            Some(h) => {
                let delta = (a.seq as u16).wrapping_sub(h as u16) as i16 as i64;
                (h as i64 + delta) as u64
            }
        };
        highest = Some(highest.map_or(ext, |h| h.max(ext)));
        order.push((ext, i));
    }
    order.sort();
    order.dedup_by_key(|x| x.0);
    let mut decoder = Decoder::new(RATE).expect("decoder");
    let mut pcm: Vec<i16> = Vec::new();
    let mut times: Vec<Duration> = Vec::new();
    let mut scratch = vec![0i16; FRAME * 6];
    let mut mix_lost = 0u64;
    let mut previous: Option<(u64, Duration)> = None;
    for &(seq, i) in &order {
        if let Some((p, at)) = previous {
            // More than a second missing is a restart, not loss: nothing to conceal.
            let gaps = if seq - p > 50 { 1 } else { seq - p };
            for gap in 1..gaps {
                mix_lost += 1;
                let n = decoder.conceal(&mut scratch).unwrap_or(FRAME);
                pcm.extend_from_slice(&scratch[..n]);
                times.push(at + Duration::from_millis(FRAME_MS * gap));
            }
        }
        let n = decoder
            .decode(&arrivals[i].payload, &mut scratch)
            .unwrap_or(0);
        if n != FRAME {
            // Not a 20 ms packet: keep the timeline in 20 ms steps regardless.
            scratch[..FRAME].fill(0);
        }
        pcm.extend_from_slice(&scratch[..FRAME]);
        times.push(arrivals[i].at);
        previous = Some((seq, arrivals[i].at));
    }

    // For looking at what the listener heard: LATENCY_PROBE_PCM=file.raw (s16le, 48 kHz mono;
    // listeners after the first in file.raw.2, file.raw.3, ...).
    if let Ok(file) = std::env::var("LATENCY_PROBE_PCM") {
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        let file = match listener {
            0 => file,
            j => format!("{file}.{}", j + 1),
        };
        let _ = std::fs::write(file, bytes);
    }

    // The counted bursts: frame numbers of their first frames, due times of each frame.
    let burst = o.burst_frames;
    let from_frame = (counted_from - start).as_millis() as u64 / FRAME_MS;
    let until_frame = (counted_until - start).as_millis() as u64 / FRAME_MS;
    let bursts: Vec<u64> = (first_burst..until_frame)
        .step_by(o.period_frames)
        .filter(|&b| b >= from_frame && (b + burst as u64) < sent.len() as u64)
        .collect();
    let due = |b: u64, i: usize| sent[(b + i as u64) as usize].due;

    struct Found {
        latency_ms: f64,
        first_frame: usize,
        onset: usize,
    }
    let mut found: Vec<Option<Found>> = bursts.iter().map(|_| None).collect();
    let mut extra_onsets = 0u64;
    for onset in tone::onsets(&pcm) {
        let packet = onset / FRAME;
        let at = times[packet] + Duration::from_secs_f64((onset % FRAME) as f64 / RATE as f64);
        // Which burst frame starts here (the first ones may have been concealed away)?
        let first_frame = tone::frame_tone(&pcm, onset, burst)
            .filter(|&(_, a)| a >= tone::AMPLITUDE / 2.0)
            .map_or(0, |(i, _)| i);
        // The latest counted burst whose frame was due before this onset.
        let Some(bi) = bursts.iter().rposition(|&b| due(b, first_frame) <= at) else {
            continue;
        };
        let latency = at.saturating_sub(due(bursts[bi], first_frame));
        if latency.as_secs_f64() * 50.0 >= o.period_frames as f64 || found[bi].is_some() {
            extra_onsets += 1;
            continue;
        }
        found[bi] = Some(Found {
            latency_ms: latency.as_secs_f64() * 1e3,
            first_frame,
            onset,
        });
    }

    let mut series = Vec::new();
    let mut latencies = Vec::new();
    let mut concealed_total = 0usize;
    for (bi, &b) in bursts.iter().enumerate() {
        let origin = due(b, 0);
        let since_spike = spikes
            .iter()
            .rev()
            .find(|&&s| s <= origin)
            .map(|&s| (origin - s).as_secs_f64() * 1e3);
        let (latency, first_frame, concealed) = match &found[bi] {
            Some(f) => {
                let intact = (f.first_frame..burst)
                    .filter(|&m| {
                        tone::frame_intact(&pcm, f.onset + (m - f.first_frame) * FRAME, burst, m)
                    })
                    .count();
                latencies.push(f.latency_ms);
                (Some(f.latency_ms), Some(f.first_frame), burst - intact)
            }
            None => (None, None, burst),
        };
        concealed_total += concealed;
        series.push(serde_json::json!({
            "t_s": (origin.as_secs_f64() - sent[0].due.as_secs_f64()),
            "latency_ms": latency,
            "first_frame": first_frame,
            "concealed_frames": concealed,
            "ms_since_spike": since_spike,
        }));
    }
    let path = match o.path {
        Path::Clean => "clean",
        Path::Jitter => "jitter",
        Path::Spike => "spike",
    };
    serde_json::json!({
        "path": path,
        "bursts": bursts.len(),
        "bursts_detected": latencies.len(),
        "burst_frames": burst,
        "latency_ms": percentiles(latencies),
        "concealed_frames": concealed_total,
        "concealed_share": if bursts.is_empty() { f64::NAN } else {
            concealed_total as f64 / (bursts.len() * burst) as f64 },
        "extra_onsets": extra_onsets,
        "mix_packets": arrivals.len(),
        "mix_packets_lost": mix_lost,
        "spikes": spikes.len(),
        "series": series,
    })
}
