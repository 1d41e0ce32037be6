//! The quota, both sides: the measuring walk, and `write_file` / `edit_file`
//! held to user, tenant and file-count quotas (what fits is written, what
//! does not is refused with `tool.quota_exceeded` and changes nothing).
//! Commands under the quota are tested with the sandbox
//! (`tests/sandbox/quota.rs`).

use super::measure::{measure, share};
use super::*;
use exoclaw_core::tool::Tool;
use serde_json::{Value, json};
use std::os::unix::fs::symlink;

const KIB: u64 = 1024;

/// `<root>/<tenant>/<user>` workspaces, as the binary lays them out.
struct Env {
    root: tempfile::TempDir,
    tools: Vec<Arc<dyn Tool>>,
    ledger: Arc<QuotaLedger>,
}

fn env(quotas: Quotas) -> Env {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().to_path_buf();
    let ledger = Arc::new(QuotaLedger::new(quotas, move |tenant| base.join(tenant)));
    let tools = crate::fs::builtin_with_quota(crate::fs::FsOptions::default(), Arc::clone(&ledger));
    Env {
        root,
        tools,
        ledger,
    }
}

fn user_quota(max_bytes: Option<u64>, max_files: Option<u64>) -> Quotas {
    Quotas {
        user: WorkspaceQuota {
            max_bytes,
            max_files,
        },
        ..Quotas::default()
    }
}

impl Env {
    fn ctx(&self, tenant: &str, user: &str) -> ToolContext {
        let workspace = self.root.path().join(tenant).join(user);
        std::fs::create_dir_all(&workspace).unwrap();
        ToolContext {
            tenant: tenant.into(),
            user: user.into(),
            agent: "default".into(),
            session: None,
            workspace,
            request_id: None,
            run: Default::default(),
            approved: None,
            call_id: None,
            agents: None,
            lineage: Default::default(),
            cancel: Default::default(),
        }
    }

    async fn call(&self, ctx: &ToolContext, name: &str, args: Value) -> Result<String, ToolError> {
        let tool = self.tools.iter().find(|t| t.spec().name == name).unwrap();
        tool.check(ctx, &args).await?;
        tool.call(ctx, &args).await.map(|o| o.content)
    }

    async fn write(&self, ctx: &ToolContext, path: &str, len: u64) -> Result<String, ToolError> {
        let content = "x".repeat(usize::try_from(len).unwrap());
        self.call(ctx, "write_file", json!({"path": path, "content": content}))
            .await
    }
}

/// Every path under `root` with its size, to prove a refusal changed nothing.
fn snapshot(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            out.push((entry.path(), meta.len()));
        }
    }
    out.sort();
    out
}

fn assert_refused(err: &ToolError, who: &str, what: &str) {
    assert_eq!(err.code, QUOTA_EXCEEDED, "{err}");
    assert!(err.message.contains(who), "{err}");
    assert!(err.message.contains(what), "{err}");
}

#[test]
fn measure_counts_nested_entries_and_never_follows_symlinks() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("big"), vec![b'o'; 256 * 1024]).unwrap();
    let ws = tempfile::tempdir().unwrap();
    let w = ws.path();
    std::fs::create_dir_all(w.join("a/b/c")).unwrap();
    std::fs::write(w.join("a/b/c/deep.txt"), vec![b'x'; 64 * 1024]).unwrap();
    std::fs::write(w.join("top.txt"), vec![b'y'; 64 * 1024]).unwrap();
    symlink(outside.path(), w.join("a/out")).unwrap();
    symlink(outside.path().join("big"), w.join("big-link")).unwrap();
    // Sparse: counted at its apparent size although it uses no blocks.
    let sparse = std::fs::File::create(w.join("sparse")).unwrap();
    sparse.set_len(1 << 30).unwrap();

    let tree = measure(w, None).unwrap();
    // a, a/b, a/b/c, deep.txt, top.txt, a/out, big-link, sparse
    assert_eq!(tree.total.files, 8);
    let dirs_and_links = tree.total.bytes - (2 * 64 * KIB + (1 << 30));
    assert!(
        dirs_and_links < 64 * KIB,
        "symlink targets were counted: {tree:?}"
    );
    assert!(!tree.partial);
    // Shares of top-level directories are their contents.
    let a = share(&tree, "a".as_ref());
    assert_eq!(a.files, 4, "{tree:?}");
    assert!(a.bytes >= 64 * KIB && a.bytes < 128 * KIB, "{a:?}");

    // Stopping early once past a file count.
    let tree = measure(w, Some(3)).unwrap();
    assert!(tree.partial && tree.total.files > 3, "{tree:?}");
    // A missing root is empty, not an error.
    assert_eq!(
        measure(&w.join("nope"), None).unwrap().total,
        Usage::default()
    );
}

