//! Unit tests of the vault: sealing, key ids, tamper and wrong-key errors,
//! and rotation over a real (SQLite) store.

use super::*;
use crate::{SqliteOptions, SqliteStore};
use exoclaw_core::store::SchemaStore;

const KEY_A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const KEY_B: &str = "A0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF";

fn key(hex: &str) -> VaultKey {
    VaultKey::from_hex(hex).unwrap()
}

fn vault(current: &str, old: Option<&str>) -> Vault {
    Vault::new(key(current), old.map(key))
}

fn tenant() -> TenantId {
    TenantId::new("default")
}

#[test]
fn round_trip() {
    let v = vault(KEY_A, None);
    let rec = v
        .seal(
            &tenant(),
            "provider:anthropic",
            "api_key",
            &Secret::new("sk-ant-123"),
        )
        .unwrap();
    assert_eq!(rec.key_id, key(KEY_A).key_id());
    assert_eq!(rec.nonce.len(), 12);
    assert!(!rec.ciphertext.windows(10).any(|w| w == b"sk-ant-123"));
    assert_eq!(v.unseal(&rec).unwrap().expose(), "sk-ant-123");
}

#[test]
fn empty_and_unicode_values_round_trip() {
    let v = vault(KEY_A, None);
    for value in ["", "päss wörd ✓", &"x".repeat(10_000)] {
        let rec = v
            .seal(&tenant(), "tenant", "n", &Secret::new(value))
            .unwrap();
        assert_eq!(v.unseal(&rec).unwrap().expose(), value);
    }
}

#[test]
fn every_seal_uses_a_fresh_nonce() {
    let v = vault(KEY_A, None);
    let value = Secret::new("same value");
    let a = v.seal(&tenant(), "tenant", "n", &value).unwrap();
    let b = v.seal(&tenant(), "tenant", "n", &value).unwrap();
    assert_ne!(a.nonce, b.nonce);
    assert_ne!(a.ciphertext, b.ciphertext);
}

#[test]
fn a_record_moved_elsewhere_fails_as_tampered() {
    let v = vault(KEY_A, None);
    let rec = v
        .seal(&tenant(), "user:1", "token", &Secret::new("v"))
        .unwrap();
    let moved = [
        SecretRecord {
            name: "other".into(),
            ..rec.clone()
        },
        SecretRecord {
            owner: "user:2".into(),
            ..rec.clone()
        },
        SecretRecord {
            tenant_id: "acme".into(),
            ..rec.clone()
        },
        // the length prefix keeps "user:1"+"token" apart from "user:1t"+"oken"
        SecretRecord {
            owner: "user:1t".into(),
            name: "oken".into(),
            ..rec.clone()
        },
    ];
    for m in moved {
        let err = v.unseal(&m).unwrap_err();
        assert!(matches!(err, VaultError::Tampered { .. }), "{err}");
        assert!(err.to_string().contains("altered or moved"), "{err}");
    }
    let mut flipped = rec.clone();
    flipped.ciphertext[0] ^= 1;
    assert!(matches!(
        v.unseal(&flipped),
        Err(VaultError::Tampered { .. })
    ));
    let mut short_nonce = rec;
    short_nonce.nonce.pop();
    assert!(matches!(
        v.unseal(&short_nonce),
        Err(VaultError::Tampered { .. })
    ));
}

#[test]
fn a_wrong_key_names_both_key_ids_and_no_key_material() {
    let rec = vault(KEY_A, None)
        .seal(&tenant(), "tenant", "n", &Secret::new("plain-value"))
        .unwrap();
    let err = vault(KEY_B, None).unseal(&rec).unwrap_err();
    let msg = err.to_string();
    let (id_a, id_b) = (key(KEY_A).key_id(), key(KEY_B).key_id());
    assert!(matches!(err, VaultError::WrongKey { .. }), "{msg}");
    assert!(msg.contains(&format!("store key id {id_a}")), "{msg}");
    assert!(msg.contains(&format!("configured key id {id_b}")), "{msg}");
    assert!(msg.contains("EXOCLAW_ENCRYPTION_KEY_OLD"), "{msg}");
    assert!(msg.contains("exoclaw secrets rotate-key"), "{msg}");
    for material in [KEY_A, KEY_B, &KEY_B.to_lowercase(), "plain-value"] {
        assert!(!msg.contains(material), "{msg}");
    }
}

#[test]
fn the_old_key_opens_what_it_sealed() {
    let rec = vault(KEY_A, None)
        .seal(&tenant(), "tenant", "n", &Secret::new("v"))
        .unwrap();
    assert_eq!(
        vault(KEY_B, Some(KEY_A)).unseal(&rec).unwrap().expose(),
        "v"
    );
}

#[test]
fn from_hex_accepts_exactly_64_hex_characters() {
    assert!(VaultKey::from_hex(KEY_A).is_ok());
    assert!(VaultKey::from_hex(KEY_B).is_ok(), "upper case is fine");
    let too_short = VaultKey::from_hex(&KEY_A[..63]).unwrap_err().to_string();
    assert!(too_short.contains("63 characters"), "{too_short}");
    let too_long = VaultKey::from_hex(&format!("{KEY_A}0"))
        .unwrap_err()
        .to_string();
    assert!(too_long.contains("65 characters"), "{too_long}");
    let not_hex = format!("{}zz", &KEY_A[..62]);
    let err = VaultKey::from_hex(&not_hex).unwrap_err().to_string();
    assert!(err.contains("other than 0-9 and a-f"), "{err}");
    assert!(!err.contains(&not_hex), "never echoes the input: {err}");
    // 64 bytes but not 64 characters
    let multibyte = format!("{}é", &KEY_A[..62]);
    assert!(VaultKey::from_hex(&multibyte).is_err());
    assert!(VaultKey::from_hex("").is_err());
}

