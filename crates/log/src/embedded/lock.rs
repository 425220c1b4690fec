//! One process per data directory: an flock on `<dir>/lock`, which the
//! kernel releases when the process dies, however it dies.
//!
//! Within one process, instances opened on the same directory share the
//! lock (a test that restarts a service in-process reopens the log before
//! every clone of the old instance is gone). Opening the same directory
//! twice in one process and appending through both is the caller's bug:
//! open it once and clone the handle.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use crate::error::{LogError, Result};

/// Locks this process holds, by canonical directory.
static HELD: LazyLock<Mutex<HashMap<PathBuf, Weak<File>>>> = LazyLock::new(Mutex::default);

/// Held while a log is open on the directory.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: Arc<File>,
}

pub(crate) fn lock(dir: &Path) -> Result<DirLock> {
    std::fs::create_dir_all(dir).map_err(|e| LogError::io("create directory", dir, e))?;
    let canonical = dir
        .canonicalize()
        .map_err(|e| LogError::io("resolve directory", dir, e))?;
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    held.retain(|_, file| file.strong_count() > 0);
    if let Some(file) = held.get(&canonical).and_then(Weak::upgrade) {
        return Ok(DirLock { _file: file });
    }
    let path = canonical.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LogError::io("open lock", &path, e))?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {
            let file = Arc::new(file);
            held.insert(canonical, Arc::downgrade(&file));
            Ok(DirLock { _file: file })
        }
        Err(fs4::TryLockError::WouldBlock) => Err(LogError::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(fs4::TryLockError::Error(e)) => Err(LogError::io("lock", &path, e)),
    }
}
