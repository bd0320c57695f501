//! On-disk cache of compiled policy components.
//!
//! Compiling a component with Cranelift costs tens of milliseconds; loading a
//! precompiled artifact costs well under one. The cache is keyed by the
//! module's sha256 digest and the engine's fingerprint (wasmtime version and
//! every setting that changes generated code), so a changed module, a new
//! wasmtime or a changed sandbox knob all miss.
//!
//! Loading a precompiled artifact is `unsafe` in wasmtime: it is native code
//! that is mapped executable without verification. So an artifact is only
//! ever loaded if it carries an HMAC-SHA256 tag made with this cache's own
//! secret key (created on first use, mode 0600). An artifact planted or
//! altered by anyone without that key is ignored and recompiled.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

type HmacSha256 = hmac::Hmac<Sha256>;
const TAG_LEN: usize = 32;

/// Artifacts kept, bytes, before the least recently used are removed. A
/// module's artifact can be many times its size (a 32 MiB data segment adds
/// 34 MB), and every changed module leaves its old artifact behind.
pub const DEFAULT_MAX_CACHE_BYTES: u64 = 256 << 20;

/// A directory of authenticated compiled artifacts.
#[derive(Clone)]
pub struct ComponentCache {
    dir: PathBuf,
    key: [u8; 32],
    fingerprint: String,
    max_bytes: u64,
}

/// Where an artifact came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a precompiled artifact.
    Hit,
    /// Compiled and stored.
    Miss,
    /// An artifact existed but failed authentication or loading; recompiled.
    Rejected,
    /// No cache configured.
    Disabled,
}

impl ComponentCache {
    /// Open (creating if needed) the cache under `dir` for `engine`.
    pub fn open(dir: &Path, engine: &wasmtime::Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let key = load_or_create_key(&dir.join("cache.key"))?;
        Ok(ComponentCache {
            dir: dir.to_path_buf(),
            key,
            fingerprint: engine_fingerprint(engine),
            max_bytes: DEFAULT_MAX_CACHE_BYTES,
        })
    }

