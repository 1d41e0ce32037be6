//! Which agent answers a conversation when the caller names none: the
//! tenant's bindings (`BindingStore`) matched against the channel, the
//! channel account, the peer and the user. The most specific matching
//! binding wins ([`Binding::specificity`]: a peer outweighs a user, a user
//! an account, an account a channel); of equally specific ones the oldest;
//! with none, the tenant's `default` agent.

use exoclaw_core::store::orchestration::Binding;
use exoclaw_core::store::{BindingStore, StoreResult};
use exoclaw_core::{AgentId, TenantId, UserId};

/// The agent that answers when none is named.
pub const DEFAULT_AGENT: &str = "default";

/// The agent bound to a conversation (see the module docs).
pub async fn resolve<S: BindingStore + ?Sized>(
    store: &S,
    tenant: &TenantId,
    channel: &str,
    account: Option<&str>,
    peer: &str,
    user: &UserId,
) -> StoreResult<AgentId> {
    let bindings = store.list_bindings(tenant).await?;
    Ok(pick(&bindings, channel, account, peer, user)
        .map_or_else(|| AgentId::new(DEFAULT_AGENT), |b| b.agent.clone()))
}

/// The winning binding of `bindings` (listed oldest first, as the store
/// lists them), if any matches.
fn pick<'a>(
    bindings: &'a [Binding],
    channel: &str,
    account: Option<&str>,
    peer: &str,
    user: &UserId,
) -> Option<&'a Binding> {
    let mut best: Option<&Binding> = None;
    for b in bindings {
        if !b.matches(channel, account, peer, user) {
            continue;
        }
        // Strictly more specific replaces: of equals, the oldest stays.
        let better = best.is_none_or(|cur| {
            (b.specificity(), cur.created_at, &cur.id) > (cur.specificity(), b.created_at, &b.id)
        });
        if better {
            best = Some(b);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_store;
    use exoclaw_core::model::NewAgent;
    use exoclaw_core::store::Store;
    use exoclaw_core::store::orchestration::NewBinding;

    fn tenant() -> TenantId {
        TenantId::new(exoclaw_core::DEFAULT_TENANT)
    }

    async fn agent(store: &dyn Store, id: &str) {
        store
            .create_agent(
                &tenant(),
                &NewAgent {
                    id: AgentId::new(id),
                    display_name: id.to_owned(),
                    agent_type: exoclaw_core::model::AgentType::Open,
                    config: serde_json::json!({}),
                },
            )
            .await
            .unwrap();
    }

    /// A binding to `agent` matching the given fields (`None`: any).
    async fn bind(
        store: &dyn Store,
        agent: &str,
        channel: Option<&str>,
        account: Option<&str>,
        peer: Option<&str>,
        user: Option<&str>,
    ) {
        store
            .create_binding(
                &tenant(),
                &NewBinding {
                    channel: channel.map(str::to_owned),
                    account: account.map(str::to_owned),
                    peer: peer.map(str::to_owned),
                    user_id: user.map(UserId::new),
                    agent: AgentId::new(agent),
                },
            )
            .await
            .unwrap();
        // Distinct creation times, so "the oldest" is well defined.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }

    /// A conversation: channel, account, peer, user.
    type Conversation<'a> = (&'a str, Option<&'a str>, &'a str, &'a str);

    /// `conversation -> agent` for each case.
    async fn check(store: &dyn Store, cases: &[(Conversation<'_>, &str)]) {
        for ((channel, account, peer, user), want) in cases {
            let got = resolve(
                store,
                &tenant(),
                channel,
                *account,
                peer,
                &UserId::new(*user),
            )
            .await
            .unwrap();
            assert_eq!(got.as_str(), *want, "{channel} {account:?} {peer} {user}");
        }
    }

    #[tokio::test]
    async fn no_binding_means_the_default_agent() {
        for t in test_store::all().await {
            check(
                t.store.as_ref(),
                &[(("ws", None, "ws", "alice"), "default")],
            )
            .await;
            agent(t.store.as_ref(), "support").await;
            bind(
                t.store.as_ref(),
                "support",
                Some("telegram"),
                None,
                None,
                None,
            )
            .await;
            check(
                t.store.as_ref(),
                &[
                    (("ws", None, "ws", "alice"), "default"),
                    (("telegram", None, "42", "alice"), "support"),
                ],
            )
            .await;
            t.finish().await;
        }
    }

    #[tokio::test]
    async fn the_most_specific_match_wins_and_ties_go_to_the_oldest() {
        for t in test_store::all().await {
            let s = t.store.as_ref();
            for a in ["chan", "acct", "usr", "peer", "both", "older", "newer"] {
                agent(s, a).await;
            }
            // Created least specific first, then the reverse order of
            // strength, so neither age nor order decides but specificity.
            bind(s, "peer", None, None, Some("p1"), None).await;
            bind(s, "usr", None, None, None, Some("bob")).await;
            bind(s, "acct", Some("ws"), Some("bot2"), None, None).await;
            bind(s, "chan", Some("ws"), None, None, None).await;
            bind(s, "both", Some("ws"), None, Some("p1"), Some("bob")).await;
            // Two equally specific matches: the older answers.
            bind(s, "older", None, None, Some("p2"), None).await;
            bind(s, "newer", Some("ws"), None, None, Some("carol")).await;
            bind(s, "newer", None, Some("bot9"), Some("p2"), None).await;
            check(
                s,
                &[
                    // Only the channel matches.
                    (("ws", None, "x", "alice"), "chan"),
                    // An account outweighs a bare channel.
                    (("ws", Some("bot2"), "x", "alice"), "acct"),
                    // A user outweighs channel and account.
                    (("ws", Some("bot2"), "x", "bob"), "usr"),
                    // A peer outweighs a user, channel and account.
                    (("ws", Some("bot2"), "p1", "alice"), "peer"),
                    // Peer, user and channel together outweigh a peer alone.
                    (("ws", None, "p1", "bob"), "both"),
                    // Another channel: the bindings without one still match.
                    (("telegram", None, "p1", "alice"), "peer"),
                    (("telegram", None, "x", "bob"), "usr"),
                    (("telegram", None, "x", "alice"), "default"),
                    // p2 alone (8) vs channel + user (5): the peer wins.
                    (("ws", None, "p2", "carol"), "older"),
                    // p2 with account bot9 (10) outweighs p2 alone (8).
                    (("ws", Some("bot9"), "p2", "alice"), "newer"),
                ],
            )
            .await;
            t.finish().await;
        }
    }

    #[test]
    fn of_equally_specific_matches_the_oldest_wins_whatever_the_order() {
        let b = |id: &str, created_at, agent: &str| Binding {
            id: id.to_owned(),
            tenant_id: tenant(),
            channel: Some("ws".to_owned()),
            account: None,
            peer: None,
            user_id: None,
            agent: AgentId::new(agent),
            created_at,
        };
        let user = UserId::new("u");
        let listed = [b("b2", 20, "new"), b("b1", 10, "old")];
        let got = pick(&listed, "ws", None, "p", &user).unwrap();
        assert_eq!(got.agent.as_str(), "old");
        let listed = [b("b1", 10, "old"), b("b2", 20, "new")];
        let got = pick(&listed, "ws", None, "p", &user).unwrap();
        assert_eq!(got.agent.as_str(), "old");
        // The same millisecond: the smaller id, as the store orders them.
        let listed = [b("b9", 10, "nine"), b("b1", 10, "one")];
        let got = pick(&listed, "ws", None, "p", &user).unwrap();
        assert_eq!(got.agent.as_str(), "one");
        assert!(pick(&listed, "telegram", None, "p", &user).is_none());
    }
}
