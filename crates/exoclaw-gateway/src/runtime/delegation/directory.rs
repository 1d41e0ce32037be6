//! Agent discovery: which agents a run may delegate to (its permission
//! links, their direction and user lists; a team's lead and its members
//! reach each other without a link; the targets that exist and are not
//! disabled), how the system prompt lists them (up to [`INLINE_MAX`];
//! beyond, the agent searches with `delegate_search`, ranked by
//! [`rank_hybrid`] when an embedder is configured), and which
//! orchestration tools a run is not offered.

use super::super::agent_settings::AgentSettings;
use crate::config::file::SubagentConfig;
use exoclaw_core::store::orchestration::AgentLink;
use exoclaw_core::store::teams::Team;
use exoclaw_core::store::{AgentStore, LinkStore, StoreError, TeamStore};
use exoclaw_core::tool::{AgentCard, Lineage};
use exoclaw_core::{AgentId, TenantId, UserId};
use std::collections::BTreeSet;

/// `cards` ranked for `query` the way memories and skills are: the
/// keyword ranking (`exoclaw_tools::orchestrate::rank`) and the cosine
/// ranking of the cards' `id (name): description` against the query, by
/// `embedder`, fused by reciprocal rank (ties by id). `None` (the caller
/// falls back to keywords, with a warning logged) when the embedder fails.
pub async fn rank_hybrid(
    embedder: &dyn exoclaw_core::embed::Embedder,
    query: &str,
    cards: &[AgentCard],
    limit: usize,
) -> Option<Vec<AgentCard>> {
    let mut texts = Vec::with_capacity(cards.len() + 1);
    texts.push(query.to_owned());
    texts.extend(
        cards
            .iter()
            .map(|c| format!("{} ({}): {}", c.id, c.name, c.description)),
    );
    let vectors = match embedder.embed(&texts).await {
        Ok(v) if v.len() == texts.len() => v,
        Ok(_) => {
            tracing::warn!(
                embedder = embedder.id(),
                "the embedder answered with the wrong number of vectors; delegate_search by keywords"
            );
            return None;
        }
        Err(e) => {
            tracing::warn!(embedder = embedder.id(), error = %e, "the embedder failed; delegate_search by keywords");
            return None;
        }
    };
    let (q, rest) = vectors.split_first()?;
    let mut by_meaning: Vec<(f32, &AgentCard)> = rest
        .iter()
        .zip(cards)
        .map(|(v, c)| (exoclaw_core::embed::cosine(q, v), c))
        .collect();
    by_meaning.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let by_meaning: Vec<&AgentCard> = by_meaning.into_iter().take(limit).map(|(_, c)| c).collect();
    let by_keyword = exoclaw_tools::orchestrate::rank(query, cards, limit);
    let fused = exoclaw_core::store::memory::fuse_by(
        by_keyword,
        by_meaning,
        |c| c.id.as_str(),
        |a, b| a.id.cmp(&b.id),
        limit,
    );
    Some(fused.into_iter().map(|f| f.item.clone()).collect())
}

/// Most targets the system prompt lists; with more, `delegate_search`.
pub const INLINE_MAX: usize = 15;

/// How one agent may reach another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// A permission link (its `max_concurrent` applies).
    Link(AgentLink),
    /// A team both are in, one of them its lead.
    Team(String),
}

/// Why one agent may not reach another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No link (and no team) lets it.
    NoLink,
    /// A link would, but not for this user.
    UserDenied,
}

/// Whether `from` may delegate to `to` for `user`: a link first, then a
/// team (a lead and its members reach each other). Read through the turn's
/// directory (rows unchanged since an earlier turn come from memory); the
/// teams only when no link admits the user.
pub async fn reach(
    dir: &crate::runtime::directory::Directory,
    from: &AgentId,
    to: &AgentId,
    user: &UserId,
) -> Result<Result<Reach, Refusal>, StoreError> {
    let links = dir.links(from).await?;
    let link = links.into_iter().find(|l| l.permits(from, to));
    if let Some(l) = &link
        && l.users.admits(user)
    {
        return Ok(Ok(Reach::Link(l.clone())));
    }
    let team = dir.teams().await?.into_iter().find(|t| {
        (t.lead == *from && t.members.contains(to)) || (t.lead == *to && t.members.contains(from))
    });
    if let Some(team) = team {
        return Ok(Ok(Reach::Team(team.id)));
    }
    Ok(Err(if link.is_some() {
        Refusal::UserDenied
    } else {
        Refusal::NoLink
    }))
}

/// The agents `agent` may delegate to on behalf of `user`, by id.
pub async fn reachable<S>(
    store: &S,
    tenant: &TenantId,
    agent: &AgentId,
    user: &UserId,
) -> Result<Vec<AgentCard>, StoreError>
where
    S: LinkStore + AgentStore + TeamStore + ?Sized,
{
    // Independent reads: on SQLite they run on two pooled connections.
    let (links, teams) = tokio::join!(
        store.list_links(tenant, Some(agent)),
        store.list_teams(tenant)
    );
    reachable_from(store, tenant, agent, user, (&links?, &teams?)).await
}