    /// Keep at most `max` bytes of artifacts (tests shrink it to see
    /// eviction).
    #[cfg(test)]
    pub fn with_max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = max;
        self
    }

    /// Remove the least recently used artifacts until the rest fit in
    /// `max_bytes`. Use is the file's modification time, refreshed on hits.
    fn evict(&self) -> std::io::Result<()> {
        let mut files = Vec::new();
        let mut total = 0u64;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "cwasm") {
                continue;
            }
            let meta = entry.metadata()?;
            total += meta.len();
            let used = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            files.push((used, meta.len(), path));
        }
        if total <= self.max_bytes {
            return Ok(());
        }
        files.sort();
        for (_, len, path) in files {
            if total <= self.max_bytes {
                break;
            }
            std::fs::remove_file(&path)?;
            total -= len;
        }
        Ok(())
    }

    fn path_for(&self, digest: &str) -> PathBuf {
        self.dir
            .join(format!("{digest}-{}.cwasm", self.fingerprint))
    }

    fn tag(
        &self,
        digest: &str,
        artifact: &[u8],
    ) -> Result<[u8; TAG_LEN], hmac::digest::InvalidLength> {
        let mut mac = HmacSha256::new_from_slice(&self.key)?;
        mac.update(self.fingerprint.as_bytes());
        mac.update(digest.as_bytes());
        mac.update(artifact);
        Ok(mac.finalize().into_bytes().into())
    }

    /// The compiled component for `bytes` (whose sha256 hex is `digest`).
    pub fn get_or_compile(
        &self,
        engine: &wasmtime::Engine,
        digest: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(wasmtime::component::Component, CacheOutcome)> {
        let path = self.path_for(digest);
        let mut outcome = CacheOutcome::Miss;
        if let Ok(stored) = std::fs::read(&path) {
            match self.authenticated(digest, &stored) {
                Some(artifact) => {
                    // SAFETY: the artifact carries our HMAC over (engine
                    // fingerprint, module digest, bytes): this cache produced
                    // it from this module for this engine configuration.
                    match unsafe { wasmtime::component::Component::deserialize(engine, artifact) } {
                        Ok(c) => {
                            // Mark it used, for eviction; best effort.
                            let _ = std::fs::File::options()
                                .write(true)
                                .open(&path)
                                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                            return Ok((c, CacheOutcome::Hit));
                        }
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "cached artifact did not load; recompiling");
                            outcome = CacheOutcome::Rejected;
                        }
                    }
                }
                None => {
                    tracing::warn!(path = %path.display(), "cached artifact failed authentication; recompiling");
                    outcome = CacheOutcome::Rejected;
                }
            }
        }
        let component = wasmtime::component::Component::new(engine, bytes)?;
        if let Err(e) = self.store(digest, &path, &component) {
            tracing::warn!(path = %path.display(), error = %e, "could not write compiled artifact to cache");
        }
        Ok((component, outcome))
    }

    fn authenticated<'a>(&self, digest: &str, stored: &'a [u8]) -> Option<&'a [u8]> {
        if stored.len() < TAG_LEN {
            return None;
        }
        let (tag, artifact) = stored.split_at(TAG_LEN);
        let mut mac = HmacSha256::new_from_slice(&self.key).ok()?;
        mac.update(self.fingerprint.as_bytes());
        mac.update(digest.as_bytes());
        mac.update(artifact);
        mac.verify_slice(tag).ok().map(|()| artifact)
    }

    fn store(
        &self,
        digest: &str,
        path: &Path,
        component: &wasmtime::component::Component,
    ) -> anyhow::Result<()> {
        let artifact = component.serialize()?;
        if (artifact.len() + TAG_LEN) as u64 > self.max_bytes {
            // Larger than the whole cache: compiled on every load instead.
            return Ok(());
        }
        let tag = self.tag(digest, &artifact)?;
        // Write-then-rename so a concurrent reader never sees half a file.
        let mut tmp = tempfile_in(&self.dir)?;
        tmp.1.write_all(&tag)?;
        tmp.1.write_all(&artifact)?;
        tmp.1.sync_all()?;
        std::fs::rename(&tmp.0, path)?;
        self.evict()?;
        Ok(())
    }
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = format!(
        ".tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    );
    let path = dir.join(name.replace(['(', ')'], ""));
    let file = std::fs::File::create(&path)?;
    Ok((path, file))
}

fn load_or_create_key(path: &Path) -> std::io::Result<[u8; 32]> {
    if let Ok(bytes) = std::fs::read(path)
        && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(key);
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(&key)?;
    f.sync_all()?;
    Ok(key)
}

/// A short stable name for everything about `engine` that changes its
/// compiled code (wasmtime version, target, tunables such as fuel and epochs).
pub fn engine_fingerprint(engine: &wasmtime::Engine) -> String {
    struct Sha(Sha256);
    impl std::hash::Hasher for Sha {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut h = Sha(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
    hex::encode(&h.0.finalize()[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, len: usize, age_secs: u64) {
        std::fs::write(path, vec![0u8; len]).expect("write");
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(age_secs);
        std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(when))
            .expect("mtime");
    }

    #[test]
    fn eviction_drops_the_least_recently_used_artifacts_past_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = wasmtime::Engine::default();
        let cache = ComponentCache::open(dir.path(), &engine)
            .expect("open")
            .with_max_bytes(250);
        touch(&dir.path().join("old.cwasm"), 100, 300);
        touch(&dir.path().join("mid.cwasm"), 100, 200);
        touch(&dir.path().join("new.cwasm"), 100, 100);
        cache.evict().expect("evict");
        assert!(!dir.path().join("old.cwasm").exists());
        assert!(dir.path().join("mid.cwasm").exists());
        assert!(dir.path().join("new.cwasm").exists());
        // The key is not an artifact and is never evicted.
        assert!(dir.path().join("cache.key").exists());
    }
}
