//! One recording's WAV file: created without ever replacing a file, written in 16-bit PCM
//! mono, its header brought up to date at least once a second (so a file cut short by a crash
//! is valid), and after a disk error trimmed to what really reached the disk.

use crate::archive::new_file::create_new;
use hound::{SampleFormat, WavSpec, WavWriter};
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the header is brought up to date.
pub const HEADER_REFRESH: Duration = Duration::from_secs(1);

pub struct WavFile {
    pub path: PathBuf,
    pub rate: u32,
    writer: Option<WavWriter<BufWriter<StopOnError>>>,
    /// A second descriptor of the same file, to sync it after the writer is gone.
    sync_handle: File,
    /// Samples written so far.
    pub samples: u64,
    /// Samples the header on disk accounts for.
    pub samples_on_disk: u64,
    last_header: Instant,
    /// The first error; nothing is written after it.
    pub error: Option<String>,
}

impl WavFile {
    /// Creates `<folder>/<base>.wav`, or `<base>-1.wav`, `-2`… when taken; the error names the
    /// path (or folder) that failed.
    pub fn create(folder: &Path, base: &str, rate: u32) -> Result<WavFile, (PathBuf, io::Error)> {
        let (file, path) = create_new(folder, base, "wav")?;
        let fail = |e: io::Error| (path.clone(), e);
        let sync_handle = file.try_clone().map_err(fail)?;
        let spec = WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let stop_on_error = StopOnError {
            file,
            failed: false,
        };
        let mut writer = WavWriter::new(BufWriter::new(stop_on_error), spec)
            .map_err(|e| fail(hound_to_io(e)))?;
        writer.flush().map_err(|e| fail(hound_to_io(e)))?;
        Ok(WavFile {
            path,
            rate,
            writer: Some(writer),
            sync_handle,
            samples: 0,
            samples_on_disk: 0,
            last_header: Instant::now(),
            error: None,
        })
    }

    /// Appends samples; on the first error the file is trimmed to what reached the disk and the
    /// error (`<path>: <OS error>`) is returned once. Later calls do nothing.
    pub fn write(&mut self, pcm: &[i16]) -> Result<(), String> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let result = write_samples(writer, pcm).and_then(|()| {
            if self.last_header.elapsed() >= HEADER_REFRESH {
                self.last_header = Instant::now();
                writer.flush().map_err(hound_to_io)?;
                self.samples_on_disk = self.samples + pcm.len() as u64;
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                self.samples += pcm.len() as u64;
                Ok(())
            }
            Err(e) => {
                let reason = format!("{}: {e}", self.path.display());
                self.close_after_error(reason.clone());
                Err(reason)
            }
        }
    }

    /// Finalizes the header and syncs the file and its folder.
    pub fn finish(&mut self) {
        if let Some(writer) = self.writer.take() {
            if let Err(e) = writer.finalize() {
                let reason = format!("{}: {}", self.path.display(), hound_to_io(e));
                self.close_after_error(reason);
            } else {
                self.samples_on_disk = self.samples;
            }
        }
        if let Err(e) = self.sync_handle.sync_all() {
            crate::log!(Warn, "Could not sync {}: {e}", self.path.display());
        }
        if let Some(folder) = self.path.parent() {
            crate::archive::jobs::sync_folder(folder);
        }
    }

    pub fn duration_ms(&self) -> u64 {
        self.samples * 1000 / self.rate.max(1) as u64
    }

    /// Writing failed: what reached the disk is kept, with a header that says exactly that
    /// much (buffered samples that never made it are not claimed).
    fn close_after_error(&mut self, reason: String) {
        if let Some(writer) = self.writer.take() {
            let _ = writer.finalize();
        }
        match fit_header_to_file(&self.sync_handle) {
            Ok(samples) => {
                self.samples = samples;
                self.samples_on_disk = samples;
            }
            Err(e) => crate::log!(
                Error,
                "Could not repair the header of {}: {e}",
                self.path.display()
            ),
        }
        self.error.get_or_insert(reason);
    }
}

/// The file as hound sees it: after the first error every write and seek fails without
/// touching the file, so nothing hound or its buffer does after a full disk can garble what
/// `fit_header_to_file` then repairs.
struct StopOnError {
    file: File,
    failed: bool,
}

impl StopOnError {
    fn guard<T>(&mut self, op: impl FnOnce(&mut File) -> io::Result<T>) -> io::Result<T> {
        if self.failed {
            return Err(io::Error::other("writing stopped after an earlier error"));
        }
        op(&mut self.file).inspect_err(|_| self.failed = true)
    }
}

impl io::Write for StopOnError {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.guard(|f| f.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.guard(|f| f.flush())
    }
}

impl io::Seek for StopOnError {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.guard(|f| f.seek(pos))
    }
}

fn write_samples(writer: &mut WavWriter<BufWriter<StopOnError>>, pcm: &[i16]) -> io::Result<()> {
    let mut samples = writer.get_i16_writer(pcm.len() as u32);
    for &s in pcm {
        samples.write_sample(s);
    }
    samples.flush().map_err(hound_to_io)
}

/// Rewrites the RIFF and `data` sizes of a 16-bit mono WAV to match the bytes in the file,
/// trimming a torn last sample; returns the samples it holds.
pub fn fit_header_to_file(mut file: &File) -> io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let length = file.metadata()?.len();
    let mut header = [0u8; 12];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut header)?;
    if &header[0..4] != b"RIFF" || &header[8..12] != b"WAVE" {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a WAV file"));
    }
    let mut chunk_at = 12u64;
    let data_at = loop {
        let mut chunk = [0u8; 8];
        file.seek(SeekFrom::Start(chunk_at))?;
        file.read_exact(&mut chunk)?;
        if &chunk[0..4] == b"data" {
            break chunk_at + 8;
        }
        let size = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]) as u64;
        chunk_at += 8 + size + (size & 1);
        if chunk_at >= length {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "no data chunk"));
        }
    };
    let data_bytes = length.saturating_sub(data_at) & !1;
    file.set_len(data_at + data_bytes)?;
    file.seek(SeekFrom::Start(4))?;
    file.write_all(&((data_at + data_bytes - 8) as u32).to_le_bytes())?;
    file.seek(SeekFrom::Start(data_at - 4))?;
    file.write_all(&(data_bytes as u32).to_le_bytes())?;
    Ok(data_bytes / 2)
}

fn hound_to_io(e: hound::Error) -> io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, OpenOptions};

    #[test]
    fn a_torn_file_gets_a_header_that_matches_its_bytes() {
        let folder =
            std::env::temp_dir().join(format!("audioroom-wav-torn-{}", std::process::id()));
        fs::create_dir_all(&folder).unwrap();
        let path = folder.join("torn.wav");
        let spec = WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let mut writer = WavWriter::create(&path, spec).unwrap();
        for s in 0..1000i16 {
            writer.write_sample(s).unwrap();
        }
        writer.finalize().unwrap();
        // Lose the end of the file as a full disk would, mid-sample.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        file.set_len(44 + 2 * 600 + 1).unwrap();
        assert_eq!(fit_header_to_file(&file).unwrap(), 600);
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.duration(), 600);
        let samples: Vec<i16> = reader.into_samples().map(Result::unwrap).collect();
        assert_eq!(samples, (0..600).collect::<Vec<i16>>());
        fs::remove_dir_all(&folder).unwrap();
    }
}
