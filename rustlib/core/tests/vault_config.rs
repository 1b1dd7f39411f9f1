//! fusefs.conf: create, load, unlock, recovery key, password change, and
//! every way the file can be damaged or edited.

use std::fs;
use std::path::Path;

use crypto_core::crypto::keys::SecretKey;
use crypto_core::crypto::vault_keys::subkey;
use crypto_core::storage::RealFs;
use crypto_core::types::{Argon2Params, Cipher};
use crypto_core::vault::config::{
    parse_master_key, print_master_key, VaultConfig, VaultOptions, CONFIG_FILE,
    DEFAULT_VAULT_ARGON2,
};
use crypto_core::vault::{Credential, KdfCosts};
use crypto_core::{Error, ErrorClass};
use proptest::prelude::*;
use serde_json::{json, Value};

const FAST: Argon2Params = Argon2Params {
    m_kib: 64,
    t: 1,
    p: 1,
};
const PW: &[u8] = b"correct horse";

fn options() -> VaultOptions {
    VaultOptions {
        argon2: FAST,
        ..Default::default()
    }
}

fn new_vault() -> (tempfile::TempDir, VaultConfig, SecretKey) {
    let dir = tempfile::tempdir().unwrap();
    let (config, master) = VaultConfig::create(&RealFs, dir.path(), PW, &options()).unwrap();
    (dir, config, master)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn defaults() {
    let o = VaultOptions::default();
    assert_eq!(o.cipher, Cipher::Aes256Gcm);
    assert_eq!(o.segment_size, 65536);
    assert_eq!(o.compression, None);
    assert_eq!(
        o.argon2,
        Argon2Params {
            m_kib: 65536,
            t: 3,
            p: 1
        }
    );
    assert_eq!(o.argon2, DEFAULT_VAULT_ARGON2);
}

#[test]
fn create_load_unlock_round_trip() {
    let (dir, config, master) = new_vault();
    assert_eq!(names_in(dir.path()), vec![CONFIG_FILE, "mirror"]);
    assert_eq!(names_in(&dir.path().join("mirror")), vec![CONFIG_FILE]);
    let loaded = VaultConfig::load(&RealFs, dir.path()).unwrap();
    assert_eq!(loaded, config);
    assert_eq!(loaded.version(), 2);
    assert_eq!(loaded.cipher(), Cipher::Aes256Gcm);
    assert_eq!(loaded.segment_size(), 65536);
    assert_eq!(loaded.compression(), None);
    assert!(loaded.features().is_empty());
    assert_eq!(loaded.kdf(), FAST);
    assert_eq!(loaded.created().len(), 20);
    assert!(loaded.created().starts_with("20") && loaded.created().ends_with('Z'));
    assert_eq!(loaded.unlock(PW).unwrap().as_bytes(), master.as_bytes());
    // Two vaults never share an id or a master key.
    let (_, other, other_master) = new_vault();
    assert_ne!(other.vault_id(), config.vault_id());
    assert_ne!(other_master.as_bytes(), master.as_bytes());
}

#[test]
fn json_layout() {
    let dir = tempfile::tempdir().unwrap();
    let opts = VaultOptions {
        cipher: Cipher::ChaCha20Poly1305,
        segment_size: 1 << 20,
        compression: Some(7),
        argon2: FAST,
    };
    let (config, master) = VaultConfig::create(&RealFs, dir.path(), PW, &opts).unwrap();
    let text = fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap();
    assert!(text.starts_with("{\n  \"version\": 2,\n  \"vault_id\": \""));
    assert!(text.ends_with("}\n"));
    let v: Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "version",
        "vault_id",
        "created",
        "cipher",
        "segment_size",
        "compression",
        "features",
        "kdf",
        "password_check",
        "sealed_master_key",
        "master_key_check",
        "config_mac",
    ];
    expected.sort();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort();
    assert_eq!(keys_sorted, expected);
    assert_eq!(v["cipher"], "chacha20-poly1305");
    assert_eq!(v["segment_size"], 1 << 20);
    assert_eq!(v["compression"], json!({"algorithm": "zstd", "level": 7}));
    assert_eq!(v["features"], json!([]));
    assert_eq!(v["kdf"]["algorithm"], "argon2id");
    assert_eq!(v["kdf"]["m_kib"], 64);
    assert_eq!(v["kdf"]["t"], 1);
    assert_eq!(v["kdf"]["p"], 1);
    let hex_len = |p: &str| v.pointer(p).unwrap().as_str().unwrap().len();
    assert_eq!(hex_len("/vault_id"), 32);
    assert_eq!(hex_len("/kdf/salt"), 32);
    assert_eq!(hex_len("/password_check"), 32);
    assert_eq!(hex_len("/sealed_master_key/nonce"), 24);
    assert_eq!(hex_len("/sealed_master_key/ciphertext"), 96);
    assert_eq!(hex_len("/master_key_check"), 32);
    assert_eq!(hex_len("/config_mac"), 64);
    // The master key itself never appears in the file.
    let printed = print_master_key(&master).replace('-', "");
    assert!(!text.contains(&printed));
    let loaded = VaultConfig::load(&RealFs, dir.path()).unwrap();
    assert_eq!(loaded, config);
    assert_eq!(loaded.compression(), Some(7));
    assert_eq!(loaded.unlock(PW).unwrap().as_bytes(), master.as_bytes());
    // Uncompressed: the level is absent, not null.
    let (plain, _) = VaultConfig::generate(PW, &options()).unwrap();
    let v: Value = serde_json::from_str(&plain.encode()).unwrap();
    assert_eq!(v["compression"], json!({"algorithm": "none"}));
}