#[test]
fn keys_round_trip_through_hex_and_ids_are_fingerprints() {
    let k = VaultKey::generate().unwrap();
    let again = VaultKey::from_hex(k.to_hex().expose()).unwrap();
    assert_eq!(k.key_id(), again.key_id());
    let id = k.key_id();
    assert_eq!(id.len(), 16);
    assert!(
        !k.to_hex().expose().contains(&id),
        "the id is not a slice of the key"
    );
    assert_ne!(VaultKey::generate().unwrap().key_id(), id);
    assert_eq!(format!("{k:?}"), format!("VaultKey({id})"));
}

#[test]
fn verify_check_with_the_wrong_key_fails_clearly() {
    let check = vault(KEY_A, None).make_check().unwrap();
    vault(KEY_A, None).verify_check(&check).unwrap();
    vault(KEY_B, Some(KEY_A)).verify_check(&check).unwrap();
    let err = vault(KEY_B, None).verify_check(&check).unwrap_err();
    assert!(matches!(err, VaultError::WrongKey { .. }), "{err}");
    assert!(err.to_string().contains(&key(KEY_A).key_id()), "{err}");
    let mut bad = check;
    bad.ciphertext[3] ^= 0x80;
    let err = vault(KEY_A, None).verify_check(&bad).unwrap_err();
    assert!(matches!(err, VaultError::Tampered { .. }), "{err}");
}

async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("exoclaw.db")))
        .await
        .unwrap();
    let latest = store.migrations().len() as i64;
    store.migrate_to(latest).await.unwrap();
    (dir, Arc::new(store))
}

#[tokio::test]
async fn secret_vault_put_get_list_delete() {
    let (_dir, store) = store().await;
    let sv = SecretVault::new(store.clone(), vault(KEY_A, None));
    sv.ensure_check().await.unwrap();
    sv.put(&tenant(), "tenant", "a", &Secret::new("1"))
        .await
        .unwrap();
    sv.put(&tenant(), "tenant", "a", &Secret::new("2"))
        .await
        .unwrap();
    assert_eq!(
        sv.get(&tenant(), "tenant", "a")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "2"
    );
    assert!(
        sv.get(&tenant(), "tenant", "missing")
            .await
            .unwrap()
            .is_none()
    );
    let names: Vec<_> = sv
        .list(&tenant(), None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["a"]);
    sv.delete(&tenant(), "tenant", "a").await.unwrap();
    assert!(matches!(
        sv.delete(&tenant(), "tenant", "a").await,
        Err(VaultError::Store(StoreError::NotFound))
    ));
}

#[tokio::test]
async fn ensure_check_catches_a_wrong_key_at_start_up() {
    let (_dir, store) = store().await;
    SecretVault::new(store.clone(), vault(KEY_A, None))
        .ensure_check()
        .await
        .unwrap();
    let wrong = SecretVault::new(store.clone(), vault(KEY_B, None));
    let err = wrong.ensure_check().await.unwrap_err();
    assert!(matches!(err, VaultError::WrongKey { .. }), "{err}");
    let err = wrong
        .put(&tenant(), "tenant", "x", &Secret::new("v"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, VaultError::WrongKey { .. }),
        "put refuses to mix keys: {err}"
    );
}

#[tokio::test]
async fn rotation_moves_everything_to_the_new_key_once() {
    let (_dir, store) = store().await;
    let before = SecretVault::new(store.clone(), vault(KEY_A, None));
    before.ensure_check().await.unwrap();
    for name in ["a", "b", "c"] {
        before
            .put(
                &tenant(),
                "tenant",
                name,
                &Secret::new(format!("value-{name}")),
            )
            .await
            .unwrap();
    }
    let created_a = store
        .get_secret(&tenant(), "tenant", "a")
        .await
        .unwrap()
        .unwrap()
        .created_at;

    let during = SecretVault::new(store.clone(), vault(KEY_B, Some(KEY_A)));
    during.ensure_check().await.unwrap();
    // a secret written after the key change is already current
    during
        .put(&tenant(), "tenant", "d", &Secret::new("value-d"))
        .await
        .unwrap();
    let report = during.rotate().await.unwrap();
    assert_eq!(
        report,
        RotationReport {
            rotated: 3,
            already_current: 1
        }
    );
    assert_eq!(
        during.rotate().await.unwrap(),
        RotationReport {
            rotated: 0,
            already_current: 4
        },
        "a second run is a no-op"
    );

    let after = SecretVault::new(store.clone(), vault(KEY_B, None));
    after.ensure_check().await.unwrap();
    for name in ["a", "b", "c", "d"] {
        let got = after.get(&tenant(), "tenant", name).await.unwrap().unwrap();
        assert_eq!(got.expose(), format!("value-{name}"));
    }
    let a = store
        .get_secret(&tenant(), "tenant", "a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.key_id, key(KEY_B).key_id());
    assert_eq!(a.created_at, created_a, "rotation keeps created_at");
}

#[tokio::test]
async fn rotation_without_the_old_key_changes_nothing() {
    let (_dir, store) = store().await;
    let before = SecretVault::new(store.clone(), vault(KEY_A, None));
    before.ensure_check().await.unwrap();
    before
        .put(&tenant(), "tenant", "a", &Secret::new("v"))
        .await
        .unwrap();
    let err = SecretVault::new(store.clone(), vault(KEY_B, None))
        .rotate()
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::WrongKey { .. }), "{err}");
    assert_eq!(
        before
            .get(&tenant(), "tenant", "a")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "v"
    );
}
