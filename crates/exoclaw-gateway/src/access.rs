//! Who may do what: the permissions every HTTP route and WebSocket method
//! declares, the roles that hold them, and API-key scopes that narrow them.
//!
//! Roles are ordered `owner` > `admin` > `operator` > `user`; each permission
//! names the least role that holds it, so a role holds everything the roles
//! below it hold. A key's scopes can only remove permissions, never add one.
//! The server decides from the credential alone; nothing a client sends
//! (headers, body fields) changes a principal's role, tenant or user.

use exoclaw_core::model::Role;
use exoclaw_core::{TenantId, UserId};
use std::fmt;
use std::str::FromStr;

/// The prefix of users' API keys (`exk_` + 64 lowercase hex digits).
pub const KEY_PREFIX: &str = "exk_";

/// The SHA-256 digest a credential is stored, looked up and compared by.
pub fn digest(token: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// [`digest`] as lowercase hex.
pub fn digest_hex(token: &exoclaw_core::Secret) -> String {
    hex::encode(digest(token.expose()))
}

/// A permission a route or method requires. The names are the API-key scope
/// words (`exoclaw keys create --scope chat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Gateway status, the model list, `ping`.
    Status,
    /// Chat with agents (HTTP completions, WebSocket `chat.*`).
    Chat,
    /// Read one's own sessions, messages and traces.
    SessionsRead,
    /// Delete or reset one's own sessions.
    SessionsWrite,
    /// List and read agents.
    AgentsRead,
    /// Create, change and delete agents.
    AgentsWrite,
    /// Invoke tools directly (`/v1/tools/invoke`).
    ToolsInvoke,
    /// Decide one's own pending approvals.
    ApprovalsDecide,
    /// Create, list and revoke one's own API keys.
    KeysSelf,
    /// Scrape `/metrics`.
    MetricsRead,
    /// Manage the tenant's secrets.
    SecretsManage,
    /// Manage the tenant's users and their keys.
    UsersManage,
    /// Read the tenant's audit log.
    AuditRead,
    /// Manage the tenant's provider keys.
    ProvidersManage,
    /// Approve, list and revoke paired devices and senders.
    PairingManage,
    /// Create and list tenants (owners only).
    TenantsManage,
}

impl Permission {
    pub const ALL: [Permission; 16] = [
        Permission::Status,
        Permission::Chat,
        Permission::SessionsRead,
        Permission::SessionsWrite,
        Permission::AgentsRead,
        Permission::AgentsWrite,
        Permission::ToolsInvoke,
        Permission::ApprovalsDecide,
        Permission::KeysSelf,
        Permission::MetricsRead,
        Permission::SecretsManage,
        Permission::UsersManage,
        Permission::AuditRead,
        Permission::ProvidersManage,
        Permission::PairingManage,
        Permission::TenantsManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Status => "status",
            Permission::Chat => "chat",
            Permission::SessionsRead => "sessions.read",
            Permission::SessionsWrite => "sessions.write",
            Permission::AgentsRead => "agents.read",
            Permission::AgentsWrite => "agents.write",
            Permission::ToolsInvoke => "tools.invoke",
            Permission::ApprovalsDecide => "approvals.decide",
            Permission::KeysSelf => "keys.self",
            Permission::MetricsRead => "metrics.read",
            Permission::SecretsManage => "secrets.manage",
            Permission::UsersManage => "users.manage",
            Permission::AuditRead => "audit.read",
            Permission::ProvidersManage => "providers.manage",
            Permission::PairingManage => "pairing.manage",
            Permission::TenantsManage => "tenants.manage",
        }
    }

    /// The least role that holds this permission.
    pub fn min_role(self) -> Role {
        match self {
            Permission::Status
            | Permission::Chat
            | Permission::SessionsRead
            | Permission::SessionsWrite
            | Permission::AgentsRead
            | Permission::ApprovalsDecide
            | Permission::KeysSelf => Role::User,
            Permission::ToolsInvoke | Permission::MetricsRead => Role::Operator,
            Permission::AgentsWrite
            | Permission::SecretsManage
            | Permission::UsersManage
            | Permission::AuditRead
            | Permission::ProvidersManage
            | Permission::PairingManage => Role::Admin,
            Permission::TenantsManage => Role::Owner,
        }
    }
}

