//! `plain_rtp`: the plain-RTP receive path on real sockets. Each input binds a fresh
//! `PlainRtpLink` on 127.0.0.1 (a new one, so that a latching link latches anew), sends the
//! input's datagrams to it from two sockets of this target (127.0.0.1, the declared address,
//! and 127.0.0.2, a stranger), drains it in steps of the sizes the input chooses, and checks
//! what came out against a model: the valid RTP of the agreed payload type from an accepted
//! source, in order, each counted once as valid, rejected or foreign; a latching link's mix
//! going to the first valid sender. Mix packets the link sends back are drained and dropped.
//!
//! Input: `<sources>` (`& 1` latches, `& 2` is send-only: no destination), `<payload type> <level id>` then datagrams `<flags> <len> <bytes>`:
//! `flags & 1` sends from the stranger, `flags & 2` has the link send the datagram back
//! afterwards (a mix packet), `flags & 4` drains `(flags >> 3) % 9` datagrams (0 to 8) after it.
#![no_main]

use audioroom::media::audio_codec::AudioCodec;
use audioroom::media::clock;
use audioroom::media::plain_rtp::{Drained, PlainRtpLink, PlainRtpRequest, Sources};
use audioroom::media::rtp;
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const MAX_DATAGRAMS: usize = 48;
const PORTS: (u16, u16) = (43000, 43999);

/// What the model expects the link to make of one datagram.
#[derive(Debug, PartialEq)]
enum Fate {
    Valid { sequence: u16, payload: Vec<u8> },
    Rejected,
    Foreign,
}

fn senders() -> &'static [UdpSocket; 2] {
    static SENDERS: OnceLock<[UdpSocket; 2]> = OnceLock::new();
    SENDERS.get_or_init(|| {
        let bind = |ip: Ipv4Addr| {
            let s = UdpSocket::bind((ip, 0)).expect("a sender socket on loopback");
            s.set_nonblocking(true).unwrap();
            s
        };
        [bind(Ipv4Addr::LOCALHOST), bind(Ipv4Addr::new(127, 0, 0, 2))]
    })
}

struct Totals {
    drained: Drained,
    delivered: Vec<(u16, Vec<u8>)>,
}

fn drain(link: &PlainRtpLink, max: usize, totals: &mut Totals) {
    let before = clock::now_us();
    let d = link.drain(max, |p, arrival_us| {
        assert_eq!(p.payload_type, link.payload_type);
        assert!(!p.payload.is_empty());
        // Never stamped later than the drain (nor more than 10 s before it).
        let now = clock::now_us();
        assert!(arrival_us <= now, "arrival {arrival_us} after {now}");
        assert!(arrival_us >= before.saturating_sub(10_000_000));
        totals.delivered.push((p.sequence, p.payload.to_vec()));
    });
    assert!(d.valid + d.rejected + d.foreign <= max as u32);
    totals.drained.valid += d.valid;
    totals.drained.rejected += d.rejected;
    totals.drained.foreign += d.foreign;
}

fuzz_target!(|data: &[u8]| {
    let [sources, payload_type, level_id, rest @ ..] = data else {
        return;
    };
    let senders = senders();
    let declared = senders[0].local_addr().unwrap();
    // A send-only source (no destination given) is always latched and never answered.
    let send_only = sources & 2 != 0;
    let latch = send_only || sources & 1 != 0;
    let request = PlainRtpRequest {
        remote: Some(declared).filter(|_| !send_only),
        codec: AudioCodec::Opus,
        payload_type: payload_type & 0x7f,
        audio_level_ext: Some(level_id % 16).filter(|id| *id != 0),
        fec: false,
        sources: if latch {
            Sources::Latch
        } else {
            Sources::Declared(IpAddr::V4(Ipv4Addr::LOCALHOST))
        },
    };
    let Ok(link) = PlainRtpLink::bind(IpAddr::V4(Ipv4Addr::LOCALHOST), PORTS, &request) else {
        return; // every port taken by someone else: nothing to test
    };

    let mut expected = Vec::new();
    let mut latched: Option<SocketAddr> = None;
    let mut totals = Totals {
        drained: Drained::default(),
        delivered: Vec::new(),
    };
    let mut sent = 0u32;
    let mut rest = rest.iter();
    while let (Some(&flags), Some(&len)) = (rest.next(), rest.next()) {
        if sent as usize == MAX_DATAGRAMS {
            break;
        }
        let datagram: Vec<u8> = rest.by_ref().take(len as usize).copied().collect();
        let from = &senders[(flags & 1) as usize];
        let from_addr = from.local_addr().unwrap();
        if from.send_to(&datagram, link.local).is_err() {
            continue;
        }
        sent += 1;
        expected.push(match rtp::parse(&datagram, request.audio_level_ext) {
            Ok(p) if p.payload_type == request.payload_type && !p.payload.is_empty() => {
                let accepted = if latch {
                    *latched.get_or_insert(from_addr) == from_addr
                } else {
                    from_addr.ip() == declared.ip()
                };
                if accepted {
                    Fate::Valid {
                        sequence: p.sequence,
                        payload: p.payload.to_vec(),
                    }
                } else {
                    Fate::Foreign
                }
            }
            _ => Fate::Rejected,
        });
        if flags & 2 != 0 {
            link.send(&datagram);
        }
        if flags & 4 != 0 {
            drain(&link, ((flags >> 3) % 9) as usize, &mut totals);
        }
    }

    // Loopback delivers at once, but give the kernel a moment rather than call a slow
    // delivery a bug.
    let deadline = Instant::now() + Duration::from_secs(2);
    let counted = |t: &Totals| t.drained.valid + t.drained.rejected + t.drained.foreign;
    while counted(&totals) < sent && Instant::now() < deadline {
        let before = counted(&totals);
        drain(&link, 8, &mut totals);
        if counted(&totals) == before {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    assert_eq!(counted(&totals), sent, "datagrams lost on loopback");

    let count = |fate: fn(&Fate) -> bool| expected.iter().filter(|f| fate(f)).count() as u32;
    assert_eq!(
        totals.drained.valid,
        count(|f| matches!(f, Fate::Valid { .. }))
    );
    assert_eq!(totals.drained.rejected, count(|f| *f == Fate::Rejected));
    assert_eq!(totals.drained.foreign, count(|f| *f == Fate::Foreign));
    let valid: Vec<(u16, Vec<u8>)> = expected
        .into_iter()
        .filter_map(|f| match f {
            Fate::Valid { sequence, payload } => Some((sequence, payload)),
            _ => None,
        })
        .collect();
    assert_eq!(
        totals.delivered, valid,
        "delivered packets differ from those sent"
    );
    if send_only {
        assert_eq!(
            link.remote(),
            None,
            "a send-only source is heard, not answered"
        );
    } else if let Some(latched) = latched.filter(|_| latch) {
        assert_eq!(
            link.remote(),
            Some(latched),
            "the mix goes to the latched source"
        );
    } else {
        assert_eq!(link.remote(), Some(declared));
    }

    link.close();
    assert_eq!(
        link.drain(8, |_, _| ()),
        Drained::default(),
        "a closed link reads nothing"
    );
    let mut buf = [0u8; 2048];
    for s in senders {
        while s.recv(&mut buf).is_ok() {}
    }
});
