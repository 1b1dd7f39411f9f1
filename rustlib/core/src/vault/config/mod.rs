//! `fusefs.conf`: the vault's parameters and its master key sealed under
//! the password (FORMAT.md §6).
//!
//! * `file`: the fields, the vault's options, and reading, writing and
//!   checking the file;
//! * `seal`: a new config's master key, the keys derived from the password,
//!   the seal and the config MAC, unlocking, the printed master key;
//! * `text`: the strict hex and RFC 3339 forms the fields are written in;
//! * `copy`: the config's second copy, and unlocking through either.

mod copy;
mod file;
mod seal;
mod text;

pub use copy::{config_copy, load_either, unlock_either, write_copy, ConfigSource};
pub use file::{
    VaultConfig, VaultOptions, CONFIG_FILE, CONFIG_VERSION, DEFAULT_VAULT_ARGON2, KNOWN_FEATURES,
    VAULT_ID_LEN,
};
pub use seal::{parse_master_key, print_master_key};
