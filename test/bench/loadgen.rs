//! Load generator for the Janus benchmark (test/bench/README.md): plain-RTP participants that
//! send real Opus at real-time pace on loopback and measure the mixes they get back.
//!
//! One thread and one UDP socket on 127.0.0.1 serve every participant: the socket is the `rtp`
//! address each participant gives in its `join`, packets are sent from it to each
//! participant's plugin socket, and the mixes coming back are told apart by their source (each
//! participant has its own plugin socket, in both plugins). Sends follow absolute deadlines:
//! each participant sends every 20 ms in its own 1 ms slot, so the 20 ms period is spread.
//! At each slot the thread drains its non-blocking socket, then sleeps until the next slot.
//!
//! It never sleeps *on* the socket: on loopback the sender of a datagram pays for waking a
//! process that waits on the receiving socket (on a VM, an inter-processor interrupt), so a
//! load generator blocked in poll() would bill Janus for a wake-up per mix sent, which a peer
//! behind a network card never does. Arrivals are timed by the kernel (SO_TIMESTAMPNS, stamped
//! when the plugin's datagram reached our socket), so reading up to 1 ms later does not blur the
//! measured spacing.
//!
//! What listeners send depends on `--profile` (`profiles.rs`): encoded digital silence flagged
//! level 127, room noise with its level, or room noise without the audio-level extension.
//!
//! Protocol (stdin/stdout, line by line), driven by bench.py and capacity.py:
//!   loadgen --profile open-mic|sip|silence --talkers K --warmup S --window S [--ext-id 1]
//!   → prints `port <P>` once the loops are encoded and the socket is bound
//!   ← `p <talker index or -1> <plugin ip> <plugin port>` per participant, then either
//!   ← `go`: everyone starts sending; `window-start` after the warm-up, `window-end` after the
//!     window, then one JSON line with what was received during the window; sending then
//!     stops but the socket stays open until stdin closes (the fixed scenarios), or
//!   ← `add`: the participants declared since the last `add` start sending, and keep sending;
//!     more `p` lines and `add` may follow at any time (the capacity run);
//!   ← `measure <warm-up s> <window s>`: as after `go`, but sending goes on afterwards;
//!   ← `quit`, or stdin closing: exit.

#[path = "common.rs"]
mod common;
#[path = "noise.rs"]
mod noise;
#[path = "profiles.rs"]
mod profiles;
#[path = "udp.rs"]
mod udp;

use common::*;
use profiles::Profile;
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};
use udp::*;

const SLOTS: u32 = 20;
const SLOT: Duration = Duration::from_millis(1);
const PERIOD: Duration = Duration::from_millis(20);
/// Send slots in the order participants added one room at a time (`add`) take them: each
/// prefix is spread over the period about as evenly as it can be.
const SPREAD: [u32; SLOTS as usize] = [
    0, 10, 5, 15, 2, 12, 7, 17, 4, 14, 9, 19, 1, 11, 6, 16, 3, 13, 8, 18,
];

struct Participant {
    dest: SocketAddr,
    talker: Option<usize>,
    frames: Arc<Vec<Frame>>,
    ssrc: u32,
    seq: u16,
    ts: u32,
    pos: usize,
    sent: u64,
    // Window statistics of what comes back.
    received: u64,
    bytes: u64,
    wrong_pt: u64,
    first_seq: Option<u64>,
    highest_seq: u64,
    last_seq16: u16,
    reordered: u64,
    /// Kernel receive timestamp of the last mix (CLOCK_REALTIME; only differences are used).
    last_arrival: Option<Duration>,
    gaps_ms: Vec<f32>,
}

impl Participant {
    fn reset_window(&mut self) {
        self.received = 0;
        self.bytes = 0;
        self.wrong_pt = 0;
        self.first_seq = None;
        self.reordered = 0;
        self.gaps_ms.clear();
    }

