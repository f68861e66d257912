//! Load generator for the Janus benchmark (test/bench/README.md): plain-RTP participants that
//! send real Opus at real-time pace on loopback and measure the mixes they get back.
//!
//! One thread and one UDP socket on 127.0.0.1 serve every participant: the socket is the `rtp`
//! address each participant gives in its `join`, packets are sent from it to each
//! participant's plugin socket, and the mixes coming back are told apart by their source (each
//! participant has its own plugin socket, in both plugins). Sends follow absolute deadlines:
//! participant i sends every 20 ms in its own 1 ms slot, so the 20 ms period is spread evenly.
//! At each slot the thread drains its non-blocking socket, then sleeps until the next slot.
//!
//! It never sleeps *on* the socket: on loopback the sender of a datagram pays for waking a
//! process that waits on the receiving socket (on a VM, an inter-processor interrupt), so a
//! load generator blocked in poll() would bill Janus for a wake-up per mix sent, which a peer
//! behind a network card never does. Arrivals are timed by the kernel (SO_TIMESTAMPNS, stamped
//! when the plugin's datagram reached our socket), so reading up to 1 ms later does not blur the
//! measured spacing.
//!
//! Protocol (stdin/stdout, line by line), driven by bench.py:
//!   loadgen --talkers K --warmup S --window S
//!   → prints `port <P>` once the talker loops are encoded and the socket is bound
//!   ← `p <talker index or -1> <plugin ip> <plugin port>` per participant, then `go`
//!   → `window-start` after the warm-up, `window-end` after the window, then one JSON line
//!     with what was received during the window; it then stops sending but keeps its socket
//!     until stdin closes, and exits.

#[path = "common.rs"]
mod common;

use common::*;
use std::collections::HashMap;
use std::io::{self, BufRead, ErrorKind, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SLOTS: u32 = 20;
const SLOT: Duration = Duration::from_millis(1);
const PERIOD: Duration = Duration::from_millis(20);

struct Participant {
    dest: SocketAddr,
    talker: Option<usize>,
    frames: Arc<Vec<Frame>>,
    slot: u32,
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

fn set_socket_option(socket: &UdpSocket, option: libc::c_int, value: libc::c_int) {
    // SAFETY: a valid fd and a pointer to an int of the given length.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt {option}: {}", io::Error::last_os_error());
}

/// One datagram read without blocking: its length, source and kernel receive time; `None`
/// when the socket is empty.
fn receive(socket: &UdpSocket, buf: &mut [u8]) -> Option<(usize, SocketAddr, Duration)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: plain C structs for which all-zero is a valid value.
    let mut from: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut control = [0u64; 8];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: msg points at live buffers of the lengths it states.
    let len = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if len < 0 {
        let e = io::Error::last_os_error();
        match e.kind() {
            ErrorKind::WouldBlock => return None,
            // ICMP "port unreachable" from a closed plugin port: nothing to read, try again.
            ErrorKind::ConnectionRefused => return receive(socket, buf),
            _ => panic!("recvmsg: {e}"),
        }
    }
    let mut at = None;
    // SAFETY: walking the control buffer the kernel filled, with the libc macros.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::timespec);
                at = Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    let at = at.expect("SO_TIMESTAMPNS gave no timestamp");
    let source = SocketAddr::new(
        IpAddr::V4(Ipv4Addr::from(u32::from_be(from.sin_addr.s_addr))),
        u16::from_be(from.sin_port),
    );
    Some((len as usize, source, at))
}

/// Datagrams the kernel dropped on our socket (full receive buffer), from /proc/net/udp.
fn socket_drops(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let wanted = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().nth(1) == Some(wanted.as_str()))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
}

