//! Files, read and written so that a hostile or unlucky file system cannot hang or half-write us.
//!
//! - Reads open the file non-blocking and check its type first: a FIFO, socket or device where a
//!   manifest, an ecosystem file, the registry or `dump.pm2` should be is refused by name instead of
//!   blocking for ever (or reading `/dev/zero` until memory runs out).
//! - Writes are atomic: a temporary file beside the target (`.NAME.XXXXXX.tmp`), fsync, rename,
//!   fsync of the directory; an interrupted write leaves the old file or the new one. A process
//!   killed mid-write leaves its temporary file behind: [`remove_leftovers`] clears them, and is
//!   called under the registry lock, where no other pm2-port is writing.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Why a path that should be a regular file is not one, or `None` when it is.
fn not_regular(ty: fs::FileType) -> Option<&'static str> {
    if ty.is_file() {
        None
    } else if ty.is_dir() {
        Some("a directory")
    } else if ty.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if ty.is_socket() {
        Some("a socket")
    } else if ty.is_char_device() || ty.is_block_device() {
        Some("a device")
    } else {
        Some("not a regular file")
    }
}

/// The bytes of the regular file at `path`, or `None` when nothing is there. Anything but a
/// regular file (after following symlinks) is an error of kind `InvalidInput` that says what it is;
/// opening never blocks (`O_NONBLOCK`), so a FIFO without a writer cannot hang the caller.
pub fn read_regular(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let meta = file.metadata()?;
    if let Some(what) = not_regular(meta.file_type()) {
        let kind = if meta.is_dir() {
            io::ErrorKind::IsADirectory
        } else {
            io::ErrorKind::InvalidInput
        };
        return Err(io::Error::new(
            kind,
            format!("it is {what}, not a regular file"),
        ));
    }
    if meta.len() > MAX_READ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "it is {} bytes, over pm2-port's cap of {} MiB for the files it reads",
                meta.len(),
                MAX_READ >> 20
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // `take`: a file that grows while it is read stops at the cap too.
    file.take(MAX_READ).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// The most pm2-port reads of one file: manifests, ecosystem files, the registry and `dump.pm2`
/// are kilobytes (a dump of 1000 apps with their environments, a few megabytes).
pub const MAX_READ: u64 = 64 << 20;

/// The last `max` bytes of the regular file at `path` (a log), lossy UTF-8, starting at a line.
pub fn tail(path: &Path, max: u64) -> io::Result<String> {
    tail_since(path, 0, max)
}

/// Where a log file ends now, so that [`tail_after`] reads only what is written after: its length
/// and inode (a file rotated or recreated since is read from its start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mark {
    len: u64,
    inode: u64,
}

/// The [`Mark`] of `path` now; a file that does not exist yet is marked at its start.
pub fn mark(path: &Path) -> Mark {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).map_or(Mark::default(), |m| Mark {
        len: m.len(),
        inode: m.ino(),
    })
}

/// [`tail`] of what was written after `mark` (all of it without one, or when the file is no
/// longer the one marked).
pub fn tail_after(path: &Path, mark: Option<Mark>, max: u64) -> io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    let since = match (mark, fs::metadata(path)) {
        (Some(m), Ok(now)) if m.inode == now.ino() => m.len,
        _ => 0,
    };
    tail_since(path, since, max)
}

/// [`tail`] of what was written at or after byte `since` (a length measured earlier); all of the
/// tail when the file is now shorter (it was truncated or rotated meanwhile).
pub fn tail_since(path: &Path, since: u64, max: u64) -> io::Result<String> {
    use std::io::{Seek, SeekFrom};
    let mut file = fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if let Some(what) = not_regular(meta.file_type()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file"),
        ));
    }
    let since = if since > meta.len() { 0 } else { since };
    let from = meta.len().saturating_sub(max).max(since);
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(if from > since {
        text.split_once('\n')
            .map_or(text.clone(), |(_, rest)| rest.to_string())
    } else {
        text
    })
}

/// [`read_regular`] as text (lossy UTF-8, without a leading byte-order mark, as Node reads it),
/// with the path in the error.
pub fn read_text(path: &Path) -> Result<Option<String>> {
    match read_regular(path) {
        Ok(Some(bytes)) => Ok(Some(strip_bom(
            String::from_utf8_lossy(&bytes).into_owned(),
        ))),
        Ok(None) => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read `{}`", path.display())),
    }
}