#[test]
fn wrong_password() {
    let (dir, _, _) = new_vault();
    let c = VaultConfig::load(&RealFs, dir.path()).unwrap();
    for pw in [&b"correct horsE"[..], b"", b"correct horse "] {
        let e = c.unlock(pw).unwrap_err();
        assert!(matches!(e, Error::WrongPassword), "{e}");
        assert_eq!(e.class(), ErrorClass::WrongKey);
        assert_eq!(e.kind(), "wrong_password");
    }
}

#[test]
fn printed_master_key_unlocks() {
    let (dir, _, master) = new_vault();
    let c = VaultConfig::load(&RealFs, dir.path()).unwrap();
    let printed = print_master_key(&master);
    assert_eq!(printed.len(), 71);
    assert!(printed.split('-').all(|g| g.len() == 8
        && g.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())));
    for form in [
        printed.to_string(),
        printed.replace('-', ""),
        printed.to_uppercase(),
        format!("\t{}\n", printed.replace('-', " ")),
    ] {
        let k = c.unlock_with_master_key(&form).unwrap();
        assert_eq!(k.as_bytes(), master.as_bytes());
    }
    assert_eq!(
        parse_master_key(&printed).unwrap().as_bytes(),
        master.as_bytes()
    );
    // Another valid-looking key: one digit changed.
    let mut wrong = printed.to_string();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    let e = c.unlock_with_master_key(&wrong).unwrap_err();
    assert!(matches!(e, Error::WrongMasterKey), "{e}");
    assert_eq!(e.class(), ErrorClass::WrongKey);
    // Another vault's key.
    let (_, _, other) = new_vault();
    assert!(matches!(
        c.unlock_with_master_key(&print_master_key(&other)),
        Err(Error::WrongMasterKey)
    ));
    // Not a key at all.
    for bad in [
        "",
        "a1b2c3d4",
        &printed[..printed.len() - 1],
        "g".repeat(64).as_str(),
    ] {
        assert!(matches!(
            c.unlock_with_master_key(bad),
            Err(Error::InvalidParams(_))
        ));
    }
}