/// [`reachable`], given the agent's links and the tenant's teams.
pub async fn reachable_from<S>(
    store: &S,
    tenant: &TenantId,
    agent: &AgentId,
    user: &UserId,
    (links, teams): (&[AgentLink], &[Team]),
) -> Result<Vec<AgentCard>, StoreError>
where
    S: AgentStore + ?Sized,
{
    let mut targets: BTreeSet<AgentId> = links
        .iter()
        .filter(|l| l.users.admits(user))
        .filter_map(|l| {
            let other = if l.source == *agent {
                &l.target
            } else {
                &l.source
            };
            l.permits(agent, other).then(|| other.clone())
        })
        .collect();
    for team in teams {
        if team.lead == *agent {
            targets.extend(team.members.iter().cloned());
        } else if team.members.contains(agent) {
            targets.insert(team.lead.clone());
        }
    }
    targets.remove(agent);
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let mut cards: Vec<AgentCard> = store
        .list_agents(tenant)
        .await?
        .into_iter()
        .filter(|a| targets.contains(&a.id))
        .filter_map(|a| {
            let s = AgentSettings::from_stored(a.id.as_str(), &a.config);
            (!s.disabled).then(|| AgentCard {
                id: a.id,
                name: a.display_name,
                description: s.description.unwrap_or_default(),
            })
        })
        .collect();
    cards.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(cards)
}

/// The orchestration tools a run is not offered: `delegate`,
/// `evaluate_loop` and `handoff` with no agent to reach, `delegate_search`
/// while the prompt lists every target, `spawn` at the subagent depth
/// limit.
pub fn tools_to_hide(
    reachable: usize,
    lineage: &Lineage,
    subagents: &SubagentConfig,
) -> Vec<String> {
    let mut hide = Vec::new();
    if reachable == 0 {
        hide.extend(["delegate", "evaluate_loop", "handoff"].map(str::to_owned));
    }
    if reachable <= INLINE_MAX {
        hide.push("delegate_search".to_owned());
    }
    if lineage.spawn_depth >= subagents.max_depth {
        hide.push("spawn".to_owned());
    }
    hide
}

/// The system prompt's section on other agents (empty when none).
pub fn prompt_section(cards: &[AgentCard]) -> String {
    if cards.is_empty() {
        return String::new();
    }
    if cards.len() > INLINE_MAX {
        return format!(
            "\n\n## Other agents\nYou can delegate tasks to {} other agents with the `delegate` tool; \
             find the right one with `delegate_search`.",
            cards.len()
        );
    }
    let lines: Vec<String> = cards
        .iter()
        .map(exoclaw_tools::orchestrate::card_line)
        .collect();
    format!(
        "\n\n## Other agents\nYou can delegate tasks to these agents with the `delegate` tool \
         (`agent` is the id before the parenthesis):\n{}",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cards(n: usize) -> Vec<AgentCard> {
        (0..n)
            .map(|i| AgentCard {
                id: format!("a{i:02}").into(),
                name: format!("A{i}"),
                description: "helps".into(),
            })
            .collect()
    }

    #[test]
    fn up_to_fifteen_targets_are_listed_beyond_that_searched() {
        assert_eq!(prompt_section(&[]), "");
        let few = prompt_section(&cards(INLINE_MAX));
        assert!(few.contains("- a14 (A14): helps"), "{few}");
        let many = prompt_section(&cards(INLINE_MAX + 1));
        assert!(
            many.contains("delegate_search") && !many.contains("a00"),
            "{many}"
        );
        let cfg = SubagentConfig::default();
        let top = Lineage::default();
        assert_eq!(
            tools_to_hide(0, &top, &cfg),
            ["delegate", "evaluate_loop", "handoff", "delegate_search"]
        );
        assert_eq!(tools_to_hide(INLINE_MAX, &top, &cfg), ["delegate_search"]);
        assert!(tools_to_hide(INLINE_MAX + 1, &top, &cfg).is_empty());
        let child = Lineage {
            spawn_depth: 1,
            ..Lineage::default()
        };
        assert_eq!(tools_to_hide(16, &child, &cfg), ["spawn"]);
    }

    /// Vectors by topic: money words point one way, code words another.
    struct Topics(bool);

    #[async_trait::async_trait]
    impl exoclaw_core::embed::Embedder for Topics {
        fn id(&self) -> &str {
            "topics"
        }
        fn dims(&self) -> usize {
            2
        }
        async fn embed(
            &self,
            texts: &[String],
        ) -> Result<Vec<Vec<f32>>, exoclaw_core::embed::EmbedError> {
            if !self.0 {
                return Err(exoclaw_core::embed::EmbedError::Unavailable("down".into()));
            }
            Ok(texts
                .iter()
                .map(|t| {
                    let money = ["bill", "invoice", "payment", "refund"]
                        .iter()
                        .any(|w| t.contains(w));
                    if money {
                        vec![1.0, 0.0]
                    } else {
                        vec![0.0, 1.0]
                    }
                })
                .collect())
        }
    }

    fn card(id: &str, description: &str) -> AgentCard {
        AgentCard {
            id: id.into(),
            name: id.to_owned(),
            description: description.to_owned(),
        }
    }

    #[tokio::test]
    async fn hybrid_ranking_finds_by_meaning_and_keeps_keyword_matches() {
        let cards = vec![
            card("accounts", "answers questions about invoices"),
            card("coder", "writes and reviews code"),
            card("writer", "drafts release notes"),
        ];
        // No keyword of the query is in any card: meaning finds it.
        let found = rank_hybrid(&Topics(true), "a customer wants a refund", &cards, 2)
            .await
            .expect("ranked");
        assert_eq!(found[0].id.as_str(), "accounts");
        assert_eq!(found.len(), 2);
        // A card in both lists leads.
        let found = rank_hybrid(&Topics(true), "release notes", &cards, 3)
            .await
            .expect("ranked");
        assert_eq!(found[0].id.as_str(), "writer");
        // An embedder that is down: the caller falls back to keywords.
        assert!(
            rank_hybrid(&Topics(false), "refund", &cards, 2)
                .await
                .is_none()
        );
    }
}
