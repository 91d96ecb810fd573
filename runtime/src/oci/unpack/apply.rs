//! Applying the entries of one layer onto the root, in archive order.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use tar::EntryType;

use super::paths::{self, Cleared, NameProblem, ParentProblem};
use super::stream::{self, Stage, Stream};
use super::{Layer, Limits, UnpackError, UnpackStats};

const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
/// Other `.wh..wh.` names are aufs bookkeeping (hard link dirs); containerd
/// skips them too.
const AUFS_META: &[u8] = b".wh..wh.";

pub(super) struct Applier<'r> {
    root: &'r Path,
    limits: &'r Limits,
    chown: bool,
    stats: UnpackStats,
    /// Directory modes to apply at the end (see `set_dir_modes`).
    dir_modes: BTreeMap<PathBuf, u32>,
}

/// What one layer has done so far: whiteouts only hide lower layers, so
/// anything this layer wrote (and the parents it implied) must survive them.
struct LayerState {
    name: String,
    written: HashSet<PathBuf>,
    opaque_done: HashSet<PathBuf>,
}

/// The entry being applied, for error messages.
struct Ctx<'a> {
    layer: &'a str,
    path: &'a Path,
}

/// The mode bits a regular file keeps: permissions and the sticky bit,
/// not setuid/setgid.
const FILE_MODE_KEPT: u32 = 0o1777;

impl Ctx<'_> {
    fn io(&self) -> impl FnOnce(io::Error) -> UnpackError + '_ {
        |source| UnpackError::Io {
            layer: self.layer.to_owned(),
            path: self.path.to_owned(),
            source,
        }
    }

    fn parent(&self, problem: ParentProblem) -> UnpackError {
        let (layer, path) = (self.layer.to_owned(), self.path.to_owned());
        match problem {
            ParentProblem::Symlink(via) => UnpackError::SymlinkEscape { layer, path, via },
            ParentProblem::NotDir(parent) => UnpackError::ParentNotDir {
                layer,
                path,
                parent,
            },
            ParentProblem::Io(source) => UnpackError::Io {
                layer,
                path,
                source,
            },
        }
    }

    fn name(&self, problem: NameProblem) -> UnpackError {
        let (layer, path) = (self.layer.to_owned(), self.path.to_owned());
        match problem {
            NameProblem::Escape => UnpackError::PathEscape { layer, path },
            NameProblem::Invalid(reason) => UnpackError::InvalidPath {
                layer,
                path,
                reason,
            },
        }
    }

    fn header(&self, message: impl ToString) -> UnpackError {
        UnpackError::BadHeader {
            layer: self.layer.to_owned(),
            path: self.path.to_owned(),
            message: message.to_string(),
        }
    }

    /// Classifies a failed read of the archive by which reader failed.
    fn read(&self, stream: &Stream, err: io::Error) -> UnpackError {
        let layer = self.layer.to_owned();
        match stream.failed() {
            Some(Stage::Source) => UnpackError::Io {
                layer,
                path: self.path.to_owned(),
                source: err,
            },
            Some(Stage::Decode) => UnpackError::Compression {
                layer,
                message: err.to_string(),
            },
            Some(Stage::Budget) => UnpackError::Malformed {
                layer,
                after: self.path.to_owned(),
                message: format!(
                    "more than {} bytes of tar metadata or skipped data between entries",
                    stream::METADATA_BUDGET
                ),
            },
            None => UnpackError::Malformed {
                layer,
                after: self.path.to_owned(),
                message: err.to_string(),
            },
        }
    }
}

impl<'r> Applier<'r> {
    pub(super) fn new(root: &'r Path, limits: &'r Limits, chown: bool) -> Self {
        Self {
            root,
            limits,
            chown,
            stats: UnpackStats::default(),
            dir_modes: BTreeMap::new(),
        }
    }

    pub(super) fn finish(self) -> (UnpackStats, BTreeMap<PathBuf, u32>) {
        (self.stats, self.dir_modes)
    }

