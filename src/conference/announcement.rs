//! An announcement: a file played into a room (`play_file`), heard by everyone in it like a
//! speaker nobody is excluded from. Its frames come from the announcement reader
//! (`media::announcement_reader`); the room's tick mixes one per tick and tells the room when
//! it starts and stops. Also where a `filename` may point: inside `announcements_path` only.

use crate::media::announcement_reader::Playback;
use serde_json::{Value, json};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

pub struct Announcement {
    pub file_id: String,
    /// As the request gave it.
    pub filename: String,
    pub looping: bool,
    pub playback: Arc<Playback>,
    /// Its first frame was mixed (`announcement-started` was sent).
    started: AtomicBool,
    /// It is over: taken out of its room by the tick (the file ended) or by a request.
    over: AtomicBool,
}

impl Announcement {
    pub fn new(file_id: String, filename: String, looping: bool, playback: Arc<Playback>) -> Self {
        Announcement {
            file_id,
            filename,
            looping,
            playback,
            started: AtomicBool::new(false),
            over: AtomicBool::new(false),
        }
    }

    /// Marks it started; true the first time (when `announcement-started` is due).
    pub fn start(&self) -> bool {
        !self.started.swap(true, Relaxed)
    }

    /// Marks it over and lets the reader go; true the first time, when it had started (when
    /// `announcement-stopped` is due). Whoever ends it first, the tick or a request, tells.
    pub fn end(&self) -> bool {
        self.playback.stop();
        !self.over.swap(true, Relaxed) && self.started.load(Relaxed)
    }

    /// Being heard: started and not over (AudioBridge's `playing`).
    pub fn is_playing(&self) -> bool {
        self.started.load(Relaxed) && !self.over.load(Relaxed)
    }

    /// As `listannouncements` shows it.
    pub fn describe(&self) -> Value {
        json!({
            "file_id": self.file_id,
            "filename": self.filename,
            "playing": self.is_playing(),
            "loop": self.looping,
        })
    }
}

/// Why a `filename` cannot be played.
#[derive(Debug)]
pub enum Refused {
    /// It leaves `announcements_path` (`..`, an absolute path elsewhere, a symbolic link out).
    Outside,
    /// It cannot be opened (missing, unreadable, not a file): the OS's reason.
    Unreadable(String),
}

/// The file `filename` names, relative to `folder` or absolute within it, after every symbolic
/// link is followed; refused when it leaves the folder. A `..` component is refused outright,
/// before the disk is asked anything, so no answer says whether a file outside exists.
pub fn resolve(folder: &Path, filename: &str) -> Result<PathBuf, Refused> {
    let given = Path::new(filename);
    if filename.is_empty()
        || filename.chars().any(char::is_control)
        || given.components().any(|c| c == Component::ParentDir)
    {
        return Err(Refused::Outside);
    }
    let folder = folder.canonicalize().map_err(|e| {
        Refused::Unreadable(format!("announcements_path {}: {e}", folder.display()))
    })?;
    let candidate = if given.is_absolute() {
        // Lexically inside first: an absolute path elsewhere is refused without a look.
        if !given.starts_with(&folder) {
            return Err(Refused::Outside);
        }
        given.to_owned()
    } else {
        folder.join(given)
    };
    let real = candidate
        .canonicalize()
        .map_err(|e| Refused::Unreadable(e.to_string()))?;
    if !real.starts_with(&folder) {
        return Err(Refused::Outside);
    }
    if !real.is_file() {
        return Err(Refused::Unreadable("not a regular file".into()));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_inside_the_folder_resolve() {
        let base = std::env::temp_dir().join(format!("audioroom-prompts-{}", std::process::id()));
        let folder = base.join("prompts");
        std::fs::create_dir_all(folder.join("sub")).unwrap();
        std::fs::write(folder.join("hello.wav"), b"x").unwrap();
        std::fs::write(folder.join("sub/b.opus"), b"x").unwrap();
        std::fs::write(base.join("secret.wav"), b"x").unwrap();
        let _ = std::os::unix::fs::symlink(base.join("secret.wav"), folder.join("link.wav"));
        let _ = std::os::unix::fs::symlink(folder.join("hello.wav"), folder.join("inside.wav"));
        let inside = folder.canonicalize().unwrap();

        assert_eq!(
            resolve(&folder, "hello.wav").unwrap(),
            inside.join("hello.wav")
        );
        assert_eq!(
            resolve(&folder, "sub/b.opus").unwrap(),
            inside.join("sub/b.opus")
        );
        assert_eq!(
            resolve(&folder, "./sub/b.opus").unwrap(),
            inside.join("sub/b.opus")
        );
        let absolute = inside.join("hello.wav");
        assert!(resolve(&folder, absolute.to_str().unwrap()).is_ok());
        assert_eq!(
            resolve(&folder, "inside.wav").unwrap(),
            inside.join("hello.wav")
        );
        for outside in [
            "../secret.wav",
            "sub/../../secret.wav",
            "sub/../hello.wav",
            "/etc/passwd",
            "/nonexistent/x.wav",
            "link.wav",
            "",
            "a\nb.wav",
        ] {
            assert!(
                matches!(resolve(&folder, outside), Err(Refused::Outside)),
                "{outside:?}"
            );
        }
        match resolve(&folder, "missing.wav") {
            Err(Refused::Unreadable(reason)) => {
                assert_eq!(reason, "No such file or directory (os error 2)")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            resolve(&folder, "sub"),
            Err(Refused::Unreadable(_))
        ));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
