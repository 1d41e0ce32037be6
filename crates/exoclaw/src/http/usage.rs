//! `/v1/usage` and `/v1/budgets`: what the usage ledger holds, summed per
//! UTC day and per model, agent or user, and every budget limit that
//! applies to the tenant with what it has used (the ledger since the
//! window's start plus live reservations: the sum a call is checked
//! against). Members see their own usage; owners and admins the tenant's.

use super::error::ApiError;
use super::extract::Query;
use super::state::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use exoclaw_core::trace::{BudgetUnit, DAY_MS, UsageBucket, UsageGroup, UsageQuery};
use exoclaw_gateway::access::Principal;
use exoclaw_providers::calendar;
use exoclaw_providers::{Budgets, SeenKeys};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// The longest report, in days.
pub const MAX_DAYS: u32 = 366;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// Days back from today (UTC), today included: 1 to 366, default 30.
    pub days: Option<u32>,
    /// `model` (the default), `agent` or `user`.
    pub by: Option<String>,
}

/// One UTC day's calls of one key.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UsageDay {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    #[serde(flatten)]
    pub usage: UsageTotal,
}

/// One key's calls (over a day, or the whole range), summed.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct UsageTotal {
    /// The model, agent or user; `null` for calls without an agent or user.
    pub key: Option<String>,
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_micros: i64,
}

impl UsageTotal {
    /// Adds the bucket's calls (its key is not looked at).
    fn add(&mut self, b: &UsageBucket) {
        self.calls += b.calls;
        self.input_tokens += b.input_tokens;
        self.output_tokens += b.output_tokens;
        self.cache_read_tokens += b.cache_read_tokens;
        self.cache_write_tokens += b.cache_write_tokens;
        self.cost_micros += b.cost_micros;
    }

    fn of(b: &UsageBucket) -> Self {
        let mut t = Self {
            key: b.key.clone(),
            ..Self::default()
        };
        t.add(b);
        t
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UsageReport {
    /// The first day (`YYYY-MM-DD`, UTC).
    pub from: String,
    /// The last day, today.
    pub to: String,
    /// `model`, `agent` or `user`.
    pub by: String,
    /// `tenant`, or `own` when only the caller's calls are counted.
    pub scope: String,
    /// By day, then key; days without calls are left out.
    pub days: Vec<UsageDay>,
    /// Per key over the range, costliest first.
    pub totals: Vec<UsageTotal>,
}

fn group(by: Option<&str>) -> Result<(UsageGroup, &'static str), ApiError> {
    match by.unwrap_or("model") {
        "model" => Ok((UsageGroup::Model, "model")),
        "agent" => Ok((UsageGroup::Agent, "agent")),
        "user" => Ok((UsageGroup::User, "user")),
        other => Err(ApiError::invalid(format!(
            "by: {other:?} is not one of model, agent, user"
        ))),
    }
}

/// The range of the last `days` days, today included: (first day's start,
/// tomorrow's start).
fn range(days: Option<u32>, now: i64) -> Result<(i64, i64), ApiError> {
    let days = days.unwrap_or(30);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::invalid(format!(
            "days: {days} is not between 1 and {MAX_DAYS}"
        )));
    }
    let until = calendar::next_day_start(now);
    Ok((until - i64::from(days) * DAY_MS, until))
}

fn totals(buckets: &[UsageBucket]) -> Vec<UsageTotal> {
    let mut by_key: BTreeMap<Option<&str>, UsageTotal> = BTreeMap::new();
    for b in buckets {
        by_key
            .entry(b.key.as_deref())
            .and_modify(|t| t.add(b))
            .or_insert_with(|| UsageTotal::of(b));
    }
    let mut out: Vec<UsageTotal> = by_key.into_values().collect();
    out.sort_by(|a, b| {
        b.cost_micros
            .cmp(&a.cost_micros)
            .then(b.input_tokens.cmp(&a.input_tokens))
            .then(a.key.cmp(&b.key))
    });
    out
}

/// Usage per UTC day and key: the caller's own calls, or the tenant's for
/// owners and admins.
#[utoipa::path(get, path = "/v1/usage", tag = "usage", params(UsageParams),
    responses(
        (status = 200, description = "The usage report", body = UsageReport),
        (status = 400, description = "A bad `days` or `by`", body = super::error::ErrorBody),
    ))]
