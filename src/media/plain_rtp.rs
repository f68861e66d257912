//! Plain-RTP links (SIP gateways, load generators): a UDP socket of the plugin's own per
//! participant, bound on `local_ip` with a port from `rtp_port_range`, which receives the
//! participant's audio and sends it the mix. The socket is non-blocking and drained by the
//! room's mixer thread at each tick, so plain-RTP participants need no thread of their own;
//! the drain is bounded, so a flood at one port cannot delay any room's tick.
//!
//! Each datagram carries the kernel's receive time (`SO_TIMESTAMPNS`), so the jitter buffer
//! measures when a packet really arrived rather than when the tick drained it, and its source
//! address, so that only the participant speaks as the participant: the address it declared
//! in `join`, or, for symmetric-RTP gateways, the first address that sent valid RTP (latching),
//! to which the mix then goes too.
//!
//! A link may have no destination: a send-only source (an injection from another system) that
//! joined without `rtp.ip`/`rtp.port` is latched to its first sender and sent nothing, until
//! `configure` gives it a destination.

use crate::locks::OrderedMutex;
use crate::media::audio_codec::AudioCodec;
use crate::media::clock;
use crate::media::rtp::{self, RtpPacket};
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

/// Most datagrams read from one socket in one tick: a sender uses one or two (20 or 10 ms
/// packets), a late tick a few more. The rest waits for the next tick, and the kernel drops
/// what its buffer cannot hold, as the network would.
pub const MAX_DATAGRAMS_PER_TICK: usize = 8;

/// Whose packets a link accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sources {
    /// Only those from this address (any port: gateways often send from another port than the
    /// one they receive on).
    Declared(IpAddr),
    /// The first address (and port) that sends valid RTP, and only it from then on; the mix
    /// goes there (symmetric RTP, for gateways behind NAT or that do not know their address).
    Latch,
}

/// Opus's payload type on plain RTP when `join` names none: AudioBridge's.
pub const DEFAULT_OPUS_PAYLOAD_TYPE: u8 = 100;

/// What the participant asked for in `join`'s `rtp` object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainRtpRequest {
    /// Where the mix goes (until a latching link learns better); none for a send-only source.
    pub remote: Option<SocketAddr>,
    pub codec: AudioCodec,
    pub payload_type: u8,
    pub audio_level_ext: Option<u8>,
    pub fec: bool,
    pub sources: Sources,
}

/// What one drain of the socket found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Valid packets handed on.
    pub valid: u32,
    /// Datagrams that were not RTP of the agreed payload type.
    pub rejected: u32,
    /// Datagrams from an address the link does not accept.
    pub foreign: u32,
    /// The drain stopped at its bound with datagrams still waiting.
    pub capped: bool,
}

struct Endpoint {
    /// `None` once closed (kicked, or its room destroyed): the port is free again.
    socket: Option<UdpSocket>,
    /// Where the mix goes; nothing is sent without one.
    remote: Option<SocketAddr>,
    /// The mix goes to the latched source (symmetric RTP); not for a send-only source, nor
    /// once `configure` named a destination.
    follow_source: bool,
    sources: Sources,
    /// The latched source, once one came.
    latched: Option<SocketAddr>,
}

pub struct PlainRtpLink {
    endpoint: OrderedMutex<Endpoint>,
    pub local: SocketAddr,
    pub codec: AudioCodec,
    pub payload_type: u8,
    pub audio_level_ext: Option<u8>,
}

/// One datagram: its length, where it came from, and when it arrived (µs on `media::clock`).
struct Datagram {
    len: usize,
    from: Option<SocketAddr>,
    arrival_us: u64,
}

