//! The OpenAPI document: the binary serves docs/openapi.json (only to a
//! credential; the unit test `docs_openapi_json_is_what_the_types_generate`
//! keeps the file equal to what the types generate), and schemathesis, from
//! the test virtualenv, finds no answer of the running binary that breaks it.

use crate::chat::setup_with;
use crate::support::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_binary_serves_docs_openapi_json_to_credentials() {
    let s = setup_with("{}", &[]);
    let anonymous = request(s.gw.addr, "GET", "/v1/openapi.json", None, None);
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let r = request(s.gw.addr, "GET", "/v1/openapi.json", Some(TOKEN), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.json()["openapi"], "3.1.0");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    assert!(std::fs::read_to_string(path).unwrap() == r.body);
}

/// At most this many generated requests per operation and phase: enough to
/// walk every parameter's edges (the coverage phase) and fuzz a little, in
/// about 40 s on two cores (200 take 75 s and found nothing more).
const EXAMPLES_PER_OPERATION: &str = "100";

/// Every operation of the served document, with the gateway token, by
/// schemathesis' examples, coverage (every parameter's edge and invalid
/// values), fuzzing and stateful (inferred links) phases. Checks: no 5xx,
/// every status, content type, header and body as documented, invalid
/// input refused with 4xx, authentication enforced (`ignored_auth`), a
/// wrong method answered 405 with `Allow`. Not checked: that valid input
/// always succeeds (`positive_data_acceptance`: ids that do not exist are
/// valid input and rightly 404). The gateway is a throwaway: its data dir
/// is a temp dir, `rate_limit_rpm` is off, and the tools that reach the
/// network or run commands are denied (the file tools write into its
/// workspace).
#[test]
fn schemathesis_finds_no_answer_that_breaks_the_document() {
    let Some(py) = crate::openai_sdk::python() else {
        return;
    };
    let st = PathBuf::from(&py).with_file_name("st");
    if !st.exists() {
        panic!(
            "{} is missing: run `cargo xtask test` (it installs schemathesis)",
            st.display()
        );
    }
    let s = setup_with(
        r#"{"agents": {"defaults": {"tools": {"deny": ["group:runtime", "group:web"]}}}}"#,
        &[],
    );
    let reports = tempfile::tempdir().unwrap();
    // Its output goes to a file: a pipe nobody reads while it runs fills up.
    let log_path = reports.path().join("output.txt");
    let log = std::fs::File::create(&log_path).unwrap();
    let started = Instant::now();
    let mut child = Command::new(&st)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", reports.path())
        .env("NO_COLOR", "1")
        .current_dir(reports.path())
        .args([
            "run",
            &format!("http://{}/v1/openapi.json", s.gw.addr),
            "--header",
            &format!("Authorization: Bearer {TOKEN}"),
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            EXAMPLES_PER_OPERATION,
            "--seed",
            "20261205",
            // One worker: CPython's parser is not safe to drive from two
            // threads at once (hypothesis describes strategies with it).
            "--workers",
            "1",
            "--request-timeout",
            "20",
            "--no-shrink",
            "--report-dir",
        ])
        .arg(reports.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("run schemathesis");
    let limit = Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("schemathesis ran over {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let report = std::fs::read_to_string(&log_path).unwrap_or_default();
    let cases = report
        .lines()
        .skip_while(|l| !l.starts_with("Test cases"))
        .nth(1)
        .unwrap_or_default()
        .trim();
    eprintln!(
        "schemathesis took {:.0} s: {cases}",
        started.elapsed().as_secs_f64()
    );
    assert!(status.success(), "schemathesis failed:\n{report}");
    // It tested every operation of the document.
    let selected = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Selected: "))
        .and_then(|n| n.split_once('/'))
        .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned()));
    let Some((tested, total)) = selected else {
        panic!("no `Selected:` line:\n{report}");
    };
    assert_eq!(tested, total, "{report}");
    assert!(total.parse::<u32>().unwrap() >= 45, "{report}");
}