pub async fn report(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<UsageParams>,
) -> Result<Json<UsageReport>, ApiError> {
    let (by, by_name) = group(q.by.as_deref())?;
    let now = calendar::now_millis();
    let (since, until) = range(q.days, now)?;
    let own = !who.sees_all_users();
    let query = UsageQuery {
        since,
        until,
        by,
        user: own.then(|| who.user.clone()),
    };
    let buckets = state
        .runtime
        .usage_report()
        .usage_by_day(&who.tenant, &query)
        .await?;
    Ok(Json(UsageReport {
        from: calendar::format_date(since),
        to: calendar::format_date(until - DAY_MS),
        by: by_name.to_owned(),
        scope: if own { "own" } else { "tenant" }.to_owned(),
        totals: totals(&buckets),
        days: buckets
            .iter()
            .map(|b| UsageDay {
                date: calendar::format_date(b.day),
                usage: UsageTotal::of(b),
            })
            .collect(),
    }))
}

/// One limit and what it has used.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BudgetStanding {
    /// `model gpt-4o`, `agent default`, `tenant acme (its own settings)`.
    pub scope: String,
    /// Where the limit is set (`budgets.models.gpt-4o`).
    pub path: String,
    /// `daily` (UTC day) or `monthly` (calendar month, UTC).
    pub window: String,
    /// `usd` (amounts in micro-dollars) or `tokens`.
    pub unit: String,
    pub limit: i64,
    pub used: i64,
    /// When the window starts again.
    pub resets: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BudgetReport {
    /// Every limit that applies to the tenant; empty when none is set.
    pub budgets: Vec<BudgetStanding>,
}

/// Every budget limit that applies to the caller's tenant, with what it
/// has used now (`"*"` entries once per key used this month).
#[utoipa::path(get, path = "/v1/budgets", tag = "usage",
    responses((status = 200, description = "The limits and their use", body = BudgetReport)))]
pub async fn budgets(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<BudgetReport>, ApiError> {
    let runtime = &state.runtime;
    // Validated at start-up; a configuration that no longer validates has
    // no limits to show.
    let configured =
        Budgets::from_config(&runtime.settings.config.budgets, "budgets").unwrap_or_default();
    let own = (runtime.tenant_limits.budgets())(&who.tenant);
    let now = calendar::now_millis();
    let month = calendar::month_start(now);
    let report = runtime.usage_report();
    let mut seen = SeenKeys::default();
    for (by, keys) in [
        (UsageGroup::Model, &mut seen.models),
        (UsageGroup::Agent, &mut seen.agents),
        (UsageGroup::User, &mut seen.users),
    ] {
        let q = UsageQuery {
            since: month,
            until: calendar::next_day_start(now),
            by,
            user: None,
        };
        keys.extend(
            report
                .usage_by_day(&who.tenant, &q)
                .await?
                .into_iter()
                .filter_map(|b| b.key),
        );
    }
    let mut out = Vec::new();
    for line in configured.lines(&who.tenant, own.as_ref(), &seen, now) {
        let used = report.budget_used(&who.tenant, &line.store, now).await?;
        out.push(BudgetStanding {
            scope: line.label,
            path: line.path,
            window: line.window.to_owned(),
            unit: match line.store.unit {
                BudgetUnit::Micros => "usd",
                BudgetUnit::Tokens => "tokens",
            }
            .to_owned(),
            limit: line.store.limit,
            used,
            resets: line.reset,
        });
    }
    Ok(Json(BudgetReport { budgets: out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_ends_tomorrow_and_counts_today() {
        let now = 1_764_979_200_000 + 3_600_000; // 2025-12-06 01:00 UTC
        let (since, until) = range(Some(1), now).unwrap();
        assert_eq!(calendar::format_date(since), "2025-12-06");
        assert_eq!(until - since, DAY_MS);
        let (since, _) = range(None, now).unwrap();
        assert_eq!(calendar::format_date(since), "2025-11-07");
        assert!(range(Some(0), now).is_err());
        assert!(range(Some(MAX_DAYS + 1), now).is_err());
    }

    #[test]
    fn groups_are_named() {
        assert_eq!(group(None).unwrap().1, "model");
        assert_eq!(group(Some("user")).unwrap().0, UsageGroup::User);
        assert!(group(Some("tenant")).is_err());
    }
}