/// Text without the UTF-8 byte-order mark that some editors put first (npm, Node and TOML readers
/// skip it).
pub fn strip_bom(mut text: String) -> String {
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    text
}

/// `path` with symlinks resolved, when it exists; as it is otherwise. PM2 keeps an app's `pm_cwd`
/// as it was given (`$(pwd)` may hold a symlink), pm2-port compares directories resolved.
pub fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `path` with symlinks resolved, `None` when it does not exist.
pub fn resolved(path: &Path) -> Option<PathBuf> {
    fs::canonicalize(path).ok()
}

/// The prefix of the temporary files that stand for `path` while it is written.
fn tmp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    format!(".{name}.")
}

/// Replace `path` with `contents` atomically, keeping the old file's permissions (0644 for a new
/// one). Errors name `path` and say what failed (a full disk names the target, not the temporary).
pub fn atomic_write(path: &Path, contents: &str) -> Result<()> {
    atomic_write_like(path, contents, path)
}

/// [`atomic_write`], a new file taking the permissions of `like` (a copy of a private file stays
/// private): the old file's permissions when there is one, else `like`'s, else 0644.
pub fn atomic_write_like(path: &Path, contents: &str, like: &Path) -> Result<()> {
    let mode = fs::metadata(path)
        .or_else(|_| fs::metadata(like))
        .map_or(0o644, |m| m.permissions().mode());
    write_with_mode(path, contents, mode & 0o777)
}

/// [`atomic_write`] of text taken from `like` (settings carried from a hand-written file): the
/// result is no more open than `like`, whatever the old file's permissions were.
pub fn atomic_write_no_more_open_than(path: &Path, contents: &str, like: &Path) -> Result<()> {
    let mode = |p: &Path| fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    let mode = match (mode(path), mode(like)) {
        (Ok(old), Ok(like)) => old & like,
        (Ok(m), Err(_)) | (Err(_), Ok(m)) => m,
        (Err(_), Err(_)) => 0o644,
    };
    write_with_mode(path, contents, mode)
}

fn write_with_mode(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |what: &str| format!("cannot write `{}`: {what}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(&tmp_prefix(path))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| fail(&format!("no temporary file in `{}`", dir.display())))?;
    tmp.write_all(contents.as_bytes())
        .and_then(|()| {
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(mode))
        })
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| fail("the new contents did not reach the disk"))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| fail("the rename into place failed"))?;
    // The rename is durable once the directory is synced.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Keep a copy of a file about to be replaced: `FILE.bak`, itself written atomically. An earlier
/// `FILE.bak` with other contents is not lost: it is first renamed to `FILE.bak.N`, the first `N`
/// free (a kill between the two steps leaves it there and no `FILE.bak`). Returns the backup and
/// where an earlier one went.
pub fn backup(path: &Path, contents: &str) -> Result<(PathBuf, Option<PathBuf>)> {
    let with = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    let bak = with(".bak");
    let mut moved = None;
    if let Ok(meta) = fs::symlink_metadata(&bak) {
        // Only a regular file is read: a FIFO there would block the read.
        let same = meta.is_file()
            && meta.len() == contents.len() as u64
            && fs::read(&bak).is_ok_and(|old| old == contents.as_bytes());
        if same {
            return Ok((bak, None));
        }
        let aside = (1u32..)
            .map(|n| with(&format!(".bak.{n}")))
            .find(|p| fs::symlink_metadata(p).is_err())
            .expect("a free backup name");
        fs::rename(&bak, &aside).with_context(|| {
            format!(
                "cannot move the earlier backup `{}` aside to `{}`",
                bak.display(),
                aside.display()
            )
        })?;
        moved = Some(aside);
    }
    atomic_write_like(&bak, contents, path)?;
    Ok((bak, moved))
}