#[test]
fn measure_counts_preallocated_blocks_and_any_depth() {
    let ws = tempfile::tempdir().unwrap();
    let w = ws.path();
    // Blocks allocated past the end of the file: invisible in st_size.
    let f = std::fs::File::create(w.join("prealloc")).unwrap();
    rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::KEEP_SIZE, 0, 4 << 20).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 0);
    let tree = measure(w, None).unwrap();
    assert!(tree.total.bytes >= 4 << 20, "{tree:?}");

    // Deep nesting: the walk holds one directory fd at a time.
    let dir = w.join("deep");
    std::fs::create_dir(&dir).unwrap();
    let levels = 300;
    let d = std::fs::File::open(&dir).unwrap();
    let mut cur =
        rustix::fs::openat(&d, ".", rustix::fs::OFlags::PATH, rustix::fs::Mode::empty()).unwrap();
    for _ in 0..levels {
        rustix::fs::mkdirat(&cur, "d", rustix::fs::Mode::from_raw_mode(0o755)).unwrap();
        cur = rustix::fs::openat(
            &cur,
            "d",
            rustix::fs::OFlags::PATH,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
    }
    let leaf = rustix::fs::openat(
        &cur,
        "leaf",
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CREATE,
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .unwrap();
    rustix::io::write(&leaf, &[b'z'; 1000]).unwrap();
    let tree = measure(w, None).unwrap();
    // prealloc, deep, 300 levels, leaf
    assert_eq!(tree.total.files, 1 + 1 + levels + 1, "{tree:?}");
}

#[tokio::test]
async fn writes_fit_the_user_quota_and_the_one_that_would_cross_it_is_refused() {
    let e = env(user_quota(Some(256 * KIB), None));
    let ctx = e.ctx("t1", "alice");
    e.write(&ctx, "a.txt", 100 * KIB).await.unwrap();
    e.write(&ctx, "dir/b.txt", 100 * KIB).await.unwrap();
    // Overwriting with the same size adds nothing.
    e.write(&ctx, "a.txt", 100 * KIB).await.unwrap();

    let before = snapshot(e.root.path());
    for mode in ["dry run", "call"] {
        let args = json!({"path": "c.txt", "content": "x".repeat(100 * 1024)});
        let tool = e
            .tools
            .iter()
            .find(|t| t.spec().name == "write_file")
            .unwrap();
        let err = match mode {
            "dry run" => tool.check(&ctx, &args).await.unwrap_err(),
            _ => tool.call(&ctx, &args).await.unwrap_err(),
        };
        assert_refused(&err, "the user workspace holds", "of 256.0 KiB");
        assert!(err.message.contains("this write adds 100.0 KiB"), "{err}");
        assert!(
            !err.message.contains(e.root.path().to_str().unwrap()),
            "{err}"
        );
    }
    // Growing an existing file past the quota: refused too.
    let err = e.write(&ctx, "a.txt", 200 * KIB).await.unwrap_err();
    assert_refused(&err, "user workspace", "256.0 KiB");
    assert_eq!(
        snapshot(e.root.path()),
        before,
        "a refused write changed the disk"
    );

    // What still fits is written, and shrinking is always allowed.
    e.write(&ctx, "c.txt", 40 * KIB).await.unwrap();
    e.write(&ctx, "a.txt", 0).await.unwrap();
    e.write(&ctx, "d.txt", 90 * KIB).await.unwrap();
    let used = e.ledger.usage(&ctx).unwrap().user;
    assert!(used.bytes <= 256 * KIB, "{used:?}");
}

#[tokio::test]
async fn edit_file_growth_counts_against_the_quota() {
    let e = env(user_quota(Some(64 * KIB), None));
    let ctx = e.ctx("t1", "alice");
    e.call(
        &ctx,
        "write_file",
        json!({"path": "f.txt", "content": "one two\n"}),
    )
    .await
    .unwrap();
    let big = "y".repeat(100 * 1024);
    let edit = json!({"path": "f.txt", "edits": [{"old": "two", "new": big}]});
    let err = e.call(&ctx, "edit_file", edit).await.unwrap_err();
    assert_refused(&err, "user workspace", "of 64.0 KiB");
    assert_eq!(
        std::fs::read_to_string(ctx.workspace.join("f.txt")).unwrap(),
        "one two\n"
    );
    let small = json!({"path": "f.txt", "edits": [{"old": "two", "new": "three"}]});
    e.call(&ctx, "edit_file", small).await.unwrap();
}

#[tokio::test]
async fn the_tenant_quota_binds_across_its_users() {
    let quotas = Quotas {
        user: WorkspaceQuota {
            max_bytes: Some(200 * KIB),
            max_files: None,
        },
        tenant: WorkspaceQuota {
            max_bytes: Some(300 * KIB),
            max_files: None,
        },
    };
    let e = env(quotas);
    let alice = e.ctx("t1", "alice");
    let bob = e.ctx("t1", "bob");
    let carol = e.ctx("t2", "carol");
    e.write(&alice, "a.txt", 150 * KIB).await.unwrap();
    e.write(&bob, "b.txt", 120 * KIB).await.unwrap();
    // Bob is within his own quota, but not the tenant's.
    let err = e.write(&bob, "b2.txt", 50 * KIB).await.unwrap_err();
    assert_refused(&err, "the tenant's workspaces hold", "of 300.0 KiB");
    assert!(!bob.workspace.join("b2.txt").exists());
    // Another tenant is not affected.
    e.write(&carol, "c.txt", 150 * KIB).await.unwrap();
    // Freeing space in one user's workspace makes room for the other.
    e.write(&alice, "a.txt", 0).await.unwrap();
    e.write(&bob, "b2.txt", 50 * KIB).await.unwrap();
    let usage = e.ledger.usage(&bob).unwrap();
    let tenant = usage.tenant.unwrap();
    assert!(
        tenant.bytes >= 170 * KIB && tenant.bytes < 200 * KIB,
        "{usage:?}"
    );
}

#[tokio::test]
async fn the_file_count_quota_counts_new_files_and_directories() {
    let e = env(user_quota(None, Some(3)));
    let ctx = e.ctx("t1", "alice");
    e.write(&ctx, "one.txt", 10).await.unwrap();
    e.write(&ctx, "two.txt", 10).await.unwrap();
    // A file in a new directory is two entries: one too many.
    let err = e.write(&ctx, "sub/three.txt", 10).await.unwrap_err();
    assert_refused(
        &err,
        "user workspace holds 2 of 3 files",
        "this write adds 2",
    );
    assert!(!ctx.workspace.join("sub").exists());
    e.write(&ctx, "three.txt", 10).await.unwrap();
    let err = e.write(&ctx, "four.txt", 10).await.unwrap_err();
    assert_refused(&err, "3 of 3 files", "delete files first");
    // Existing files can still be rewritten, even larger.
    e.write(&ctx, "one.txt", 1000).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_never_overshoot_the_quota() {
    let e = Arc::new(env(user_quota(Some(10 * 8 * KIB), None)));
    let ctx = e.ctx("t1", "alice");
    let mut tasks = Vec::new();
    for n in 0..20 {
        let (e, ctx) = (Arc::clone(&e), ctx.clone());
        #[expect(
            clippy::disallowed_methods,
            reason = "a test's own concurrent load, awaited by the test"
        )]
        tasks.push(tokio::spawn(async move {
            e.write(&ctx, &format!("f{n}.txt"), 8 * KIB).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(err) => assert_eq!(err.code, QUOTA_EXCEEDED, "{err}"),
        }
    }
    assert_eq!(
        ok, 10,
        "reservations let too many or too few writes through"
    );
}

#[tokio::test]
async fn files_deleted_by_other_means_count_once_measured_again() {
    let e = env(user_quota(Some(100 * KIB), None));
    let ledger = Arc::new(
        QuotaLedger::new(e.ledger.quotas(), {
            let base = e.root.path().to_path_buf();
            move |t| base.join(t)
        })
        .with_max_age(Duration::ZERO),
    );
    let tools = crate::fs::builtin_with_quota(crate::fs::FsOptions::default(), ledger);
    let e = Env { tools, ..e };
    let ctx = e.ctx("t1", "alice");
    e.write(&ctx, "a.txt", 80 * KIB).await.unwrap();
    e.write(&ctx, "b.txt", 40 * KIB).await.unwrap_err();
    std::fs::remove_file(ctx.workspace.join("a.txt")).unwrap();
    e.write(&ctx, "b.txt", 40 * KIB).await.unwrap();
}

#[tokio::test]
async fn no_quota_means_no_measuring_and_no_limit() {
    let e = env(Quotas::default());
    assert!(!e.ledger.is_active());
    let ctx = e.ctx("t1", "alice");
    e.write(&ctx, "a.txt", 1 << 20).await.unwrap();
    assert!(e.ledger.lock().unwrap().is_empty());
}

#[test]
fn sizes_read_like_people_write_them() {
    assert_eq!(human_bytes(0), "0 bytes");
    assert_eq!(human_bytes(1023), "1023 bytes");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(1 << 30), "1.0 GiB");
}

#[test]
fn a_received_file_is_saved_new_private_anchored_and_within_the_quota() {
    use crate::fs::{read_capped, save_new};
    use std::os::unix::fs::PermissionsExt as _;
    let e = env(user_quota(Some(10 * KIB), None));
    let ctx = e.ctx("t1", "u1");
    let q = Some(e.ledger.as_ref());
    save_new(&ctx, q, "inbox", "a.txt", b"hello").unwrap();
    let inbox = ctx.workspace.join("inbox");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&inbox), mode(&inbox.join("a.txt"))), (0o700, 0o600));
    assert_eq!(std::fs::read(inbox.join("a.txt")).unwrap(), b"hello");
    // Never over an existing name.
    assert!(save_new(&ctx, q, "inbox", "a.txt", b"other").is_err());
    assert_eq!(std::fs::read(inbox.join("a.txt")).unwrap(), b"hello");
    // Past the quota: refused, nothing written.
    let big = vec![0u8; 20 * 1024];
    let err = save_new(&ctx, q, "inbox", "big.bin", &big).unwrap_err();
    assert_eq!(err.code, QUOTA_EXCEEDED, "{err}");
    assert!(!inbox.join("big.bin").exists());
    // Only plain names.
    for (dir, name) in [
        ("inbox", "../x"),
        ("inbox", ".hidden"),
        ("inbox", "a/b"),
        ("..", "x"),
    ] {
        let err = save_new(&ctx, q, dir, name, b"x").unwrap_err();
        assert_eq!(err.code, "tool.invalid_args", "{dir}/{name}");
    }
    // An `inbox` that is a symlink out of the workspace is not followed.
    let other = e.ctx("t1", "u2");
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), other.workspace.join("inbox")).unwrap();
    assert!(save_new(&other, None, "inbox", "x.txt", b"x").is_err());
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);

    // Reading one to send: within the cap, a regular file, anchored.
    assert_eq!(read_capped(&ctx, "inbox/a.txt", 5).unwrap(), b"hello");
    assert_eq!(
        read_capped(&ctx, "inbox/a.txt", 4).unwrap_err().code,
        "tool.too_large"
    );
    assert!(read_capped(&ctx, "inbox", 100).is_err());
    std::fs::write(outside.path().join("secret"), "s").unwrap();
    symlink(outside.path().join("secret"), ctx.workspace.join("leak")).unwrap();
    assert_eq!(
        read_capped(&ctx, "leak", 100).unwrap_err().code,
        "security.path_denied"
    );
    assert_eq!(
        read_capped(&ctx, "../u2/inbox", 100).unwrap_err().code,
        "security.path_denied"
    );
}