    /// Counts one mix that came back: sequence (lost, reordered), payload type, spacing.
    fn record_mix(&mut self, packet: &[u8], at: Duration, in_window: bool) {
        if packet.len() < 12 || packet[0] >> 6 != 2 {
            self.wrong_pt += 1;
            return;
        }
        if packet[1] & 0x7f != PAYLOAD_TYPE {
            self.wrong_pt += 1;
        }
        let seq16 = u16::from_be_bytes([packet[2], packet[3]]);
        // Extend the sequence number relative to the highest seen.
        match self.first_seq {
            None => {
                let ext = 1u64 << 32 | seq16 as u64;
                self.first_seq = Some(ext);
                self.highest_seq = ext;
            }
            Some(_) => {
                let delta = seq16.wrapping_sub(self.last_seq16) as i16 as i64;
                let ext = (self.highest_seq as i64 + delta) as u64;
                if ext > self.highest_seq {
                    self.highest_seq = ext;
                } else {
                    self.reordered += 1;
                }
            }
        }
        self.last_seq16 = (self.highest_seq & 0xffff) as u16;
        if let Some(last) = self.last_arrival {
            if in_window {
                self.gaps_ms
                    .push((at.saturating_sub(last).as_secs_f64() * 1e3) as f32);
            }
        }
        self.last_arrival = Some(at);
        self.received += 1;
        self.bytes += packet.len() as u64;
    }
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

fn stats(mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    serde_json::json!({
        "p50": percentile(&v, 50.0),
        "p99": percentile(&v, 99.0),
        "max": v.last().copied().unwrap_or(f64::NAN),
        "n": v.len(),
    })
}

fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A measurement window: announced at `starts`, reported at `ends`.
struct Window {
    starts: Instant,
    ends: Instant,
    /// Stop sending once reported (the fixed scenarios' `go`).
    then_stop: bool,
    started: Option<Instant>,
    cpu_at_start: f64,
    drops_at_start: u64,
}

/// Everything the single thread owns.
struct Generator {
    profile: Profile,
    ext_id: Option<u8>,
    socket: std::net::UdpSocket,
    port: u16,
    talker_loops: Vec<Arc<Vec<Frame>>>,
    listener_loops: Vec<Arc<Vec<Frame>>>,
    listeners_declared: usize,
    participants: Vec<Participant>,
    /// Participants `[..active]` send; those declared after them wait for `go` or `add`.
    active: usize,
    by_source: HashMap<SocketAddr, usize>,
    slots: Vec<Vec<usize>>,
    window_capacity: usize,
    send_late_ms: Vec<f64>,
    send_errors: u64,
    unknown_source: u64,
}

impl Generator {
    fn declare(&mut self, talker: &str, ip: &str, port: &str, seed: u32) {
        let ip: IpAddr = ip.parse().expect("participant ip");
        assert!(
            ip.is_loopback(),
            "the load generator only talks to loopback"
        );
        let talker: i64 = talker.parse().expect("talker index");
        let talker = usize::try_from(talker).ok();
        let index = self.participants.len();
        let (frames, pos) = match talker {
            Some(t) => (
                self.talker_loops[t % self.talker_loops.len()].clone(),
                (index * 37) % LOOP_FRAMES,
            ),
            None => {
                // Listener j plays loop j mod variants from its own frame, so no two listeners
                // send the same samples at the same time.
                let j = self.listeners_declared;
                self.listeners_declared += 1;
                let frames = self.listener_loops[j % self.listener_loops.len()].clone();
                let pos = if self.profile == Profile::Silence {
                    0
                } else {
                    (j * 41 + j / 200) % frames.len()
                };
                (frames, pos)
            }
        };
        self.participants.push(Participant {
            dest: SocketAddr::new(ip, port.parse().expect("participant port")),
            talker,
            frames,
            ssrc: seed,
            seq: (seed >> 16) as u16,
            ts: seed.rotate_left(7),
            pos,
            sent: 0,
            received: 0,
            bytes: 0,
            wrong_pt: 0,
            first_seq: None,
            highest_seq: 0,
            last_seq16: 0,
            reordered: 0,
            last_arrival: None,
            gaps_ms: Vec::with_capacity(self.window_capacity),
        });
    }

    /// The declared participants start sending. `evenly`: all at once (`go`), spread exactly
    /// over the period; otherwise each new one takes the next slot of `SPREAD`.
    fn activate(&mut self, evenly: bool) {
        let n = self.participants.len();
        for i in self.active..n {
            let slot = if evenly {
                (i as u32 * SLOTS) / n as u32
            } else {
                SPREAD[i % SLOTS as usize]
            };
            self.slots[slot as usize].push(i);
            self.by_source.insert(self.participants[i].dest, i);
        }
        self.active = n;
    }

