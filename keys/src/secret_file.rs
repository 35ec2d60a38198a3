//! Secret files: written owner-only through a temporary file, refused when others can read them.

use std::io::Write;
use std::path::Path;

use zeroize::Zeroizing;

use crate::{KeyError, Result};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the parent directory (owner-only on Unix) when missing.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    Ok(())
}

/// Writes a new file atomically (temporary file, sync, rename) with the given Unix mode.
///
/// Refuses to replace an existing file: a key silently overwritten is a key lost.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    if path.exists() {
        return Err(KeyError::Exists(path.to_path_buf()));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure_private_dir(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".synchro-key-")
        .tempfile_in(dir)
        .map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io(path))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.write_all(contents).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist_noclobber(path).map_err(|e| KeyError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Writes a secret file readable by its owner only (0600).
pub fn write_secret(path: &Path, contents: &str) -> Result<()> {
    write_new(path, contents.as_bytes(), 0o600)
}

/// Writes a public file (0644).
pub fn write_public(path: &Path, contents: &str) -> Result<()> {
    write_new(path, contents.as_bytes(), 0o644)
}

/// Reads a secret file, refusing it when other users can read it.
pub fn read_secret(path: &Path) -> Result<Zeroizing<String>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(io(path))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(io(path))?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| crate::format_error(path, "not a text key file"))?;
    Ok(Zeroizing::new(text.to_string()))
}

/// Reads a public file.
pub fn read_public(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_owner_only_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret.key");
        write_secret(&path, "s3cret").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let dir_mode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o777, 0o700);
        }
        assert_eq!(read_secret(&path).unwrap().as_str(), "s3cret");
        assert!(matches!(write_secret(&path, "x"), Err(KeyError::Exists(_))));
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_secrets_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        write_secret(&path, "s3cret").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_secret(&path).unwrap_err();
        assert!(matches!(err, KeyError::Exposed { mode: 0o644, .. }));
        assert!(!err.to_string().contains("s3cret"));
    }
}
