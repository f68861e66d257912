//! Creating a recording's file without ever replacing one: `<base>.<ext>`, or `<base>-1.<ext>`,
//! `-2`… when the name is taken, created exclusively so two writers can never share a file.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Tries after the name itself before giving up.
const MAX_SUFFIX: u32 = 9999;

/// Creates `<folder>/<base>.<ext>` (and the folders `base` names), or the first free
/// `<base>-<n>.<ext>`; the error names the path (or folder) that failed.
pub fn create_new(
    folder: &Path,
    base: &str,
    ext: &str,
) -> Result<(File, PathBuf), (PathBuf, io::Error)> {
    let first = folder.join(format!("{base}.{ext}"));
    if let Some(parent) = first.parent() {
        fs::create_dir_all(parent).map_err(|e| (parent.to_path_buf(), e))?;
    }
    for n in 0..=MAX_SUFFIX {
        let path = if n == 0 {
            first.clone()
        } else {
            folder.join(format!("{base}-{n}.{ext}"))
        };
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err((path, e)),
        }
    }
    Err((
        first,
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} files of that name exist", MAX_SUFFIX + 1),
        ),
    ))
}
