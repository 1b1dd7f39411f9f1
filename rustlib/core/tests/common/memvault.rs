//! A vault on the fault-injecting in-memory file system, with cheap Argon2
//! costs and 16 KiB segments: the fixture of the engine's integration tests.

use std::path::Path;
use std::sync::Arc;

use crypto_core::crypto::keys::SecretKey;
use crypto_core::storage::memfs::MemFs;
use crypto_core::types::Argon2Params;
use crypto_core::vault::config::{VaultConfig, VaultOptions};
use crypto_core::vault::engine::{EngineOptions, Vault, ROOT};
use proptest::prelude::{prop_assert_eq, TestCaseError};

use super::oracle::close_and_check;

pub const SEG: u32 = 16384;

/// A real-directory vault's options for tests: the defaults, with Argon2id
/// at its cheapest (64 KiB, one pass).
pub fn cheap_options() -> VaultOptions {
    VaultOptions {
        argon2: Argon2Params {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        ..Default::default()
    }
}

pub struct MemVault {
    pub fs: MemFs,
    pub config: VaultConfig,
    pub master: SecretKey,
}

/// The fixture's vault options: [`cheap_options`] with [`SEG`]-byte segments.
pub fn options() -> VaultOptions {
    VaultOptions {
        segment_size: SEG,
        ..cheap_options()
    }
}

impl MemVault {
    pub fn new() -> Self {
        Self::with(options())
    }

    /// A vault of `opts` (e.g. [`options`] with compression).
    pub fn with(opts: VaultOptions) -> Self {
        let (config, master) = VaultConfig::generate(b"pw", &opts).unwrap();
        MemVault {
            fs: MemFs::new(),
            config,
            master,
        }
    }

    /// A vault of [`options`], compressed or not (a compressed vault's log
    /// records carry whole frames, FORMAT.md §9.2 entry 17; others patches).
    pub fn compressed(compress: bool) -> Self {
        Self::with(VaultOptions {
            compression: compress.then_some(1),
            ..options()
        })
    }

    /// Open the vault at `/v` of `fs` (this one's, or a copy after a crash).
    pub fn open_on_with(&self, fs: &MemFs, opts: EngineOptions) -> Vault {
        Vault::open_with(
            Arc::new(fs.clone()),
            Path::new("/v"),
            self.config.clone(),
            self.master.clone(),
            opts,
        )
        .unwrap()
    }

    /// The vault a reboot finds on `fs`: opened read-only (carried frames
    /// rebuilt in memory; it must write nothing), then read-write; `check`
    /// judges both; then it is closed and checked clean (the oracle).
    pub fn check_reboot(
        &self,
        fs: &MemFs,
        mut check: impl FnMut(&Vault) -> Result<(), TestCaseError>,
    ) -> Result<(), TestCaseError> {
        let writes = fs.writes();
        let read_only = EngineOptions {
            read_only: true,
            ..Default::default()
        };
        let ro = self.open_on_with(fs, read_only);
        check(&ro)?;
        ro.close().unwrap();
        prop_assert_eq!(fs.writes(), writes, "the read-only open wrote");
        let rw = self.open_on(fs);
        check(&rw)?;
        close_and_check(rw, || self.open_on(fs), "after a crash");
        Ok(())
    }

    pub fn open_on(&self, fs: &MemFs) -> Vault {
        self.open_on_with(fs, EngineOptions::default())
    }

    pub fn open(&self) -> Vault {
        self.open_on(&self.fs)
    }

    /// Crash `v` right now; the file system a reboot finds.
    pub fn crash(&self, v: Vault) -> MemFs {
        self.fs.crash();
        std::mem::forget(v);
        self.fs.after_crash(0)
    }
}

/// The whole content of file `name` in the root of `v`.
pub fn content(v: &Vault, name: &[u8]) -> Vec<u8> {
    let ino = v.lookup(ROOT, name).unwrap().ino;
    v.read(ino, 0, 1 << 24).unwrap()
}