    fn send_slot(&mut self, slot: u32, late_ms: f64, in_window: bool) {
        let mut packet = [0u8; 1600];
        for &i in &self.slots[slot as usize] {
            let p = &mut self.participants[i];
            let frame = &p.frames[p.pos];
            let len = rtp_packet(
                &mut packet,
                p.seq,
                p.ts,
                p.ssrc,
                self.ext_id,
                frame,
                p.sent == 0,
            );
            if self.socket.send_to(&packet[..len], p.dest).is_err() {
                self.send_errors += 1;
            }
            p.sent += 1;
            p.seq = p.seq.wrapping_add(1);
            p.ts = p.ts.wrapping_add(FRAME_TICKS);
            p.pos = (p.pos + 1) % p.frames.len();
            if in_window {
                self.send_late_ms.push(late_ms);
            }
        }
    }

    fn drain(&mut self, in_window: bool) {
        let mut buf = [0u8; 2048];
        while let Some((len, from, at)) = receive(&self.socket, &mut buf) {
            let Some(&i) = self.by_source.get(&from) else {
                self.unknown_source += 1;
                continue;
            };
            self.participants[i].record_mix(&buf[..len], at, in_window);
        }
    }

    fn start_window(&mut self, w: &mut Window, now: Instant) {
        w.started = Some(now);
        w.cpu_at_start = process_cpu();
        w.drops_at_start = socket_drops(self.port).unwrap_or(0);
        for p in self.participants.iter_mut() {
            p.reset_window();
        }
        self.send_late_ms.clear();
        self.send_errors = 0;
        self.unknown_source = 0;
    }

    /// What was received during the window, one JSON object.
    fn report(&mut self, w: &Window) -> serde_json::Value {
        let window_s = w.started.expect("window started").elapsed().as_secs_f64();
        let cpu = process_cpu() - w.cpu_at_start;
        let drops = socket_drops(self.port).map(|d| d.saturating_sub(w.drops_at_start));
        let mut all_gaps: Vec<f64> = Vec::new();
        let mut per = Vec::new();
        let mut pps: Vec<f64> = Vec::new();
        for (i, p) in self.participants[..self.active].iter().enumerate() {
            let expected = p.first_seq.map(|f| p.highest_seq - f + 1).unwrap_or(0);
            let lost = expected.saturating_sub(p.received);
            let rate = p.received as f64 / window_s;
            pps.push(rate);
            let mut g: Vec<f64> = p.gaps_ms.iter().map(|&x| x as f64).collect();
            all_gaps.extend_from_slice(&g);
            g.sort_by(|a, b| a.partial_cmp(b).unwrap());
            per.push(serde_json::json!({
                "index": i,
                "talker": p.talker.is_some(),
                "pps": rate,
                "received": p.received,
                "lost": lost,
                "reordered": p.reordered,
                "wrong_pt": p.wrong_pt,
                "bytes_per_packet": if p.received > 0 { p.bytes as f64 / p.received as f64 } else { 0.0 },
                "spacing_p50_ms": percentile(&g, 50.0),
                "spacing_p99_ms": percentile(&g, 99.0),
                "spacing_max_ms": g.last().copied().unwrap_or(f64::NAN),
            }));
        }
        let n = pps.len().max(1);
        serde_json::json!({
            "profile": self.profile.name(),
            "participants": self.active,
            "window_s": window_s,
            "pps": {
                "min": pps.iter().cloned().fold(f64::INFINITY, f64::min),
                "mean": pps.iter().sum::<f64>() / n as f64,
                "max": pps.iter().cloned().fold(0.0, f64::max),
            },
            "spacing_ms": stats(all_gaps),
            "send_late_ms": stats(std::mem::take(&mut self.send_late_ms)),
            "send_errors": self.send_errors,
            "unknown_source_packets": self.unknown_source,
            "loadgen_cpu_s": cpu,
            "loadgen_socket_drops": drops,
            "per_participant": per,
        })
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!(
            "usage: loadgen [--profile silence|open-mic|sip] --talkers K --warmup SECONDS --window SECONDS [--ext-id 1]"
        );
        eprintln!("see the comment at the top of test/bench/loadgen.rs for the stdin protocol");
        return;
    }
    let profile: Profile = arg(&args, "--profile", "silence".to_string())
        .parse()
        .unwrap_or_else(|e: String| panic!("{e}"));
    let talkers: usize = arg(&args, "--talkers", 1);
    let warmup: f64 = arg(&args, "--warmup", 5.0);
    let window_s: f64 = arg(&args, "--window", 10.0);
    let ext_id: u8 = arg(&args, "--ext-id", 1);

