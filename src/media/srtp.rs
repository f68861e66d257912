//! SRTP (RFC 3711) for the packets a forwarder sends, with the two suites AudioBridge offers:
//! AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32 (SDES keys, `srtp_crypto`). Only the
//! sending side: session keys derived from the master key and salt (key derivation rate 0), the
//! payload encrypted with AES in counter mode, the packet and its rollover counter authenticated
//! with HMAC-SHA1, the tag truncated to 80 or 32 bits.
//!
//! The ciphers are RustCrypto's (`aes`, `ctr`, `hmac`, `sha1`); this file is only RFC 3711's
//! framing. Its tests are RFC 3711's own test vectors and packets protected by libsrtp.

use aes::Aes128;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha1::Sha1;

type Aes128Ctr = ctr::Ctr128BE<Aes128>;
type HmacSha1 = Hmac<Sha1>;

/// The master key and salt of AES_CM_128: 16 + 14 bytes (the base64 of `srtp_crypto`).
pub const MASTER_LEN: usize = 30;

/// The suites AudioBridge's `srtp_suite` names by their tag length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// AES_CM_128_HMAC_SHA1_80 (`srtp_suite` 80).
    Sha1_80,
    /// AES_CM_128_HMAC_SHA1_32 (`srtp_suite` 32).
    Sha1_32,
}

impl Suite {
    /// 80 or 32, as `srtp_suite` gives it.
    pub fn from_bits(bits: u64) -> Option<Self> {
        match bits {
            80 => Some(Suite::Sha1_80),
            32 => Some(Suite::Sha1_32),
            _ => None,
        }
    }

    pub fn bits(self) -> u32 {
        match self {
            Suite::Sha1_80 => 80,
            Suite::Sha1_32 => 32,
        }
    }

    /// Bytes of authentication tag appended to each packet.
    pub fn tag_len(self) -> usize {
        self.bits() as usize / 8
    }
}

/// One outgoing SRTP stream (one SSRC).
pub struct SrtpSender {
    suite: Suite,
    key: [u8; 16],
    salt: [u8; 14],
    auth: HmacSha1,
    /// Rollover counter: how often the sequence number wrapped.
    roc: u32,
    last_sequence: Option<u16>,
}

impl SrtpSender {
    /// From the 30 bytes of master key and salt.
    pub fn new(suite: Suite, master: &[u8; MASTER_LEN]) -> Self {
        let (master_key, master_salt) = master.split_at(16);
        let mut key = [0u8; 16];
        let mut auth_key = [0u8; 20];
        let mut salt = [0u8; 14];
        derive(master_key, master_salt, 0x00, &mut key);
        derive(master_key, master_salt, 0x01, &mut auth_key);
        derive(master_key, master_salt, 0x02, &mut salt);
        SrtpSender {
            suite,
            key,
            salt,
            auth: HmacSha1::new_from_slice(&auth_key).expect("HMAC takes any key length"),
            roc: 0,
            last_sequence: None,
        }
    }

    /// Protects the RTP packet in `packet` (a 12-byte header without CSRCs or extension, as
    /// forwarders write them) in place: the payload is encrypted and the tag appended.
    pub fn protect(&mut self, packet: &mut Vec<u8>) {
        let sequence = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        if self.last_sequence.is_some_and(|last| sequence < last) {
            self.roc = self.roc.wrapping_add(1);
        }
        self.last_sequence = Some(sequence);
        let index = ((self.roc as u64) << 16) | sequence as u64;
        // IV = (salt << 16) XOR (SSRC << 64) XOR (index << 16), 128 bits.
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
            iv[4 + i] ^= b;
        }
        for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
            iv[8 + i] ^= b;
        }
        Aes128Ctr::new(&self.key.into(), &iv.into()).apply_keystream(&mut packet[12..]);
        let mut mac = self.auth.clone();
        mac.update(packet);
        mac.update(&self.roc.to_be_bytes());
        let tag = mac.finalize().into_bytes();
        packet.extend_from_slice(&tag[..self.suite.tag_len()]);
    }
}