    pub(super) fn apply_layer(&mut self, layer: Layer<'_>) -> Result<(), UnpackError> {
        let (reader, stream) = stream::open(layer.reader, layer.compression);
        let mut state = LayerState {
            name: layer.name,
            written: HashSet::new(),
            opaque_done: HashSet::new(),
        };
        let mut archive = tar::Archive::new(reader);
        let mut last = PathBuf::from("<start of layer>");
        let mut entries = archive.entries().map_err(|err| {
            Ctx {
                layer: &state.name,
                path: &last,
            }
            .read(&stream, err)
        })?;
        loop {
            stream.reset_budget();
            let mut entry = match entries.next() {
                // The end-of-archive marker: anything after it is not read.
                // Blob integrity is the store's job (digests), not ours.
                None => return Ok(()),
                Some(Ok(entry)) => entry,
                Some(Err(err)) => {
                    return Err(Ctx {
                        layer: &state.name,
                        path: &last,
                    }
                    .read(&stream, err));
                }
            };
            stream.allow(entry.size());
            self.stats.entries += 1;
            if self.stats.entries > self.limits.max_entries {
                return Err(UnpackError::TooManyEntries {
                    layer: state.name,
                    limit: self.limits.max_entries,
                });
            }
            let raw = entry.path_bytes().into_owned();
            last = paths::shown(&raw);
            self.apply_entry(&mut state, &stream, &mut entry, &raw, &last)?;
        }
    }

