//! Unpacking one image layer (tar, optionally gzip) into a root filesystem, safely.
//!
//! Rules (OCI image spec, "Applying changesets"): entries apply in order; `.wh.<name>` deletes `<name>` from the
//! layers below and `.wh..wh..opq` empties its directory of what the layers below put there (whiteouts never hide
//! entries of their own layer). Nothing may land outside the root: a path with `..` is refused, a leading `/` or
//! `./` is relative to the root, and no entry is written, linked or deleted *through* a symbolic link (an earlier
//! `evil -> /etc` followed by `evil/passwd` is refused), because the links' targets mean something only inside the
//! container. Symbolic links themselves are created as they are (their targets are never followed here). An
//! existing entry is replaced, never written through. Device nodes are skipped (the agent is not root);
//! set-user-ID and set-group-ID bits are dropped.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

/// How a layer's tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

impl Compression {
    /// The compression of an OCI or Docker layer media type; `None` for types berth cannot unpack (zstd, foreign).
    pub fn of_media_type(media_type: &str) -> Option<Compression> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Some(Compression::Gzip),
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Some(Compression::None),
            _ => None,
        }
    }
}

/// What unpacking a layer did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub whiteouts: u64,
    pub skipped_devices: u64,
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// The entry's path relative to the root, or why it is refused. Empty for the root itself.
fn relative_path(raw: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                return Err(format!(
                    "entry '{}' contains '..' and would escape the root filesystem",
                    raw.display()
                ))
            }
            Component::Prefix(_) => {
                return Err(format!("entry '{}' has a path prefix", raw.display()))
            }
        }
    }
    Ok(out)
}

/// Makes sure every directory above `relative` exists as a real directory (not a symbolic link) under `root`,
/// creating missing ones; refuses a path that would go through a link or a file.
fn prepare_parents(root: &Path, relative: &Path, what: &Path) -> Result<(), String> {
    let Some(parent) = relative.parent() else { return Ok(()) };
    let mut current = root.to_path_buf();
    for component in parent.components() {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!(
                    "entry '{}' would be written through the symbolic link '{}', which could point outside the root \
                     filesystem",
                    what.display(),
                    current.strip_prefix(root).unwrap_or(&current).display()
                ))
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "entry '{}' needs '{}' to be a directory, but it is a file",
                    what.display(),
                    current.strip_prefix(root).unwrap_or(&current).display()
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&current).map_err(|e| format!("creating {}: {e}", current.display()))?;
            }
            Err(e) => return Err(format!("{}: {e}", current.display())),
        }
    }
    Ok(())
}

/// Whether `relative` exists under `root` without following a final symbolic link, and as what.
fn existing(path: &Path) -> Option<fs::Metadata> {
    fs::symlink_metadata(path).ok()
}

