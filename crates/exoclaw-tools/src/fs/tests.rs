//! The file tools through the `Tool` trait, both sides: what works, what
//! is refused, and that refusals change nothing and name no host path.

use super::*;
use exoclaw_core::tool::ToolContext;
use serde_json::json;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::Path;

struct Env {
    dir: tempfile::TempDir,
    outside: tempfile::TempDir,
    ctx: ToolContext,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "SECRET\n").unwrap();
    let ctx = ToolContext {
        tenant: "default".into(),
        user: "u1".into(),
        agent: "default".into(),
        session: None,
        workspace: dir.path().to_path_buf(),
        request_id: None,
        run: Default::default(),
        approved: None,
        call_id: None,
        agents: None,
        lineage: Default::default(),
        cancel: Default::default(),
    };
    Env { dir, outside, ctx }
}

impl Env {
    fn put(&self, rel: &str, content: &str) {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn get(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(rel)).unwrap()
    }

    fn no_host_path(&self, e: &ToolError) {
        for p in [self.dir.path(), self.outside.path()] {
            assert!(
                !e.message.contains(p.to_str().unwrap()),
                "host path leaked: {e}"
            );
        }
    }
}

fn tool(name: &str) -> Arc<dyn Tool> {
    builtin()
        .into_iter()
        .find(|t| t.spec().name == name)
        .unwrap()
}

async fn run(e: &Env, name: &str, args: Value) -> Result<String, ToolError> {
    let t = tool(name);
    t.check(&e.ctx, &args).await?;
    t.call(&e.ctx, &args).await.map(|o| o.content)
}

async fn dry(e: &Env, name: &str, args: Value) -> Result<(), ToolError> {
    tool(name).check(&e.ctx, &args).await.map(|_| ())
}

#[test]
fn builtin_has_the_six_tools_with_effects() {
    let names: Vec<_> = builtin()
        .iter()
        .map(|t| (t.spec().name, t.effect()))
        .collect();
    use exoclaw_core::tool::ToolEffect::*;
    assert_eq!(
        names,
        [
            ("read_file".to_owned(), ReadOnly),
            ("write_file".to_owned(), SideEffect),
            ("edit_file".to_owned(), SideEffect),
            ("list_files".to_owned(), ReadOnly),
            ("search".to_owned(), ReadOnly),
            ("glob".to_owned(), ReadOnly),
        ]
    );
    for t in builtin() {
        let spec = t.spec();
        assert_eq!(spec.parameters["type"], "object", "{}", spec.name);
        assert_eq!(
            spec.parameters["additionalProperties"], false,
            "{}",
            spec.name
        );
    }
}

#[tokio::test]
async fn read_file_whole_and_ranges() {
    let e = env();
    e.put("a.txt", "one\ntwo\nthree\n");
    e.put("my..file.txt", "dots\n");
    assert_eq!(
        run(&e, "read_file", json!({"path": "a.txt"}))
            .await
            .unwrap(),
        "one\ntwo\nthree\n"
    );
    let r = run(
        &e,
        "read_file",
        json!({"path": "a.txt", "start_line": 2, "end_line": 3}),
    )
    .await;
    assert_eq!(r.unwrap(), "two\nthree\n");
    assert_eq!(
        run(&e, "read_file", json!({"path": "a.txt", "start_line": 3}))
            .await
            .unwrap(),
        "three\n"
    );
    assert_eq!(
        run(&e, "read_file", json!({"path": "my..file.txt"}))
            .await
            .unwrap(),
        "dots\n"
    );
    for bad in [
        json!({"path": "a.txt", "start_line": 0}),
        json!({"path": "a.txt", "start_line": 3, "end_line": 2}),
        json!({}),
        json!({"path": "a.txt", "x": 1}),
    ] {
        assert_eq!(
            run(&e, "read_file", bad).await.unwrap_err().code,
            "tool.invalid_args"
        );
    }
    std::fs::create_dir(e.dir.path().join("d")).unwrap();
    let err = run(&e, "read_file", json!({"path": "d"}))
        .await
        .unwrap_err();
    assert!(err.message.contains("is a directory"), "{err}");
    std::fs::write(e.dir.path().join("bin"), [0xff, 0xfe, 0x00]).unwrap();
    let err = run(&e, "read_file", json!({"path": "bin"}))
        .await
        .unwrap_err();
    assert!(err.message.contains("UTF-8"), "{err}");
}

