//! Compiled code: the on-disk cache, and the only `unsafe` in wasmq.
//!
//! Artifacts are keyed by the module's digest plus the engine's compatibility
//! hash, so a restart loads a plugin in about a millisecond and a wasmtime upgrade
//! or a config change never loads a stale artifact (it just misses the cache).

#![allow(unsafe_code)]

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

use super::validate::Binary;
use crate::domain::Digest;

/// A stable hex digest of `Engine::precompile_compatibility_hash()`.
pub(crate) fn compatibility_hash(engine: &Engine) -> String {
    struct Blake3Hasher(blake3::Hasher);
    impl Hasher for Blake3Hasher {
        fn finish(&self) -> u64 {
            unreachable!("only the blake3 digest is read")
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = Blake3Hasher(blake3::Hasher::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    h.0.finalize().to_hex()[..16].to_string()
}

/// Compiled code, either kind.
pub(crate) enum Compiled {
    Component(Component),
    Module(Module),
}

/// Turns an artifact produced by this engine's compiler into loaded code.
///
/// SAFETY (for the `unsafe` deserialize calls): wasmtime trusts a serialized
/// artifact to be its own output. Every artifact handed here was produced by
/// `Engine::precompile_*` of an engine with the same configuration: either
/// in-process, or by our own `wasmq __compile` child, which refuses to run when
/// its compatibility hash differs from ours; the disk cache is keyed by that
/// hash and lives in a directory created by us with mode 0700. wasmtime further
/// checks the artifact's header against the engine before use.
pub(crate) fn deserialize(engine: &Engine, binary: &Binary, bytes: &[u8]) -> wasmtime::Result<Compiled> {
    Ok(match binary {
        Binary::Component => Compiled::Component(unsafe { Component::deserialize(engine, bytes)? }),
        Binary::CoreModule => Compiled::Module(unsafe { Module::deserialize(engine, bytes)? }),
    })
}

fn deserialize_file(engine: &Engine, binary: &Binary, path: &Path) -> wasmtime::Result<Compiled> {
    // SAFETY: as for `deserialize`; the file is never written in place (see `store`).
    Ok(match binary {
        Binary::Component => Compiled::Component(unsafe { Component::deserialize_file(engine, path)? }),
        Binary::CoreModule => Compiled::Module(unsafe { Module::deserialize_file(engine, path)? }),
    })
}

/// The on-disk cache of compiled artifacts.
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    compat: String,
}

impl ArtifactCache {
    pub(crate) fn open(dir: &Path, compat: String) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Self { dir: dir.to_path_buf(), compat })
    }

    fn path(&self, digest: &Digest, binary: &Binary) -> PathBuf {
        let kind = match binary {
            Binary::Component => "component",
            Binary::CoreModule => "module",
        };
        self.dir.join(format!("{}-{}.{kind}.cwasm", digest.hex(), self.compat))
    }

    /// The cached artifact, if present and loadable. A corrupt file is removed.
    pub(crate) fn load(&self, engine: &Engine, digest: &Digest, binary: &Binary) -> Option<Compiled> {
        let path = self.path(digest, binary);
        if !path.exists() {
            return None;
        }
        match deserialize_file(engine, binary, &path) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "discarding unloadable artifact");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Removes every artifact of `digest`: either kind, and those of other
    /// engine versions (compatibility hashes) too, which this engine would
    /// never load again. Returns how many files went.
    pub(crate) fn remove(&self, digest: &Digest) -> std::io::Result<usize> {
        let prefix = format!("{}-", digest.hex());
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".cwasm") {
                match std::fs::remove_file(self.dir.join(name.as_ref())) {
                    Ok(()) => removed += 1,
                    // Removed meanwhile (another delete, or a corrupt-file cleanup).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(removed)
    }

    /// Writes an artifact atomically (temp file + rename), so a reader never sees
    /// a partial file and a crash leaves no corrupt entry.
    pub(crate) fn store(&self, digest: &Digest, binary: &Binary, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(digest, binary);
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_data()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }
}