impl Permission {
    /// Whether this permission reads or changes the whole gateway rather than
    /// one tenant: only principals of the default tenant (the gateway's own)
    /// and owners hold it, whatever role an admin of another tenant has.
    pub fn is_gateway_wide(self) -> bool {
        matches!(self, Permission::MetricsRead | Permission::TenantsManage)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?} (expected one of: {list})", list = scope_list())]
pub struct UnknownScope(pub String);

fn scope_list() -> String {
    Permission::ALL
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Permission {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

/// Whether `role` holds `perm` (roles order from owner, the strongest).
pub fn role_allows(role: Role, perm: Permission) -> bool {
    role <= perm.min_role()
}

/// Who is calling, as established by the server from the credential (never
/// from anything the client declares).
#[derive(Clone, Debug)]
pub struct Principal {
    /// For logs and audit: `gateway-token`, `user:<id>`, `device:<id>`.
    pub actor: String,
    pub role: Role,
    pub tenant: TenantId,
    /// The user sessions, workspaces and traces belong to.
    pub user: UserId,
    /// A key's scopes; `None` = everything the role holds.
    pub scopes: Option<Vec<Permission>>,
}

impl Principal {
    /// Whether this principal may use `perm`: the role holds it and the
    /// credential's scopes (if any) include it.
    pub fn can(&self, perm: Permission) -> bool {
        role_allows(self.role, perm)
            && (!perm.is_gateway_wide() || self.is_gateway_level())
            && self.scopes.as_ref().is_none_or(|s| s.contains(&perm))
    }

    /// Owners, and principals of the default tenant: the gateway's own
    /// people, who may see gateway-wide figures such as `/metrics`.
    pub fn is_gateway_level(&self) -> bool {
        self.role == Role::Owner || self.tenant.as_str() == exoclaw_core::DEFAULT_TENANT
    }

    /// Admins and owners see every user's records of their tenant; others
    /// only their own.
    pub fn sees_all_users(&self) -> bool {
        self.role <= Role::Admin && self.scopes.is_none()
    }
}

/// The effective role of a stored user: an `EXOCLAW_OWNER_IDS` entry makes
/// an owner, whatever the stored role says, when it is the user's id (ids are
/// random and unique across tenants) or the user's name in the default
/// tenant. A name never matches in another tenant, so an admin who creates
/// `boss` in their own tenant does not create a gateway owner.
pub fn effective_role(owner_ids: &[String], user: &exoclaw_core::model::User) -> Role {
    if is_listed_owner(owner_ids, user) {
        Role::Owner
    } else {
        user.role
    }
}

/// Whether `user` is an owner through `EXOCLAW_OWNER_IDS` (see
/// [`effective_role`]).
pub fn is_listed_owner(owner_ids: &[String], user: &exoclaw_core::model::User) -> bool {
    owner_ids.iter().any(|o| {
        o == user.id.as_str()
            || (o == &user.name && user.tenant_id.as_str() == exoclaw_core::DEFAULT_TENANT)
    })
}

/// Whether a user named `name` in `tenant` would be an owner through
/// `EXOCLAW_OWNER_IDS` (checked before creating one).
pub fn name_is_listed_owner(owner_ids: &[String], tenant: &TenantId, name: &str) -> bool {
    tenant.as_str() == exoclaw_core::DEFAULT_TENANT && owner_ids.iter().any(|o| o == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_hold_what_the_roles_below_hold() {
        for p in Permission::ALL {
            let holders: Vec<Role> = Role::ALL
                .into_iter()
                .filter(|r| role_allows(*r, p))
                .collect();
            // Owners hold everything; the holders are a prefix of the order.
            assert_eq!(holders[0], Role::Owner, "{p}");
            assert_eq!(holders, Role::ALL[..holders.len()], "{p}");
        }
        assert!(!role_allows(Role::User, Permission::UsersManage));
        assert!(!role_allows(Role::Admin, Permission::TenantsManage));
        assert!(role_allows(Role::Operator, Permission::ToolsInvoke));
        assert!(!role_allows(Role::User, Permission::ToolsInvoke));
    }

    #[test]
    fn scopes_narrow_and_never_widen() {
        let mut p = Principal {
            actor: "user:u".into(),
            role: Role::User,
            tenant: TenantId::new("default"),
            user: UserId::new("u"),
            scopes: Some(vec![Permission::Chat, Permission::UsersManage]),
        };
        assert!(p.can(Permission::Chat));
        assert!(!p.can(Permission::SessionsRead), "not in the scopes");
        assert!(!p.can(Permission::UsersManage), "the role lacks it");
        p.scopes = None;
        assert!(p.can(Permission::SessionsRead));
    }

    fn user(tenant: &str, id: &str, name: &str) -> exoclaw_core::model::User {
        exoclaw_core::model::User {
            id: UserId::new(id),
            tenant_id: TenantId::new(tenant),
            name: name.to_owned(),
            role: Role::User,
            disabled: false,
            created_at: 0,
        }
    }

    #[test]
    fn owner_ids_match_an_id_anywhere_and_a_name_only_in_the_default_tenant() {
        let owners = vec!["boss".to_owned(), "u-123".to_owned()];
        assert_eq!(
            effective_role(&owners, &user("default", "u-9", "boss")),
            Role::Owner
        );
        assert_eq!(
            effective_role(&owners, &user("acme", "u-8", "boss")),
            Role::User,
            "a name in another tenant confers nothing"
        );
        assert_eq!(
            effective_role(&owners, &user("acme", "u-123", "carol")),
            Role::Owner,
            "an id is unique across tenants"
        );
        assert!(name_is_listed_owner(
            &owners,
            &TenantId::new("default"),
            "boss"
        ));
        assert!(!name_is_listed_owner(
            &owners,
            &TenantId::new("acme"),
            "boss"
        ));
    }

    #[test]
    fn gateway_wide_permissions_stay_in_the_gateways_tenant() {
        let mut p = Principal {
            actor: "user:u".into(),
            role: Role::Admin,
            tenant: TenantId::new("acme"),
            user: UserId::new("u"),
            scopes: None,
        };
        assert!(!p.can(Permission::MetricsRead), "another tenant's admin");
        assert!(
            p.can(Permission::UsersManage),
            "their own tenant's business"
        );
        p.tenant = TenantId::new(exoclaw_core::DEFAULT_TENANT);
        assert!(p.can(Permission::MetricsRead));
        p.role = Role::User;
        assert!(!p.can(Permission::MetricsRead), "the role still counts");
    }

    #[test]
    fn scope_words_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
        }
        let e = "root".parse::<Permission>().unwrap_err().to_string();
        assert!(e.contains("chat") && e.contains("root"), "{e}");
    }
}
