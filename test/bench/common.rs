//! Shared by the benchmark's cargo examples (`loadgen`, `mixer_bench`, `latency_probe`): the
//! synthetic speech the talkers send, the silence listeners send in the `silence` profile
//! (room noise is in `noise.rs`), RFC 6464 audio levels, RTP packets with or without the
//! one-byte audio-level extension, and CPU clocks.
//!
//! Everything here is deterministic: the same arguments give the same packets, so mixer runs
//! (and callgrind runs) repeat exactly.
#![allow(dead_code)]

use audioroom::media::codec::{Encoder, EncoderProfile, MAX_OPUS_PACKET};
use std::f64::consts::PI;

pub const RATE: u32 = 48_000;
pub const FRAME: usize = 960;
/// Length of the pre-encoded loop each participant replays.
pub const LOOP_FRAMES: usize = 300; // 6 s
/// The Opus payload type both ways.
pub const PAYLOAD_TYPE: u8 = 111;
/// RTP timestamp units per 20 ms frame (Opus RTP clock is 48 kHz).
pub const FRAME_TICKS: u32 = 960;
/// RFC 6464 level meaning digital silence.
pub const SILENT_LEVEL: u8 = 127;

/// How the load generator's own Opus is encoded (like a browser's default voice stream).
pub fn sender_profile() -> EncoderProfile {
    EncoderProfile {
        complexity: 10,
        bitrate: Some(32_000),
        fec: false,
        expected_loss: 0,
    }
}

/// A tiny deterministic PRNG (xorshift) for the noise floor.
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Uniform in [-1, 1).
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Vowel formants (Hz): a, e, i, o, u.
const VOWELS: [[f64; 3]; 5] = [
    [730.0, 1090.0, 2440.0],
    [530.0, 1840.0, 2480.0],
    [270.0, 2290.0, 3010.0],
    [570.0, 840.0, 2410.0],
    [300.0, 870.0, 2240.0],
];

/// `frames` × 20 ms of speech-like audio for talker `index` at 48 kHz: a voiced harmonic
/// source (its own pitch, with slow intonation) shaped by vowel formants that change every
/// syllable, syllables at about 4 Hz with a raised-cosine envelope, phrases of 1.6-2.8 s
/// separated by pauses of 0.4-0.8 s. Pauses are not digital silence but a room-noise floor
/// near -60 dBFS, as a real microphone gives, so a talker's audio level never says "silent"
/// and every talker is decoded every tick by both plugins.
pub fn speech(index: usize, frames: usize) -> Vec<i16> {
    let n = frames * FRAME;
    let rate = RATE as f64;
    let f0_base =
        [120.0, 185.0, 140.0, 220.0, 105.0, 160.0][index % 6] * (1.0 + 0.01 * (index / 6) as f64);
    let mut noise = Noise::new(index as u64 + 1);
    let mut out = Vec::with_capacity(n);
    // Phrase plan, deterministic per talker.
    let mut plan: Vec<(usize, usize)> = Vec::new(); // (speech samples, pause samples)
    let mut total = 0;
    let mut k = index;
    while total < n {
        let speak = ((1.6 + 0.3 * ((k * 7) % 5) as f64) * rate) as usize;
        let pause = ((0.4 + 0.1 * ((k * 3) % 5) as f64) * rate) as usize;
        plan.push((speak, pause));
        total += speak + pause;
        k += 1;
    }
    let syllable = (0.24 + 0.02 * (index % 3) as f64) * rate; // samples per syllable
    let mut phase = 0.0f64;
    let mut t_in_phrase = 0usize;
    let mut phrase = 0usize;
    let mut syllable_count = index * 3;
    for i in 0..n {
        let (speak, pause) = plan[phrase];
        let t = i as f64 / rate;
        let floor = 0.001 * noise.next(); // about -63 dBFS rms
        let sample = if t_in_phrase < speak {
            let pos = t_in_phrase as f64 / syllable;
            let syl = pos.floor() as usize + syllable_count;
            let within = pos.fract();
            // Syllable envelope: rise and fall, with a short dip between syllables.
            let env = (PI * within).sin().powf(1.5);
            let vowel = VOWELS[(syl * 3 + index) % 5];
            let f0 = f0_base * (1.0 + 0.06 * (2.0 * PI * 0.5 * t).sin() - 0.04 * within);
            phase += 2.0 * PI * f0 / rate;
            if phase > 2.0 * PI * 1000.0 {
                phase -= 2.0 * PI * 1000.0;
            }
            let mut v = 0.0;
            let harmonics = (4000.0 / f0) as usize;
            for h in 1..=harmonics {
                let f = f0 * h as f64;
                let mut gain = 0.0;
                for (j, &formant) in vowel.iter().enumerate() {
                    let bw = 90.0 + 40.0 * j as f64;
                    let x = (f - formant) / bw;
                    gain += [1.0, 0.5, 0.25][j] / (1.0 + x * x);
                }
                gain /= h as f64; // -6 dB/octave source tilt
                v += gain * (phase * h as f64).sin();
            }
            let breath = 0.02 * noise.next();
            0.45 * env * (v + breath) + floor
        } else {
            floor
        };
        out.push((sample * 32767.0).clamp(-32768.0, 32767.0) as i16);
        t_in_phrase += 1;
        if t_in_phrase >= speak + pause {
            t_in_phrase = 0;
            phrase += 1;
            syllable_count += (speak as f64 / syllable).ceil() as usize;
        }
    }
    out
}