fn remove_entry(path: &Path) -> Result<(), String> {
    match existing(path) {
        Some(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Some(_) => fs::remove_file(path),
        None => Ok(()),
    }
    .map_err(|e| format!("removing {}: {e}", path.display()))
}

/// Deletes what the layers below put in `relative` (a directory): every child not created by this layer.
fn apply_opaque(root: &Path, relative: &Path, created: &HashSet<PathBuf>) -> Result<(), String> {
    let dir = root.join(relative);
    let Ok(children) = fs::read_dir(&dir) else { return Ok(()) };
    for child in children {
        let child = child.map_err(|e| format!("reading {}: {e}", dir.display()))?;
        let child_relative = relative.join(child.file_name());
        if !created.contains(&child_relative) {
            remove_entry(&child.path())?;
        }
    }
    Ok(())
}

/// Unpacks the layer in `file` onto `root` (which holds the layers below).
pub fn unpack_layer(
    file: &Path,
    compression: Compression,
    root: &Path,
) -> Result<UnpackStats, String> {
    let reader = BufReader::with_capacity(256 * 1024, File::open(file).map_err(|e| e.to_string())?);
    let stream: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(reader)),
        Compression::None => Box::new(reader),
    };
    let mut archive = tar::Archive::new(stream);
    let mut created: HashSet<PathBuf> = HashSet::new();
    let mut stats = UnpackStats::default();
    for entry in archive.entries().map_err(|e| format!("not a tar archive: {e}"))? {
        let mut entry = entry.map_err(|e| format!("the tar stream is corrupt: {e}"))?;
        let raw =
            entry.path().map_err(|e| format!("an entry's path is unreadable: {e}"))?.into_owned();
        let relative = relative_path(&raw)?;
        if relative.as_os_str().is_empty() {
            continue;
        }
        stats.entries += 1;
        let name =
            relative.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(hidden_name) = name.strip_prefix(WHITEOUT_PREFIX) {
            stats.whiteouts += 1;
            prepare_parents(root, &relative, &raw)?;
            let parent = relative.parent().map(Path::to_path_buf).unwrap_or_default();
            if name == OPAQUE_WHITEOUT {
                apply_opaque(root, &parent, &created)?;
            } else {
                let hidden = parent.join(hidden_name);
                if !created.contains(&hidden) {
                    remove_entry(&root.join(&hidden))?;
                }
            }
            continue;
        }
        prepare_parents(root, &relative, &raw)?;
        let target = root.join(&relative);
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        match kind {
            EntryType::Directory => {
                match existing(&target) {
                    Some(meta) if meta.is_dir() => {}
                    Some(_) => {
                        remove_entry(&target)?;
                        fs::create_dir(&target)
                            .map_err(|e| format!("creating {}: {e}", target.display()))?;
                    }
                    None => fs::create_dir(&target)
                        .map_err(|e| format!("creating {}: {e}", target.display()))?,
                }
                // The owner keeps write access, or later entries (and the next pull's cleanup) could not land.
                fs::set_permissions(&target, fs::Permissions::from_mode(mode | 0o700))
                    .map_err(|e| format!("{}: {e}", target.display()))?;
            }
            EntryType::Regular | EntryType::Continuous => {
                remove_entry(&target)?;
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(|e| format!("creating {}: {e}", target.display()))?;
                io::copy(&mut entry, &mut out)
                    .map_err(|e| format!("writing {}: {e}", target.display()))?;
                fs::set_permissions(&target, fs::Permissions::from_mode(mode | 0o600))
                    .map_err(|e| format!("{}: {e}", target.display()))?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| format!("entry '{}': unreadable link target: {e}", raw.display()))?
                    .ok_or_else(|| format!("symbolic link '{}' has no target", raw.display()))?
                    .into_owned();
                remove_entry(&target)?;
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(|e| format!("linking {}: {e}", target.display()))?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(|e| format!("entry '{}': unreadable link target: {e}", raw.display()))?
                    .ok_or_else(|| format!("hard link '{}' has no target", raw.display()))?
                    .into_owned();
                let source_relative = relative_path(&link)?;
                prepare_parents(root, &source_relative, &link)?;
                let source = root.join(&source_relative);
                if existing(&source).is_none_or(|m| m.is_dir()) {
                    return Err(format!(
                        "hard link '{}' points to '{}', which is not a file of the image",
                        raw.display(),
                        link.display()
                    ));
                }
                remove_entry(&target)?;
                fs::hard_link(&source, &target)
                    .map_err(|e| format!("linking {}: {e}", target.display()))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                stats.skipped_devices += 1;
                continue;
            }
            // PAX and GNU metadata entries are consumed by the reader; anything else is not a file system entry.
            _ => continue,
        }
        created.insert(relative);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar entry whose name is written raw into the header (the builder refuses `..`, attackers do not).
    fn raw_entry(
        builder: &mut tar::Builder<Vec<u8>>,
        name: &str,
        kind: EntryType,
        link: Option<&str>,
        data: &[u8],
    ) {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }

    fn layer(
        dir: &Path,
        name: &str,
        entries: &[(&str, EntryType, Option<&str>, &[u8])],
    ) -> PathBuf {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, link, data) in entries {
            raw_entry(&mut builder, path, *kind, *link, data);
        }
        let bytes = builder.into_inner().unwrap();
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn whiteouts_hide_lower_layers_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        fs::create_dir(&root).unwrap();
        let one = layer(
            dir.path(),
            "1",
            &[
                ("etc/", EntryType::Directory, None, b""),
                ("etc/a", EntryType::Regular, None, b"a"),
                ("etc/b", EntryType::Regular, None, b"b"),
                ("opt/old/x", EntryType::Regular, None, b"x"),
                ("bin/sh", EntryType::Symlink, Some("/bin/busybox"), b""),
            ],
        );
        let two = layer(
            dir.path(),
            "2",
            &[
                ("./etc/.wh.a", EntryType::Regular, None, b""),
                ("opt/old/new", EntryType::Regular, None, b"n"),
                ("opt/old/.wh..wh..opq", EntryType::Regular, None, b""),
                ("etc/c", EntryType::Regular, None, b"c"),
                ("etc/.wh.c", EntryType::Regular, None, b""),
            ],
        );
        unpack_layer(&one, Compression::None, &root).unwrap();
        let stats = unpack_layer(&two, Compression::None, &root).unwrap();
        assert_eq!(stats.whiteouts, 3);
        assert!(!root.join("etc/a").exists());
        assert_eq!(fs::read(root.join("etc/b")).unwrap(), b"b");
        assert!(!root.join("opt/old/x").exists(), "opaque directory hides the lower layer");
        assert_eq!(fs::read(root.join("opt/old/new")).unwrap(), b"n", "but not its own layer");
        assert_eq!(
            fs::read(root.join("etc/c")).unwrap(),
            b"c",
            "a whiteout hides lower layers only"
        );
        assert_eq!(fs::read_link(root.join("bin/sh")).unwrap(), Path::new("/bin/busybox"));
        assert!(!root.join(".wh.a").exists() && !root.join("etc/.wh.a").exists());
    }

    #[test]
    fn nothing_escapes_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        let outside = dir.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("victim"), b"safe").unwrap();
        let dotdot = layer(
            dir.path(),
            "dotdot",
            &[("../outside/victim", EntryType::Regular, None, b"owned")],
        );
        let error = unpack_layer(&dotdot, Compression::None, &root).unwrap_err();
        assert!(error.contains("'..'"), "{error}");
        let link = outside.to_str().unwrap();
        let through_link = layer(
            dir.path(),
            "link",
            &[
                ("evil", EntryType::Symlink, Some(link), b""),
                ("evil/victim", EntryType::Regular, None, b"owned"),
            ],
        );
        let error = unpack_layer(&through_link, Compression::None, &root).unwrap_err();
        assert!(error.contains("symbolic link 'evil'"), "{error}");
        let whiteout_through_link =
            layer(dir.path(), "wh", &[("evil/.wh.victim", EntryType::Regular, None, b"")]);
        assert!(unpack_layer(&whiteout_through_link, Compression::None, &root).is_err());
        let hard =
            layer(dir.path(), "hard", &[("h", EntryType::Link, Some("../outside/victim"), b"")]);
        assert!(unpack_layer(&hard, Compression::None, &root).is_err());
        let absolute = layer(dir.path(), "abs", &[("/abs", EntryType::Regular, None, b"in root")]);
        unpack_layer(&absolute, Compression::None, &root).unwrap();
        assert_eq!(fs::read(root.join("abs")).unwrap(), b"in root");
        assert_eq!(fs::read(outside.join("victim")).unwrap(), b"safe");
    }
}