/// Remove the temporary files that a killed pm2-port left beside `path` (and beside `path.bak`).
/// Call only under the registry lock: then no other pm2-port is writing them. Returns what went.
pub fn remove_leftovers(path: &Path) -> Vec<PathBuf> {
    let Some(dir) = path.parent() else {
        return Vec::new();
    };
    let prefix = tmp_prefix(path);
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix)
            && name.ends_with(".tmp")
            && entry.file_type().is_ok_and(|t| t.is_file())
            && fs::remove_file(entry.path()).is_ok()
        {
            removed.push(entry.path());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only what was written since the mark; a file now shorter than its mark (truncated, as
    /// `pm2 flush` does) is read from its start.
    #[test]
    fn tail_since_starts_at_the_mark() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app-error.log");
        fs::write(&log, "yesterday\n").unwrap();
        let mark = fs::metadata(&log).unwrap().len();
        fs::write(&log, "yesterday\ntoday 1\ntoday 2\n").unwrap();
        assert_eq!(tail_since(&log, mark, 1024).unwrap(), "today 1\ntoday 2\n");
        // A tail shorter than what was written since the mark starts at a whole line.
        assert_eq!(tail_since(&log, mark, 10).unwrap(), "today 2\n");
        fs::write(&log, "flushed\n").unwrap();
        assert_eq!(tail_since(&log, 100, 1024).unwrap(), "flushed\n");
    }

    /// Something that is not a regular file at `FILE.bak` (a FIFO would block a read) is moved
    /// aside unread, after the earlier numbered backups.
    #[test]
    fn a_fifo_at_the_backup_is_moved_aside_unread() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ecosystem.config.cjs");
        let bak = dir.path().join("ecosystem.config.cjs.bak");
        fs::write(dir.path().join("ecosystem.config.cjs.bak.1"), "first").unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(&bak)
            .status()
            .unwrap();
        assert!(status.success());
        let (got, moved) = backup(&file, "hand").unwrap();
        assert_eq!(got, bak);
        let aside = dir.path().join("ecosystem.config.cjs.bak.2");
        assert_eq!(moved, Some(aside.clone()));
        assert!(fs::symlink_metadata(&aside).unwrap().file_type().is_fifo());
        assert_eq!(fs::read_to_string(&bak).unwrap(), "hand");
    }

    /// Settings carried from a private file make an open file private; set-id and sticky bits
    /// are never copied.
    #[test]
    fn carried_text_is_no_more_open_than_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let hand = dir.path().join("ecosystem.config.cjs");
        fs::write(&hand, "secret").unwrap();
        fs::set_permissions(&hand, fs::Permissions::from_mode(0o4640)).unwrap();
        let toml = dir.path().join("buildflowz.toml");
        fs::write(&toml, "").unwrap();
        fs::set_permissions(&toml, fs::Permissions::from_mode(0o644)).unwrap();
        atomic_write_no_more_open_than(&toml, "TOKEN = 1", &hand).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&toml), 0o640);
        let bak = backup(&hand, "secret").unwrap().0;
        assert_eq!(mode(&bak), 0o640);
    }

    /// A backup of a private file is private, even when an earlier backup was moved aside.
    #[test]
    fn a_backup_takes_the_permissions_of_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ecosystem.config.cjs");
        fs::write(&file, "secret").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        let bak = dir.path().join("ecosystem.config.cjs.bak");
        fs::write(&bak, "older").unwrap();
        fs::set_permissions(&bak, fs::Permissions::from_mode(0o640)).unwrap();
        backup(&file, "secret").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&bak), 0o600);
        assert_eq!(mode(&dir.path().join("ecosystem.config.cjs.bak.1")), 0o640);
    }

    #[test]
    fn keeps_mode_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ecosystem.config.cjs");
        fs::write(&file, "old").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        atomic_write(&file, "new").unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "new");
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn new_file_is_world_readable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ecosystem.config.cjs");
        atomic_write(&file, "x").unwrap();
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("package.json");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = read_regular(&fifo).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "it is a FIFO (named pipe), not a regular file"
        );
        assert!(read_regular(&dir.path().join("none")).unwrap().is_none());
        let dev = read_regular(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(dev.to_string(), "it is a device, not a regular file");
    }

    #[test]
    fn bom_is_dropped() {
        assert_eq!(strip_bom("\u{feff}{}".into()), "{}");
        assert_eq!(strip_bom("{}\u{feff}".into()), "{}\u{feff}");
    }

    #[test]
    fn leftovers_of_this_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("registry.json");
        for name in [
            ".registry.json.AbC123.tmp",
            ".registry.json.bak.XyZ.tmp",
            ".other.json.AbC.tmp",
            "registry.json",
        ] {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        let mut gone: Vec<String> = remove_leftovers(&file)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        gone.sort();
        assert_eq!(
            gone,
            [".registry.json.AbC123.tmp", ".registry.json.bak.XyZ.tmp"]
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
