//! Plain-RTP participants (SIP gateways, load generators): a UDP socket of the plugin's own per
//! participant, bound on `local_ip` with a port from `rtp_port_range`, which receives the
//! participant's Opus and sends it the mix. The socket is non-blocking and read by the room's
//! mixer thread at each tick, so plain-RTP participants need no thread of their own.

use crate::participant::Participant;
use crate::rtp;
use crate::sync::lock;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

/// What the participant asked for in `join`'s `rtp` object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainRtpRequest {
    /// Where the mix goes.
    pub remote: SocketAddr,
    pub payload_type: u8,
    pub audio_level_ext: Option<u8>,
    pub fec: bool,
}

pub struct PlainRtpLink {
    /// `None` once closed (kicked, or its room destroyed): the port is free again.
    socket: Mutex<Option<UdpSocket>>,
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
                        socket: Mutex::new(Some(socket)),
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
        if let Some(socket) = lock(&self.socket).as_ref() {
            let _ = socket.send_to(packet, self.remote);
        }
    }

    /// Closes the socket, as a PeerConnection is closed.
    pub fn close(&self) {
        lock(&self.socket).take();
    }

    /// Reads every datagram waiting and queues the valid ones for `participant`; returns
    /// whether at least one valid packet came.
    pub fn receive_into(&self, participant: &Participant) -> bool {
        let mut buf = [0u8; 1600];
        let mut any = false;
        let socket = lock(&self.socket);
        let Some(socket) = socket.as_ref() else {
            return false;
        };
        while let Ok((len, _from)) = socket.recv_from(&mut buf) {
            match rtp::parse(&buf[..len], self.audio_level_ext) {
                Ok(p) if p.payload_type == self.payload_type && !p.payload.is_empty() => {
                    participant.receive(p.ssrc, p.sequence, p.payload, p.audio_level);
                    any = true;
                }
                _ => {
                    participant.rejected_packets.fetch_add(1, Relaxed);
                }
            }
        }
        any
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
    use crate::codec::EncoderProfile;
    use crate::host::JanusHandle;
    use crate::participant::{Settings, Transport};

    fn listener() -> Participant {
        let settings = Settings {
            display: None,
            muted: false,
            volume_percent: 100,
            prebuffer: 0,
            profile: EncoderProfile::default(),
        };
        // No Janus in unit tests: the handle is never called back.
        let handle = unsafe { JanusHandle::borrow(std::ptr::dangling_mut()) };
        Participant::new(handle, Transport::WebRtc, 1, &settings, 48_000, 111).unwrap()
    }

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

    #[test]
    fn every_waiting_datagram_is_read_and_garbage_is_counted() {
        let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let request = PlainRtpRequest {
            remote: sender.local_addr().unwrap(),
            payload_type: 111,
            audio_level_ext: None,
            fec: false,
        };
        let link =
            PlainRtpLink::bind(Ipv4Addr::LOCALHOST.into(), (20000, 60000), &request).unwrap();
        let participant = listener();
        assert!(!link.receive_into(&participant), "nothing sent yet");

        // Several packets queued at once (a late tick), then garbage and a foreign type.
        let good = 9;
        for sequence in 0..good {
            sender.send_to(&packet(111, sequence), link.local).unwrap();
        }
        sender.send_to(b"not rtp", link.local).unwrap();
        sender.send_to(&packet(0, good), link.local).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));

        assert!(link.receive_into(&participant));
        assert_eq!(lock(&participant.queue).len(), good as usize);
        assert_eq!(participant.rejected_packets.load(Relaxed), 2);
        assert!(!link.receive_into(&participant), "the socket was emptied");

        link.close();
        sender.send_to(&packet(111, good + 1), link.local).unwrap();
        assert!(
            !link.receive_into(&participant),
            "a closed link reads nothing"
        );
    }
}
