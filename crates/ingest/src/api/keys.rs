//! The instance's own token signing keys on disk: one PKCS#8 PEM file per key, `<kid>.pem`,
//! mode 0600, in a directory of mode 0700 that the binary names (`data_dir/keys/`). The first
//! start makes one Ed25519 key; a rotation adds one; loading deletes the keys retired. What
//! the keys are and when one retires is `switchboard_events::token` (`token.md`).
//!
//! A key file readable by anyone but its owner is refused, as ssh refuses one: a private key
//! someone else could read is no longer the instance's alone.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use switchboard_events::token::{IssuerKeys, KeyError, SigningKey};
use thiserror::Error;

/// Why the key directory could not be read or written.
#[derive(Debug, Error)]
pub enum KeyDirError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("key file {path} may be read by others (mode {mode:o}): make it 0600")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("key file {path}: {source}")]
    Key { path: PathBuf, source: KeyError },
    #[error(transparent)]
    Keys(#[from] KeyError),
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> KeyDirError {
    let path = path.to_owned();
    move |source| KeyDirError::Io {
        action,
        path,
        source,
    }
}

/// The directory of one issuer's private keys.
#[derive(Clone, Debug)]
pub struct KeyDir {
    path: PathBuf,
}

impl KeyDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every key of the directory, made with one new key when it holds none; keys retired at
    /// `now` (superseded more than `keep_for` seconds ago) are deleted.
    pub fn load_or_create(&self, now: u64, keep_for: u64) -> Result<IssuerKeys, KeyDirError> {
        create_private_dir(&self.path)?;
        let keys = self.read_keys()?;
        if keys.is_empty() {
            let keys = IssuerKeys::generate(now)?;
            self.write(keys.active())?;
            return Ok(keys);
        }
        let mut keys = IssuerKeys::new(keys)?;
        for kid in keys.retire(now, keep_for) {
            let path = self.file(&kid);
            fs::remove_file(&path).map_err(io_error("deleting the retired key", &path))?;
        }
        Ok(keys)
    }

    /// Adds a new active key made at `now` to `keys` and to the directory. The caller then
    /// gives the verifiers `keys.jwks()` and signs with a new `TokenIssuer`.
    pub fn rotate(&self, keys: &mut IssuerKeys, now: u64) -> Result<(), KeyDirError> {
        let key = keys.rotate(now)?;
        self.write(key)
    }

    fn file(&self, kid: &str) -> PathBuf {
        self.path.join(format!("{kid}.pem"))
    }

    fn read_keys(&self) -> Result<Vec<SigningKey>, KeyDirError> {
        let entries = fs::read_dir(&self.path).map_err(io_error("listing", &self.path))?;
        let mut keys = Vec::new();
        for entry in entries {
            let path = entry.map_err(io_error("listing", &self.path))?.path();
            let Some(kid) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".pem"))
            else {
                continue;
            };
            check_private(&path)?;
            let pem = fs::read(&path).map_err(io_error("reading", &path))?;
            let key = SigningKey::from_pem(kid, &pem).map_err(|source| KeyDirError::Key {
                path: path.clone(),
                source,
            })?;
            keys.push(key);
        }
        Ok(keys)
    }

    /// Writes the key beside its final name, syncs it, then renames it: a crash leaves either
    /// no key file or a whole one (a `.tmp` left behind is ignored and overwritten).
    fn write(&self, key: &SigningKey) -> Result<(), KeyDirError> {
        let path = self.file(key.kid());
        let tmp = self.path.join(format!("{}.pem.tmp", key.kid()));
        let mut file = private_file(&tmp).map_err(io_error("creating", &tmp))?;
        file.write_all(key.to_pem().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_error("writing", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_error("renaming", &tmp))?;
        fs::File::open(&self.path)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error("syncing", &self.path))
    }
}

#[cfg(unix)]
fn create_private_dir(path: &Path) -> Result<(), KeyDirError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_error("creating", path))
}

#[cfg(not(unix))]
fn create_private_dir(path: &Path) -> Result<(), KeyDirError> {
    fs::create_dir_all(path).map_err(io_error("creating", path))
}

#[cfg(unix)]
fn private_file(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> io::Result<fs::File> {
    fs::File::create(path)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), KeyDirError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(io_error("reading", path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyDirError::Exposed {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), KeyDirError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;
    const KEEP: u64 = 86_430;

    fn kids(keys: &IssuerKeys) -> Vec<String> {
        keys.keys().iter().map(|k| k.kid().to_owned()).collect()
    }

    #[test]
    fn the_first_start_makes_a_key_and_later_starts_load_it() {
        let root = tempfile::tempdir().unwrap();
        let dir = KeyDir::new(root.path().join("keys"));
        let first = dir.load_or_create(NOW, KEEP).unwrap();
        let again = dir.load_or_create(NOW + 10, KEEP).unwrap();
        assert_eq!(kids(&first), kids(&again));
        assert_eq!(first.jwks(), again.jwks());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(dir.path()), 0o700);
            assert_eq!(mode(&dir.file(first.active().kid())), 0o600);
        }
    }

    #[test]
    fn rotation_persists_and_retired_keys_are_deleted() {
        let root = tempfile::tempdir().unwrap();
        let dir = KeyDir::new(root.path());
        let mut keys = dir.load_or_create(NOW, KEEP).unwrap();
        let old = keys.active().kid().to_owned();
        dir.rotate(&mut keys, NOW + 100).unwrap();
        let new = keys.active().kid().to_owned();
        let loaded = dir.load_or_create(NOW + 100 + KEEP, KEEP).unwrap();
        assert_eq!(kids(&loaded), vec![old.clone(), new.clone()]);
        assert_eq!(loaded.active().kid(), new);
        let loaded = dir.load_or_create(NOW + 101 + KEEP, KEEP).unwrap();
        assert_eq!(kids(&loaded), vec![new]);
        assert!(!dir.file(&old).exists());
        // A half-written key and other files are not keys.
        fs::write(root.path().join("9-x.pem.tmp"), "partial").unwrap();
        fs::write(root.path().join("README"), "keys").unwrap();
        assert_eq!(dir.load_or_create(NOW, KEEP).unwrap().keys().len(), 1);
    }

    #[test]
    fn exposed_and_broken_key_files_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = KeyDir::new(root.path());
        let keys = dir.load_or_create(NOW, KEEP).unwrap();
        let path = dir.file(keys.active().kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let err = dir.load_or_create(NOW, KEEP).unwrap_err();
            assert!(
                matches!(err, KeyDirError::Exposed { mode: 0o644, .. }),
                "{err}"
            );
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let broken = root.path().join("1-broken.pem");
        private_file(&broken)
            .unwrap()
            .write_all(b"not a key")
            .unwrap();
        let err = dir.load_or_create(NOW, KEEP).unwrap_err();
        assert!(matches!(err, KeyDirError::Key { .. }), "{err}");
        assert!(!err.to_string().contains("PRIVATE KEY"));
    }
}