#[test]
fn change_password() {
    let (dir, before, master) = new_vault();
    let path = dir.path().join(CONFIG_FILE);
    let text_before = fs::read_to_string(&path).unwrap();
    let mut c = VaultConfig::load(&RealFs, dir.path()).unwrap();
    assert!(matches!(
        c.change_password(
            &RealFs,
            dir.path(),
            Credential::Password(b"nope"),
            b"new",
            KdfCosts::default()
        ),
        Err(Error::WrongPassword)
    ));
    assert_eq!(fs::read_to_string(&path).unwrap(), text_before);
    c.change_password(
        &RealFs,
        dir.path(),
        Credential::Password(PW),
        b"new password",
        KdfCosts::default(),
    )
    .unwrap();
    // The atomic replace leaves no temporary file behind.
    assert_eq!(names_in(dir.path()), vec![CONFIG_FILE, "mirror"]);
    assert_eq!(names_in(&dir.path().join("mirror")), vec![CONFIG_FILE]);

    let after = VaultConfig::load(&RealFs, dir.path()).unwrap();
    assert_eq!(after, c);
    assert!(matches!(after.unlock(PW), Err(Error::WrongPassword)));
    assert_eq!(
        after.unlock(b"new password").unwrap().as_bytes(),
        master.as_bytes()
    );
    assert_eq!(
        after
            .unlock_with_master_key(&print_master_key(&master))
            .unwrap()
            .as_bytes(),
        master.as_bytes()
    );
    // Only the seal changed: fresh salt and nonce, same everything else.
    let (a, b): (Value, Value) = (
        serde_json::from_str(&text_before).unwrap(),
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap(),
    );
    for same in [
        "/version",
        "/vault_id",
        "/created",
        "/cipher",
        "/segment_size",
        "/compression",
        "/features",
        "/kdf/algorithm",
        "/kdf/m_kib",
        "/kdf/t",
        "/kdf/p",
        "/master_key_check",
        "/config_mac",
    ] {
        assert_eq!(a.pointer(same), b.pointer(same), "{same}");
    }
    for changed in [
        "/kdf/salt",
        "/password_check",
        "/sealed_master_key/nonce",
        "/sealed_master_key/ciphertext",
    ] {
        assert_ne!(a.pointer(changed), b.pointer(changed), "{changed}");
    }
    assert_eq!(after.vault_id(), before.vault_id());
}

#[test]
fn change_password_with_the_master_key_and_new_costs() {
    let (dir, before, master) = new_vault();
    let path = dir.path().join(CONFIG_FILE);
    let text_before = fs::read_to_string(&path).unwrap();
    let printed = print_master_key(&master);
    let mut c = VaultConfig::load(&RealFs, dir.path()).unwrap();
    // A wrong key, or text that is no key, changes nothing.
    let wrong = print_master_key(&SecretKey::from_bytes([7; 32]));
    for (bad, kind) in [
        (wrong.as_str(), "wrong_master_key"),
        ("a1b2", "invalid_params"),
    ] {
        let e = c
            .change_password(
                &RealFs,
                dir.path(),
                Credential::MasterKey(bad),
                b"x",
                KdfCosts::default(),
            )
            .unwrap_err();
        assert_eq!(e.kind(), kind);
        assert_eq!(fs::read_to_string(&path).unwrap(), text_before);
    }
    // Only the memory cost given: the passes and lanes stay.
    let costs = KdfCosts {
        m_kib: Some(128),
        t: None,
    };
    c.change_password(
        &RealFs,
        dir.path(),
        Credential::MasterKey(&printed.to_uppercase()),
        b"reset",
        costs,
    )
    .unwrap();
    let after = VaultConfig::load(&RealFs, dir.path()).unwrap();
    let kdf = Argon2Params {
        m_kib: 128,
        ..before.kdf()
    };
    assert_eq!(after.kdf(), kdf);
    assert_eq!(
        after.unlock(b"reset").unwrap().as_bytes(),
        master.as_bytes()
    );
    assert!(matches!(after.unlock(PW), Err(Error::WrongPassword)));
    // Then the passes, proving access with the new password.
    let mut c = after;
    let costs = KdfCosts {
        m_kib: None,
        t: Some(2),
    };
    c.change_password(
        &RealFs,
        dir.path(),
        Credential::Password(b"reset"),
        b"again",
        costs,
    )
    .unwrap();
    let after = VaultConfig::load(&RealFs, dir.path()).unwrap();
    assert_eq!(after.kdf(), Argon2Params { t: 2, ..kdf });
    assert_eq!(
        after.unlock(b"again").unwrap().as_bytes(),
        master.as_bytes()
    );
}

