//! `runs/<run.name>/`: one folder per stage, each with its `manifest.json`, plus the resolved
//! `config.toml` and a lock so two processes never write the same run at once.

use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use crate::config::Config;
use vs_core::StageName;
use vs_core::fs::write_atomic;

#[derive(Debug)]
pub struct RunDir {
    root: PathBuf,
    /// Held for the life of the run; the OS releases them if the process dies.
    _locks: Vec<File>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("run `{name}` is in use by another pipeline process (lock held on {})", lock.display())]
    Busy { name: String, lock: PathBuf },
}

impl RunDir {
    /// Creates `<run.out_dir>/<run.name>/` if needed and locks it.
    pub fn open(config: &Config) -> Result<Self, RunDirError> {
        let root = Self::create(config)?;
        let lock = lock(config, &root.join(".lock"), false)?;
        Ok(Self { root, _locks: vec![lock] })
    }

    /// For one task of a job array: the run is shared with the other shards (a whole run
    /// waits until they are done), and this shard (`tag`, e.g. `generate-shard-001-of-004`)
    /// is held alone.
    pub fn open_shard(config: &Config, tag: &str) -> Result<Self, RunDirError> {
        let root = Self::create(config)?;
        let run = lock(config, &root.join(".lock"), true)?;
        let own = lock(config, &root.join(format!(".lock-{tag}")), false)?;
        Ok(Self { root, _locks: vec![run, own] })
    }

    fn create(config: &Config) -> Result<PathBuf, RunDirError> {
        let root = config.run.out_dir.join(&config.run.name);
        fs::create_dir_all(&root).map_err(|source| RunDirError::Io { path: root.clone(), source })?;
        Ok(root)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn stage_dir(&self, stage: StageName) -> PathBuf {
        self.root.join(stage.as_str())
    }

    pub fn manifest_path(&self, stage: StageName) -> PathBuf {
        self.stage_dir(stage).join("manifest.json")
    }

    /// How a file is named in manifests: relative to the run folder when inside it.
    pub fn label(&self, path: &Path) -> String {
        path.strip_prefix(&self.root).unwrap_or(path).to_string_lossy().into_owned()
    }

    /// The file a manifest label refers to.
    pub fn resolve(&self, label: &str) -> PathBuf {
        let p = Path::new(label);
        if p.is_absolute() { p.to_owned() } else { self.root.join(p) }
    }

    /// Records the effective config (file plus `--set` overrides) beside the stages.
    pub fn write_config(&self, config: &Config) -> Result<(), RunDirError> {
        let path = self.root.join("config.toml");
        write_atomic(&path, config.to_toml().as_bytes()).map_err(|source| RunDirError::Io { path, source })
    }
}

fn lock(config: &Config, path: &Path, shared: bool) -> Result<File, RunDirError> {
    let io_err = |source| RunDirError::Io { path: path.to_owned(), source };
    let file = File::options().create(true).truncate(false).write(true).open(path).map_err(io_err)?;
    let locked = if shared { file.try_lock_shared() } else { file.try_lock() };
    match locked {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => {
            Err(RunDirError::Busy { name: config.run.name.clone(), lock: path.to_owned() })
        }
        Err(TryLockError::Error(e)) => Err(io_err(e)),
    }
}
