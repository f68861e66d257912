//! An announcement file read as 20 ms frames at a room's rate: Ogg Opus (what AudioBridge
//! plays), decoded by libopus straight at the room's rate, or 16-bit PCM WAV (what operators
//! have), resampled with a proper filter (`media::resample`). Stereo is mixed down to mono.
//!
//! Everything here reads the disk: request threads open a file (so a missing or broken one is
//! an error for the request) and the announcement reader thread reads on; never a mixer thread.

use crate::media::codec::{Decoder, MAX_PACKET_MS, frame_samples};
use crate::media::resample::StreamResampler;
use hound::{SampleFormat, WavReader};
use ogg::reading::PacketReader;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// Opus's pre-skip and granule positions count at 48 kHz.
const OPUS_GRANULE_RATE: u64 = 48_000;

pub struct AnnouncementFile {
    path: PathBuf,
    rate: u32,
    source: Source,
    /// Samples at the room's rate not yet in a frame.
    pending: Vec<i16>,
    ended: bool,
}

enum Source {
    Ogg(OggOpus),
    Wav(Wav),
}

impl AnnouncementFile {
    /// Opens `path` for a room at `rate` and reads its headers; the error says what is wrong
    /// in words.
    pub fn open(path: &Path, rate: u32) -> Result<Self, String> {
        let source = open_source(path, rate)?;
        Ok(AnnouncementFile {
            path: path.to_owned(),
            rate,
            source,
            pending: Vec::new(),
            ended: false,
        })
    }

    /// The next 20 ms frame into `out` (cleared first); `Ok(false)` at the end of the file, after
    /// a last frame padded with silence.
    pub fn next_frame(&mut self, out: &mut Vec<i16>) -> Result<bool, String> {
        let frame = frame_samples(self.rate);
        while self.pending.len() < frame && !self.ended {
            let more = match &mut self.source {
                Source::Ogg(ogg) => ogg.read(&mut self.pending),
                Source::Wav(wav) => wav.read(&mut self.pending),
            }?;
            self.ended = !more;
        }
        if self.pending.is_empty() {
            return Ok(false);
        }
        out.clear();
        let n = frame.min(self.pending.len());
        out.extend(self.pending.drain(..n));
        out.resize(frame, 0);
        Ok(true)
    }

    /// Back to the start (a looped announcement).
    pub fn rewind(&mut self) -> Result<(), String> {
        self.source = open_source(&self.path, self.rate)?;
        self.pending.clear();
        self.ended = false;
        Ok(())
    }
}

fn open_source(path: &Path, rate: u32) -> Result<Source, String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let mut magic = [0u8; 12];
    let read = file.read(&mut magic).map_err(|e| e.to_string())?;
    drop(file);
    if read >= 4 && &magic[..4] == b"OggS" {
        OggOpus::open(path, rate).map(Source::Ogg)
    } else if read == 12 && &magic[..4] == b"RIFF" && &magic[8..12] == b"WAVE" {
        Wav::open(path, rate).map(Source::Wav)
    } else {
        Err("not an Ogg Opus or WAV file".into())
    }
}

struct OggOpus {
    packets: PacketReader<BufReader<File>>,
    decoder: Decoder,
    decoded: Vec<i16>,
    rate: u32,
    serial: u32,
    /// Samples (room rate) still to drop from the start: the encoder's pre-skip.
    skip: usize,
    /// Samples (room rate) produced so far, and where the stream says it ends.
    produced: u64,
    end: Option<u64>,
    pre_skip_48k: u64,
}

impl OggOpus {
    fn open(path: &Path, rate: u32) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| e.to_string())?;
        let mut packets = PacketReader::new(BufReader::new(file));
        let head = packets
            .read_packet()
            .map_err(|e| format!("not a valid Ogg file ({e})"))?
            .ok_or("an empty Ogg file")?;
        let data = &head.data;
        if data.len() < 19 || &data[..8] != b"OpusHead" {
            return Err("an Ogg file without Opus (no OpusHead)".into());
        }
        let channels = data[9];
        let pre_skip = u16::from_le_bytes([data[10], data[11]]) as u64;
        let mapping = data[18];
        if channels == 0 || channels > 2 || mapping > 1 {
            return Err(format!(
                "Opus with {channels} channels (mapping family {mapping}); mono or stereo only"
            ));
        }
        let serial = head.stream_serial();
        let tags = packets
            .read_packet()
            .map_err(|e| format!("a broken Ogg file ({e})"))?
            .ok_or("an Ogg Opus file without OpusTags")?;
        if !tags.data.starts_with(b"OpusTags") {
            return Err("an Ogg Opus file without OpusTags".into());
        }
        Ok(OggOpus {
            packets,
            // A mono decoder mixes a stereo stream down (libopus does it).
            decoder: Decoder::new(rate).map_err(|e| e.to_string())?,
            decoded: vec![0; frame_samples(rate) * MAX_PACKET_MS / 20],
            rate,
            serial,
            skip: (pre_skip * rate as u64 / OPUS_GRANULE_RATE) as usize,
            produced: 0,
            end: None,
            pre_skip_48k: pre_skip,
        })
    }

    /// Decodes the next packet into `out`; false at the end of the stream.
    fn read(&mut self, out: &mut Vec<i16>) -> Result<bool, String> {
        loop {
            let packet = self
                .packets
                .read_packet()
                .map_err(|e| format!("a broken Ogg file ({e})"))?;
            let Some(packet) = packet else {
                return Ok(false);
            };
            if packet.stream_serial() != self.serial {
                continue; // another logical stream (chained or multiplexed): not ours
            }
            if packet.last_in_stream() {
                // The last page's granule position is where the audio ends (RFC 7845, 4).
                let granule = packet.absgp_page().saturating_sub(self.pre_skip_48k);
                self.end = Some(granule * self.rate as u64 / OPUS_GRANULE_RATE);
            }
            let n = self
                .decoder
                .decode(&packet.data, &mut self.decoded)
                .map_err(|e| format!("an Opus packet cannot be decoded ({e})"))?;
            let mut samples = &self.decoded[..n];
            let skipped = self.skip.min(samples.len());
            self.skip -= skipped;
            samples = &samples[skipped..];
            if let Some(end) = self.end {
                let left = end.saturating_sub(self.produced) as usize;
                samples = &samples[..samples.len().min(left)];
            }
            self.produced += samples.len() as u64;
            out.extend_from_slice(samples);
            if packet.last_in_stream() {
                return Ok(false);
            }
            if !samples.is_empty() {
                return Ok(true);
            }
        }
    }
}