#[test]
fn reset_password_with_master_key_and_new_costs() {
    let (dir, _, master) = new_vault();
    let mut c = VaultConfig::load(&RealFs, dir.path()).unwrap();
    let recovered = c
        .unlock_with_master_key(&print_master_key(&master))
        .unwrap();
    let costs = Argon2Params {
        m_kib: 128,
        t: 2,
        p: 2,
    };
    c.set_password(&RealFs, dir.path(), &recovered, b"reset", costs)
        .unwrap();
    let after = VaultConfig::load(&RealFs, dir.path()).unwrap();
    assert_eq!(after.kdf(), costs);
    assert_eq!(
        after.unlock(b"reset").unwrap().as_bytes(),
        master.as_bytes()
    );
    // A key that is not this vault's is refused and the file is untouched.
    let text = fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap();
    let wrong = SecretKey::from_bytes([7; 32]);
    assert!(matches!(
        c.set_password(&RealFs, dir.path(), &wrong, b"x", FAST),
        Err(Error::WrongMasterKey)
    ));
    assert_eq!(
        fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap(),
        text
    );
    assert_eq!(names_in(dir.path()), vec![CONFIG_FILE, "mirror"]);
    assert_eq!(names_in(&dir.path().join("mirror")), vec![CONFIG_FILE]);
}

#[test]
fn create_refuses_an_existing_config() {
    let (dir, _, _) = new_vault();
    let path = dir.path().join(CONFIG_FILE);
    let text = fs::read_to_string(&path).unwrap();
    let e = VaultConfig::create(&RealFs, dir.path(), b"other", &options()).unwrap_err();
    assert!(matches!(e, Error::VaultExists(ref p) if p == &path), "{e}");
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    // Even an empty or foreign file of that name is kept.
    let dir2 = tempfile::tempdir().unwrap();
    fs::write(dir2.path().join(CONFIG_FILE), b"").unwrap();
    assert!(matches!(
        VaultConfig::create(&RealFs, dir2.path(), PW, &options()),
        Err(Error::VaultExists(_))
    ));
    assert_eq!(fs::read(dir2.path().join(CONFIG_FILE)).unwrap(), b"");
    // A missing directory is an I/O error, not a panic.
    let missing = dir2.path().join("nope");
    assert!(matches!(
        VaultConfig::create(&RealFs, &missing, PW, &options()),
        Err(Error::Io { .. })
    ));
    assert!(matches!(
        VaultConfig::load(&RealFs, &missing),
        Err(Error::Io { .. })
    ));
}

#[test]
fn invalid_options() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        VaultOptions {
            segment_size: 65537,
            ..options()
        },
        VaultOptions {
            segment_size: 8 << 10,
            ..options()
        },
        VaultOptions {
            segment_size: 2 << 20,
            ..options()
        },
        VaultOptions {
            compression: Some(0),
            ..options()
        },
        VaultOptions {
            compression: Some(23),
            ..options()
        },
        VaultOptions {
            argon2: Argon2Params {
                m_kib: 64,
                t: 0,
                p: 1,
            },
            ..options()
        },
    ] {
        let e = VaultConfig::create(&RealFs, dir.path(), PW, &bad).unwrap_err();
        assert_eq!(e.class(), ErrorClass::Params, "{bad:?}: {e}");
    }
    assert!(names_in(dir.path()).is_empty());
    for ok in [16 << 10, 32 << 10, 1 << 20] {
        let o = VaultOptions {
            segment_size: ok,
            compression: Some(22),
            ..options()
        };
        let (c, _) = VaultConfig::generate(PW, &o).unwrap();
        assert_eq!(VaultConfig::parse(c.encode().as_bytes()).unwrap(), c);
    }
}

