//! The secret vault: AES-256-GCM over secrets before they reach a store.
//!
//! - [`VaultKey`]: 32 bytes from `EXOCLAW_ENCRYPTION_KEY` (64 hex characters),
//!   wiped on drop; identified by [`VaultKey::key_id`], a fingerprint that is
//!   safe to store and print.
//! - [`Vault`]: seals and unseals one record. Each seal uses a fresh random
//!   96-bit nonce; the associated data binds the ciphertext to its tenant,
//!   owner and name (length-prefixed, with a version tag), so a record copied
//!   to another name fails to open. An optional old key opens records sealed
//!   before a key change.
//! - [`SecretVault`]: the vault over an `Arc<dyn Store>`: put/get/list/delete,
//!   the start-up canary ([`SecretVault::ensure_check`]) and all-or-nothing
//!   key rotation ([`SecretVault::rotate`]).
//!
//! No error message ever contains key material or plaintext.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use exoclaw_core::model::{SecretMeta, SecretRecord, VaultCheck};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::{Secret, TenantId};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Bytes of an AES-GCM nonce.
const NONCE_LEN: usize = 12;
/// Associated-data tag of a secret record (bump on a format change).
const SECRET_AAD_TAG: &[u8] = b"exoclaw-secret-v1";
/// Associated-data tag and known plaintext of the vault check.
const CHECK_AAD_TAG: &[u8] = b"exoclaw-vault-check-v1";
const CHECK_PLAINTEXT: &[u8] = b"exoclaw vault check: this key opens this store";
/// Domain separation for key fingerprints.
const KEY_ID_DOMAIN: &[u8] = b"exoclaw-vault-key-id-v1\0";

/// What went wrong sealing or opening a secret, phrased as what to do.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The configured key is not 64 hex characters.
    #[error(
        "invalid encryption key: {0}; EXOCLAW_ENCRYPTION_KEY must be exactly 64 hex \
         characters (32 bytes), e.g. from `openssl rand -hex 32`"
    )]
    InvalidKey(String),
    /// The data was sealed with a key that is not configured.
    #[error(
        "the encryption key does not match the one this store was sealed with (store key id \
         {stored_key_id}, configured key id {configured_key_id}); restore the original \
         EXOCLAW_ENCRYPTION_KEY in the data dir's .env, or set it as \
         EXOCLAW_ENCRYPTION_KEY_OLD and run `exoclaw secrets rotate-key`"
    )]
    WrongKey {
        stored_key_id: String,
        configured_key_id: String,
    },
    /// The key id matches but decryption failed: the bytes were altered, or
    /// the record was moved to another tenant, owner or name.
    #[error(
        "{what} cannot be decrypted although it was sealed with the configured key: the stored \
         data was altered or moved; restore it from a backup or set it again"
    )]
    Tampered { what: String },
    /// The OS random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Random(String),
    /// Encryption refused the input (it is far too large).
    #[error("cannot encrypt {0}: the value is too large")]
    Encrypt(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A 32-byte AES-256 key, wiped from memory on drop. `Debug` shows only the
/// key id.
#[derive(Clone)]
pub struct VaultKey(Zeroizing<[u8; 32]>);

impl VaultKey {
    /// Characters in the hex form.
    pub const HEX_LEN: usize = 64;

    /// Parses exactly 64 hex characters (either case). The error never
    /// echoes the input.
    pub fn from_hex(hex_key: &str) -> Result<Self, VaultError> {
        let chars = hex_key.chars().count();
        if chars != Self::HEX_LEN || hex_key.len() != Self::HEX_LEN {
            return Err(VaultError::InvalidKey(format!(
                "it has {chars} characters, not {}",
                Self::HEX_LEN
            )));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hex_key, bytes.as_mut_slice()).map_err(|_| {
            VaultError::InvalidKey("it contains characters other than 0-9 and a-f".to_owned())
        })?;
        Ok(Self(bytes))
    }

    /// A new random key.
    pub fn generate() -> Result<Self, VaultError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|e| VaultError::Random(e.to_string()))?;
        Ok(Self(bytes))
    }

    /// The 64-character lowercase hex form, for writing to `.env`.
    pub fn to_hex(&self) -> Secret {
        Secret::new(hex::encode(self.0.as_slice()))
    }

    /// A fingerprint of the key (16 hex characters of a domain-separated
    /// SHA-256), stored beside everything it seals. Not the key.
    pub fn key_id(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(KEY_ID_DOMAIN);
        hash.update(self.0.as_slice());
        let digest = hash.finalize();
        hex::encode(&digest[..8])
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.as_slice()))
    }
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultKey({})", self.key_id())
    }
}