    fn apply_entry(
        &mut self,
        state: &mut LayerState,
        stream: &Rc<Stream>,
        entry: &mut tar::Entry<'_, impl Read>,
        raw: &[u8],
        shown: &Path,
    ) -> Result<(), UnpackError> {
        let ctx = Ctx {
            layer: &state.name,
            path: shown,
        };
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            return Ok(()); // Global PAX defaults: nothing we apply uses them.
        }
        let rel = paths::normalize(raw, self.limits.max_path_len).map_err(|p| ctx.name(p))?;
        if rel
            .file_name()
            .is_some_and(|name| name.as_bytes().starts_with(WHITEOUT))
        {
            return self.whiteout(state, &rel, shown);
        }
        if rel.as_os_str().is_empty() {
            if !kind.is_dir() {
                return Err(ctx.name(NameProblem::Invalid("a non-directory entry names the root")));
            }
            let mode = entry.header().mode().map_err(|e| ctx.header(e))?;
            self.dir_modes.insert(rel, mode & 0o7777);
            return self.chown(&ctx, self.root, entry.header());
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(&ctx, stream, entry, &rel)?
            }
            EntryType::Directory => self.dir(&ctx, entry.header(), &rel)?,
            EntryType::Symlink => self.symlink(&ctx, entry, &rel)?,
            EntryType::Link => self.hardlink(&ctx, entry, &rel)?,
            other => {
                let kind = match other {
                    EntryType::Char => "character device".to_owned(),
                    EntryType::Block => "block device".to_owned(),
                    EntryType::Fifo => "fifo".to_owned(),
                    other => format!("type {:?}", char::from(other.as_byte())),
                };
                return Err(UnpackError::Unsupported {
                    layer: state.name.clone(),
                    path: shown.to_owned(),
                    kind,
                });
            }
        }
        // Record the path and its parents; stop at the first one already known.
        for ancestor in rel.ancestors() {
            if ancestor.as_os_str().is_empty() || !state.written.insert(ancestor.to_owned()) {
                break;
            }
        }
        Ok(())
    }

    /// Prepares `rel` for a new entry: parents exist and are real
    /// directories, and nothing (or, with `keep_dir`, only a directory) is at
    /// the path itself.
    fn make_room(
        &mut self,
        ctx: &Ctx<'_>,
        rel: &Path,
        keep_dir: bool,
    ) -> Result<Cleared, UnpackError> {
        paths::walk_parents(self.root, rel, true).map_err(|p| ctx.parent(p))?;
        self.remove(ctx, rel, keep_dir)
    }

    fn remove(
        &mut self,
        ctx: &Ctx<'_>,
        rel: &Path,
        keep_dir: bool,
    ) -> Result<Cleared, UnpackError> {
        let cleared = paths::clear(&self.root.join(rel), keep_dir).map_err(ctx.io())?;
        if cleared == Cleared::Dir {
            // Forget the modes of the removed tree: descendants sort right
            // after their ancestor in component order.
            let gone: Vec<PathBuf> = self
                .dir_modes
                .range(rel.to_owned()..)
                .map(|(k, _)| k)
                .take_while(|k| k.starts_with(rel))
                .cloned()
                .collect();
            for key in gone {
                self.dir_modes.remove(&key);
            }
        }
        Ok(cleared)
    }

    fn file(
        &mut self,
        ctx: &Ctx<'_>,
        stream: &Stream,
        entry: &mut tar::Entry<'_, impl Read>,
        rel: &Path,
    ) -> Result<(), UnpackError> {
        let limit = self.limits.max_total_bytes;
        let too_large = || UnpackError::TooLarge {
            layer: ctx.layer.to_owned(),
            path: ctx.path.to_owned(),
            limit,
        };
        // Fail before creating anything when the header already says so; the
        // streaming check below still guards sparse files and lying sizes.
        if self.stats.bytes.saturating_add(entry.size()) > limit {
            return Err(too_large());
        }
        let mode = entry.header().mode().map_err(|e| ctx.header(e))?;
        self.make_room(ctx, rel, false)?;
        let abs = self.root.join(rel);
        // create_new (O_EXCL) refuses to follow a symlink at the final
        // component, should one have appeared after make_room.
        let mut out: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&abs)
            .map_err(ctx.io())?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(ctx.read(stream, err)),
            };
            let total = self.stats.bytes.saturating_add(n as u64);
            if total > limit {
                return Err(too_large());
            }
            out.write_all(&buf[..n]).map_err(ctx.io())?;
            self.stats.bytes = total;
        }
        drop(out);
        // chown clears setuid/setgid anyway, and they are not kept: a
        // container runs with no_new_privileges, where they give nothing,
        // and on the host they would be root's setuid files.
        self.chown(ctx, &abs, entry.header())?;
        fs::set_permissions(&abs, fs::Permissions::from_mode(mode & FILE_MODE_KEPT))
            .map_err(ctx.io())
    }

    fn dir(&mut self, ctx: &Ctx<'_>, header: &tar::Header, rel: &Path) -> Result<(), UnpackError> {
        let mode = header.mode().map_err(|e| ctx.header(e))?;
        // An existing directory stays with its contents (layers merge); a
        // file or symlink in the way is replaced.
        if self.make_room(ctx, rel, true)? != Cleared::KeptDir {
            fs::DirBuilder::new()
                .create(self.root.join(rel))
                .map_err(ctx.io())?;
        }
        self.dir_modes.insert(rel.to_owned(), mode & 0o7777);
        self.chown(ctx, &self.root.join(rel), header)
    }

    fn symlink(
        &mut self,
        ctx: &Ctx<'_>,
        entry: &tar::Entry<'_, impl Read>,
        rel: &Path,
    ) -> Result<(), UnpackError> {
        // The target is not checked against the root: it is resolved inside
        // the container at run time, and we never write through symlinks.
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| ctx.header("symlink without a target"))?;
        if target.is_empty() || target.len() > self.limits.max_path_len {
            return Err(ctx.name(NameProblem::Invalid("symlink target is empty or too long")));
        }
        self.make_room(ctx, rel, false)?;
        let abs = self.root.join(rel);
        std::os::unix::fs::symlink(paths::shown(&target), &abs).map_err(ctx.io())?;
        self.chown(ctx, &abs, entry.header())
    }

    fn hardlink(
        &mut self,
        ctx: &Ctx<'_>,
        entry: &tar::Entry<'_, impl Read>,
        rel: &Path,
    ) -> Result<(), UnpackError> {
        let raw = entry
            .link_name_bytes()
            .ok_or_else(|| ctx.header("hard link without a target"))?;
        let outside = || UnpackError::HardlinkOutside {
            layer: ctx.layer.to_owned(),
            path: ctx.path.to_owned(),
            target: paths::shown(&raw),
        };
        // Same rules as entry names, and the target must already be a
        // regular file reached without crossing a symlink.
        let target = paths::normalize(&raw, self.limits.max_path_len).map_err(|_| outside())?;
        if target.as_os_str().is_empty()
            || !paths::walk_parents(self.root, &target, false).map_err(|_| outside())?
        {
            return Err(outside());
        }
        let target_abs = self.root.join(&target);
        if !fs::symlink_metadata(&target_abs).is_ok_and(|meta| meta.is_file()) {
            return Err(outside());
        }
        if target == rel {
            return Ok(()); // Linking a file to itself: it is already there.
        }
        self.make_room(ctx, rel, false)?;
        // linkat without AT_SYMLINK_FOLLOW: links the file we checked.
        fs::hard_link(&target_abs, self.root.join(rel)).map_err(ctx.io())
    }

    fn chown(&self, ctx: &Ctx<'_>, abs: &Path, header: &tar::Header) -> Result<(), UnpackError> {
        if !self.chown {
            return Ok(());
        }
        let uid = header.uid().map_err(|e| ctx.header(e))?;
        let gid = header.gid().map_err(|e| ctx.header(e))?;
        let uid = u32::try_from(uid).map_err(|_| ctx.header(format!("uid {uid} out of range")))?;
        let gid = u32::try_from(gid).map_err(|_| ctx.header(format!("gid {gid} out of range")))?;
        std::os::unix::fs::lchown(abs, Some(uid), Some(gid)).map_err(ctx.io())
    }

    /// `.wh.<name>` removes `<name>` from lower layers; `.wh..wh..opq` hides
    /// every lower-layer entry of its directory. Neither is written.
    fn whiteout(
        &mut self,
        state: &mut LayerState,
        rel: &Path,
        shown: &Path,
    ) -> Result<(), UnpackError> {
        let ctx = Ctx {
            layer: &state.name,
            path: shown,
        };
        let name = rel.file_name().map(|n| n.as_bytes()).unwrap_or_default();
        let dir = rel.parent().unwrap_or(Path::new(""));
        // Nothing to hide when the directory is not there; a symlink on the
        // way is refused like for any other entry.
        if !paths::walk_parents(self.root, rel, false).map_err(|p| ctx.parent(p))? {
            return Ok(());
        }
        if name == OPAQUE {
            if state.opaque_done.insert(dir.to_owned()) {
                self.clear_lower(&ctx, &state.written, dir)?;
            }
            return Ok(());
        }
        if name.starts_with(AUFS_META) {
            return Ok(());
        }
        let target = match &name[WHITEOUT.len()..] {
            b"" | b"." => return Err(ctx.name(NameProblem::Invalid("whiteout names no entry"))),
            b".." => return Err(ctx.name(NameProblem::Escape)),
            target => dir.join(std::ffi::OsStr::from_bytes(target)),
        };
        // The spec: a whiteout never hides an entry of its own layer.
        if !state.written.contains(&target) {
            self.remove(&ctx, &target, false)?;
        }
        Ok(())
    }

    /// Removes what lower layers put under `dir`, keeping what this layer
    /// wrote, whatever its position relative to the opaque marker.
    fn clear_lower(
        &mut self,
        ctx: &Ctx<'_>,
        written: &HashSet<PathBuf>,
        dir: &Path,
    ) -> Result<(), UnpackError> {
        let children = fs::read_dir(self.root.join(dir)).map_err(ctx.io())?;
        for child in children {
            let rel = dir.join(child.map_err(ctx.io())?.file_name());
            if !written.contains(&rel) {
                self.remove(ctx, &rel, false)?;
            } else if fs::symlink_metadata(self.root.join(&rel)).is_ok_and(|meta| meta.is_dir()) {
                self.clear_lower(ctx, written, &rel)?;
            }
        }
        Ok(())
    }
}