/// What unlocking an edited config must give.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// `parse` fails with a format error.
    Format,
    /// Parses; the password gives a tampered error and so does the master key.
    Tampered,
    /// Parses; the password gives `pw` and the printed master key `mk`.
    Unlock(Outcome, Outcome),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Tampered,
    WrongPassword,
    WrongMasterKey,
    /// Opens with the same master key: the field is not used on this path.
    Same,
}

fn outcome(r: crypto_core::Result<SecretKey>, master: &SecretKey) -> Outcome {
    match r {
        Ok(k) => {
            assert_eq!(
                k.as_bytes(),
                master.as_bytes(),
                "an edited config opened with a different master key"
            );
            Outcome::Same
        }
        Err(Error::ConfigTampered(_)) => Outcome::Tampered,
        Err(Error::WrongPassword) => Outcome::WrongPassword,
        Err(Error::WrongMasterKey) => Outcome::WrongMasterKey,
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

/// Flip the first hex digit of a string value.
fn flip_hex(v: &Value) -> Value {
    let s = v.as_str().unwrap();
    let first = if s.starts_with('0') { "1" } else { "0" };
    Value::String(format!("{first}{}", &s[1..]))
}

#[test]
fn every_field_edited() {
    let (dir, config, master) = new_vault();
    let text = config.encode();
    let original: Value = serde_json::from_str(&text).unwrap();
    let printed = print_master_key(&master);
    use Expect::*;
    use Outcome as O;
    let pw_only = |pw: O| Unlock(pw, O::Same);
    type Edit = (&'static str, Box<dyn Fn(&Value) -> Value>, Expect);
    let set = |v: Value| -> Box<dyn Fn(&Value) -> Value> { Box::new(move |_| v.clone()) };
    let edits: Vec<Edit> = vec![
        ("/version", set(json!(3)), Format),
        ("/version", set(json!(0)), Format),
        ("/version", set(json!("1")), Format),
        ("/version", set(json!(1.5)), Format),
        ("/vault_id", Box::new(flip_hex), Tampered),
        ("/vault_id", set(json!("00")), Format),
        ("/created", set(json!("2001-02-03T04:05:06Z")), Tampered),
        ("/created", set(json!("yesterday")), Format),
        ("/cipher", set(json!("chacha20-poly1305")), Tampered),
        ("/cipher", set(json!("rot13")), Format),
        ("/segment_size", set(json!(131072)), Tampered),
        ("/segment_size", set(json!(65535)), Format),
        ("/segment_size", set(json!(-1)), Format),
        (
            "/compression",
            set(json!({"algorithm": "zstd", "level": 3})),
            Tampered,
        ),
        (
            "/compression",
            set(json!({"algorithm": "zstd", "level": 30})),
            Format,
        ),
        (
            "/compression",
            set(json!({"algorithm": "none", "level": 3})),
            Format,
        ),
        ("/compression/algorithm", set(json!("lz4")), Format),
        ("/features", set(json!(["sparse-files"])), Format),
        ("/features", set(json!("none")), Format),
        ("/kdf/algorithm", set(json!("scrypt")), Format),
        ("/kdf/m_kib", set(json!(128)), pw_only(O::WrongPassword)),
        ("/kdf/m_kib", set(json!(4)), Format),
        ("/kdf/t", set(json!(2)), pw_only(O::WrongPassword)),
        ("/kdf/t", set(json!(0)), Format),
        ("/kdf/p", set(json!(2)), pw_only(O::WrongPassword)),
        ("/kdf/p", set(json!(1u64 << 33)), Format),
        ("/kdf/salt", Box::new(flip_hex), pw_only(O::WrongPassword)),
        (
            "/password_check",
            Box::new(flip_hex),
            pw_only(O::WrongPassword),
        ),
        ("/password_check", set(json!(null)), Format),
        (
            "/sealed_master_key/nonce",
            Box::new(flip_hex),
            pw_only(O::Tampered),
        ),
        (
            "/sealed_master_key/ciphertext",
            Box::new(flip_hex),
            pw_only(O::Tampered),
        ),
        (
            "/sealed_master_key/ciphertext",
            set(json!("ab".repeat(47))),
            Format,
        ),
        (
            "/master_key_check",
            Box::new(flip_hex),
            Unlock(O::Tampered, O::WrongMasterKey),
        ),
        ("/config_mac", Box::new(flip_hex), Tampered),
        ("/config_mac", set(json!("ZZ".repeat(32))), Format),
    ];
    // Every leaf of the file is edited at least once above.
    fn leaves(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    leaves(x, format!("{at}/{k}"), out)
                }
            }
            _ => out.push(at),
        }
    }
    let mut all = Vec::new();
    leaves(&original, String::new(), &mut all);
    for leaf in &all {
        assert!(
            edits
                .iter()
                .any(|(p, _, _)| p.starts_with(leaf.as_str()) || leaf.starts_with(p)),
            "no edit of {leaf}"
        );
    }

    for (pointer, edit, expect) in &edits {
        let mut v = original.clone();
        let slot = v.pointer_mut(pointer).unwrap();
        *slot = edit(slot);
        let bytes = serde_json::to_vec_pretty(&v).unwrap();
        let parsed = VaultConfig::parse(&bytes);
        match (expect, parsed) {
            (Format, Err(e)) => assert_eq!(e.class(), ErrorClass::Format, "{pointer}: {e}"),
            (Format, Ok(_)) => panic!("{pointer}: edited config parsed"),
            (_, Err(e)) => panic!("{pointer}: {e}"),
            (Tampered, Ok(c)) => {
                assert_eq!(outcome(c.unlock(PW), &master), O::Tampered, "{pointer}");
                assert_eq!(
                    outcome(c.unlock_with_master_key(&printed), &master),
                    O::Tampered,
                    "{pointer}"
                );
            }
            (Unlock(pw, mk), Ok(c)) => {
                assert_eq!(outcome(c.unlock(PW), &master), *pw, "{pointer}");
                assert_eq!(
                    outcome(c.unlock_with_master_key(&printed), &master),
                    *mk,
                    "{pointer}"
                );
            }
        }
    }
    // The tampered error is an integrity error, distinct from a wrong password.
    let mut v = original.clone();
    v["cipher"] = json!("chacha20-poly1305");
    let e = VaultConfig::parse(&serde_json::to_vec(&v).unwrap())
        .unwrap()
        .unlock(PW)
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Integrity);
    assert_eq!(e.kind(), "config_tampered");
    drop(dir);
}