impl Participant {
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!("usage: loadgen --talkers K --warmup SECONDS --window SECONDS [--ext-id 1]");
        eprintln!("see the comment at the top of test/bench/loadgen.rs for the stdin protocol");
        return;
    }
    let talkers: usize = arg(&args, "--talkers", 1);
    let warmup: f64 = arg(&args, "--warmup", 5.0);
    let window: f64 = arg(&args, "--window", 10.0);
    let ext_id: u8 = arg(&args, "--ext-id", 1);

    // Talker loops (at most 6 distinct voices; talkers in different rooms may share one),
    // encoded in parallel, and the listeners' silence.
    let voices = talkers.clamp(1, 6);
    let loops: Vec<Arc<Vec<Frame>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..voices)
            .map(|i| s.spawn(move || Arc::new(talker_frames(i))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let silence = Arc::new(silence_frames());

    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1");
    set_socket_option(&socket, libc::SO_RCVBUF, 4 << 20);
    set_socket_option(&socket, libc::SO_SNDBUF, 4 << 20);
    set_socket_option(&socket, libc::SO_TIMESTAMPNS, 1);
    socket.set_nonblocking(true).expect("non-blocking socket");
    let port = socket.local_addr().unwrap().port();
    let stdout = io::stdout();
    let say = |line: &str| {
        let mut out = stdout.lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    say(&format!("port {port}"));

    let mut participants: Vec<Participant> = Vec::new();
    let mut seed = 0x1234_5678u32;
    for line in io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["go"] => break,
            ["p", talker, ip, port] => {
                let ip: IpAddr = ip.parse().expect("participant ip");
                assert!(
                    ip.is_loopback(),
                    "the load generator only talks to loopback"
                );
                let talker: i64 = talker.parse().expect("talker index");
                let talker = usize::try_from(talker).ok();
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                participants.push(Participant {
                    dest: SocketAddr::new(ip, port.parse().expect("participant port")),
                    talker,
                    frames: match talker {
                        Some(t) => loops[t % voices].clone(),
                        None => silence.clone(),
                    },
                    slot: 0,
                    ssrc: seed,
                    seq: (seed >> 16) as u16,
                    ts: seed.rotate_left(7),
                    pos: (participants.len() * 37) % LOOP_FRAMES,
                    sent: 0,
                    received: 0,
                    bytes: 0,
                    wrong_pt: 0,
                    first_seq: None,
                    highest_seq: 0,
                    last_seq16: 0,
                    reordered: 0,
                    last_arrival: None,
                    gaps_ms: Vec::with_capacity((window * 55.0) as usize),
                });
            }
            [] => {}
            _ => panic!("unexpected input: {line}"),
        }
    }
    let n = participants.len();
    assert!(n > 0, "no participants");
    for (i, p) in participants.iter_mut().enumerate() {
        p.slot = (i as u32 * SLOTS) / n as u32;
        if p.talker.is_none() {
            p.pos = 0;
        }
    }
    let by_source: HashMap<SocketAddr, usize> = participants
        .iter()
        .enumerate()
        .map(|(i, p)| (p.dest, i))
        .collect();
    // Slot → participants sending in it.
    let mut slots: Vec<Vec<usize>> = vec![Vec::new(); SLOTS as usize];
    for (i, p) in participants.iter().enumerate() {
        slots[p.slot as usize].push(i);
    }

    let start = Instant::now();
    let window_start_at = start + Duration::from_secs_f64(warmup);
    let window_end_at = window_start_at + Duration::from_secs_f64(window);
    let mut in_window = false;
    let mut window_started = start;
    let mut cpu_at_window = 0.0;
    let mut drops_at_window = 0;
    let mut tick: u64 = 0;
    let mut slot: u32 = 0;
    let mut next_send = start;
    let mut send_late_ms: Vec<f64> = Vec::new();
    let mut send_errors = 0u64;
    let mut unknown_source = 0u64;
    let mut packet = [0u8; 1600];
    let mut buf = [0u8; 2048];

    loop {
        let now = Instant::now();
        if !in_window && now >= window_start_at {
            in_window = true;
            window_started = now;
            say("window-start");
            cpu_at_window = process_cpu();
            drops_at_window = socket_drops(port).unwrap_or(0);
            for p in participants.iter_mut() {
                p.received = 0;
                p.bytes = 0;
                p.wrong_pt = 0;
                p.first_seq = None;
                p.reordered = 0;
                p.gaps_ms.clear();
            }
            send_late_ms.clear();
            send_errors = 0;
            unknown_source = 0;
            continue;
        }
        if in_window && now >= window_end_at {
            break;
        }
        if now >= next_send {
            let late = (now - next_send).as_secs_f64() * 1e3;
            for &i in &slots[slot as usize] {
                let p = &mut participants[i];
                let frame = &p.frames[p.pos];
                let len = rtp_packet(&mut packet, p.seq, p.ts, p.ssrc, ext_id, frame, p.sent == 0);
                if socket.send_to(&packet[..len], p.dest).is_err() {
                    send_errors += 1;
                }
                p.sent += 1;
                p.seq = p.seq.wrapping_add(1);
                p.ts = p.ts.wrapping_add(FRAME_TICKS);
                p.pos = (p.pos + 1) % p.frames.len();
                if in_window {
                    send_late_ms.push(late);
                }
            }
            slot += 1;
            if slot == SLOTS {
                slot = 0;
                tick += 1;
            }
            next_send = start + PERIOD * tick as u32 + SLOT * slot;
            continue;
        }
        while let Some((len, from, at)) = receive(&socket, &mut buf) {
            let Some(&i) = by_source.get(&from) else {
                unknown_source += 1;
                continue;
            };
            participants[i].record_mix(&buf[..len], at, in_window);
        }
        let deadline = next_send.min(if in_window {
            window_end_at
        } else {
            window_start_at
        });
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    }
    let window_s = window_started.elapsed().as_secs_f64();
    let cpu = process_cpu() - cpu_at_window;
    let drops = socket_drops(port).map(|d| d.saturating_sub(drops_at_window));
    say("window-end");

    let mut all_gaps: Vec<f64> = Vec::new();
    let mut per = Vec::new();
    let mut pps: Vec<f64> = Vec::new();
    for (i, p) in participants.iter().enumerate() {
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
    let mean = pps.iter().sum::<f64>() / n as f64;
    let result = serde_json::json!({
        "participants": n,
        "window_s": window_s,
        "pps": {
            "min": pps.iter().cloned().fold(f64::INFINITY, f64::min),
            "mean": mean,
            "max": pps.iter().cloned().fold(0.0, f64::max),
        },
        "spacing_ms": stats(all_gaps),
        "send_late_ms": stats(send_late_ms),
        "send_errors": send_errors,
        "unknown_source_packets": unknown_source,
        "loadgen_cpu_s": cpu,
        "loadgen_socket_drops": drops,
        "per_participant": per,
    });
    say(&result.to_string());
    // Keep the socket open until the driver has torn the rooms down (stdin closes), so the
    // plugins' last mixes are not answered with ICMP "port unreachable".
    let mut rest = String::new();
    while io::stdin()
        .read_line(&mut rest)
        .map(|n| n > 0)
        .unwrap_or(false)
    {
        rest.clear();
    }
}
