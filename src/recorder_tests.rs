//! Recorder tests: WAV files parsed back, no-overwrite names, crash-safe headers, job files.
use super::*;
