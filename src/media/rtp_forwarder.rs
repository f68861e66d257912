//! An RTP forwarder: a room's full mix sent as RTP (or SRTP) to a host and port, for a live
//! stream encoder, a speech recogniser or another Janus. It is handed one encoded payload per
//! 20 ms tick and numbers its own stream: one sequence number and one frame of timestamp per
//! packet, so the stream is continuous even across a time the room was empty (nothing is sent
//! then). Sending is one `send_to` on a non-blocking socket of its own.

use crate::locks::OrderedMutex;
use crate::media::audio_codec::AudioCodec;
use crate::media::rtp::{OutboundStream, RTP_HEADER_LEN};
use crate::media::srtp::{MASTER_LEN, SrtpSender, Suite};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What `rtp_forward` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwarderSettings {
    pub destination: SocketAddr,
    pub codec: AudioCodec,
    pub payload_type: u8,
    pub ssrc: u32,
    /// SRTP with this suite and master key and salt.
    pub srtp: Option<(Suite, [u8; MASTER_LEN])>,
}

struct Outgoing {
    stream: OutboundStream,
    srtp: Option<SrtpSender>,
    packet: Vec<u8>,
}

pub struct RtpForwarder {
    pub settings: ForwarderSettings,
    socket: UdpSocket,
    /// Taken by the mixer thread only, for the length of one packet.
    outgoing: OrderedMutex<Outgoing>,
    sent: AtomicU64,
    send_errors: AtomicU64,
}

impl RtpForwarder {
    /// Opens the forwarder's socket (any local port, the destination's family).
    pub fn open(settings: ForwarderSettings) -> io::Result<Self> {
        let socket = match settings.destination {
            SocketAddr::V4(_) => UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?,
            SocketAddr::V6(_) => UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0))?,
        };
        socket.set_nonblocking(true)?;
        let mut stream = OutboundStream::with_ssrc(settings.ssrc);
        stream.set_frame_ticks(settings.codec.frame_ticks());
        let srtp = settings
            .srtp
            .as_ref()
            .map(|(suite, master)| SrtpSender::new(*suite, master));
        Ok(RtpForwarder {
            socket,
            outgoing: OrderedMutex::leaf(
                "forwarder stream",
                Outgoing {
                    stream,
                    srtp,
                    packet: Vec::with_capacity(1600),
                },
            ),
            settings,
            sent: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
        })
    }

    /// Sends one 20 ms payload in the forwarder's next RTP packet. A full socket buffer or an
    /// unreachable host drops it, as the network would.
    pub fn send(&self, payload: &[u8]) {
        let mut out = self.outgoing.lock();
        let Outgoing {
            stream,
            srtp,
            packet,
        } = &mut *out;
        packet.clear();
        packet.resize(RTP_HEADER_LEN, 0);
        stream.next_header(packet, self.settings.payload_type);
        packet.extend_from_slice(payload);
        if let Some(srtp) = srtp {
            srtp.protect(packet);
        }
        let sent = self.socket.send_to(packet, self.settings.destination);
        drop(out);
        match sent {
            Ok(_) => self.sent.fetch_add(1, Relaxed),
            Err(_) => self.send_errors.fetch_add(1, Relaxed),
        };
    }

    /// Packets sent so far, and those the socket refused.
    pub fn counts(&self) -> (u64, u64) {
        (self.sent.load(Relaxed), self.send_errors.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp;

    #[test]
    fn packets_are_numbered_continuously_and_protected_when_asked() {
        let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut settings = ForwarderSettings {
            destination: receiver.local_addr().unwrap(),
            codec: AudioCodec::Pcmu,
            payload_type: 0,
            ssrc: 0x1234_5678,
            srtp: None,
        };
        let plain = RtpForwarder::open(settings.clone()).unwrap();
        settings.srtp = Some((Suite::Sha1_32, [7; MASTER_LEN]));
        let secure = RtpForwarder::open(settings).unwrap();
        let mut buf = [0u8; 1600];
        let mut last = None;
        for i in 0..5u8 {
            plain.send(&[i; 160]);
            let n = receiver.recv(&mut buf).unwrap();
            let p = rtp::parse(&buf[..n], None).unwrap();
            assert_eq!(
                (p.payload_type, p.ssrc, p.payload),
                (0, 0x1234_5678, &[i; 160][..])
            );
            if let Some((seq, ts)) = last {
                assert_eq!(p.sequence, u16::wrapping_add(seq, 1));
                assert_eq!(p.timestamp, u32::wrapping_add(ts, 160));
            }
            last = Some((p.sequence, p.timestamp));
            secure.send(&[i; 160]);
            let n = receiver.recv(&mut buf).unwrap();
            assert_eq!(n, 12 + 160 + 4, "a 32-bit tag");
            assert_ne!(&buf[12..172], &[i; 160][..], "encrypted");
        }
        assert_eq!(plain.counts(), (5, 0));
    }
}