impl PlainRtpLink {
    /// Binds a socket on `local_ip`, trying random ports of `ports` until one is free.
    pub fn bind(
        local_ip: IpAddr,
        ports: (u16, u16),
        request: &PlainRtpRequest,
    ) -> io::Result<Self> {
        let (low, high) = ports;
        let span = (high - low) as u32 + 1;
        let start: u32 = rand::random::<u32>() % span;
        let mut last_error =
            io::Error::new(io::ErrorKind::AddrInUse, "no free port in rtp_port_range");
        for i in 0..span.min(2000) {
            let port = low as u32 + (start + i) % span;
            match UdpSocket::bind(SocketAddr::new(local_ip, port as u16)) {
                Ok(socket) => {
                    socket.set_nonblocking(true)?;
                    // Without timestamps arrivals are still stamped, when drained.
                    let _ = setsockopt(&socket, sockopt::ReceiveTimestampns, &true);
                    return Ok(PlainRtpLink {
                        local: socket.local_addr()?,
                        endpoint: OrderedMutex::leaf(
                            "plain RTP socket",
                            Endpoint {
                                socket: Some(socket),
                                remote: request.remote,
                                follow_source: request.remote.is_some(),
                                sources: request.sources,
                                latched: None,
                            },
                        ),
                        codec: request.codec,
                        payload_type: request.payload_type,
                        audio_level_ext: request.audio_level_ext,
                    });
                }
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// Where the mix goes now, if anywhere.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.endpoint.lock().remote
    }

    /// Sends the mix to `remote` from now on (`configure` with `rtp`); a participant that
    /// declared its address is heard from the new one.
    pub fn set_remote(&self, remote: SocketAddr) {
        let mut endpoint = self.endpoint.lock();
        endpoint.remote = Some(remote);
        endpoint.follow_source = false;
        if let Sources::Declared(_) = endpoint.sources {
            endpoint.sources = Sources::Declared(remote.ip());
        }
    }

    /// Hears only `ip` from now on (any port), whatever source it latched before: a server
    /// link pointed at its far side, which may have moved to another port.
    pub fn hear_only(&self, ip: IpAddr) {
        let mut endpoint = self.endpoint.lock();
        endpoint.sources = Sources::Declared(ip);
        endpoint.latched = None;
    }

    pub fn send(&self, packet: &[u8]) {
        // A full socket buffer drops the packet, as the network would.
        let endpoint = self.endpoint.lock();
        if let (Some(socket), Some(remote)) = (endpoint.socket.as_ref(), endpoint.remote) {
            let _ = socket.send_to(packet, remote);
        }
    }

    /// Closes the socket, as a PeerConnection is closed.
    pub fn close(&self) {
        self.endpoint.lock().socket.take();
    }

    /// Reads at most `max` datagrams and hands every valid packet from an accepted source to
    /// `deliver`, with its arrival time (with the socket's lock released: `deliver` takes the
    /// participant's queue, another leaf).
    pub fn drain(&self, max: usize, mut deliver: impl FnMut(&RtpPacket, u64)) -> Drained {
        let mut buf = [0u8; 1600];
        let mut drained = Drained::default();
        let clocks = Clocks::now();
        for _ in 0..max {
            let Some(datagram) = self.receive_one(&mut buf, &clocks) else {
                return drained;
            };
            match rtp::parse(&buf[..datagram.len], self.audio_level_ext) {
                Ok(p) if p.payload_type == self.payload_type && !p.payload.is_empty() => {
                    if self.accepts(datagram.from) {
                        drained.valid += 1;
                        deliver(&p, datagram.arrival_us);
                    } else {
                        drained.foreign += 1;
                    }
                }
                _ => drained.rejected += 1,
            }
        }
        drained.capped = true;
        drained
    }

    /// Whether a valid packet from `from` is the participant's; a latching link learns its
    /// source (and sends the mix there) from the first one.
    fn accepts(&self, from: Option<SocketAddr>) -> bool {
        let Some(from) = from else { return false };
        let mut endpoint = self.endpoint.lock();
        match endpoint.sources {
            Sources::Declared(ip) => from.ip() == ip,
            Sources::Latch => match endpoint.latched {
                Some(latched) => latched == from,
                None => {
                    endpoint.latched = Some(from);
                    if endpoint.follow_source {
                        endpoint.remote = Some(from);
                    }
                    true
                }
            },
        }
    }

    /// One waiting datagram, or `None` when there is none or the link is closed.
    fn receive_one(&self, buf: &mut [u8], clocks: &Clocks) -> Option<Datagram> {
        let endpoint = self.endpoint.lock();
        let fd = endpoint.socket.as_ref()?.as_raw_fd();
        let mut iov = [IoSliceMut::new(buf)];
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        let message =
            recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT)
                .ok()?;
        drop(endpoint);
        let mut arrival_us = clocks.monotonic_us;
        if let Ok(cmsgs) = message.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmTimestampns(at) = c {
                    let at_ns = at.tv_sec() as i128 * 1_000_000_000 + at.tv_nsec() as i128;
                    arrival_us = clocks.to_monotonic_us(at_ns);
                }
            }
        }
        let from = message.address.and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
                .or_else(|| {
                    a.as_sockaddr_in6()
                        .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
                })
        });
        Some(Datagram {
            len: message.bytes,
            from,
            arrival_us,
        })
    }
}

