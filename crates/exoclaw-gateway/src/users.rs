//! Users and their API keys, shared by `exoclaw users|keys` and the admin
//! API: creating a user with a first key, issuing keys (shown once, stored
//! as a digest), and the rules on who may grant what.

use crate::access::{KEY_PREFIX, digest};
use crate::access::{Permission, Principal, UnknownScope};
use exoclaw_core::model::{NewUser, Role, User};
use exoclaw_core::store::{ApiKey, ApiKeyStore, NewApiKey, StoreError, TenantStore, UserStore};
use exoclaw_core::{Secret, TenantId, UserId};

/// Longest key lifetime accepted (10 years), in days.
pub const MAX_KEY_DAYS: u32 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Scope(#[from] UnknownScope),
    #[error("{0}")]
    Invalid(String),
    /// The actor may not grant this (a role above their own).
    #[error("{0}")]
    Forbidden(String),
}

/// What to put in a new key.
#[derive(Clone, Debug, Default)]
pub struct KeySpec {
    pub name: String,
    pub expires_days: Option<u32>,
    pub scopes: Vec<String>,
}

/// A freshly issued key: the record and the plaintext, shown once.
pub struct Issued {
    pub key: ApiKey,
    pub plaintext: Secret,
}

/// A user name: 1–64 characters, letters, digits and `._-:@`.
pub fn validate_name(name: &str) -> Result<(), UserError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@'));
    if ok {
        Ok(())
    } else {
        Err(UserError::Invalid(format!(
            "invalid user name {name:?}: use 1-64 letters, digits and . _ - : @"
        )))
    }
}

/// Refuse granting a role above the actor's own.
pub fn check_grant(actor_role: Role, role: Role) -> Result<(), UserError> {
    if role < actor_role {
        return Err(UserError::Forbidden(format!(
            "a {actor_role} cannot grant the role {role}"
        )));
    }
    Ok(())
}

fn new_key_text() -> Result<String, UserError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| UserError::Invalid(format!("the OS random number generator failed: {e}")))?;
    Ok(format!("{KEY_PREFIX}{}", hex::encode(bytes)))
}

use exoclaw_core::now_ms;

/// Issue a key for `user` of `tenant`.
pub async fn issue_key(
    store: &(impl UserStore + ApiKeyStore + TenantStore + ?Sized),
    tenant: &TenantId,
    user: &UserId,
    spec: &KeySpec,
) -> Result<Issued, UserError> {
    let scopes = spec
        .scopes
        .iter()
        .map(|s| s.parse::<Permission>().map(|p| p.as_str().to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    if spec.expires_days == Some(0) || spec.expires_days.is_some_and(|d| d > MAX_KEY_DAYS) {
        return Err(UserError::Invalid(format!(
            "expiry must be 1-{MAX_KEY_DAYS} days"
        )));
    }
    if spec.name.len() > 64 {
        return Err(UserError::Invalid(
            "a key name is at most 64 characters".into(),
        ));
    }
    let now = now_ms();
    let text = new_key_text()?;
    let key = store
        .create_api_key(
            &NewApiKey {
                tenant_id: tenant.clone(),
                user_id: user.clone(),
                name: if spec.name.is_empty() {
                    "default".into()
                } else {
                    spec.name.clone()
                },
                key_hash: hex::encode(digest(&text)),
                prefix: text.chars().take(KEY_PREFIX.len() + 8).collect(),
                scopes,
                expires_at: spec.expires_days.map(|d| now + i64::from(d) * 86_400_000),
            },
            now,
        )
        .await?;
    Ok(Issued {
        key,
        plaintext: Secret::new(text),
    })
}

/// Create a user and their first key. The tenant must exist.
pub async fn create_user(
    store: &(impl UserStore + ApiKeyStore + TenantStore + ?Sized),
    tenant: &TenantId,
    name: &str,
    role: Role,
    key: &KeySpec,
) -> Result<(User, Issued), UserError> {
    validate_name(name)?;
    if store.get_tenant(tenant).await?.is_none() {
        return Err(UserError::Invalid(format!(
            "no tenant {tenant}; an owner creates it with POST /v1/tenants"
        )));
    }
    let user = store
        .create_user(
            tenant,
            &NewUser {
                name: name.to_owned(),
                role,
            },
        )
        .await?;
    match issue_key(store, tenant, &user.id, key).await {
        Ok(issued) => Ok((user, issued)),
        Err(e) => {
            // Leave nothing half-made behind.
            let _ = store.delete_user(tenant, &user.id).await;
            Err(e)
        }
    }
}

/// Find a user of `tenant` by id or by name.
pub async fn find(
    store: &(impl UserStore + ApiKeyStore + TenantStore + ?Sized),
    tenant: &TenantId,
    id_or_name: &str,
) -> Result<Option<User>, StoreError> {
    if let Some(u) = store.get_user(tenant, &UserId::new(id_or_name)).await? {
        return Ok(Some(u));
    }
    store.find_user_by_name(tenant, id_or_name).await
}

/// The tenant an admin request acts on: its own, or (owners only) another.
pub fn target_tenant(who: &Principal, requested: Option<&str>) -> Result<TenantId, UserError> {
    match requested {
        None => Ok(who.tenant.clone()),
        Some(t) if t == who.tenant.as_str() => Ok(who.tenant.clone()),
        Some(t) if who.can(Permission::TenantsManage) => Ok(TenantId::new(t)),
        Some(_) => Err(UserError::Forbidden(
            "only owners act on other tenants".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_never_exceed_the_actor() {
        assert!(check_grant(Role::Admin, Role::User).is_ok());
        assert!(check_grant(Role::Admin, Role::Admin).is_ok());
        assert!(check_grant(Role::Admin, Role::Owner).is_err());
        assert!(check_grant(Role::Operator, Role::Admin).is_err());
        assert!(check_grant(Role::Owner, Role::Owner).is_ok());
    }

    #[test]
    fn names_are_plain() {
        assert!(validate_name("alice").is_ok());
        assert!(validate_name("telegram:12345").is_ok());
        for bad in ["", "a b", "x/y", "é", &"a".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_look_like_keys() {
        let k = new_key_text().unwrap();
        assert!(k.starts_with(KEY_PREFIX));
        assert_eq!(k.len(), KEY_PREFIX.len() + 64);
        assert_ne!(k, new_key_text().unwrap());
    }
}