#[test]
fn missing_extra_and_duplicate_fields() {
    let (c, _) = VaultConfig::generate(PW, &options()).unwrap();
    let original: Value = serde_json::from_str(&c.encode()).unwrap();
    let paths = [
        ("", "version"),
        ("", "vault_id"),
        ("", "created"),
        ("", "cipher"),
        ("", "segment_size"),
        ("", "compression"),
        ("", "features"),
        ("", "kdf"),
        ("", "password_check"),
        ("", "sealed_master_key"),
        ("", "master_key_check"),
        ("", "config_mac"),
        ("/compression", "algorithm"),
        ("/kdf", "algorithm"),
        ("/kdf", "m_kib"),
        ("/kdf", "t"),
        ("/kdf", "p"),
        ("/kdf", "salt"),
        ("/sealed_master_key", "nonce"),
        ("/sealed_master_key", "ciphertext"),
    ];
    for (parent, key) in paths {
        let mut v = original.clone();
        let obj = v.pointer_mut(parent).unwrap().as_object_mut().unwrap();
        assert!(obj.remove(key).is_some());
        let e = VaultConfig::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(matches!(e, Error::ConfigInvalid(_)), "{parent}/{key}: {e}");
        assert!(e.to_string().contains(key), "{e}");
        // An unknown field next to it.
        let mut v = original.clone();
        let obj = v.pointer_mut(parent).unwrap().as_object_mut().unwrap();
        obj.insert("extra".into(), json!(1));
        let e = VaultConfig::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(matches!(e, Error::ConfigInvalid(_)), "{parent}: {e}");
    }
    let text = c.encode();
    let dup = text.replacen(
        "\"cipher\"",
        "\"cipher\": \"aes-256-gcm\",\n  \"cipher\"",
        1,
    );
    assert!(matches!(
        VaultConfig::parse(dup.as_bytes()),
        Err(Error::ConfigInvalid(_))
    ));
}

