//! Usage and budgets (`GET /v1/usage`, `GET /v1/budgets`): a chart of each
//! day's cost (or tokens, when no call had a price) stacked by model, agent
//! or user, the totals per key, and every budget limit against what it has
//! used. The chart is SVG geometry coloured by CSS classes, so the CSP needs
//! no inline style; the totals table says in text what the chart draws.

use super::super::super::extract::Query;
use super::super::super::state::AppState;
use super::super::super::usage::{self, BudgetStanding, UsageParams, UsageReport};
use super::super::{Shell, UiError, render};
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Html;
use exoclaw_gateway::access::Permission;
use std::collections::HashMap;

/// Keys drawn in their own colour; the rest are stacked as "other".
const SERIES: usize = 5;
/// The chart's drawing height in SVG units.
const HEIGHT: f64 = 100.0;
/// Each day's slot width in SVG units (the bar takes 80 % of it).
const SLOT: f64 = 10.0;

/// Micro-dollars as dollars.
fn dollars(micros: i64) -> String {
    if micros == 0 {
        return "$0".to_owned();
    }
    if micros.abs() >= 10_000 {
        return format!("${:.2}", micros as f64 / 1e6);
    }
    format!("${:.6}", micros as f64 / 1e6)
}

/// One series of the legend.
struct Series {
    label: String,
    class: String,
}

/// One piece of a day's bar.
struct Piece {
    class: String,
    x: String,
    y: String,
    width: String,
    height: String,
    /// Shown on hover and read by screen readers.
    title: String,
}

struct Total {
    key: String,
    calls: i64,
    tokens: String,
    cache: String,
    cost: String,
}

struct Budget {
    scope: String,
    path: String,
    window: String,
    used: String,
    limit: String,
    /// The meter's numbers (plain integers).
    used_raw: i64,
    limit_raw: i64,
    /// Used share of the limit, `87 %`.
    share: String,
    resets: String,
    over: bool,
}

#[derive(Template)]
#[template(path = "ui/usage.html")]
struct Page {
    shell: Shell,
    report: UsageReport,
    days: u32,
    /// What the bars measure: `cost` or `tokens`.
    measure: &'static str,
    /// The tallest day, as the chart's scale says it.
    peak: String,
    width: String,
    series: Vec<Series>,
    pieces: Vec<Piece>,
    totals: Vec<Total>,
    /// `None`: the viewer may not read budgets.
    budgets: Option<Vec<Budget>>,
}

fn key_label(key: Option<&str>) -> String {
    key.map_or_else(|| "(none)".to_owned(), ToOwned::to_owned)
}

/// The bars of `report` over `days` days: one slot per day, the top
/// [`SERIES`] keys in their colours, the rest as "other".
fn chart(report: &UsageReport, days: u32, tokens: bool) -> (Vec<Series>, Vec<Piece>, f64, String) {
    let value = |cost: i64, input: i64, output: i64| {
        if tokens {
            (input + output) as f64
        } else {
            cost as f64
        }
    };
    let mut class_of: HashMap<Option<&str>, usize> = HashMap::new();
    let mut series = Vec::new();
    for t in report.totals.iter().take(SERIES) {
        class_of.insert(t.key.as_deref(), series.len());
        series.push(Series {
            label: key_label(t.key.as_deref()),
            class: format!("s{}", series.len()),
        });
    }
    if report.totals.len() > SERIES {
        series.push(Series {
            label: "other".to_owned(),
            class: format!("s{SERIES}"),
        });
    }
    let first = exoclaw_providers::calendar::day_start(exoclaw_providers::calendar::now_millis())
        - i64::from(days.saturating_sub(1)) * exoclaw_core::trace::DAY_MS;
    // Per day slot: (series index, value), in the legend's order.
    let mut stacks: Vec<Vec<(usize, f64, String)>> = vec![Vec::new(); days as usize];
    for d in &report.days {
        let Some(at) = parse_date(&d.date) else {
            continue;
        };
        let slot = (at - first).div_euclid(exoclaw_core::trace::DAY_MS);
        let Some(stack) = usize::try_from(slot).ok().and_then(|s| stacks.get_mut(s)) else {
            continue;
        };
        let u = &d.usage;
        let idx = class_of.get(&u.key.as_deref()).copied().unwrap_or(SERIES);
        let v = value(u.cost_micros, u.input_tokens, u.output_tokens);
        let what = if tokens {
            format!("{} tokens", u.input_tokens + u.output_tokens)
        } else {
            dollars(u.cost_micros)
        };
        let title = format!("{} {}: {what}", d.date, key_label(u.key.as_deref()));
        match stack.iter_mut().find(|(i, _, _)| *i == idx) {
            Some(e) => {
                e.1 += v;
                e.2 = format!("{}; {title}", e.2);
            }
            None => stack.push((idx, v, title)),
        }
    }
    let peak = stacks
        .iter()
        .map(|s| s.iter().map(|(_, v, _)| v).sum::<f64>())
        .fold(0.0, f64::max);
    let mut pieces = Vec::new();
    if peak > 0.0 {
        for (slot, stack) in stacks.iter_mut().enumerate() {
            stack.sort_by_key(|(i, _, _)| *i);
            let mut top = HEIGHT;
            for (idx, v, title) in stack.iter() {
                let h = v / peak * HEIGHT;
                top -= h;
                pieces.push(Piece {
                    class: format!("s{idx}"),
                    x: format!("{:.1}", slot as f64 * SLOT + SLOT * 0.1),
                    y: format!("{top:.2}"),
                    width: format!("{:.1}", SLOT * 0.8),
                    height: format!("{h:.2}"),
                    title: title.clone(),
                });
            }
        }
    }
    let width = format!("{:.0}", f64::from(days) * SLOT);
    (series, pieces, peak, width)
}

