//! Plain-RTP links (SIP gateways, load generators): a UDP socket of the plugin's own per
//! participant, bound on `local_ip` with a port from `rtp_port_range`, which receives the
//! participant's audio and sends it the mix. The socket is non-blocking and drained by the
//! room's mixer thread at each tick, so plain-RTP participants need no thread of their own;
//! the drain is bounded, so a flood at one port cannot delay any room's tick.

use crate::locks::OrderedMutex;
use crate::media::rtp::{self, RtpPacket};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// Most datagrams read from one socket in one tick: a sender uses one or two (20 or 10 ms
/// packets), a late tick a few more. The rest waits for the next tick, and the kernel drops
/// what its buffer cannot hold, as the network would.
pub const MAX_DATAGRAMS_PER_TICK: usize = 8;

/// What the participant asked for in `join`'s `rtp` object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainRtpRequest {
    /// Where the mix goes.
    pub remote: SocketAddr,
    pub payload_type: u8,
    pub audio_level_ext: Option<u8>,
    pub fec: bool,
}

/// What one drain of the socket found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Valid packets handed on.
    pub valid: u32,
    /// Datagrams that were not RTP of the agreed payload type.
    pub rejected: u32,
    /// The drain stopped at its bound with datagrams still waiting.
    pub capped: bool,
}

pub struct PlainRtpLink {
    /// `None` once closed (kicked, or its room destroyed): the port is free again.
    socket: OrderedMutex<Option<UdpSocket>>,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub payload_type: u8,
    pub audio_level_ext: Option<u8>,
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
                    return Ok(PlainRtpLink {
                        local: socket.local_addr()?,
                        socket: OrderedMutex::leaf("plain RTP socket", Some(socket)),
                        remote: request.remote,
                        payload_type: request.payload_type,
                        audio_level_ext: request.audio_level_ext,
                    });
                }
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    pub fn send(&self, packet: &[u8]) {
        // A full socket buffer drops the packet, as the network would.
        if let Some(socket) = self.socket.lock().as_ref() {
            let _ = socket.send_to(packet, self.remote);
        }
    }

    /// Closes the socket, as a PeerConnection is closed.
    pub fn close(&self) {
        self.socket.lock().take();
    }

    /// Reads at most `max` datagrams and hands every valid packet to `deliver` (with the
    /// socket's lock released: `deliver` takes the participant's queue, another leaf).
    pub fn drain(&self, max: usize, mut deliver: impl FnMut(&RtpPacket)) -> Drained {
        let mut buf = [0u8; 1600];
        let mut drained = Drained::default();
        for _ in 0..max {
            let Some(len) = self.receive_one(&mut buf) else {
                return drained;
            };
            match rtp::parse(&buf[..len], self.audio_level_ext) {
                Ok(p) if p.payload_type == self.payload_type && !p.payload.is_empty() => {
                    drained.valid += 1;
                    deliver(&p);
                }
                _ => drained.rejected += 1,
            }
        }
        drained.capped = true;
        drained
    }

    /// One waiting datagram's length, or `None` when there is none or the link is closed.
    fn receive_one(&self, buf: &mut [u8]) -> Option<usize> {
        let socket = self.socket.lock();
        let (len, _from) = socket.as_ref()?.recv_from(buf).ok()?;
        drop(socket);
        Some(len)
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

    fn link_and_sender() -> (PlainRtpLink, UdpSocket) {
        let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let request = PlainRtpRequest {
            remote: sender.local_addr().unwrap(),
            payload_type: 111,
            audio_level_ext: None,
            fec: false,
        };
        let link =
            PlainRtpLink::bind(Ipv4Addr::LOCALHOST.into(), (20000, 60000), &request).unwrap();
        (link, sender)
    }

    #[test]
    fn waiting_datagrams_are_read_and_garbage_is_counted() {
        let (link, sender) = link_and_sender();
        let mut sequences = Vec::new();
        assert_eq!(
            link.drain(8, |_| ()),
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

        let drained = link.drain(8, |p| sequences.push(p.sequence));
        assert_eq!(sequences, [0, 1, 2, 3, 4]);
        assert_eq!(
            drained,
            Drained {
                valid: 5,
                rejected: 2,
                capped: false
            }
        );
        assert_eq!(link.drain(8, |_| ()), Drained::default(), "emptied");

        link.close();
        sender.send_to(&packet(111, 6), link.local).unwrap();
        assert_eq!(
            link.drain(8, |_| ()).valid,
            0,
            "a closed link reads nothing"
        );
    }

    #[test]
    fn a_flood_is_read_a_bounded_number_at_a_time() {
        let (link, sender) = link_and_sender();
        for sequence in 0..100 {
            sender.send_to(&packet(111, sequence), link.local).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let first = link.drain(MAX_DATAGRAMS_PER_TICK, |_| ());
        assert_eq!(first.valid as usize, MAX_DATAGRAMS_PER_TICK);
        assert!(first.capped);
        let mut total = first.valid;
        while total < 100 {
            let more = link.drain(MAX_DATAGRAMS_PER_TICK, |_| ());
            assert!(more.valid as usize <= MAX_DATAGRAMS_PER_TICK);
            total += more.valid;
        }
        assert_eq!(total, 100, "nothing lost when the bound only delays");
    }
}
