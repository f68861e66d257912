//! The load generators' UDP socket on 127.0.0.1 (`loadgen`, `latency_probe`): big buffers,
//! non-blocking, and every datagram read with the kernel's receive timestamp (SO_TIMESTAMPNS,
//! CLOCK_REALTIME, stamped when the plugin's datagram reached our socket), so that how late the
//! reading thread gets round to it does not blur what is measured.
#![allow(dead_code)]

use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// A non-blocking socket on 127.0.0.1 with 4 MB buffers and kernel receive timestamps.
pub fn bind_loopback() -> UdpSocket {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1");
    set_socket_option(&socket, libc::SO_RCVBUF, 4 << 20);
    set_socket_option(&socket, libc::SO_SNDBUF, 4 << 20);
    set_socket_option(&socket, libc::SO_TIMESTAMPNS, 1);
    socket.set_nonblocking(true).expect("non-blocking socket");
    socket
}

/// Now on the clock of the kernel's receive timestamps (CLOCK_REALTIME), since the epoch.
pub fn realtime_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
}

/// One datagram read without blocking: its length, source and kernel receive time (since the
/// epoch, CLOCK_REALTIME); `None` when the socket is empty.
pub fn receive(socket: &UdpSocket, buf: &mut [u8]) -> Option<(usize, SocketAddr, Duration)> {
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
pub fn socket_drops(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let wanted = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().nth(1) == Some(wanted.as_str()))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
}

/// A line-oriented stdin read on its own thread, so a real-time loop can poll it without
/// blocking. `None` from `try_recv` means nothing new; a disconnected channel means EOF.
pub fn stdin_lines() -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
