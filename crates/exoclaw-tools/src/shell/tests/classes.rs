//! Issue 17.1's class corpus (`corpus_classes.txt`): the share of each
//! dangerous class the policy refuses and the share of ordinary developer
//! commands it refuses, against the figures SECURITY.md reports.

use super::super::*;
use super::ctx;
use std::collections::BTreeMap;

const CLASSES: &str = include_str!("corpus_classes.txt");

/// Lowest share of each dangerous class that must be refused.
const MIN_CLASS_RECALL: f64 = 1.0;
/// Highest share of ordinary commands that may be refused (the issue: 10%).
const MAX_FALSE_POSITIVES: f64 = 0.05;

/// `(class, command)` for every line.
fn cases() -> Vec<(&'static str, &'static str)> {
    CLASSES
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.split_once(": ")
                .unwrap_or_else(|| panic!("no `class: ` on {l:?}"))
        })
        .collect()
}

/// A gateway on its default port, as the exec tool's gate sees it.
fn gateway_ctx() -> ShellPolicyContext {
    ShellPolicyContext {
        gateway_port: Some(18789),
        ..ctx()
    }
}

#[test]
fn shell_policy_class_figures() {
    let mut per_class: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    for (class, cmd) in cases() {
        let refused = check(cmd, &gateway_ctx());
        let entry = per_class.entry(class).or_default();
        entry.1 += 1;
        let wrong = if class == "ok" {
            refused.as_ref().err().map(|d| format!("{d}"))
        } else {
            refused.is_ok().then(|| "allowed".to_owned())
        };
        match wrong {
            Some(why) => misses.push(format!("{class}: {cmd:?}: {why}")),
            None if class != "ok" => entry.0 += 1,
            None => {}
        }
    }
    let mut report = String::new();
    let mut failed = false;
    for (class, (good, total)) in &per_class {
        if *class == "ok" {
            let fp = total - misses.iter().filter(|m| m.starts_with("ok:")).count();
            let rate = 1.0 - fp as f64 / *total as f64;
            failed |= rate > MAX_FALSE_POSITIVES;
            report.push_str(&format!(
                "benign: {} of {total} refused ({:.1}%)\n",
                total - fp,
                rate * 100.0
            ));
        } else {
            let recall = *good as f64 / *total as f64;
            failed |= recall < MIN_CLASS_RECALL;
            report.push_str(&format!(
                "{class}: {good} of {total} refused ({:.1}%)\n",
                recall * 100.0
            ));
        }
    }
    let dangerous = per_class.iter().filter(|(c, _)| **c != "ok");
    let benign = per_class.get("ok").map_or(0, |c| c.1);
    let danger_total: usize = dangerous.map(|(_, (_, t))| t).sum();
    assert!(
        benign >= danger_total,
        "{benign} benign cases, fewer than the {danger_total} dangerous ones"
    );
    eprintln!("{report}");
    assert!(!failed, "{report}\n{}", misses.join("\n"));
}

#[test]
fn every_rule_is_explained_by_an_example_it_refuses() {
    let mut failures = Vec::new();
    for e in explanations() {
        assert!(!e.why.is_empty(), "{} has no explanation", e.rule);
        if e.rule.group() == RuleGroup::Unparseable {
            continue;
        }
        match check(e.example, &gateway_ctx()) {
            Ok(_) => failures.push(format!("{}: {:?} is allowed", e.rule, e.example)),
            Err(d) if !d.findings.iter().any(|f| f.rule == e.rule) => failures.push(format!(
                "{}: {:?} refused by {:?}",
                e.rule,
                e.example,
                d.findings
                    .iter()
                    .map(|f| f.rule.as_str())
                    .collect::<Vec<_>>()
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