#[test]
fn truncated_at_every_length() {
    let (c, _) = VaultConfig::generate(PW, &options()).unwrap();
    let text = c.encode();
    let end = text.rfind('}').unwrap() + 1;
    for len in 0..end {
        let e = VaultConfig::parse(&text.as_bytes()[..len]).unwrap_err();
        assert_eq!(e.class(), ErrorClass::Format, "length {len}: {e}");
    }
    // Only the final newline is optional.
    assert_eq!(VaultConfig::parse(&text.as_bytes()[..end]).unwrap(), c);
}

#[test]
fn truncated_file_on_disk() {
    let (dir, _, _) = new_vault();
    let path = dir.path().join(CONFIG_FILE);
    let bytes = fs::read(&path).unwrap();
    for len in [0, 1, bytes.len() / 2, bytes.len() - 3] {
        fs::write(&path, &bytes[..len]).unwrap();
        let e = VaultConfig::load(&RealFs, dir.path()).unwrap_err();
        assert_eq!(e.class(), ErrorClass::Format, "{len}: {e}");
    }
}

#[test]
fn empty_garbage_and_wrong_shapes() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "config_invalid"),
        (b"  \n\t".to_vec(), "config_invalid"),
        (b"\0\0\0\0".to_vec(), "config_invalid"),
        (b"fusefs\x02\x01garbage".to_vec(), "config_invalid"),
        (vec![0xff, 0xfe, 0x00, 0x7b], "config_invalid"),
        (b"{\"version\": \"\xff\"}".to_vec(), "config_invalid"),
        (b"[]".to_vec(), "config_invalid"),
        (b"null".to_vec(), "config_invalid"),
        (b"1".to_vec(), "config_invalid"),
        (b"{}".to_vec(), "config_invalid"),
        (b"{\"version\": 1}".to_vec(), "config_invalid"),
        (b"{\"version\": -1}".to_vec(), "config_invalid"),
        (b"{\"version\": 3}".to_vec(), "unsupported_config_version"),
        (
            b"{\"version\": 18446744073709551615}".to_vec(),
            "unsupported_config_version",
        ),
        (
            b"{\"version\": 1, \"features\": [\"a\", 3, \"b\"]}".to_vec(),
            "unknown_features",
        ),
        (vec![b' '; 70_000], "config_invalid"),
        (
            [b"[".repeat(10_000), b"]".repeat(10_000)].concat(),
            "config_invalid",
        ),
    ];
    for (bytes, kind) in cases {
        let e = VaultConfig::parse(&bytes).unwrap_err();
        assert_eq!(
            e.kind(),
            kind,
            "{:?}: {e}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        );
        assert_eq!(e.class(), ErrorClass::Format);
    }
}

#[test]
fn unknown_version_and_feature_messages() {
    let (c, _) = VaultConfig::generate(PW, &options()).unwrap();
    let mut v: Value = serde_json::from_str(&c.encode()).unwrap();
    v["version"] = json!(3);
    // A newer version may add fields: it is reported as a newer version.
    v["something_new"] = json!(true);
    let e = VaultConfig::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(matches!(e, Error::UnsupportedConfigVersion(3)));
    assert_eq!(
        e.to_string(),
        "fusefs.conf has format version 3; this fusefs reads versions 1 and 2 only"
    );
    let mut v: Value = serde_json::from_str(&c.encode()).unwrap();
    v["features"] = json!(["holes", "xattr-v2"]);
    v["holes_params"] = json!({});
    let e = VaultConfig::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "fusefs.conf needs features this fusefs does not have: holes, xattr-v2"
    );
}

#[test]
fn both_ciphers_and_compression() {
    for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
        for compression in [None, Some(1), Some(22)] {
            let dir = tempfile::tempdir().unwrap();
            let o = VaultOptions {
                cipher,
                compression,
                segment_size: 16 << 10,
                argon2: FAST,
            };
            let (_, master) = VaultConfig::create(&RealFs, dir.path(), PW, &o).unwrap();
            let c = VaultConfig::load(&RealFs, dir.path()).unwrap();
            assert_eq!((c.cipher(), c.compression()), (cipher, compression));
            assert_eq!(c.unlock(PW).unwrap().as_bytes(), master.as_bytes());
        }
    }
}