/// `YYYY-MM-DD` as the day's start in Unix milliseconds.
fn parse_date(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    Some(exoclaw_providers::calendar::days_from_civil(y, m, d) * exoclaw_core::trace::DAY_MS)
}

fn budget_row(b: BudgetStanding) -> Budget {
    let amount = |n: i64| {
        if b.unit == "usd" {
            dollars(n)
        } else {
            format!("{n} tokens")
        }
    };
    let share = if b.limit > 0 {
        format!("{:.0} %", b.used as f64 / b.limit as f64 * 100.0)
    } else {
        "-".to_owned()
    };
    Budget {
        used: amount(b.used),
        limit: amount(b.limit),
        over: b.used >= b.limit,
        used_raw: b.used.max(0),
        limit_raw: b.limit.max(1),
        share,
        scope: b.scope,
        path: b.path,
        window: b.window,
        resets: b.resets,
    }
}

pub async fn page(
    shell: Shell,
    state: State<AppState>,
    q: Query<UsageParams>,
) -> Result<Html<String>, UiError> {
    let days = q.0.days.unwrap_or(30);
    let report = usage::report(state.clone(), Extension(shell.who.clone()), q)
        .await?
        .0;
    let priced = report.totals.iter().any(|t| t.cost_micros > 0);
    let (series, pieces, peak, width) = chart(&report, days, !priced);
    let budgets = if shell.who.can(Permission::MetricsRead) {
        let b = usage::budgets(state, Extension(shell.who.clone())).await?.0;
        Some(b.budgets.into_iter().map(budget_row).collect())
    } else {
        None
    };
    let totals = report
        .totals
        .iter()
        .map(|t| Total {
            key: key_label(t.key.as_deref()),
            calls: t.calls,
            tokens: format!("{} / {}", t.input_tokens, t.output_tokens),
            cache: format!("{} / {}", t.cache_read_tokens, t.cache_write_tokens),
            cost: dollars(t.cost_micros),
        })
        .collect();
    render(&Page {
        peak: if priced {
            dollars(peak as i64)
        } else {
            format!("{peak:.0} tokens")
        },
        measure: if priced { "cost" } else { "tokens" },
        shell,
        report,
        days,
        width,
        series,
        pieces,
        totals,
        budgets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_to_day_starts() {
        assert_eq!(parse_date("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_date("2026-12-06").map(|d| d % 86_400_000), Some(0));
        assert_eq!(parse_date("soon"), None);
    }

    #[test]
    fn dollars_keep_small_amounts_readable() {
        assert_eq!(dollars(0), "$0");
        assert_eq!(dollars(1_500_000), "$1.50");
        assert_eq!(dollars(42), "$0.000042");
    }
}