/// The wall clock (which kernel receive timestamps use) against the media clock, read once per
/// drain, to move timestamps from one to the other.
struct Clocks {
    realtime_ns: i128,
    monotonic_us: u64,
}

impl Clocks {
    fn now() -> Self {
        let realtime_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        Clocks {
            realtime_ns,
            monotonic_us: clock::now_us(),
        }
    }

    /// A wall-clock time (ns), as µs on the media clock; never later than now.
    fn to_monotonic_us(&self, realtime_ns: i128) -> u64 {
        let ago_us = ((self.realtime_ns - realtime_ns) / 1000).clamp(0, 10_000_000) as u64;
        self.monotonic_us.saturating_sub(ago_us)
    }
}

/// The address plain-RTP sockets bind to when `local_ip` is not configured: the one the host
/// would use to reach the outside, without sending anything (a UDP connect sends no packet).
pub fn detect_local_ip() -> IpAddr {
    let probe = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).and_then(|s| {
        s.connect((Ipv4Addr::new(192, 0, 2, 1), 9))?;
        s.local_addr()
    });
    match probe {
        Ok(addr) if !addr.ip().is_unspecified() => addr.ip(),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(payload_type: u8, sequence: u16) -> Vec<u8> {
        let mut packet = vec![0u8; 12 + 3];
        rtp::write_header(
            &mut packet,
            payload_type,
            false,
            sequence,
            960 * sequence as u32,
            7,
        );
        packet[12..].copy_from_slice(&[0xf8, 0xff, 0xfe]);
        packet
    }

    fn link_and_sender(sources: Option<Sources>) -> (PlainRtpLink, UdpSocket) {
        let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let request = PlainRtpRequest {
            remote: Some(sender.local_addr().unwrap()),
            codec: AudioCodec::Opus,
            payload_type: 111,
            audio_level_ext: None,
            fec: false,
            sources: sources.unwrap_or(Sources::Declared(Ipv4Addr::LOCALHOST.into())),
        };
        let link =
            PlainRtpLink::bind(Ipv4Addr::LOCALHOST.into(), (20000, 60000), &request).unwrap();
        (link, sender)
    }

    #[test]
    fn waiting_datagrams_are_read_and_garbage_is_counted() {
        let (link, sender) = link_and_sender(None);
        let mut sequences = Vec::new();
        assert_eq!(
            link.drain(8, |_, _| ()),
            Drained::default(),
            "nothing sent yet"
        );

        // Several packets queued at once (a late tick), then garbage and a foreign type.
        for sequence in 0..5 {
            sender.send_to(&packet(111, sequence), link.local).unwrap();
        }
        sender.send_to(b"not rtp", link.local).unwrap();
        sender.send_to(&packet(0, 5), link.local).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));

        let drained = link.drain(8, |p, _| sequences.push(p.sequence));
        assert_eq!(sequences, [0, 1, 2, 3, 4]);
        assert_eq!(
            (drained.valid, drained.rejected, drained.capped),
            (5, 2, false)
        );
        assert_eq!(link.drain(8, |_, _| ()), Drained::default(), "emptied");

        link.close();
        sender.send_to(&packet(111, 6), link.local).unwrap();
        assert_eq!(
            link.drain(8, |_, _| ()).valid,
            0,
            "a closed link reads nothing"
        );
    }

    #[test]
    fn a_flood_is_read_a_bounded_number_at_a_time() {
        let (link, sender) = link_and_sender(None);
        for sequence in 0..100 {
            sender.send_to(&packet(111, sequence), link.local).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let first = link.drain(MAX_DATAGRAMS_PER_TICK, |_, _| ());
        assert_eq!(first.valid as usize, MAX_DATAGRAMS_PER_TICK);
        assert!(first.capped);
        let mut total = first.valid;
        while total < 100 {
            let more = link.drain(MAX_DATAGRAMS_PER_TICK, |_, _| ());
            assert!(more.valid as usize <= MAX_DATAGRAMS_PER_TICK);
            total += more.valid;
        }
        assert_eq!(total, 100, "nothing lost when the bound only delays");
    }

    #[test]
    fn arrivals_carry_the_kernels_receive_time() {
        let (link, sender) = link_and_sender(None);
        sender.send_to(&packet(111, 1), link.local).unwrap();
        let sent_at = clock::now_us();
        std::thread::sleep(std::time::Duration::from_millis(60));
        let mut arrival = 0;
        link.drain(8, |_, at| arrival = at);
        let drained_at = clock::now_us();
        // Stamped when it arrived, not 60 ms later when it was drained.
        assert!(
            arrival + 40_000 < drained_at,
            "{arrival} vs drained at {drained_at}"
        );
        assert!(arrival + 5_000 >= sent_at, "{arrival} vs sent at {sent_at}");
    }

    #[test]
    fn only_the_declared_address_or_the_latched_source_speaks() {
        let intruder = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), 0)).unwrap();
        // Declared 127.0.0.1: another address is refused.
        let (link, sender) = link_and_sender(None);
        intruder.send_to(&packet(111, 1), link.local).unwrap();
        sender.send_to(&packet(111, 2), link.local).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let mut heard = Vec::new();
        let drained = link.drain(8, |p, _| heard.push(p.sequence));
        assert_eq!((heard, drained.foreign), (vec![2], 1));

        // Latching: the first valid sender is the participant, and the mix goes back to it.
        let (link, _) = link_and_sender(Some(Sources::Latch));
        intruder.send_to(b"garbage first", link.local).unwrap();
        intruder.send_to(&packet(111, 1), link.local).unwrap();
        sender.send_to(&packet(111, 2), link.local).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let mut heard = Vec::new();
        let drained = link.drain(8, |p, _| heard.push(p.sequence));
        assert_eq!((heard, drained.foreign, drained.rejected), (vec![1], 1, 1));
        assert_eq!(link.remote(), Some(intruder.local_addr().unwrap()));
    }

    #[test]
    fn a_send_only_source_is_latched_and_sent_nothing_until_given_a_destination() {
        let source = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let listener = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let request = PlainRtpRequest {
            remote: None,
            codec: AudioCodec::Pcmu,
            payload_type: 0,
            audio_level_ext: None,
            fec: false,
            sources: Sources::Latch,
        };
        let link =
            PlainRtpLink::bind(Ipv4Addr::LOCALHOST.into(), (20000, 60000), &request).unwrap();
        source.send_to(&packet(0, 1), link.local).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        assert_eq!(link.drain(8, |_, _| ()).valid, 1);
        assert_eq!(link.remote(), None, "the source is heard, not answered");
        link.set_remote(listener.local_addr().unwrap());
        link.send(b"mix");
        listener
            .set_read_timeout(Some(std::time::Duration::from_secs(1)))
            .unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(listener.recv(&mut buf).unwrap(), 3);
        // The latched source still speaks for the participant.
        source.send_to(&packet(0, 2), link.local).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        assert_eq!(link.drain(8, |_, _| ()).valid, 1);
    }
}
