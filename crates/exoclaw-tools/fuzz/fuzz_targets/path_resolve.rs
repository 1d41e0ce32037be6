//! Fuzz the workspace anchor: any path string, resolved with both resolvers
//! (`openat2` and the fd-by-fd walk), never panics and never yields a file
//! outside the workspace — checked on the opened fd itself, through
//! `/proc/self/fd`. The workspace holds symlinks that point out, in, and
//! in-then-out, and a directory beside it holds the "secret".

#![no_main]

use exoclaw_tools::path::{Resolver, Workspace};
use libfuzzer_sys::fuzz_target;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where an open fd really points, from the kernel.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("fd path")
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("ws");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(outside.join("secret"), "SECRET").expect("write");
        std::fs::write(root.join("a/b/f"), "inside").expect("write");
        let link = |target: &str, name: &str| {
            std::os::unix::fs::symlink(target, root.join(name)).expect("symlink");
        };
        link("../outside", "out_rel");
        link(outside.to_str().expect("utf-8"), "out_abs");
        link("a/b", "in");
        link("out_rel", "a/chain");
        link("/proc/self/root", "magic");
        link("loop", "loop");
        let root = root.canonicalize().expect("canonical");
        Fixture { _dir: dir, root }
    })
}

fn check_beneath(root: &Path, ws: &Workspace, given: &str) {
    let flags = rustix::fs::OFlags::PATH;
    for result in [
        ws.open_at(given, flags, rustix::fs::Mode::empty()).ok(),
        ws.open_raw(given, flags, rustix::fs::Mode::empty()).ok(),
    ]
    .into_iter()
    .flatten()
    {
        let real = fd_path(&result);
        assert!(
            real.starts_with(root),
            "{given:?} resolved outside: {}",
            real.display()
        );
    }
    let _ = ws.probe(given);
}

fuzz_target!(|data: &[u8]| {
    let Ok(given) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture();
    for resolver in [Resolver::Openat2, Resolver::Walk] {
        if let Ok(ws) = Workspace::open_with(&f.root, true, resolver) {
            check_beneath(&f.root, &ws, given);
        }
    }
});
