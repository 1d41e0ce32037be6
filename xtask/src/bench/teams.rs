//! `cargo xtask bench teams`: a team of one lead and five members works a board of 200 tasks
//! (issue 13) through the release binary and the fake provider ([`FakeLlm`], whose team models
//! call `team_tasks` as an agent would: the lead creates a task a turn; a member lists the
//! pending tasks, claims one, completes it).
//!
//! The lead's 200 turns fill the board; then the five members work it at once, each in a loop
//! of turns (each a new session), until no task is pending. The bench then reads the board over
//! HTTP and checks that every task is `done` exactly once (200 done, 200 completions asked for,
//! no task left pending or in progress). It reports the wall time of both phases, the tool calls
//! per task (claims lost to another member included) and the team store operations per task,
//! counted from those calls: each `team_tasks` call with its team named reads the team once and
//! makes one board operation (2 store operations), and each turn's prompt reads the agent's
//! teams and takes its unread mail (2 more).

use std::thread;
use std::time::{Duration, Instant};

use super::Context;
use super::fake_llm::{FakeLlm, TEAM, TEAM_LEAD_MODEL, TEAM_MEMBER_MODEL};
use super::gateway::Gateway;
use super::http::{Conn, post_json};
use crate::error::{Context as _, Result, bail};

/// Tasks on the board.
const TASKS: usize = 200;
/// Members besides the lead.
const MEMBERS: usize = 5;
/// Turns one member may take before the bench gives up (a task a turn, plus lost claims).
const MAX_TURNS_PER_MEMBER: usize = TASKS * 4;