/// RFC 3711 section 4.3.1 with a key derivation rate of 0: the session key of `label` is the
/// AES-CM keystream under the master key from IV = (master salt XOR label << 48) << 16.
fn derive(master_key: &[u8], master_salt: &[u8], label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(master_salt);
    iv[7] ^= label;
    out.fill(0);
    let key: [u8; 16] = master_key.try_into().expect("a 16-byte master key");
    Aes128Ctr::new(&key.into(), &iv.into()).apply_keystream(out);
}

/// Standard base64 (RFC 4648, `+` and `/`, padding optional), as SDES keys are written.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0);
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    // A single leftover character cannot make a byte.
    (count < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    const MASTER: &str = "e1f97a0d3e018be0d64fa32c06de41390ec675ad498afeebb6960b3aabe6";

    #[test]
    fn session_keys_are_rfc_3711_appendix_b3s() {
        let master = hex(MASTER);
        let mut key = [0u8; 16];
        let mut salt = [0u8; 14];
        let mut auth = [0u8; 20];
        derive(&master[..16], &master[16..], 0, &mut key);
        derive(&master[..16], &master[16..], 1, &mut auth);
        derive(&master[..16], &master[16..], 2, &mut salt);
        assert_eq!(key.to_vec(), hex("c61e7a93744f39ee10734afe3ff7a087"));
        assert_eq!(salt.to_vec(), hex("30cbbc08863d8c85d49db34a9ae1"));
        assert_eq!(
            auth.to_vec(),
            hex("cebe321f6ff7716b6fd4ab49af256a156d38baa4")
        );
    }

    #[test]
    fn the_keystream_is_rfc_3711_appendix_b2s() {
        let key: [u8; 16] = hex("2b7e151628aed2a6abf7158809cf4f3c").try_into().unwrap();
        let iv: [u8; 16] = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfd0000").try_into().unwrap();
        let mut stream = [0u8; 48];
        Aes128Ctr::new(&key.into(), &iv.into()).apply_keystream(&mut stream);
        assert_eq!(
            stream.to_vec(),
            hex(concat!(
                "e03ead0935c95e80e166b16dd92b4eb4",
                "d23513162b02d0f72a43a2fe4a5f97ab",
                "41e95b3bb0a2e8dd477901e4fca894c0"
            ))
        );
    }

    #[test]
    fn packets_are_what_libsrtp_makes_of_them_roc_included() {
        // Made with libsrtp 2 (pylibsrtp) from the same master key.
        let master: [u8; MASTER_LEN] = hex(MASTER).try_into().unwrap();
        for (suite, expected) in [
            (
                Suite::Sha1_80,
                "800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb",
            ),
            (
                Suite::Sha1_32,
                "800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc",
            ),
        ] {
            let mut sender = SrtpSender::new(suite, &master);
            let mut packet = hex("800f1234decafbadcafebabe");
            packet.extend_from_slice(&[0xab; 16]);
            sender.protect(&mut packet);
            assert_eq!(packet, hex(expected), "{suite:?}");
        }
        let mut sender = SrtpSender::new(Suite::Sha1_80, &master);
        let mut a = hex("8000ffff0000000011223344010203");
        let mut b = hex("800000000000003c11223344010203");
        sender.protect(&mut a);
        sender.protect(&mut b);
        assert_eq!(a, hex("8000ffff0000000011223344134e1fcb8c137467485be3e57a"));
        assert_eq!(b, hex("800000000000003c11223344fb398ec075876835db87a453c1"));
    }

    #[test]
    fn base64_as_sdes_writes_it() {
        assert_eq!(decode_base64("TWFu").unwrap(), b"Man");
        assert_eq!(decode_base64("TWE=").unwrap(), b"Ma");
        assert_eq!(decode_base64("TQ==").unwrap(), b"M");
        assert_eq!(decode_base64("TQ").unwrap(), b"M");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("T"), None);
        assert_eq!(decode_base64("TW!u"), None);
        let key = "4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm";
        assert_eq!(decode_base64(key).unwrap(), hex(MASTER));
    }
}
