//! What an agent in a team is told at the start of each of its turns: its
//! teams (whom it leads, whom it works with) and its unread team messages,
//! taken from the mailbox (so they are read from then on) and shown inside
//! untrusted markers, as other agents' words. Bounded: at most
//! [`MAX_TEAMS`] teams and [`MAX_MESSAGES`] messages of each; the rest
//! stays unread for `team_message` `read` or the next turn.

use exoclaw_core::store::Store;
use exoclaw_core::store::teams::Team;
use exoclaw_core::{AgentId, TenantId};

/// Most teams described in one prompt.
pub const MAX_TEAMS: usize = 10;
/// Most unread messages of one team shown at one turn.
pub const MAX_MESSAGES: u32 = 20;

fn describe(team: &Team, agent: &AgentId) -> String {
    let members: Vec<&str> = team.members.iter().map(AgentId::as_str).collect();
    let role = if team.lead == *agent {
        "you lead it".to_owned()
    } else {
        format!("led by {}", team.lead)
    };
    format!(
        "- team {} ({}; {role}; members: {})",
        team.id,
        team.name,
        if members.is_empty() {
            "none".to_owned()
        } else {
            members.join(", ")
        }
    )
}

/// The prompt section for `agent` (empty when it is in none of the
/// tenant's `teams`). Store failures are logged and leave the mail out: the
/// turn still runs.
pub async fn section(
    store: &dyn Store,
    tenant: &TenantId,
    agent: &AgentId,
    teams: &[Team],
) -> String {
    let teams: Vec<&Team> = teams.iter().filter(|t| t.includes(agent)).collect();
    if teams.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n\n## Your teams\nWork with your team through the `team_tasks` board and the \
         `team_message` mailbox.\n",
    );
    let mut inbox = Vec::new();
    for team in teams.into_iter().take(MAX_TEAMS) {
        out.push_str(&describe(team, agent));
        out.push('\n');
        match store
            .take_unread(tenant, &team.id, agent, MAX_MESSAGES)
            .await
        {
            Ok(mails) if !mails.is_empty() => {
                let more = store
                    .count_unread(tenant, &team.id, agent)
                    .await
                    .unwrap_or(0);
                let mut block = format!(
                    "Team {}: {} message(s){}:\n{}",
                    team.id,
                    mails.len(),
                    if more > 0 {
                        format!(" ({more} more unread: `team_message` read)")
                    } else {
                        String::new()
                    },
                    exoclaw_tools::team::mail_text(&mails)
                );
                block.push('\n');
                inbox.push(block);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, team = %team.id, "cannot read a team mailbox");
            }
        }
    }
    if !inbox.is_empty() {
        out.push_str("\n## Unread team messages\n");
        for block in inbox {
            out.push_str(&block);
        }
    }
    out
}
