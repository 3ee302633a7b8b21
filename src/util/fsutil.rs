//! File helpers: private (0600) writes for keys and identities, private temporary
//! directories, reads with the path in the error.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` readable by the owner only (mode 0600 on unix), creating
/// parent directories (0700) as needed and replacing the file atomically.
///
/// # Errors
/// [`Error::File`] naming the path.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => {
            create_private_dir(d)?;
            d
        }
        None => Path::new("."),
    };
    // A fresh file with a random name, created exclusively with mode 0600 (no
    // pre-existing file or symlink can be written through), then renamed over `path`.
    let write = || -> std::io::Result<()> {
        let mut tmp = tempfile::Builder::new().prefix(".oneport-").tempfile_in(dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    };
    write().map_err(|e| Error::file(path, e))
}

/// Writes a non-secret file (certificates, configs), creating parent directories.
///
/// # Errors
/// [`Error::File`] naming the path.
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| Error::file(path, e))
}

/// Creates `dir` (and parents) with mode 0700 for new directories.
///
/// # Errors
/// [`Error::File`] naming the directory.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| Error::file(dir, e))
}

/// A new temporary directory `PREFIX…` only the owner can enter (0700), removed
/// when dropped: for throwaway kubeconfigs and keys.
///
/// # Errors
/// [`Error::File`] naming the temporary directory.
pub fn private_temp_dir(prefix: &str) -> Result<tempfile::TempDir> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o700));
    }
    b.tempdir().map_err(|e| Error::file(std::env::temp_dir(), e))
}

/// Reads a file, naming it in the error.
///
/// # Errors
/// [`Error::File`] naming the path.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn private_files_are_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/key.pem");
        write_private(&p, b"secret").unwrap();
        write_private(&p, b"secret2").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"secret2");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(dir.path().join("sub")).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
