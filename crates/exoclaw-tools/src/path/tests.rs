//! The anchored resolver, both sides, against both resolvers (`openat2` and
//! the fd-by-fd walk): what is refused, what still opens, the swap race.

use super::*;
use std::io::Read as _;
use std::os::unix::fs::symlink;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const RESOLVERS: [Resolver; 2] = [Resolver::Openat2, Resolver::Walk];

struct Fixture {
    ws: tempfile::TempDir,
    outside: tempfile::TempDir,
}

/// A workspace with `a/b.txt`, `my..file.txt`, a unicode name, and an outside
/// directory holding `secret.txt`.
fn fixture() -> Fixture {
    let ws = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir(ws.path().join("a")).unwrap();
    std::fs::write(ws.path().join("a/b.txt"), "inside").unwrap();
    std::fs::write(ws.path().join("my..file.txt"), "dots").unwrap();
    std::fs::write(ws.path().join("ünï cødé 文件.txt"), "unicode").unwrap();
    std::fs::write(outside.path().join("secret.txt"), "SECRET").unwrap();
    Fixture { ws, outside }
}

fn read(ws: &Workspace, given: &str) -> Result<String, ToolError> {
    let fd = ws.open_at(given, OFlags::RDONLY, Mode::empty())?;
    let mut s = String::new();
    std::fs::File::from(fd).read_to_string(&mut s).unwrap();
    Ok(s)
}

fn assert_no_host_path(e: &ToolError, f: &Fixture) {
    for p in [f.ws.path(), f.outside.path()] {
        let p = p.to_str().unwrap();
        assert!(!e.message.contains(p), "host path leaked: {e}");
    }
}

#[test]
fn inside_paths_open_with_both_resolvers() {
    let f = fixture();
    for r in RESOLVERS {
        let ws = Workspace::open_with(f.ws.path(), true, r).unwrap();
        assert_eq!(read(&ws, "a/b.txt").unwrap(), "inside", "{r:?}");
        assert_eq!(read(&ws, "./a/../a/b.txt").unwrap(), "inside", "{r:?}");
        assert_eq!(read(&ws, "a//b.txt").unwrap(), "inside", "{r:?}");
        assert_eq!(read(&ws, "my..file.txt").unwrap(), "dots", "{r:?}");
        assert_eq!(read(&ws, "ünï cødé 文件.txt").unwrap(), "unicode", "{r:?}");
    }
}

#[test]
fn escapes_are_refused_without_host_paths() {
    let f = fixture();
    let secret = f.outside.path().join("secret.txt");
    let secret = secret.to_str().unwrap();
    symlink(f.outside.path(), f.ws.path().join("out_abs")).unwrap();
    // A relative symlink that climbs out of the workspace.
    let rel_out = format!(
        "../{}",
        f.outside.path().file_name().unwrap().to_str().unwrap()
    );
    symlink(&rel_out, f.ws.path().join("out_rel")).unwrap();
    // A chain: in -> in -> out.
    symlink("a", f.ws.path().join("hop1")).unwrap();
    std::fs::create_dir(f.ws.path().join("a/deeper")).unwrap();
    symlink("../../out_rel", f.ws.path().join("a/deeper/hop2")).unwrap();
    symlink("/proc/self/root", f.ws.path().join("magic")).unwrap();
    for r in RESOLVERS {
        let ws = Workspace::open_with(f.ws.path(), true, r).unwrap();
        for bad in [
            "..",
            "../x",
            "a/../../x",
            "a/../..",
            secret,
            "/etc/passwd",
            "out_abs/secret.txt",
            "out_rel/secret.txt",
            "hop1/deeper/hop2/secret.txt",
            "magic/etc/passwd",
        ] {
            let e = read(&ws, bad).unwrap_err();
            assert_eq!(e.code, "security.path_denied", "{r:?} {bad}: {e}");
            assert!(e.message.contains(bad), "names the given path: {e}");
            if bad != secret {
                assert_no_host_path(&e, &f);
            }
        }
        // The kernel check, not just the lexical one: a symlink out whose
        // name looks harmless.
        let e = ws
            .open_raw("out_rel/secret.txt", OFlags::RDONLY, Mode::empty())
            .unwrap_err();
        assert_eq!(e, Errno::XDEV, "{r:?}");
    }
}

