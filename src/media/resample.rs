//! Sample-rate conversion with a proper low-pass filter: rubato's synchronous FFT resampler
//! (`FftFixedInOut`), a windowed-sinc (Blackman-Harris) filter as long as one frame, applied in
//! the frequency domain. Used where G.711's 8 kHz meets a room at another rate, and for
//! announcement files.
//!
//! One 20 ms frame in gives one 20 ms frame out, delayed by half an output frame (10 ms). The
//! resampler's whole memory is the overlap its last frame left for the next one, so a stream's
//! state is a function of its last input frame: `prime` rebuilds it exactly, which is how a
//! listener moves between its own stream and a shared one without a click (`mixer`).

use crate::media::codec::{CodecError, frame_samples};
use rubato::{FftFixedInOut, Resampler};

/// One frame at one rate to one frame at another (identity when they are equal).
pub struct FrameResampler {
    inner: Option<Box<FftFixedInOut<f32>>>,
    input: Vec<f32>,
    output: Vec<f32>,
}

impl FrameResampler {
    pub fn new(from: u32, to: u32) -> Result<Self, CodecError> {
        let (frame_in, frame_out) = (frame_samples(from), frame_samples(to));
        if from == to {
            return Ok(FrameResampler {
                inner: None,
                input: Vec::new(),
                output: Vec::new(),
            });
        }
        let inner = FftFixedInOut::<f32>::new(from as usize, to as usize, frame_in, 1)
            .map_err(|e| CodecError(format!("resampler {from} -> {to} Hz: {e}")))?;
        // The resampler works in units of its own; ours must be exactly one frame each way.
        if inner.input_frames_next() != frame_in || inner.output_frames_next() != frame_out {
            return Err(CodecError(format!(
                "resampler {from} -> {to} Hz does not work in 20 ms frames"
            )));
        }
        Ok(FrameResampler {
            inner: Some(Box::new(inner)),
            input: vec![0.0; frame_in],
            output: vec![0.0; frame_out],
        })
    }

    /// Resamples one frame; `out` must be one frame at the output rate.
    pub fn process(&mut self, frame: &[i16], out: &mut [i16]) {
        let Some(inner) = self.inner.as_mut() else {
            out.copy_from_slice(frame);
            return;
        };
        for (f, &s) in self.input.iter_mut().zip(frame) {
            *f = s as f32;
        }
        // Sizes are checked at construction, so this cannot fail.
        let _ = inner.process_into_buffer(&[&self.input[..]], &mut [&mut self.output[..]], None);
        for (s, &f) in out.iter_mut().zip(&self.output) {
            *s = f.round().clamp(i16::MIN as f32, i16::MAX as f32) as i16;
        }
    }

    /// Makes the state exactly what it would be had `previous` been the last frame processed.
    pub fn prime(&mut self, previous: &[i16]) {
        if let Some(inner) = self.inner.as_mut() {
            inner.reset();
            for (f, &s) in self.input.iter_mut().zip(previous) {
                *f = s as f32;
            }
            let _ =
                inner.process_into_buffer(&[&self.input[..]], &mut [&mut self.output[..]], None);
        }
    }

    /// Forgets the past (a fresh stream).
    pub fn reset(&mut self) {
        if let Some(inner) = self.inner.as_mut() {
            inner.reset();
        }
    }
}

/// A file's samples at any rate to 20 ms frames at a room's: samples go in in any amount, whole
/// frames come out. For announcements, on their reader thread.
pub struct StreamResampler {
    inner: Option<Box<FftFixedInOut<f32>>>,
    pending: Vec<f32>,
    output: Vec<f32>,
    ready: Vec<i16>,
}

impl StreamResampler {
    pub fn new(from: u32, to: u32) -> Result<Self, CodecError> {
        let inner = if from == to {
            None
        } else {
            let chunk = (from as usize / 50).max(1);
            let inner = FftFixedInOut::<f32>::new(from as usize, to as usize, chunk, 1)
                .map_err(|e| CodecError(format!("resampler {from} -> {to} Hz: {e}")))?;
            Some(Box::new(inner))
        };
        let output = inner.as_ref().map_or(0, |r| r.output_frames_next());
        Ok(StreamResampler {
            inner,
            pending: Vec::new(),
            output: vec![0.0; output],
            ready: Vec::new(),
        })
    }

    /// Takes samples in.
    pub fn push(&mut self, samples: &[i16]) {
        let Some(inner) = self.inner.as_mut() else {
            self.ready.extend_from_slice(samples);
            return;
        };
        self.pending.extend(samples.iter().map(|&s| s as f32));
        let unit = inner.input_frames_next();
        let mut used = 0;
        while self.pending.len() - used >= unit {
            let input = &self.pending[used..used + unit];
            let _ = inner.process_into_buffer(&[input], &mut [&mut self.output[..]], None);
            self.ready.extend(
                self.output
                    .iter()
                    .map(|&f| f.round().clamp(i16::MIN as f32, i16::MAX as f32) as i16),
            );
            used += unit;
        }
        self.pending.drain(..used);
    }

    /// Pads what is left with silence so the last samples come out (end of a file).
    pub fn flush(&mut self) {
        if let Some(unit) = self.inner.as_ref().map(|r| r.input_frames_next()) {
            if !self.pending.is_empty() {
                let missing = unit - self.pending.len() % unit;
                self.push(&vec![0; missing]);
            }
        }
    }

