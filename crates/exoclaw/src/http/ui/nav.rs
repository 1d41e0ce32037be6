//! The dashboard's navigation: one entry per page, shown only to those
//! holding the permission its page requires (the page checks it again on
//! the server). A new page adds its line here.

use exoclaw_gateway::access::{Permission, Principal};

/// One entry: where, what it is called, what it needs.
struct Entry {
    href: &'static str,
    label: &'static str,
    needs: Permission,
}

const ENTRIES: &[Entry] = &[
    Entry {
        href: "/ui/",
        label: "Overview",
        needs: Permission::Status,
    },
    Entry {
        href: "/ui/chat",
        label: "Chat",
        needs: Permission::Chat,
    },
    Entry {
        href: "/ui/agents",
        label: "Agents",
        needs: Permission::AgentsRead,
    },
    Entry {
        href: "/ui/sessions",
        label: "Sessions",
        needs: Permission::SessionsRead,
    },
    Entry {
        href: "/ui/traces",
        label: "Traces",
        needs: Permission::SessionsRead,
    },
    Entry {
        href: "/ui/usage",
        label: "Usage",
        needs: Permission::SessionsRead,
    },
    Entry {
        href: "/ui/approvals",
        label: "Approvals",
        needs: Permission::ApprovalsDecide,
    },
    Entry {
        href: "/ui/teams",
        label: "Teams",
        needs: Permission::AgentsRead,
    },
    Entry {
        href: "/ui/delegations",
        label: "Delegations",
        needs: Permission::SessionsRead,
    },
    Entry {
        href: "/ui/memory",
        label: "Memory",
        needs: Permission::SessionsRead,
    },
    Entry {
        href: "/ui/skills",
        label: "Skills",
        needs: Permission::AgentsRead,
    },
    Entry {
        href: "/ui/cron",
        label: "Cron",
        needs: Permission::SessionsRead,
    },
    Entry {
        href: "/ui/mcp",
        label: "MCP",
        needs: Permission::AgentsRead,
    },
    Entry {
        href: "/ui/channels",
        label: "Channels",
        needs: Permission::MetricsRead,
    },
    Entry {
        href: "/ui/pairing",
        label: "Pairing",
        needs: Permission::PairingManage,
    },
    Entry {
        href: "/ui/users",
        label: "Users",
        needs: Permission::UsersManage,
    },
    Entry {
        href: "/ui/audit",
        label: "Audit",
        needs: Permission::AuditRead,
    },
    Entry {
        href: "/ui/security",
        label: "Security",
        needs: Permission::TenantsManage,
    },
];

/// An entry as a page shows it.
pub struct Item {
    pub href: &'static str,
    pub label: &'static str,
    /// The page being shown is this entry's (or below it).
    pub current: bool,
}

/// The entries `who` may use, the current one marked.
pub fn for_principal(who: &Principal, path: &str) -> Vec<Item> {
    ENTRIES
        .iter()
        .filter(|e| who.can(e.needs))
        .map(|e| Item {
            href: e.href,
            label: e.label,
            current: if e.href == "/ui/" {
                path == "/ui/"
            } else {
                path == e.href || path.starts_with(&format!("{}/", e.href))
            },
        })
        .collect()
}