#[test]
fn encoded_forms_are_plain_names() {
    let f = fixture();
    std::fs::create_dir(f.ws.path().join("%2e%2e")).unwrap();
    std::fs::write(f.ws.path().join("%2e%2e/x"), "literal").unwrap();
    std::fs::write(f.ws.path().join("..\\..\\x"), "backslash").unwrap();
    for r in RESOLVERS {
        let ws = Workspace::open_with(f.ws.path(), true, r).unwrap();
        assert_eq!(read(&ws, "%2e%2e/x").unwrap(), "literal");
        assert_eq!(read(&ws, "..\\..\\x").unwrap(), "backslash");
        for inert in [
            "%2e%2e/%2e%2e/etc/passwd",
            "．．/．．/etc/passwd",
            "..%2fetc%2fpasswd",
        ] {
            let e = read(&ws, inert).unwrap_err();
            assert_eq!(e.code, "tool.failed", "{inert}: {e}");
            assert!(e.message.contains("no such file"), "{e}");
        }
        let e = read(&ws, "a/b.txt\0../../etc/passwd").unwrap_err();
        assert_eq!(e.code, "tool.invalid_args");
        let e = read(&ws, "").unwrap_err();
        assert_eq!(e.code, "tool.invalid_args");
        let e = read(&ws, &"x/".repeat(3000)).unwrap_err();
        assert_eq!(e.code, "tool.invalid_args");
    }
}

#[test]
fn inside_symlinks_still_work() {
    let f = fixture();
    symlink("a/b.txt", f.ws.path().join("alias")).unwrap();
    symlink("../a", f.ws.path().join("a/self")).unwrap();
    for r in RESOLVERS {
        let ws = Workspace::open_with(f.ws.path(), true, r).unwrap();
        assert_eq!(read(&ws, "alias").unwrap(), "inside", "{r:?}");
        assert_eq!(read(&ws, "a/self/b.txt").unwrap(), "inside", "{r:?}");
    }
}

#[test]
fn symlink_loops_are_refused() {
    let f = fixture();
    symlink("loop2", f.ws.path().join("loop1")).unwrap();
    symlink("loop1", f.ws.path().join("loop2")).unwrap();
    for r in RESOLVERS {
        let ws = Workspace::open_with(f.ws.path(), true, r).unwrap();
        let e = read(&ws, "loop1").unwrap_err();
        assert_eq!(e.code, "security.path_denied", "{r:?}: {e}");
    }
}

#[test]
fn unrestricted_allows_absolute_paths_through_the_same_code() {
    let f = fixture();
    let secret = f.outside.path().join("secret.txt");
    for r in RESOLVERS {
        let ws = Workspace::open_with(f.ws.path(), false, r).unwrap();
        assert_eq!(read(&ws, secret.to_str().unwrap()).unwrap(), "SECRET");
        assert_eq!(read(&ws, "a/b.txt").unwrap(), "inside");
    }
}

#[test]
fn create_parents_is_anchored() {
    let f = fixture();
    symlink(f.outside.path(), f.ws.path().join("out")).unwrap();
    for r in RESOLVERS {
        let ws = Workspace::open_with(f.ws.path(), true, r).unwrap();
        let (_dir, name) = ws.create_parents("new/deep/file.txt").unwrap();
        assert_eq!(name, "file.txt");
        assert!(f.ws.path().join("new/deep").is_dir());
        let e = ws.create_parents("out/made/file.txt").unwrap_err();
        assert_eq!(e.code, "security.path_denied", "{r:?}: {e}");
        assert!(
            !f.outside.path().join("made").exists(),
            "nothing created outside"
        );
        assert_eq!(
            ws.create_parents("a/..").unwrap_err().code,
            "tool.invalid_args"
        );
        assert_eq!(
            ws.create_parents("dir/").unwrap_err().code,
            "tool.invalid_args"
        );
        std::fs::remove_dir_all(f.ws.path().join("new")).unwrap();
    }
}

#[test]
fn probe_resolves_without_creating() {
    let f = fixture();
    symlink(f.outside.path(), f.ws.path().join("out")).unwrap();
    let ws = Workspace::open(f.ws.path(), true).unwrap();
    assert!(matches!(ws.probe("a/b.txt").unwrap(), Probe::Exists(t) if t == FileType::RegularFile));
    assert_eq!(ws.probe("x/y/z").unwrap(), Probe::Missing { missing: 3 });
    assert_eq!(
        ws.probe("a/new.txt").unwrap(),
        Probe::Missing { missing: 1 }
    );
    assert!(!f.ws.path().join("x").exists());
    assert_eq!(
        ws.probe("out/new").unwrap_err().code,
        "security.path_denied"
    );
    assert_eq!(ws.probe("a/b.txt/c").unwrap_err().code, "tool.failed");
}