#[test]
fn subkeys_per_purpose_and_id() {
    let m = SecretKey::from_bytes([3; 32]);
    let a = subkey(&m, "log", &[1; 16]);
    assert_eq!(a.as_bytes(), subkey(&m, "log", &[1; 16]).as_bytes());
    assert_ne!(a.as_bytes(), subkey(&m, "log", &[2; 16]).as_bytes());
    assert_ne!(a.as_bytes(), subkey(&m, "snapshot", &[1; 16]).as_bytes());
    assert_ne!(
        a.as_bytes(),
        subkey(&SecretKey::from_bytes([4; 32]), "log", &[1; 16]).as_bytes()
    );
}

/// The example of FORMAT.md §6, byte for byte: a golden fixture, so a change
/// of the format cannot slip in unnoticed.
const FORMAT_MD_EXAMPLE: &str = r#"{
  "version": 1,
  "vault_id": "a0e5379ef59663150e6fd6d00332539d",
  "created": "2026-11-25T08:00:44Z",
  "cipher": "aes-256-gcm",
  "segment_size": 65536,
  "compression": {
    "algorithm": "none"
  },
  "features": [],
  "kdf": {
    "algorithm": "argon2id",
    "m_kib": 65536,
    "t": 3,
    "p": 1,
    "salt": "4739a7cdfb1e13086c6e13b6d2714e2b"
  },
  "password_check": "55d6b9169fea66c28de80b6243adce4b",
  "sealed_master_key": {
    "nonce": "3b4417147d3ce51bdfb6be46",
    "ciphertext": "cb4c79aa30f2c9034728cfd45df286e0c27344c8165c27d417b0fd2cf49c3918a8fe1cdeba872d0f1a632cbddf2b3037"
  },
  "master_key_check": "a2b2e0d8c0f0f4512c009e996f7fe9f0",
  "config_mac": "15b471e345f5510899f9d9bcdcdc73c1e244b7d18936edf81de1f5ef87eb7c7b"
}
"#;
const FORMAT_MD_MASTER_KEY: &str =
    "9bea2d60-dd423394-b13039ce-75ba8931-0e9ae8a7-5d4737fa-221874b7-d02c818f";

#[test]
fn golden_format_md_example() {
    let c = VaultConfig::parse(FORMAT_MD_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(c.encode(), FORMAT_MD_EXAMPLE);
    assert_eq!(c.created(), "2026-11-25T08:00:44Z");
    assert_eq!(c.kdf(), DEFAULT_VAULT_ARGON2);
    let master = c.unlock_with_master_key(FORMAT_MD_MASTER_KEY).unwrap();
    assert_eq!(&*print_master_key(&master), FORMAT_MD_MASTER_KEY);
    // The password path runs Argon2id at the default 64 MiB (about 0.25 s).
    assert_eq!(c.unlock(b"example").unwrap().as_bytes(), master.as_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any byte changed anywhere: an error, or the very same master key.
    #[test]
    fn random_byte_edits_never_yield_another_key(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        thread_local! {
            static VAULT: (String, SecretKey) = {
                let (c, m) = VaultConfig::generate(PW, &options()).unwrap();
                (c.encode(), m)
            };
        }
        VAULT.with(|(text, master)| {
            let mut bytes = text.clone().into_bytes();
            let i = pos.index(bytes.len());
            bytes[i] = byte;
            if let Ok(c) = VaultConfig::parse(&bytes) {
                if let Ok(k) = c.unlock(PW) {
                    assert_eq!(k.as_bytes(), master.as_bytes());
                }
                if let Ok(k) = c.unlock_with_master_key(&print_master_key(master)) {
                    assert_eq!(k.as_bytes(), master.as_bytes());
                }
            }
        });
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = VaultConfig::parse(&bytes);
    }
}