struct Wav {
    reader: WavReader<BufReader<File>>,
    channels: usize,
    resampler: StreamResampler,
    chunk: Vec<i16>,
    flushed: bool,
}

impl Wav {
    fn open(path: &Path, rate: u32) -> Result<Self, String> {
        let reader = WavReader::open(path).map_err(|e| format!("not a valid WAV file ({e})"))?;
        let spec = reader.spec();
        if spec.sample_format != SampleFormat::Int || spec.bits_per_sample != 16 {
            return Err(format!(
                "a WAV file of {}-bit {} samples; 16-bit PCM only",
                spec.bits_per_sample,
                if spec.sample_format == SampleFormat::Int {
                    "integer"
                } else {
                    "float"
                }
            ));
        }
        if !(1..=2).contains(&spec.channels) {
            return Err(format!(
                "a WAV file of {} channels; mono or stereo only",
                spec.channels
            ));
        }
        if !(8000..=192_000).contains(&spec.sample_rate) {
            return Err(format!(
                "a WAV file at {} Hz; 8000 to 192000 Hz only",
                spec.sample_rate
            ));
        }
        Ok(Wav {
            channels: spec.channels as usize,
            resampler: StreamResampler::new(spec.sample_rate, rate).map_err(|e| e.to_string())?,
            chunk: Vec::with_capacity(spec.sample_rate as usize / 50),
            reader,
            flushed: false,
        })
    }

    /// Reads about 20 ms of the file into `out` (room rate); false at its end.
    fn read(&mut self, out: &mut Vec<i16>) -> Result<bool, String> {
        if self.flushed {
            return Ok(false);
        }
        let want = self.chunk.capacity().max(1);
        self.chunk.clear();
        let mut samples = self.reader.samples::<i16>();
        'frames: while self.chunk.len() < want {
            let mut sum = 0i32;
            for c in 0..self.channels {
                match samples.next() {
                    Some(Ok(s)) => sum += s as i32,
                    Some(Err(e)) => return Err(format!("a broken WAV file ({e})")),
                    None if c == 0 => break 'frames,
                    None => return Err("a WAV file that ends inside a sample frame".into()),
                }
            }
            self.chunk.push((sum / self.channels as i32) as i16);
        }
        let at_end = self.chunk.len() < want;
        self.resampler.push(&self.chunk);
        if at_end {
            self.resampler.flush();
            self.flushed = true;
        }
        self.resampler.take_ready(out);
        Ok(true)
    }
}

#[cfg(test)]
pub(crate) mod test_files {
    //! Announcement files for tests, written as players and tools write them.
    use crate::media::codec::test_signals::tone;
    use crate::media::codec::{Encoder, EncoderProfile, MAX_OPUS_PACKET};
    use std::path::Path;