/// The RFC 6464 level of a frame: its RMS in -dBov (0 loudest, 127 digital silence).
pub fn audio_level(pcm: &[i16]) -> u8 {
    let sum: f64 = pcm.iter().map(|&s| (s as f64 / 32768.0).powi(2)).sum();
    if sum == 0.0 {
        return SILENT_LEVEL;
    }
    let db = 10.0 * (sum / pcm.len() as f64).log10();
    (-db).round().clamp(0.0, 127.0) as u8
}

/// One pre-encoded 20 ms packet: Opus payload and its audio level.
#[derive(Clone)]
pub struct Frame {
    pub payload: Vec<u8>,
    pub level: u8,
}

/// Encodes `pcm` (whole frames) with `profile`.
pub fn encode(pcm: &[i16], profile: EncoderProfile) -> Vec<Frame> {
    let mut enc = Encoder::new(RATE, profile).expect("opus encoder");
    let mut buf = [0u8; MAX_OPUS_PACKET];
    pcm.chunks_exact(FRAME)
        .map(|f| {
            let len = enc.encode(f, &mut buf).expect("opus encode");
            Frame {
                payload: buf[..len].to_vec(),
                level: audio_level(f),
            }
        })
        .collect()
}

/// Talker `index`'s pre-encoded loop.
pub fn talker_frames(index: usize) -> Vec<Frame> {
    encode(&speech(index, LOOP_FRAMES), sender_profile())
}

/// A listener's loop: encoded digital silence, level 127.
pub fn silence_frames() -> Vec<Frame> {
    encode(&vec![0i16; FRAME * 50], sender_profile())
}

/// Writes an RTP packet (header, then, when `ext_id` is given, a one-byte extension with the
/// audio level under that id, then the payload) into `out`; returns its length.
///
/// The V bit is set on every frame that is not digital silence, as a browser does: WebRTC
/// sets it from the encoder's speech/DTX decision, and Opus without DTX calls every frame
/// speech, room noise included.
pub fn rtp_packet(
    out: &mut [u8],
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    ext_id: Option<u8>,
    frame: &Frame,
    marker: bool,
) -> usize {
    out[0] = if ext_id.is_some() { 0x90 } else { 0x80 }; // V=2, X when extended
    out[1] = PAYLOAD_TYPE | if marker { 0x80 } else { 0 };
    out[2..4].copy_from_slice(&sequence.to_be_bytes());
    out[4..8].copy_from_slice(&timestamp.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
    let mut len = 12;
    if let Some(id) = ext_id {
        // RFC 8285 one-byte header: 0xBEDE, one word: id/len, V flag + level, two bytes padding.
        out[12..16].copy_from_slice(&[0xBE, 0xDE, 0x00, 0x01]);
        let voice = if frame.level < SILENT_LEVEL { 0x80 } else { 0 };
        out[16..20].copy_from_slice(&[id << 4, voice | frame.level, 0, 0]);
        len = 20;
    }
    out[len..len + frame.payload.len()].copy_from_slice(&frame.payload);
    len + frame.payload.len()
}

#[repr(C)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

unsafe extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

fn clock(id: i32) -> f64 {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec the call fills.
    unsafe { clock_gettime(id, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// CPU seconds used by the calling thread.
pub fn thread_cpu() -> f64 {
    clock(CLOCK_THREAD_CPUTIME_ID)
}

/// CPU seconds used by this process (all threads).
pub fn process_cpu() -> f64 {
    clock(CLOCK_PROCESS_CPUTIME_ID)
}

/// Sorted-sample percentile (nearest rank), `p` in 0..=100.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
