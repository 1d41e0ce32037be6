//! Issue 17.3: the injection classifier, trained reproducibly from the
//! development half of the labelled corpus (and the rule corpora), checked
//! against the model file, and measured per class on the held-out half
//! against the figures SECURITY.md reports (rules alone = before, rules and
//! classifier = after).
//!
//! `UPDATE_MODEL=1 cargo nextest run -p exoclaw-guard --test it classifier`
//! rewrites `src/inject/model.txt`.

use exoclaw_guard::inject::classifier::{BUCKETS, Classifier, WEIGHT_SCALE, features};
use exoclaw_guard::inject::{Scanner, normalize};
use std::collections::BTreeMap;

const DEV: &str = include_str!("../corpus/injection_classes_dev.txt");
const HELD_OUT: &str = include_str!("../corpus/injection_classes_heldout.txt");
const POSITIVE: &str = include_str!("../corpus/injection_positive.txt");
const NEGATIVE: &str = include_str!("../corpus/injection_negative.txt");
const MODEL: &str = include_str!("../../src/inject/model.txt");

/// Held-out figures as reported in SECURITY.md: (class, lowest recall with
/// rules and classifier). The test fails when a figure drops below.
const REPORTED_RECALL: &[(&str, f64)] = &[
    ("authority", 9.0 / 16.0),
    ("config_leak", 10.0 / 16.0),
    ("forged", 12.0 / 16.0),
    ("hidden_data", 10.0 / 16.0),
    ("persona", 10.0 / 16.0),
];
/// Highest share of held-out benign messages flagged (reported; the
/// issue's bound is 5%).
const REPORTED_FALSE_POSITIVES: f64 = 3.0 / 62.0;

fn unescape(s: &str) -> String {
    s.replace("\\n", "\n")
}

fn lines(corpus: &str) -> impl Iterator<Item = &str> {
    corpus
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
}

/// `(class, text)` of a class corpus.
fn labelled(corpus: &str) -> Vec<(&str, String)> {
    lines(corpus)
        .map(|l| {
            let (class, text) = l.split_once(": ").expect("`class: text`");
            (class, unescape(text))
        })
        .collect()
}

/// Training examples: the development half, the rules' attack corpus and
/// their ordinary-text corpus. Never the held-out half.
fn training() -> Vec<(Vec<u32>, bool)> {
    let mut out = Vec::new();
    let mut push = |text: &str, attack: bool| {
        let mut f = Vec::new();
        features(&normalize(text), &mut f);
        out.push((f, attack));
    };
    for (class, text) in labelled(DEV) {
        push(&text, class != "benign");
    }
    for l in lines(POSITIVE) {
        let text = l.rsplit_once("  # ").map_or(l, |(t, _)| t);
        push(&unescape(text), true);
    }
    for l in lines(NEGATIVE) {
        push(&unescape(l), false);
    }
    out
}

/// Logistic regression by SGD in a fixed order: the same data gives the
/// same weights on every machine.
fn fit(data: &[(Vec<u32>, bool)]) -> (Vec<f64>, f64) {
    let mut w = vec![0.0f64; BUCKETS];
    let mut b = 0.0f64;
    let pos = data.iter().filter(|d| d.1).count().max(1) as f64;
    let neg = data.iter().filter(|d| !d.1).count().max(1) as f64;
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut seed: u64 = 17;
    for epoch in 0..60 {
        // Fisher-Yates with a fixed LCG.
        for i in (1..order.len()).rev() {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            order.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let lr = 0.5 / (1.0 + f64::from(epoch) * 0.1);
        for &i in &order {
            let (f, attack) = &data[i];
            let x = 1.0 / (f.len().max(1) as f64).sqrt();
            let z = b + f.iter().map(|&k| w[k as usize]).sum::<f64>() * x;
            let p = 1.0 / (1.0 + (-z).exp());
            let (y, weight) = if *attack {
                (1.0, 1.0)
            } else {
                (0.0, pos / neg)
            };
            let g = (p - y) * weight;
            for &k in f {
                let k = k as usize;
                w[k] -= lr * (g * x + 1e-4 * w[k]);
            }
            b -= lr * g * 0.1;
        }
    }
    (w, b)
}

fn logit(w: &[f64], b: f64, f: &[u32]) -> f64 {
    let x = 1.0 / (f.len().max(1) as f64).sqrt();
    b + f.iter().map(|&k| w[k as usize]).sum::<f64>() * x
}

fn quantize(v: f64) -> f64 {
    (v * WEIGHT_SCALE).round() / WEIGHT_SCALE
}

/// The threshold from out-of-fold scores: train on one half of the
/// training data, score the other, both ways; the threshold lets at most
/// 1% of the out-of-fold ordinary messages through (the rules already
/// spend part of the 5% budget).
fn threshold(data: &[(Vec<u32>, bool)]) -> f64 {
    let mut benign = Vec::new();
    for fold in 0..2 {
        let train: Vec<_> = data
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 != fold)
            .map(|(_, d)| d.clone())
            .collect();
        let (w, b) = fit(&train);
        for (i, (f, attack)) in data.iter().enumerate() {
            if i % 2 == fold && !attack {
                benign.push(logit(&w, b, f));
            }
        }
    }
    benign.sort_by(f64::total_cmp);
    let allowed = benign.len() / 100;
    benign[benign.len() - 1 - allowed] + 0.05
}