    pub fn wav(path: &Path, rate: u32, channels: u16, freq: f64, seconds: f64) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(path, spec).unwrap();
        let samples = tone(rate, freq, 10000.0, 0, (rate as f64 * seconds) as usize);
        for s in samples {
            for _ in 0..channels {
                writer.write_sample(s).unwrap();
            }
        }
        writer.finalize().unwrap();
    }

    /// An Ogg Opus file (RFC 7845) of a 48 kHz mono tone in 20 ms packets, with a pre-skip of
    /// 312 samples and the last granule position trimming the end.
    pub fn ogg_opus(path: &Path, freq: f64, seconds: f64) {
        use ogg::writing::{PacketWriteEndInfo, PacketWriter};
        let file = std::fs::File::create(path).unwrap();
        let mut writer = PacketWriter::new(file);
        let serial = 0x5eed;
        let mut head = b"OpusHead".to_vec();
        head.push(1);
        head.push(1);
        head.extend_from_slice(&312u16.to_le_bytes());
        head.extend_from_slice(&48000u32.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes());
        head.push(0);
        writer
            .write_packet(head, serial, PacketWriteEndInfo::EndPage, 0)
            .unwrap();
        let mut tags = b"OpusTags".to_vec();
        tags.extend_from_slice(&4u32.to_le_bytes());
        tags.extend_from_slice(b"test");
        tags.extend_from_slice(&0u32.to_le_bytes());
        writer
            .write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)
            .unwrap();
        let total = (48000.0 * seconds) as usize;
        let frames = (total + 312).div_ceil(960);
        let mut encoder = Encoder::new(48000, EncoderProfile::default()).unwrap();
        let pcm = tone(48000, freq, 10000.0, 0, frames * 960);
        let mut packet = [0u8; MAX_OPUS_PACKET];
        for i in 0..frames {
            let len = encoder
                .encode(&pcm[i * 960..(i + 1) * 960], &mut packet)
                .unwrap();
            let last = i + 1 == frames;
            let granule = if last { total + 312 } else { (i + 1) * 960 } as u64;
            let end = if last {
                PacketWriteEndInfo::EndStream
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            writer
                .write_packet(packet[..len].to_vec(), serial, end, granule)
                .unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_files::{ogg_opus, wav};
    use super::*;
    use crate::media::codec::test_signals::goertzel_db;

    fn all_frames(file: &mut AnnouncementFile) -> Vec<i16> {
        let mut out = Vec::new();
        let mut frame = Vec::new();
        while file.next_frame(&mut frame).unwrap() {
            out.extend_from_slice(&frame);
        }
        out
    }

    fn folder() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("audioroom-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn wav_files_at_any_rate_play_at_the_rooms() {
        let dir = folder();
        for (rate, channels) in [(44100, 2), (8000, 1), (16000, 1), (48000, 2)] {
            let path = dir.join(format!("tone-{rate}-{channels}.wav"));
            wav(&path, rate, channels, 700.0, 1.0);
            for room in [16000, 48000] {
                let mut file = AnnouncementFile::open(&path, room).unwrap();
                let pcm = all_frames(&mut file);
                let seconds = pcm.len() as f64 / room as f64;
                assert!(
                    (0.99..1.1).contains(&seconds),
                    "{rate} Hz in {room}: {seconds} s"
                );
                let level =
                    goertzel_db(&pcm[room as usize / 5..room as usize * 4 / 5], room, 700.0);
                assert!(
                    (level + 10.3).abs() < 1.0,
                    "{rate} Hz x{channels} in {room}: {level}"
                );
                // Rewound, it plays again.
                file.rewind().unwrap();
                assert_eq!(all_frames(&mut file).len(), pcm.len());
            }
        }
    }

    #[test]
    fn ogg_opus_files_play_trimmed_of_pre_skip_and_padding() {
        let path = folder().join("tone.opus");
        ogg_opus(&path, 500.0, 1.5);
        for room in [8000, 48000] {
            let mut file = AnnouncementFile::open(&path, room).unwrap();
            let pcm = all_frames(&mut file);
            // 1.5 s exactly, rounded up to a whole frame.
            assert_eq!(pcm.len(), room as usize * 3 / 2, "at {room} Hz");
            let level = goertzel_db(&pcm[room as usize / 5..room as usize], room, 500.0);
            assert!((level + 10.3).abs() < 1.5, "{room}: {level}");
        }
    }

    #[test]
    fn missing_and_broken_files_are_errors_in_words() {
        let dir = folder();
        let missing = AnnouncementFile::open(&dir.join("nope.wav"), 48000)
            .err()
            .unwrap();
        assert_eq!(missing, "No such file or directory (os error 2)");
        let text = dir.join("text.wav");
        std::fs::write(&text, b"hello, this is not audio").unwrap();
        let err = AnnouncementFile::open(&text, 48000).err().unwrap();
        assert_eq!(err, "not an Ogg Opus or WAV file");
        let truncated = dir.join("truncated.wav");
        std::fs::write(&truncated, b"RIFF\x10\0\0\0WAVEfmt ").unwrap();
        let err = AnnouncementFile::open(&truncated, 48000).err().unwrap();
        assert!(err.contains("not a valid WAV file"), "{err}");
        let vorbis = dir.join("vorbis.ogg");
        let mut page = b"OggS\0\x02".to_vec();
        page.extend_from_slice(&[0; 20]);
        page.extend_from_slice(&[1, 7]);
        page.extend_from_slice(b"\x01vorbis");
        std::fs::write(&vorbis, page).unwrap();
        let err = AnnouncementFile::open(&vorbis, 48000).err().unwrap();
        assert!(err.contains("Ogg"), "{err}");
        let float = dir.join("float.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&float, spec).unwrap();
        w.write_sample(0.5f32).unwrap();
        w.finalize().unwrap();
        let err = AnnouncementFile::open(&float, 48000).err().unwrap();
        assert_eq!(err, "a WAV file of 32-bit float samples; 16-bit PCM only");
    }
}