/// Seals and opens records with the current key; `old` (from
/// `EXOCLAW_ENCRYPTION_KEY_OLD`) opens records sealed before a key change
/// until [`SecretVault::rotate`] re-seals them.
#[derive(Clone, Debug)]
pub struct Vault {
    pub current: VaultKey,
    pub old: Option<VaultKey>,
}

impl Vault {
    pub fn new(current: VaultKey, old: Option<VaultKey>) -> Self {
        Self { current, old }
    }

    /// Encrypts `value` for `tenant`/`owner`/`name` under the current key.
    pub fn seal(
        &self,
        tenant: &TenantId,
        owner: &str,
        name: &str,
        value: &Secret,
    ) -> Result<SecretRecord, VaultError> {
        let aad = secret_aad(tenant, owner, name);
        let (nonce, ciphertext) = seal_bytes(&self.current, value.expose().as_bytes(), &aad)
            .map_err(|e| match e {
                VaultError::Encrypt(_) => VaultError::Encrypt(describe(tenant, owner, name)),
                other => other,
            })?;
        let now = crate::now_millis();
        Ok(SecretRecord {
            tenant_id: tenant.clone(),
            owner: owner.to_owned(),
            name: name.to_owned(),
            key_id: self.current.key_id(),
            nonce,
            ciphertext,
            created_at: now,
            updated_at: now,
        })
    }

    /// Decrypts a record with the key its `key_id` names (current or old).
    pub fn unseal(&self, record: &SecretRecord) -> Result<Secret, VaultError> {
        let what = || describe(&record.tenant_id, &record.owner, &record.name);
        let key = self.key_for(&record.key_id)?;
        let aad = secret_aad(&record.tenant_id, &record.owner, &record.name);
        let plain = open_bytes(key, &record.nonce, &record.ciphertext, &aad)
            .ok_or_else(|| VaultError::Tampered { what: what() })?;
        let text = String::from_utf8(plain.to_vec()).map_err(|e| {
            // wipe the rejected bytes too
            drop(Zeroizing::new(e.into_bytes()));
            VaultError::Tampered { what: what() }
        })?;
        Ok(Secret::new(text))
    }

    /// A known plaintext sealed under the current key: stored once so that a
    /// wrong key is caught at start-up.
    pub fn make_check(&self) -> Result<VaultCheck, VaultError> {
        let (nonce, ciphertext) = seal_bytes(&self.current, CHECK_PLAINTEXT, CHECK_AAD_TAG)?;
        Ok(VaultCheck {
            key_id: self.current.key_id(),
            nonce,
            ciphertext,
        })
    }

    /// Proves a configured key (current or old) opens the stored check.
    pub fn verify_check(&self, check: &VaultCheck) -> Result<(), VaultError> {
        let key = self.key_for(&check.key_id)?;
        let tampered = || VaultError::Tampered {
            what: "the vault check".to_owned(),
        };
        let plain =
            open_bytes(key, &check.nonce, &check.ciphertext, CHECK_AAD_TAG).ok_or_else(tampered)?;
        if plain.as_slice() == CHECK_PLAINTEXT {
            Ok(())
        } else {
            Err(tampered())
        }
    }

    /// The configured key whose id is `key_id`.
    fn key_for(&self, key_id: &str) -> Result<&VaultKey, VaultError> {
        if self.current.key_id() == key_id {
            return Ok(&self.current);
        }
        if let Some(old) = self.old.as_ref().filter(|k| k.key_id() == key_id) {
            return Ok(old);
        }
        Err(VaultError::WrongKey {
            stored_key_id: key_id.to_owned(),
            configured_key_id: self.current.key_id(),
        })
    }

    /// True when `key_id` is one of the configured keys.
    fn knows(&self, key_id: &str) -> bool {
        self.key_for(key_id).is_ok()
    }
}

fn describe(tenant: &TenantId, owner: &str, name: &str) -> String {
    format!("secret {owner}/{name} of tenant {tenant}")
}

/// Tag, then each part as a big-endian u64 length and its bytes: no two
/// (tenant, owner, name) triples share an encoding.
fn secret_aad(tenant: &TenantId, owner: &str, name: &str) -> Vec<u8> {
    let parts = [tenant.as_str(), owner, name];
    let mut aad = Vec::with_capacity(
        SECRET_AAD_TAG.len() + 24 + parts.iter().map(|p| p.len()).sum::<usize>(),
    );
    aad.extend_from_slice(SECRET_AAD_TAG);
    for part in parts {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

/// `(nonce, ciphertext-with-tag)` under a fresh random nonce.
fn seal_bytes(key: &VaultKey, plain: &[u8], aad: &[u8]) -> Result<(Vec<u8>, Vec<u8>), VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| VaultError::Random(e.to_string()))?;
    let ciphertext = key
        .cipher()
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        .map_err(|_| VaultError::Encrypt("the value".to_owned()))?;
    Ok((nonce.to_vec(), ciphertext))
}