#[test]
fn missing_workspace_does_not_name_the_host_path() {
    let e = Workspace::open(Path::new("/nonexistent/exoclaw/ws"), true).unwrap_err();
    assert!(!e.message.contains("nonexistent"), "{e}");
}

/// A thread swaps `dir` (a real directory inside) with a symlink to the
/// outside directory, atomically, as fast as it can, while the resolver opens
/// `dir/secret.txt` in a loop. No open may ever return the outside content.
#[test]
fn swap_race_never_reads_outside() {
    let f = fixture();
    std::fs::create_dir(f.ws.path().join("dir")).unwrap();
    std::fs::write(f.ws.path().join("dir/secret.txt"), "inside").unwrap();
    symlink(f.outside.path(), f.ws.path().join("alt")).unwrap();
    let root = f.ws.path().to_path_buf();
    for r in RESOLVERS {
        let stop = Arc::new(AtomicBool::new(false));
        let flipper = {
            let stop = stop.clone();
            let root = root.clone();
            std::thread::spawn(move || {
                let dir = rustix::fs::open(&root, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())
                    .unwrap();
                let mut flips = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    rustix::fs::renameat_with(
                        &dir,
                        "dir",
                        &dir,
                        "alt",
                        rustix::fs::RenameFlags::EXCHANGE,
                    )
                    .unwrap();
                    flips += 1;
                }
                flips
            })
        };
        let ws = Workspace::open_with(&root, true, r).unwrap();
        let (mut inside, mut refused, mut reads) = (0u32, 0u32, 0u32);
        let started = std::time::Instant::now();
        // Read until both outcomes were seen (the race really ran), at least
        // 20,000 times, for at most 20 seconds.
        while (reads < 20_000 || inside == 0 || refused == 0)
            && started.elapsed() < std::time::Duration::from_secs(20)
        {
            reads += 1;
            match read(&ws, "dir/secret.txt") {
                Ok(s) => {
                    assert_eq!(s, "inside", "{r:?}: read the outside file");
                    inside += 1;
                }
                Err(e) => {
                    assert_no_host_path(&e, &f);
                    refused += 1;
                }
            }
            if reads % 64 == 0 {
                std::thread::yield_now();
            }
        }
        stop.store(true, Ordering::Relaxed);
        let flips = flipper.join().unwrap();
        assert!(
            flips > 0 && inside > 0 && refused > 0,
            "{r:?}: the race ran ({flips} flips, {inside} in, {refused} refused)"
        );
    }
}

/// Where an open fd really points, from the kernel.
fn fd_path(fd: &OwnedFd) -> std::path::PathBuf {
    use std::os::fd::AsRawFd as _;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap()
}

fn path_like() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let atoms = prop::sample::select(vec![
        "..",
        ".",
        "/",
        "a",
        "b",
        "c.txt",
        "out_rel",
        "out_abs",
        "chain",
        "in",
        "magic",
        "loop",
        "%2e%2e",
        "\\",
        "．．",
        "ü",
        "my..file",
        "//",
        "secret.txt",
    ]);
    prop_oneof![
        prop::collection::vec(atoms, 0..12).prop_map(|v| v.join("/")),
        any::<String>(),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, .. Default::default() })]

    /// Whatever the path, both resolvers either refuse it or open something
    /// beneath the root — checked on the opened fd itself.
    #[test]
    fn arbitrary_paths_never_resolve_outside(given in path_like()) {
        let f = fixture_with_links();
        let root = f.ws.path().canonicalize().unwrap();
        for r in RESOLVERS {
            let ws = Workspace::open_with(&root, true, r).unwrap();
            let opened = [
                ws.open_at(&given, OFlags::PATH, Mode::empty()).ok(),
                ws.open_raw(&given, OFlags::PATH, Mode::empty()).ok(),
            ];
            for fd in opened.into_iter().flatten() {
                let real = fd_path(&fd);
                proptest::prop_assert!(real.starts_with(&root), "{:?} ({:?}) -> {}", given, r, real.display());
            }
            let _ = ws.probe(&given);
        }
    }
}

/// One shared fixture for the property: links out, in, chained and magic.
fn fixture_with_links() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let f = fixture();
        let ws = f.ws.path();
        let out = f.outside.path();
        let rel_out = format!("../{}", out.file_name().unwrap().to_str().unwrap());
        symlink(&rel_out, ws.join("out_rel")).unwrap();
        symlink(out, ws.join("out_abs")).unwrap();
        symlink("a", ws.join("in")).unwrap();
        symlink("out_rel", ws.join("chain")).unwrap();
        symlink("/proc/self/root", ws.join("magic")).unwrap();
        symlink("loop", ws.join("loop")).unwrap();
        f
    })
}