    /// The next whole frame of `frame` samples, if there is one.
    pub fn pop_frame(&mut self, frame: usize, out: &mut Vec<i16>) -> bool {
        if self.ready.len() < frame {
            return false;
        }
        out.clear();
        out.extend(self.ready.drain(..frame));
        true
    }

    /// Moves every sample ready so far to the end of `out`.
    pub fn take_ready(&mut self, out: &mut Vec<i16>) {
        out.append(&mut self.ready);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::test_signals::{goertzel_db, tone};

    fn run(resampler: &mut FrameResampler, input: &[i16], from: u32, to: u32) -> Vec<i16> {
        let (fi, fo) = (frame_samples(from), frame_samples(to));
        let mut out = Vec::new();
        let mut frame = vec![0; fo];
        for chunk in input.chunks(fi) {
            resampler.process(chunk, &mut frame);
            out.extend_from_slice(&frame);
        }
        out
    }

    #[test]
    fn a_tone_keeps_its_level_both_ways_at_every_room_rate() {
        for rate in [12000, 16000, 24000, 48000] {
            let mut up = FrameResampler::new(8000, rate).unwrap();
            let mut down = FrameResampler::new(rate, 8000).unwrap();
            let at_8k = tone(8000, 1000.0, 10000.0, 0, 8000);
            let at_room = run(&mut up, &at_8k, 8000, rate);
            assert_eq!(at_room.len(), rate as usize);
            let level = goertzel_db(&at_room[rate as usize / 2..], rate, 1000.0);
            assert!(
                (level - goertzel_db(&at_8k, 8000, 1000.0)).abs() < 0.3,
                "{rate}: {level}"
            );
            let back = run(&mut down, &at_room, rate, 8000);
            let level = goertzel_db(&back[4000..], 8000, 1000.0);
            assert!(
                (level - goertzel_db(&at_8k, 8000, 1000.0)).abs() < 0.5,
                "{rate}: {level}"
            );
        }
    }

    #[test]
    fn downsampling_filters_what_8_khz_cannot_carry() {
        // A 6 kHz tone at 48 kHz would fold to 2 kHz with plain decimation (AudioBridge's way).
        let mut down = FrameResampler::new(48000, 8000).unwrap();
        let input = tone(48000, 6000.0, 16000.0, 0, 48000);
        let out = run(&mut down, &input, 48000, 8000);
        let alias = goertzel_db(&out[4000..], 8000, 2000.0);
        assert!(alias < -70.0, "the alias is at {alias:.1} dB");
        // Just inside the band passes.
        let input = tone(48000, 3400.0, 16000.0, 0, 48000);
        let out = run(&mut down, &input, 48000, 8000);
        assert!(goertzel_db(&out[4000..], 8000, 3400.0) > -7.0);
    }

    #[test]
    fn priming_with_the_previous_frame_continues_a_stream_exactly() {
        let input = tone(48000, 700.0, 12000.0, 0, 960 * 20);
        let mut running = FrameResampler::new(48000, 8000).unwrap();
        let whole = run(&mut running, &input, 48000, 8000);
        // A second resampler that saw something else, primed with frame 9, continues frame 10
        // sample for sample.
        let mut other = FrameResampler::new(48000, 8000).unwrap();
        run(
            &mut other,
            &tone(48000, 300.0, 9000.0, 0, 960 * 3),
            48000,
            8000,
        );
        other.prime(&input[9 * 960..10 * 960]);
        let mut frame = vec![0; 160];
        other.process(&input[10 * 960..11 * 960], &mut frame);
        assert_eq!(frame, whole[10 * 160..11 * 160]);
    }

    #[test]
    fn a_file_at_44100_hz_comes_out_in_48_khz_frames() {
        let mut r = StreamResampler::new(44100, 48000).unwrap();
        let input = tone(44100, 500.0, 8000.0, 0, 44100);
        for chunk in input.chunks(1000) {
            r.push(chunk);
        }
        r.flush();
        let mut frame = Vec::new();
        let mut out = Vec::new();
        while r.pop_frame(960, &mut frame) {
            out.extend_from_slice(&frame);
        }
        assert!((47_000..=49_000).contains(&out.len()), "{}", out.len());
        assert!(goertzel_db(&out[10_000..40_000], 48000, 500.0) > -13.0);
    }

    #[test]
    fn the_cost_of_one_frame_is_small() {
        let mut down = FrameResampler::new(48000, 8000).unwrap();
        let input = tone(48000, 700.0, 12000.0, 0, 960);
        let mut out = vec![0; 160];
        let start = std::time::Instant::now();
        for _ in 0..1000 {
            down.process(&input, &mut out);
        }
        let per_frame = start.elapsed() / 1000;
        eprintln!("48 kHz -> 8 kHz: {per_frame:?} per 20 ms frame");
        // An Opus encode of the same frame costs hundreds of microseconds (optimised builds;
        // `make check` tests those).
        let bound = if cfg!(debug_assertions) { 5000 } else { 100 };
        assert!(per_frame < std::time::Duration::from_micros(bound));
    }
}
