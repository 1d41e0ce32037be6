//! Agent teams against the real binary and the fake provider, on SQLite
//! and PostgreSQL: a lead puts tasks on the board with the `team_tasks`
//! tool, members claim and complete them, a blocked task is unblocked when
//! what it waited for is done; the mailbox (`team_message`) reaches a
//! member at its next turn, once; every refusal is a tool error with a
//! stable code and writes nothing; an agent outside the team gains no
//! access. `/v1/teams` and its board over HTTP and the WebSocket; and the
//! claim race: 50 concurrent claimers through two gateway processes on one
//! PostgreSQL, exactly one owner per task, every round.

use crate::postgres::fresh_database;
use crate::support::*;
use exoclaw_core::provider::ToolCall;
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::{Value, json};

/// A gateway with agents `lead`, `alice`, `bob` (the team `core`) and
/// `outsider`, each on its own model (`<id>-m`).
struct Crew {
    fake: FakeProvider,
    gw: Gateway,
    home: TestHome,
    env: Vec<(String, String)>,
    _cfg: tempfile::TempDir,
}

fn crew(dsn: Option<&str>) -> Crew {
    let (fake, base) = FakeProvider::start_in_thread().unwrap();
    let home = TestHome::new();
    let cfg = tempfile::tempdir().unwrap();
    let path = cfg.path().join("config.json");
    std::fs::write(&path, json!({"gateway": {"rate_limit_rpm": 0}}).to_string()).unwrap();
    let env = fake_provider_env(base, &path, dsn);
    let pairs = env_pairs(&env);
    let gw = Gateway::start(&home.path, &pairs);
    let c = Crew {
        fake,
        gw,
        home,
        env,
        _cfg: cfg,
    };
    for id in ["lead", "alice", "bob", "outsider"] {
        let r = c.send(
            "POST",
            "/v1/agents",
            Some(json!({"id": id, "config": {"model": format!("{id}-m")}})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = c.send(
        "POST",
        "/v1/teams",
        Some(json!({"id": "core", "name": "Core", "lead": "lead", "members": ["alice", "bob"]})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    c
}

impl Crew {
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Response {
        request(
            self.gw.addr,
            method,
            path,
            Some(TOKEN),
            body.map(|b| b.to_string()).as_deref(),
        )
    }

    /// One turn of `agent`; `script` is what its model answers, in order
    /// (tool calls, then a closing text).
    fn turn(&self, agent: &str, script: Vec<Reply>) {
        let model = format!("{agent}-m");
        for r in script {
            self.fake.push_for(&model, r);
        }
        self.fake.push_for(&model, Reply::text("ok"));
        let r = self.send(
            "POST",
            "/v1/chat/completions",
            Some(json!({"model": agent, "messages": [{"role": "user", "content": "work"}]})),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }

    fn requests(&self, agent: &str) -> Vec<Value> {
        let model = format!("{agent}-m");
        self.fake
            .requests()
            .into_iter()
            .map(|r| r.body)
            .filter(|b| b["model"] == model.as_str())
            .collect()
    }

    /// The tool results `agent` read in its last turn, in order.
    fn results(&self, agent: &str) -> Vec<String> {
        let last = self.requests(agent).pop().unwrap();
        let messages = last["messages"].as_array().unwrap();
        let start = messages
            .iter()
            .rposition(|m| m["role"] == "user")
            .unwrap_or(0);
        messages[start..]
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn board(&self) -> Vec<Value> {
        let r = self.send("GET", "/v1/teams/core/tasks", None);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["tasks"].as_array().unwrap().clone()
    }

    fn task_id(&self, title: &str) -> String {
        self.board()
            .iter()
            .find(|t| t["title"] == title)
            .unwrap_or_else(|| panic!("no task {title}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn status(&self, title: &str) -> Value {
        self.board()
            .into_iter()
            .find(|t| t["title"] == title)
            .unwrap()
    }
}

fn tasks(args: Value) -> Reply {
    tool("team_tasks", args)
}

fn tool(name: &str, args: Value) -> Reply {
    Reply::tool_calls([ToolCall {
        id: "c1".into(),
        name: name.into(),
        arguments: args,
    }])
}

fn a_team_works_its_board(dsn: Option<&str>) {
    let c = crew(dsn);
    // The lead splits the work: `build` waits for `design`.
    c.turn(
        "lead",
        vec![tasks(
            json!({"action": "create", "title": "design", "description": "draw the plan"}),
        )],
    );
    assert!(
        c.results("lead")[0].contains("Created task"),
        "{:?}",
        c.results("lead")
    );
    let design = c.task_id("design");
    c.turn(
        "lead",
        vec![tasks(
            json!({"action": "create", "title": "build", "blocked_by": [design]}),
        )],
    );
    assert_eq!(c.status("build")["status"], "blocked");
    assert_eq!(c.status("design")["status"], "pending");
    let build = c.task_id("build");

    // A blocked task cannot be claimed; alice claims and completes design.
    c.turn(
        "alice",
        vec![
            tasks(json!({"action": "claim", "id": build})),
            tasks(json!({"action": "claim", "id": design})),
            tasks(json!({"action": "complete", "id": design, "result": "the plan"})),
        ],
    );
    let r = c.results("alice");
    assert!(r[0].contains("team.task_conflict"), "{r:?}");
    assert!(
        r[1].contains("You claimed task") && r[1].contains("draw the plan"),
        "{r:?}"
    );
    assert!(r[2].contains("is done"), "{r:?}");
    let done = c.status("design");
    assert_eq!(done["status"], "done");
    assert_eq!(done["owner"], "alice");
    assert_eq!(done["result"], "the plan");
    // Completing design unblocked build.
    assert_eq!(c.status("build")["status"], "pending");

    // Bob takes build; alice's second claim of design (done) is refused.
    c.turn(
        "bob",
        vec![
            tasks(json!({"action": "search", "query": "build"})),
            tasks(json!({"action": "claim", "id": build})),
            tasks(json!({"action": "comment", "id": build, "text": "halfway"})),
            tasks(json!({"action": "complete", "id": build, "result": "built"})),
            tasks(json!({"action": "get", "id": build})),
        ],
    );
    let r = c.results("bob");
    assert!(
        r[0].starts_with(&format!("- {build} [pending] build")),
        "{r:?}"
    );
    assert_eq!(r[0].lines().count(), 1, "{r:?}");
    assert!(
        r[4].contains("status: done") && r[4].contains("comment by bob: halfway"),
        "{r:?}"
    );
    c.turn(
        "alice",
        vec![tasks(json!({"action": "claim", "id": design}))],
    );
    assert!(c.results("alice")[0].contains("team.task_conflict"));
    let board = c.board();
    assert!(board.iter().all(|t| t["status"] == "done"), "{board:?}");

    // Mail: the lead writes to alice and to everyone; alice sees both at
    // her next turn, inside untrusted markers, and only once.
    c.turn(
        "lead",
        vec![
            tool(
                "team_message",
                json!({"action": "send", "to": "alice", "text": "please review build"}),
            ),
            tool(
                "team_message",
                json!({"action": "broadcast", "text": "standup at noon"}),
            ),
        ],
    );
    let r = c.results("lead");
    assert!(
        r[0].contains("Sent to alice") && r[1].contains("every member"),
        "{r:?}"
    );
    c.turn("alice", vec![]);
    let prompt = c.requests("alice").last().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(prompt.contains("## Unread team messages"), "{prompt}");
    assert!(
        prompt.contains("[from lead to you] please review build"),
        "{prompt}"
    );
    assert!(
        prompt.contains("[from lead to the team] standup at noon"),
        "{prompt}"
    );
    assert!(
        prompt.contains("<<<UNTRUSTED source=\"team_message:core:lead\">>>"),
        "{prompt}"
    );
    c.turn("alice", vec![]);
    let again = c.requests("alice").last().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!again.contains("please review build"), "read once: {again}");
    assert!(again.contains("## Your teams"), "{again}");
    // Bob reads the broadcast with the tool.
    c.turn("bob", vec![tool("team_message", json!({"action": "read"}))]);
    // Bob's prompt had it already (his next turn); the tool finds none left.
    let bob_prompt = c.requests("bob").last().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(bob_prompt.contains("standup at noon"), "{bob_prompt}");
    assert!(c.results("bob")[0].contains("No unread messages"));
}

#[test]
fn a_team_works_its_board_on_sqlite() {
    a_team_works_its_board(None);
}

#[test]
fn a_team_works_its_board_on_postgres() {
    let Some(dsn) = fresh_database() else { return };
    a_team_works_its_board(Some(&dsn));
}

fn refusals(dsn: Option<&str>) {
    let c = crew(dsn);
    let r = c.send(
        "POST",
        "/v1/teams/core/tasks",
        Some(json!({"title": "only task"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let only = r.json()["id"].as_str().unwrap().to_owned();
    let r = c.send(
        "POST",
        "/v1/teams",
        Some(json!({"id": "other", "lead": "outsider"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let before = c.board();

    for (agent, name, args, code) in [
        // Malformed arguments.
        (
            "alice",
            "team_tasks",
            json!({"action": "explode"}),
            "tool.invalid_args",
        ),
        (
            "alice",
            "team_tasks",
            json!({"action": "create"}),
            "tool.invalid_args",
        ),
        (
            "alice",
            "team_tasks",
            json!({"action": "list", "colour": 1}),
            "tool.invalid_args",
        ),
        (
            "alice",
            "team_message",
            json!({"action": "send", "text": "hi"}),
            "tool.invalid_args",
        ),
        // Unknown tasks and dependencies, unknown agents.
        (
            "alice",
            "team_tasks",
            json!({"action": "claim", "id": "nope"}),
            "team.task_not_found",
        ),
        (
            "alice",
            "team_tasks",
            json!({"action": "get", "id": "nope"}),
            "team.task_not_found",
        ),
        (
            "alice",
            "team_tasks",
            json!({"action": "create", "title": "x", "blocked_by": ["nope"]}),
            "team.invalid_dependency",
        ),
        (
            "alice",
            "team_message",
            json!({"action": "send", "to": "outsider", "text": "psst"}),
            "team.unknown_member",
        ),
        (
            "alice",
            "team_message",
            json!({"action": "send", "to": "ghost", "text": "boo"}),
            "team.unknown_member",
        ),
        // Acting for another team, or a team that does not exist.
        (
            "alice",
            "team_tasks",
            json!({"action": "list", "team": "other"}),
            "team.not_member",
        ),
        (
            "outsider",
            "team_tasks",
            json!({"action": "claim", "team": "core", "id": only}),
            "team.not_member",
        ),
        (
            "outsider",
            "team_message",
            json!({"action": "broadcast", "team": "core", "text": "hi"}),
            "team.not_member",
        ),
        (
            "alice",
            "team_tasks",
            json!({"action": "list", "team": "nowhere"}),
            "team.not_found",
        ),
        // Finishing a task one does not own.
        (
            "bob",
            "team_tasks",
            json!({"action": "complete", "id": only, "result": "r"}),
            "team.task_conflict",
        ),
    ] {
        c.turn(agent, vec![tool(name, args.clone())]);
        let r = c.results(agent);
        assert!(r[0].contains(code), "{agent} {name} {args}: {r:?}");
    }
    // Nothing outside the team gains a way to another agent.
    c.turn(
        "outsider",
        vec![tool("delegate", json!({"agent": "alice", "task": "help"}))],
    );
    let r = c.results("outsider");
    assert!(
        r[0].contains("delegation.no_link") || r[0].contains("security.tool_denied"),
        "{r:?}"
    );
    assert_eq!(c.board(), before, "refusals wrote nothing");
    let r = c.send("GET", "/v1/teams/other/tasks", None);
    assert_eq!(r.json()["tasks"], json!([]));
    // The outsider, in no team of its own... is in `other`: its prompt
    // names only that one.
    c.turn("outsider", vec![]);
    let prompt = c.requests("outsider").last().unwrap()["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        prompt.contains("team other") && !prompt.contains("team core"),
        "{prompt}"
    );
}

#[test]
fn refusals_are_tool_errors_with_codes_and_write_nothing_on_sqlite() {
    refusals(None);
}

#[test]
fn refusals_are_tool_errors_with_codes_and_write_nothing_on_postgres() {
    let Some(dsn) = fresh_database() else { return };
    refusals(Some(&dsn));
}

#[test]
fn teams_and_their_board_over_http_and_the_websocket() {
    let c = crew(None);
    // CRUD.
    let list = c.send("GET", "/v1/teams", None).json();
    assert_eq!(list["teams"][0]["id"], "core");
    assert_eq!(list["teams"][0]["members"], json!(["alice", "bob"]));
    for (body, status, code) in [
        (json!({"id": "core", "lead": "lead"}), 409, "conflict"),
        (
            json!({"id": "Bad Id", "lead": "lead"}),
            400,
            "request.invalid",
        ),
        (json!({"id": "x", "lead": "ghost"}), 422, "agent.unknown"),
        (
            json!({"id": "x", "lead": "lead", "members": ["lead"]}),
            400,
            "request.invalid",
        ),
        (
            json!({"id": "x", "lead": "lead", "members": ["ghost"]}),
            422,
            "agent.unknown",
        ),
        (
            json!({"id": "x", "lead": "lead", "colour": "red"}),
            422,
            "request.invalid_json",
        ),
    ] {
        let r = c.send("POST", "/v1/teams", Some(body.clone()));
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], code, "{body}");
    }
    let r = c.send(
        "PATCH",
        "/v1/teams/core",
        Some(json!({"name": "Core team", "members": ["alice"]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["members"], json!(["alice"]));
    assert_eq!(r.json()["name"], "Core team");
    assert_eq!(
        c.send("GET", "/v1/teams/core", None).json()["members"],
        json!(["alice"])
    );
    let r = c.send("GET", "/v1/teams/nope", None);
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (404, json!("team.not_found"))
    );

    // The board: create, page, claim, refuse, complete, comment.
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = c.send(
            "POST",
            "/v1/teams/core/tasks",
            Some(json!({"title": format!("task {i}"), "created_by": "alice"})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.json()["id"].as_str().unwrap().to_owned());
    }
    let r = c.send(
        "POST",
        "/v1/teams/core/tasks",
        Some(json!({"title": "t", "created_by": "bob"})),
    );
    assert_eq!(
        r.json()["error"]["code"],
        "team.not_member",
        "bob left the team"
    );
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/teams/core/tasks?limit=2&cursor={c}"),
            None => "/v1/teams/core/tasks?limit=2".to_owned(),
        };
        let page = c.send("GET", &path, None).json();
        seen.extend(
            page["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(seen.len() <= 5, "paging ends");
    }
    assert_eq!(seen, ids);
    let claim = |task: &str, agent: &str| {
        c.send(
            "POST",
            &format!("/v1/teams/core/tasks/{task}/claim"),
            Some(json!({"agent": agent})),
        )
    };
    assert_eq!(claim(&ids[0], "alice").status, 200);
    let r = claim(&ids[0], "lead");
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (409, json!("team.task_conflict"))
    );
    let r = claim(&ids[1], "outsider");
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (403, json!("team.not_member"))
    );
    let r = claim("nope", "alice");
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (404, json!("team.task_not_found"))
    );
    let r = c.send(
        "POST",
        &format!("/v1/teams/core/tasks/{}/complete", ids[0]),
        Some(json!({"agent": "lead", "result": "not mine"})),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    let r = c.send(
        "POST",
        &format!("/v1/teams/core/tasks/{}/complete", ids[0]),
        Some(json!({"agent": "alice", "result": "done it"})),
    );
    assert_eq!(r.json()["status"], "done", "{}", r.body);
    let r = c.send(
        "POST",
        &format!("/v1/teams/core/tasks/{}/comments", ids[0]),
        Some(json!({"author": "lead", "text": "thanks"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["comments"][0]["text"], "thanks");
    let r = c
        .send("GET", "/v1/teams/core/tasks?status=done", None)
        .json();
    assert_eq!(r["tasks"].as_array().unwrap().len(), 1);
    let r = c
        .send("GET", "/v1/teams/core/tasks?q=task%203", None)
        .json();
    assert_eq!(r["tasks"][0]["id"], ids[3].as_str(), "{r}");
    let r = c.send("GET", "/v1/teams/core/tasks?status=open", None);
    assert_eq!(r.status, 400);

    // The WebSocket answers the same.
    let mut ws = crate::ws::open(&c.gw, &[]).unwrap();
    crate::ws::call(
        &mut ws,
        "c",
        "connect",
        json!({"token": TOKEN, "protocol": 1, "client": {"name": "test"}}),
    );
    let (r, _) = crate::ws::call(&mut ws, "1", "teams.get", json!({"id": "core"}));
    assert_eq!(r["result"]["lead"], "lead", "{r}");
    let (r, _) = crate::ws::call(
        &mut ws,
        "2",
        "teams.tasks.claim",
        json!({"team": "core", "id": ids[1], "agent": "alice"}),
    );
    assert_eq!(r["result"]["status"], "in_progress", "{r}");
    let (r, _) = crate::ws::call(
        &mut ws,
        "3",
        "teams.tasks.claim",
        json!({"team": "core", "id": ids[1], "agent": "lead"}),
    );
    assert_eq!(r["error"]["code"], "team.task_conflict", "{r}");
    let (r, _) = crate::ws::call(
        &mut ws,
        "4",
        "teams.tasks.list",
        json!({"team": "core", "status": "in_progress"}),
    );
    assert_eq!(r["result"]["tasks"][0]["id"], ids[1].as_str(), "{r}");
    let (r, _) = crate::ws::call(&mut ws, "5", "teams.delete", json!({"id": "core"}));
    assert!(r["error"].is_null(), "{r}");
    let r = c.send("GET", "/v1/teams/core/tasks", None);
    assert_eq!(r.status, 404, "the board went with the team");
    let _ = (&c.home, &c.env);
}

/// 50 claimers of one task at once, through two gateway processes on one
/// PostgreSQL (half each): exactly one wins, the others are
/// `team.task_conflict`, every round.
#[test]
fn fifty_claimers_on_two_gateways_one_owner_every_time() {
    let Some(dsn) = fresh_database() else { return };
    let c = crew(Some(&dsn));
    let key = c
        .home
        .dotenv()
        .lines()
        .find_map(|l| l.strip_prefix("EXOCLAW_ENCRYPTION_KEY=").map(str::to_owned))
        .expect("the first gateway wrote its vault key");
    let second_home = TestHome::new();
    let mut env = env_pairs(&c.env);
    env.push(("EXOCLAW_ENCRYPTION_KEY", &key));
    let second = Gateway::start(&second_home.path, &env);

    let members: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    for m in &members {
        let r = c.send("POST", "/v1/agents", Some(json!({"id": m})));
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = c.send("PATCH", "/v1/teams/core", Some(json!({"members": members})));
    assert_eq!(r.status, 200, "{}", r.body);

    let addrs = [c.gw.addr, second.addr];
    for round in 0..5 {
        let r = c.send(
            "POST",
            "/v1/teams/core/tasks",
            Some(json!({"title": format!("contested {round}")})),
        );
        let task = r.json()["id"].as_str().unwrap().to_owned();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(members.len()));
        let answers: Vec<(String, Response)> = std::thread::scope(|s| {
            let handles: Vec<_> = members
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let (barrier, task) = (barrier.clone(), task.clone());
                    let addr = addrs[i % 2];
                    s.spawn(move || {
                        barrier.wait();
                        let r = request(
                            addr,
                            "POST",
                            &format!("/v1/teams/core/tasks/{task}/claim"),
                            Some(TOKEN),
                            Some(&json!({"agent": m}).to_string()),
                        );
                        (m.clone(), r)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<&String> = answers
            .iter()
            .filter(|(_, r)| r.status == 200)
            .map(|(m, _)| m)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        for (m, r) in &answers {
            if r.status != 200 {
                assert_eq!(r.status, 409, "{m}: {}", r.body);
                assert_eq!(r.json()["error"]["code"], "team.task_conflict");
            }
        }
        let stored = c
            .send("GET", &format!("/v1/teams/core/tasks/{task}"), None)
            .json();
        assert_eq!(stored["owner"], winners[0].as_str(), "round {round}");
        assert_eq!(stored["status"], "in_progress");
    }
}

#[test]
fn the_cli_lists_creates_and_works_the_board() {
    let c = crew(None);
    let env = env_pairs(&c.env);
    let out = run(&c.home.path, &env, &["team", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("ID"), "{text}");
    assert!(
        text.contains("core") && text.contains("alice,bob"),
        "{text}"
    );
    let out = run(&c.home.path, &env, &["team", "list", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["teams"][0]["lead"], "lead");

    let out = run(
        &c.home.path,
        &env,
        &[
            "team",
            "create",
            "ops",
            "--lead",
            "bob",
            "--members",
            "alice,outsider",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(
        &c.home.path,
        &env,
        &["team", "create", "ops2", "--lead", "ghost"],
    );
    assert!(!out.status.success());
    assert!(
        error_line(&out).contains("[agent.unknown]"),
        "{}",
        error_line(&out)
    );

    let out = run(
        &c.home.path,
        &env,
        &["team", "task", "add", "ops", "first job"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).split_whitespace().nth(2).unwrap().to_owned();
    let out = run(
        &c.home.path,
        &env,
        &["team", "task", "claim", "ops", &id, "--agent", "alice"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(
        &c.home.path,
        &env,
        &["team", "task", "claim", "ops", &id, "--agent", "outsider"],
    );
    assert!(
        error_line(&out).contains("[team.task_conflict]"),
        "{}",
        error_line(&out)
    );
    let out = run(&c.home.path, &env, &["team", "tasks", "ops"]);
    let text = stdout(&out);
    assert!(
        text.starts_with("ID") && text.contains("in_progress") && text.contains("alice"),
        "{text}"
    );
    let out = run(
        &c.home.path,
        &env,
        &["team", "task", "show", "ops", &id, "--json"],
    );
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["owner"], "alice");
    let out = run(&c.home.path, &env, &["team", "delete", "ops"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&c.home.path, &env, &["team", "show", "ops"]);
    assert!(
        error_line(&out).contains("[team.not_found]"),
        "{}",
        error_line(&out)
    );
}