#[tokio::test]
async fn reads_outside_are_refused_without_host_paths() {
    let e = env();
    symlink(e.outside.path(), e.dir.path().join("out")).unwrap();
    let secret = e.outside.path().join("secret.txt");
    for path in [
        "../secret.txt",
        "out/secret.txt",
        secret.to_str().unwrap(),
        "/etc/passwd",
    ] {
        for name in ["read_file", "list_files"] {
            let args = json!({"path": path});
            let err = run(&e, name, args.clone()).await.unwrap_err();
            assert_eq!(err.code, "security.path_denied", "{name} {path}: {err}");
            if !path.starts_with('/') {
                e.no_host_path(&err);
            }
            assert_eq!(
                dry(&e, name, args).await.unwrap_err().code,
                "security.path_denied"
            );
        }
    }
    let err = run(&e, "read_file", json!({"path": "missing.txt"}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "tool.failed");
    e.no_host_path(&err);
}

#[tokio::test]
async fn unrestricted_reads_absolute_paths() {
    let e = env();
    let t = ReadFile(FsOptions {
        restrict_to_workspace: false,
    });
    let secret = e.outside.path().join("secret.txt");
    let out = t.call(&e.ctx, &json!({"path": secret})).await.unwrap();
    assert_eq!(out.content, "SECRET\n");
}

#[tokio::test]
async fn write_file_creates_parents_and_keeps_mode() {
    let e = env();
    let out = run(
        &e,
        "write_file",
        json!({"path": "a/b/c.txt", "content": "hi"}),
    )
    .await
    .unwrap();
    assert_eq!(out, "wrote 2 bytes to a/b/c.txt");
    assert_eq!(e.get("a/b/c.txt"), "hi");
    e.put("x.sh", "old");
    std::fs::set_permissions(
        e.dir.path().join("x.sh"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    run(&e, "write_file", json!({"path": "x.sh", "content": "new"}))
        .await
        .unwrap();
    assert_eq!(e.get("x.sh"), "new");
    let mode = std::fs::metadata(e.dir.path().join("x.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o750);
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(e.dir.path())
        .unwrap()
        .map(|d| d.unwrap().file_name())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.to_string_lossy().contains("exoclaw-write")),
        "{names:?}"
    );
    // Through a symlink inside the workspace: the target is written.
    symlink("x.sh", e.dir.path().join("alias")).unwrap();
    run(&e, "write_file", json!({"path": "alias", "content": "via"}))
        .await
        .unwrap();
    assert_eq!(e.get("x.sh"), "via");
    std::fs::create_dir(e.dir.path().join("d")).unwrap();
    let err = run(&e, "write_file", json!({"path": "d", "content": ""}))
        .await
        .unwrap_err();
    assert!(err.message.contains("directory"), "{err}");
}

fn snapshot(p: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(p).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            out.extend(snapshot(&path));
        } else if meta.is_file() {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        } else {
            out.push((path.display().to_string(), Vec::new()));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn writes_outside_are_refused_and_change_nothing() {
    let e = env();
    symlink(e.outside.path(), e.dir.path().join("out")).unwrap();
    symlink(
        e.outside.path().join("secret.txt"),
        e.dir.path().join("link"),
    )
    .unwrap();
    let before = (snapshot(e.dir.path()), snapshot(e.outside.path()));
    for path in [
        "../x.txt",
        "out/x.txt",
        "out/new/dir/x.txt",
        "link",
        "/tmp/x.txt",
        "a/../../x",
    ] {
        for (name, args) in [
            ("write_file", json!({"path": path, "content": "pwned"})),
            (
                "edit_file",
                json!({"path": path, "edits": [{"old": "SECRET", "new": "pwned"}]}),
            ),
        ] {
            let err = run(&e, name, args.clone()).await.unwrap_err();
            assert_eq!(err.code, "security.path_denied", "{name} {path}: {err}");
            e.no_host_path(&err);
            assert_eq!(
                dry(&e, name, args).await.unwrap_err().code,
                "security.path_denied"
            );
        }
    }
    assert_eq!((snapshot(e.dir.path()), snapshot(e.outside.path())), before);
    // A dry run of an allowed write creates nothing either.
    dry(
        &e,
        "write_file",
        json!({"path": "new/dir/f.txt", "content": "x"}),
    )
    .await
    .unwrap();
    assert!(!e.dir.path().join("new").exists());
}

#[tokio::test]
async fn edit_file_is_all_or_nothing() {
    let e = env();
    e.put("f.rs", "fn a() {}\nfn b() {}\nlet x = 1;\nlet x = 1;\n");
    let ok = json!({"path": "f.rs", "edits": [
        {"old": "fn a() {}", "new": "fn a2() {}"},
        {"old": "let x = 1;", "new": "let x = 2;", "replace_all": true}
    ]});
    dry(&e, "edit_file", ok.clone()).await.unwrap();
    assert!(
        e.get("f.rs").starts_with("fn a() {}"),
        "the dry run changed nothing"
    );
    let out = run(&e, "edit_file", ok).await.unwrap();
    assert_eq!(out, "edited f.rs: 2 edit(s), 3 replacement(s)");
    assert_eq!(
        e.get("f.rs"),
        "fn a2() {}\nfn b() {}\nlet x = 2;\nlet x = 2;\n"
    );

    let before = e.get("f.rs");
    let missing = json!({"path": "f.rs", "edits": [
        {"old": "fn b() {}", "new": "fn c() {}"},
        {"old": "no such text", "new": "x"}
    ]});
    let err = run(&e, "edit_file", missing.clone()).await.unwrap_err();
    assert_eq!(err.code, "tool.edit_failed");
    assert!(err.message.contains("edits[1].old: not found"), "{err}");
    assert_eq!(
        dry(&e, "edit_file", missing).await.unwrap_err().code,
        "tool.edit_failed"
    );
    let ambiguous = json!({"path": "f.rs", "edits": [{"old": "let x = 2;", "new": "y"}]});
    let err = run(&e, "edit_file", ambiguous).await.unwrap_err();
    assert!(
        err.message.contains("edits[0].old: matches 2 times"),
        "{err}"
    );
    assert_eq!(e.get("f.rs"), before, "failed edits change nothing");

    for bad in [
        json!({"path": "f.rs", "edits": []}),
        json!({"path": "f.rs", "edits": [{"old": "", "new": "x"}]}),
        json!({"path": "f.rs", "edits": [{"old": "a", "new": "a"}]}),
        json!({"path": "f.rs", "edits": [{"old": "a"}]}),
    ] {
        assert_eq!(
            run(&e, "edit_file", bad).await.unwrap_err().code,
            "tool.invalid_args"
        );
    }
}

#[tokio::test]
async fn list_files_marks_dirs_and_links() {
    let e = env();
    e.put("b.txt", "");
    e.put("a/x", "");
    symlink("b.txt", e.dir.path().join("c")).unwrap();
    assert_eq!(
        run(&e, "list_files", json!({})).await.unwrap(),
        "a/\nb.txt\nc@"
    );
    assert_eq!(
        run(&e, "list_files", json!({"path": "a"})).await.unwrap(),
        "x"
    );
    std::fs::create_dir(e.dir.path().join("empty")).unwrap();
    assert_eq!(
        run(&e, "list_files", json!({"path": "empty"}))
            .await
            .unwrap(),
        "empty is an empty directory"
    );
}

#[tokio::test]
async fn search_finds_lines_and_honours_gitignore() {
    let e = env();
    e.put("src/main.rs", "fn main() {\n    println!(\"hello\");\n}\n");
    e.put("src/lib.rs", "pub fn hello() {}\n");
    e.put("target/debug/out.rs", "hello from build output\n");
    e.put("logs/keep.log", "hello kept\n");
    e.put("logs/drop.log", "hello dropped\n");
    e.put(".gitignore", "target/\nlogs/*.log\n!logs/keep.log\n");
    e.put(".hidden/h.txt", "hello hidden\n");
    e.put("long.txt", &format!("hello {}\n", "x".repeat(1000)));
    std::fs::write(e.dir.path().join("bin.dat"), b"hello\0binary").unwrap();
    symlink(e.outside.path(), e.dir.path().join("out")).unwrap();
    std::fs::write(e.outside.path().join("o.txt"), "hello outside\n").unwrap();

    let out = run(&e, "search", json!({"pattern": "hel+o"}))
        .await
        .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.contains(&"src/main.rs:2:    println!(\"hello\");"),
        "{out}"
    );
    assert!(lines.contains(&"src/lib.rs:1:pub fn hello() {}"), "{out}");
    assert!(lines.contains(&"logs/keep.log:1:hello kept"), "{out}");
    for absent in [
        "target/", "drop.log", ".hidden", "bin.dat", "outside", "out/",
    ] {
        assert!(!out.contains(absent), "{absent} in {out}");
    }
    let long = lines.iter().find(|l| l.starts_with("long.txt")).unwrap();
    assert!(long.len() < 400 && long.contains("more bytes]"), "{long}");

    let out = run(
        &e,
        "search",
        json!({"pattern": "HELLO", "case_insensitive": true, "glob": "**/*.rs"}),
    )
    .await
    .unwrap();
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = run(
        &e,
        "search",
        json!({"pattern": "hello", "hidden": true, "path": ".hidden"}),
    )
    .await
    .unwrap();
    assert_eq!(out, ".hidden/h.txt:1:hello hidden\n");
    let out = run(&e, "search", json!({"pattern": "hello", "max_results": 1}))
        .await
        .unwrap();
    assert!(out.ends_with("[... stopped at 1 results]\n"), "{out}");
    let out = run(&e, "search", json!({"pattern": "nothing-matches-this"}))
        .await
        .unwrap();
    assert_eq!(out, "no matches\n");

    assert_eq!(
        run(&e, "search", json!({"pattern": "("}))
            .await
            .unwrap_err()
            .code,
        "tool.invalid_args"
    );
    assert_eq!(
        run(&e, "search", json!({"pattern": "x", "max_results": 0}))
            .await
            .unwrap_err()
            .code,
        "tool.invalid_args"
    );
    let err = run(&e, "search", json!({"pattern": "hello", "path": "out"}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "security.path_denied");
    e.no_host_path(&err);
    let err = run(&e, "search", json!({"pattern": "hello", "path": ".."}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "security.path_denied");
}

#[tokio::test]
async fn glob_matches_paths_relative_to_the_workspace() {
    let e = env();
    e.put("src/a.rs", "");
    e.put("src/deep/b.rs", "");
    e.put("c.rs", "");
    e.put("notes.txt", "");
    e.put("build/gen.rs", "");
    e.put(".gitignore", "build/\n");
    symlink(e.outside.path(), e.dir.path().join("out")).unwrap();
    assert_eq!(
        run(&e, "glob", json!({"pattern": "**/*.rs"}))
            .await
            .unwrap(),
        "c.rs\nsrc/a.rs\nsrc/deep/b.rs\n"
    );
    assert_eq!(
        run(&e, "glob", json!({"pattern": "*.rs"})).await.unwrap(),
        "c.rs\n"
    );
    assert_eq!(
        run(&e, "glob", json!({"pattern": "*.rs", "path": "src"}))
            .await
            .unwrap(),
        "src/a.rs\n"
    );
    assert_eq!(
        run(&e, "glob", json!({"pattern": "src/*"})).await.unwrap(),
        "src/a.rs\nsrc/deep/\n"
    );
    assert_eq!(
        run(&e, "glob", json!({"pattern": "**/*.md"}))
            .await
            .unwrap(),
        "no matches\n"
    );
    let out = run(&e, "glob", json!({"pattern": "**", "max_results": 2}))
        .await
        .unwrap();
    assert!(out.ends_with("[... stopped at 2 results]\n"), "{out}");
    for bad in ["../*", "/etc/*", "a/../../b", "[z-a"] {
        let err = run(&e, "glob", json!({"pattern": bad})).await.unwrap_err();
        assert_eq!(err.code, "tool.invalid_args", "{bad}: {err}");
    }
    let err = run(&e, "glob", json!({"pattern": "*", "path": "out"}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "security.path_denied");
}

/// The tool reads `dir/secret.txt` in a loop while a thread swaps `dir`
/// with a symlink to the outside directory: never the outside content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_file_under_a_swap_race_never_reads_outside() {
    let e = env();
    e.put("dir/secret.txt", "inside\n");
    symlink(e.outside.path(), e.dir.path().join("alt")).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let stop = stop.clone();
        let root = e.dir.path().to_path_buf();
        std::thread::spawn(move || {
            let dir = std::fs::File::open(&root).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                rustix::fs::renameat_with(
                    &dir,
                    "dir",
                    &dir,
                    "alt",
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .unwrap();
            }
        })
    };
    let read = tool("read_file");
    for _ in 0..2000 {
        match read.call(&e.ctx, &json!({"path": "dir/secret.txt"})).await {
            Ok(out) => assert_eq!(out.content, "inside\n"),
            Err(err) => e.no_host_path(&err),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().unwrap();
}

/// One line of `/proc/self/<file>` (`VmHWM:  1234 kB`, `rchar: 1234`) as bytes.
fn proc_self(file: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/self/{file}")).unwrap();
    let line = text.lines().find(|l| l.starts_with(key)).unwrap();
    let mut words = line[key.len()..].split_whitespace();
    let n: u64 = words.next().unwrap().parse().unwrap();
    match words.next() {
        Some("kB") => n * 1024,
        _ => n,
    }
}

/// What a call costs the whole process: peak RSS growth (the peak is reset
/// first, so an earlier peak cannot hide this one) and bytes read by
/// `read(2)`. Process-wide, so other tests running at the same time can
/// only add to both: the bounds below fail the old code by a wide margin
/// and leave room for that noise.
async fn cost<T>(f: impl std::future::Future<Output = T>) -> (T, u64, u64) {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    let rss = proc_self("status", "VmRSS:");
    let read = proc_self("io", "rchar:");
    let out = f.await;
    let peak = proc_self("status", "VmHWM:");
    (
        out,
        peak.saturating_sub(rss),
        proc_self("io", "rchar:") - read,
    )
}

/// Regression (outside test): `read_file` of line 1 of a 250 MB file
/// without newlines took ~800 MB before refusing the range; `edit_file`
/// read 4 MiB of a file it then refused as too large.
#[tokio::test]
async fn huge_files_are_refused_without_being_read() {
    const MIB: u64 = 1 << 20;
    let e = env();
    std::fs::create_dir(e.dir.path().join("big")).unwrap();
    // Sparse: 256 MiB of NUL bytes (valid UTF-8, no newline), no disk used.
    let f = std::fs::File::create(e.dir.path().join("big/huge.txt")).unwrap();
    f.set_len(256 * MIB).unwrap();
    drop(f);

    let (r, peak, read) = cost(run(
        &e,
        "read_file",
        json!({"path": "big/huge.txt", "start_line": 1, "end_line": 1}),
    ))
    .await;
    let err = r.unwrap_err();
    assert!(
        err.message.contains("range is larger than 4194304 bytes"),
        "{err}"
    );
    assert!(peak < 64 * MIB, "read_file: peak RSS grew by {peak} bytes");
    assert!(
        read <= 4 * MIB + 2 * super::lines::CHUNK_BYTES as u64 + MIB,
        "read_file read {read} bytes"
    );

    let (r, _, read) = cost(run(
        &e,
        "edit_file",
        json!({"path": "big/huge.txt", "edits": [{"old": "a", "new": "b"}]}),
    ))
    .await;
    let err = r.unwrap_err();
    assert!(err.message.contains("too large to edit"), "{err}");
    assert!(read < MIB, "edit_file read {read} bytes");

    // search skips the huge file (over its size cap) and holds only the
    // first 64 KiB of an 8 MiB line it does search.
    let mut line = b"needle ".to_vec();
    line.resize(8 * MIB as usize - 1, b'x');
    line.push(b'\n');
    std::fs::write(e.dir.path().join("big/long.txt"), &line).unwrap();
    let (r, peak, read) = cost(run(
        &e,
        "search",
        json!({"pattern": "needle", "path": "big"}),
    ))
    .await;
    let out = r.unwrap();
    assert!(out.starts_with("big/long.txt:1:needle xxx"), "{out}");
    assert!(out.contains("more bytes]"), "{out}");
    assert!(
        out.contains(
            "1 line(s) longer than 65536 bytes were searched only in their first 65536 bytes"
        ),
        "{out}"
    );
    assert!(!out.contains("huge"), "{out}");
    assert!(peak < 64 * MIB, "search: peak RSS grew by {peak} bytes");
    assert!(read < 9 * MIB, "search read {read} bytes");
}