pub fn run(ctx: &Context) -> Result<String> {
    let fake = FakeLlm::start()?;
    let mut gateway = super::fake_llm::start_gateway(ctx, &fake, "teams")?;
    let token = ctx.binary.token().to_owned();
    setup(&gateway, &token)?;

    let began = Instant::now();
    let mut conn = Conn::new(gateway.addr(), Duration::from_secs(60));
    for i in 0..TASKS {
        let r = conn
            .send(&turn(&gateway, &token, "bench-lead", &format!("lead-{i}")))
            .context("a lead turn")?;
        if r.status != 200 {
            bail!(
                "a lead turn: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
    }
    let filled = began.elapsed();
    let (pending, _, _) = board(&gateway, &token)?;
    if pending != TASKS {
        bail!("the lead's {TASKS} turns left {pending} pending tasks");
    }
    eprintln!("xtask: teams: {TASKS} tasks on the board in {filled:?}; the members start");

    let began = Instant::now();
    let turns: Vec<Result<usize>> = thread::scope(|s| {
        let handles: Vec<_> = (0..MEMBERS)
            .map(|m| {
                let (gateway, token) = (&gateway, token.as_str());
                s.spawn(move || work(gateway, token, m))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("a member thread panicked"))
            })
            .collect()
    });
    let worked = began.elapsed();
    let mut member_turns = 0;
    for t in turns {
        member_turns += t?;
    }
    if !gateway.is_running() {
        bail!("the gateway died{}", gateway.log_tail());
    }
    let (pending, in_progress, done) = board(&gateway, &token)?;
    let [creates, lists, claims, completes] = fake.team_calls();
    gateway.stop()?;
    if done != TASKS || pending != 0 || in_progress != 0 || completes != TASKS as u64 {
        bail!(
            "not every task done exactly once: {done} done, {pending} pending, {in_progress} in \
             progress, {completes} completions asked for"
        );
    }
    let calls = creates + lists + claims + completes;
    let turns_all = TASKS + member_turns;
    let store_ops = 2 * calls + 2 * turns_all as u64;
    let per = |n: u64| n as f64 / TASKS as f64;
    let mut out = String::new();
    out.push_str("### Teams\n\n");
    out.push_str(&format!(
        "Binary `{}`; fake provider on loopback; SQLite; a team of 1 lead and {MEMBERS} \
         members; each turn a new session.\n\n",
        ctx.binary.path().display()
    ));
    out.push_str(&format!(
        "The lead filled a board of {TASKS} tasks in {:.2} s ({TASKS} turns, one `create` \
         each); the {MEMBERS} members worked it in **{:.2} s** ({member_turns} turns, {:.1} \
         tasks/s). Every task done exactly once: {done} done, {completes} completions, none \
         pending or in progress.\n\n",
        filled.as_secs_f64(),
        worked.as_secs_f64(),
        TASKS as f64 / worked.as_secs_f64(),
    ));
    out.push_str("| per task | count |\n|---|---:|\n");
    for (label, n) in [
        ("`team_tasks` calls (create, list, claim, complete)", calls),
        ("lists", lists),
        ("claims (lost ones included)", claims),
        (
            "claims lost to another member",
            claims.saturating_sub(TASKS as u64),
        ),
        ("turns (lead and members)", turns_all as u64),
        (
            "team store operations (counted as in the module docs)",
            store_ops,
        ),
    ] {
        out.push_str(&format!("| {label} | {:.2} |\n", per(n)));
    }
    Ok(out)
}

/// One member's loop: turns until a turn finds nothing pending (and the board agrees).
fn work(gateway: &Gateway, token: &str, member: usize) -> Result<usize> {
    let agent = format!("bench-m{member}");
    let mut conn = Conn::new(gateway.addr(), Duration::from_secs(60));
    for i in 0..MAX_TURNS_PER_MEMBER {
        let r = conn
            .send(&turn(gateway, token, &agent, &format!("{agent}-{i}")))
            .context("a member turn")?;
        if r.status != 200 {
            bail!(
                "a member turn: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        if i % 8 == 7 || i + 1 == MAX_TURNS_PER_MEMBER {
            let (pending, _, _) = board(gateway, token)?;
            if pending == 0 {
                return Ok(i + 1);
            }
        }
    }
    bail!("{agent} took {MAX_TURNS_PER_MEMBER} turns and tasks are still pending")
}

/// The lead and the members (each on its scripted model) and the team.
fn setup(gateway: &Gateway, token: &str) -> Result<()> {
    let mut conn = Conn::new(gateway.addr(), Duration::from_secs(10));
    let mut post = |path: &str, body: &str| {
        super::fake_llm::post_created(&mut conn, gateway, token, path, body)
    };
    post(
        "/v1/agents",
        &format!(r#"{{"id":"bench-lead","config":{{"model":"{TEAM_LEAD_MODEL}"}}}}"#),
    )?;
    let mut members = Vec::new();
    for m in 0..MEMBERS {
        post(
            "/v1/agents",
            &format!(r#"{{"id":"bench-m{m}","config":{{"model":"{TEAM_MEMBER_MODEL}{m}"}}}}"#),
        )?;
        members.push(format!(r#""bench-m{m}""#));
    }
    post(
        "/v1/teams",
        &format!(
            r#"{{"id":"{TEAM}","lead":"bench-lead","members":[{}]}}"#,
            members.join(",")
        ),
    )
}

fn turn(gateway: &Gateway, token: &str, agent: &str, user: &str) -> Vec<u8> {
    let body = format!(
        r#"{{"model":"{agent}","messages":[{{"role":"user","content":"work"}}],"user":"{user}"}}"#
    );
    post_json(gateway.addr(), "/v1/chat/completions", Some(token), &body)
}

/// Tasks pending, in progress and done on the board, counted textually (xtask has no JSON
/// parser; a board of 200 fits one page).
fn board(gateway: &Gateway, token: &str) -> Result<(usize, usize, usize)> {
    let mut conn = Conn::new(gateway.addr(), Duration::from_secs(30));
    let request = format!(
        "GET /v1/teams/{TEAM}/tasks?limit=1000 HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\r\n",
        gateway.addr()
    );
    let r = conn.send(request.as_bytes()).context("GET the board")?;
    if r.status != 200 {
        bail!("GET the board: {}", r.status);
    }
    let body = String::from_utf8_lossy(&r.body);
    let count = |status: &str| body.matches(&format!(r#""status":"{status}""#)).count();
    Ok((count("pending"), count("in_progress"), count("done")))
}