    // Talker loops (at most 6 distinct voices; talkers in different rooms may share one) and
    // the listeners' loops, all encoded in parallel before anything is sent.
    let voices = talkers.clamp(1, 6);
    let (talker_loops, listener_loops) = std::thread::scope(|s| {
        let listeners = s.spawn(move || profile.listener_loops());
        let handles: Vec<_> = (0..voices)
            .map(|i| s.spawn(move || Arc::new(talker_frames(i))))
            .collect();
        let talkers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (talkers, listeners.join().unwrap())
    });

    let socket = bind_loopback();
    let port = socket.local_addr().unwrap().port();
    let mut g = Generator {
        profile,
        ext_id: profile.audio_level().then_some(ext_id),
        socket,
        port,
        talker_loops,
        listener_loops,
        listeners_declared: 0,
        participants: Vec::new(),
        active: 0,
        by_source: HashMap::new(),
        slots: vec![Vec::new(); SLOTS as usize],
        window_capacity: (window_s * 55.0) as usize,
        send_late_ms: Vec::new(),
        send_errors: 0,
        unknown_source: 0,
    };
    say(&format!("port {port}"));

    let commands: Receiver<String> = stdin_lines();
    let mut seed = 0x1234_5678u32;
    // The send clock starts with the first `go` or `add`.
    let mut clock: Option<Instant> = None;
    let mut sending = false;
    let mut tick: u64 = 0;
    let mut slot: u32 = 0;
    let mut next_send = Instant::now();
    let mut window: Option<Window> = None;

    'run: loop {
        // Commands: wait for them while nothing is sent, poll them otherwise.
        loop {
            let line = if sending {
                match commands.try_recv() {
                    Ok(l) => l,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => break 'run,
                }
            } else {
                match commands.recv_timeout(Duration::from_millis(5)) {
                    Ok(l) => l,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => break 'run,
                }
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            let now = Instant::now();
            match words.as_slice() {
                ["p", talker, ip, port] => {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    g.declare(talker, ip, port, seed);
                }
                ["go"] => {
                    assert!(g.participants.len() > g.active, "no participants");
                    g.activate(true);
                    window = Some(Window {
                        starts: now + Duration::from_secs_f64(warmup),
                        ends: now + Duration::from_secs_f64(warmup + window_s),
                        then_stop: true,
                        started: None,
                        cpu_at_start: 0.0,
                        drops_at_start: 0,
                    });
                }
                ["add"] => g.activate(false),
                ["measure", w, s] => {
                    let w: f64 = w.parse().expect("warm-up seconds");
                    let s: f64 = s.parse().expect("window seconds");
                    window = Some(Window {
                        starts: now + Duration::from_secs_f64(w),
                        ends: now + Duration::from_secs_f64(w + s),
                        then_stop: false,
                        started: None,
                        cpu_at_start: 0.0,
                        drops_at_start: 0,
                    });
                }
                ["quit"] => break 'run,
                [] => {}
                _ => panic!("unexpected input: {line}"),
            }
            if matches!(words.as_slice(), ["go"] | ["add"]) && !sending {
                sending = true;
                let start = *clock.get_or_insert(now);
                next_send = start + PERIOD * tick as u32 + SLOT * slot;
            }
        }

        let now = Instant::now();
        if let Some(w) = window.as_mut() {
            if w.started.is_none() && now >= w.starts {
                g.start_window(w, now);
                say("window-start");
                continue;
            }
            if w.started.is_some() && now >= w.ends {
                let w = window.take().unwrap();
                if w.then_stop {
                    sending = false;
                }
                let report = g.report(&w);
                say("window-end");
                say(&report.to_string());
                continue;
            }
        }
        let in_window = window.as_ref().is_some_and(|w| w.started.is_some());
        if sending && now >= next_send {
            let late = (now - next_send).as_secs_f64() * 1e3;
            g.send_slot(slot, late, in_window);
            slot += 1;
            if slot == SLOTS {
                slot = 0;
                tick += 1;
            }
            next_send = clock.unwrap() + PERIOD * tick as u32 + SLOT * slot;
            continue;
        }
        g.drain(in_window);
        if sending {
            let mut deadline = next_send;
            if let Some(w) = &window {
                deadline = deadline.min(if w.started.is_some() {
                    w.ends
                } else {
                    w.starts
                });
            }
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        }
    }
    // Reaching here means stdin closed (or `quit`): the driver has torn the rooms down, so the
    // plugins' last mixes are not answered with ICMP "port unreachable".
}