fn train() -> Classifier {
    let data = training();
    let (w, b) = fit(&data);
    Classifier {
        bias: quantize(b),
        threshold: quantize(threshold(&data)),
        weights: w.into_iter().map(quantize).collect(),
    }
}

#[test]
fn the_checked_in_model_is_what_training_gives() {
    let text = train().to_text();
    #[expect(clippy::disallowed_methods, reason = "a test's regeneration switch")]
    let update = std::env::var("UPDATE_MODEL").as_deref() == Ok("1");
    if update {
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/src/inject/model.txt"),
            &text,
        )
        .expect("write the model");
        return;
    }
    assert!(
        text == MODEL,
        "src/inject/model.txt is stale: run `UPDATE_MODEL=1 cargo nextest run -p exoclaw-guard --test it classifier` and commit it"
    );
    assert_eq!(
        Classifier::from_text(MODEL).expect("parses").to_text(),
        MODEL
    );
}

#[test]
fn held_out_figures_per_class() {
    let scanner = Scanner::new();
    // class -> (total, caught by rules, caught by rules and classifier)
    let mut figures: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for (class, text) in labelled(HELD_OUT) {
        let all = scanner.scan(&text);
        let rules = all.iter().any(|h| h.rule != "inject.classifier");
        let e = figures.entry(class).or_default();
        e.0 += 1;
        e.1 += usize::from(rules);
        e.2 += usize::from(!all.is_empty());
    }
    let mut report = String::from("class: held-out, rules alone (before) -> rules + classifier\n");
    let mut failures = Vec::new();
    for (class, (n, before, after)) in &figures {
        let pct = |k: &usize| 100.0 * *k as f64 / *n as f64;
        report.push_str(&format!(
            "{class}: {n} messages, {before} ({:.0}%) -> {after} ({:.0}%)\n",
            pct(before),
            pct(after)
        ));
        let rate = *after as f64 / *n as f64;
        if *class == "benign" {
            if rate > REPORTED_FALSE_POSITIVES + 1e-9 || rate > 0.05 {
                failures.push(format!("benign flagged {rate:.3}"));
            }
        } else {
            let reported = REPORTED_RECALL
                .iter()
                .find(|(c, _)| c == class)
                .map(|(_, r)| *r)
                .unwrap_or_else(|| panic!("no reported figure for {class}"));
            if rate + 1e-9 < reported {
                failures.push(format!("{class}: recall {rate:.3} < reported {reported}"));
            }
        }
    }
    eprintln!("{report}");
    assert!(failures.is_empty(), "{report}{}", failures.join("\n"));
}

#[test]
fn the_development_half_is_separate_from_the_held_out_half() {
    let dev: Vec<String> = labelled(DEV).into_iter().map(|(_, t)| t).collect();
    for (_, text) in labelled(HELD_OUT) {
        assert!(!dev.contains(&text), "in both halves: {text:?}");
    }
    assert!(labelled(HELD_OUT).len() >= 140);
}