/// The plaintext, or `None` when the nonce is malformed or authentication fails.
fn open_bytes(
    key: &VaultKey,
    nonce: &[u8],
    ciphertext: &[u8],
    aad: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if nonce.len() != NONCE_LEN {
        return None;
    }
    key.cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// What [`SecretVault::rotate`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// Records re-sealed under the current key.
    pub rotated: usize,
    /// Records that were already sealed under it.
    pub already_current: usize,
}

/// Secrets in a store, sealed by a [`Vault`]. Plaintext exists only in the
/// [`Secret`]s handed in and out.
pub struct SecretVault {
    store: Arc<dyn Store>,
    vault: Vault,
}

impl fmt::Debug for SecretVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretVault")
            .field("backend", &self.store.backend())
            .field("vault", &self.vault)
            .finish()
    }
}

impl SecretVault {
    pub fn new(store: Arc<dyn Store>, vault: Vault) -> Self {
        Self { store, vault }
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Writes the vault check if there is none, verifies it otherwise. Call
    /// at start-up: a wrong key fails here (`WrongKey`, naming both key ids)
    /// rather than when a secret is first needed.
    pub async fn ensure_check(&self) -> Result<(), VaultError> {
        match self.store.vault_check().await? {
            Some(check) => self.vault.verify_check(&check),
            None => {
                let check = self.vault.make_check()?;
                self.store.set_vault_check(&check).await?;
                Ok(())
            }
        }
    }

    /// Seals and stores `value` (replacing any previous value of the name).
    /// Refuses when the store was sealed with a key that is not configured,
    /// so that one store never mixes unrelated keys.
    pub async fn put(
        &self,
        tenant: &TenantId,
        owner: &str,
        name: &str,
        value: &Secret,
    ) -> Result<(), VaultError> {
        if let Some(check) = self.store.vault_check().await?
            && !self.vault.knows(&check.key_id)
        {
            return Err(VaultError::WrongKey {
                stored_key_id: check.key_id,
                configured_key_id: self.vault.current.key_id(),
            });
        }
        let record = self.vault.seal(tenant, owner, name, value)?;
        self.store.put_secret(&record).await?;
        Ok(())
    }

    /// The plaintext, or `None` when there is no such secret.
    pub async fn get(
        &self,
        tenant: &TenantId,
        owner: &str,
        name: &str,
    ) -> Result<Option<Secret>, VaultError> {
        match self.store.get_secret(tenant, owner, name).await? {
            Some(record) => self.vault.unseal(&record).map(Some),
            None => Ok(None),
        }
    }

    /// Names and key ids, never values.
    pub async fn list(
        &self,
        tenant: &TenantId,
        owner: Option<&str>,
    ) -> Result<Vec<SecretMeta>, VaultError> {
        Ok(self.store.list_secrets(tenant, owner).await?)
    }

    /// `Store(NotFound)` when there is no such secret.
    pub async fn delete(
        &self,
        tenant: &TenantId,
        owner: &str,
        name: &str,
    ) -> Result<(), VaultError> {
        Ok(self.store.delete_secret(tenant, owner, name).await?)
    }

    /// Re-seals every record (and the check) not sealed under the current
    /// key, opening each with the old or current key, in one transaction: all
    /// or nothing. Idempotent: a second run rotates nothing.
    ///
    /// Run it while nothing else writes secrets: a value replaced between the
    /// read and the write here would be overwritten by its older value.
    pub async fn rotate(&self) -> Result<RotationReport, VaultError> {
        let check = self.store.vault_check().await?;
        if let Some(check) = &check {
            // proves the configured keys are the right ones before any work
            self.vault.verify_check(check)?;
        }
        let current = self.vault.current.key_id();
        let mut report = RotationReport::default();
        let mut resealed = Vec::new();
        for record in self.store.all_secrets().await? {
            if record.key_id == current {
                report.already_current += 1;
                continue;
            }
            let plain = self.vault.unseal(&record)?;
            let mut fresh =
                self.vault
                    .seal(&record.tenant_id, &record.owner, &record.name, &plain)?;
            fresh.created_at = record.created_at;
            resealed.push(fresh);
        }
        report.rotated = resealed.len();
        let check_is_current = check.as_ref().is_some_and(|c| c.key_id == current);
        if resealed.is_empty() && check_is_current {
            return Ok(report);
        }
        let check = self.vault.make_check()?;
        self.store.replace_secrets(&resealed, &check).await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
