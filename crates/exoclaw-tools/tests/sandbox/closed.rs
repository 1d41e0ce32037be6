//! Fail closed: when any setup step fails the command never runs, on the host
//! or anywhere, and the error names the step.

use crate::{Fixture, init_path};
use exoclaw_tools::sandbox::{AgentRole, EgressProxy, Sandbox, SandboxError, SandboxInit};
use std::time::Duration;

fn step_of(e: &SandboxError) -> &str {
    match e {
        SandboxError::Unavailable { step, .. } => step,
        SandboxError::Spawn(_) => panic!("not a sandbox failure: {e}"),
    }
}

#[tokio::test]
async fn every_failed_step_fails_closed() {
    let f = Fixture::create();
    let marker = std::env::temp_dir().join(crate::unique("ran-on-host"));
    let command = format!("touch /workspace/ran; touch {}", marker.display());
    for step in [
        "start",
        "user namespace",
        "namespaces",
        "mounts",
        "confine",
        "landlock",
    ] {
        let sandbox = Sandbox::new(SandboxInit::new(init_path())).with_injected_failure(step);
        let err = sandbox
            .run(
                &f.policy,
                AgentRole::NonMain,
                &command,
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert_eq!(step_of(&err), step, "{err}");
        let tool = err.to_tool_error();
        assert_eq!(tool.code, "security.sandbox_unavailable");
        assert!(tool.message.contains(step), "{tool}");
    }
    assert!(!f.ws().join("ran").exists());
    assert!(!marker.exists());
}

#[tokio::test]
async fn a_missing_workspace_fails_closed() {
    let mut f = Fixture::create();
    f.policy.workspace = f.ws().join("missing");
    let marker = std::env::temp_dir().join(crate::unique("ran-on-host"));
    let err = f
        .sandbox
        .run(
            &f.policy,
            AgentRole::NonMain,
            &format!("touch {}", marker.display()),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert_eq!(step_of(&err), "workspace", "{err}");
    assert!(!marker.exists());
    // The message names no host path.
    assert!(
        !err.to_string().contains(&*f.ws().to_string_lossy()),
        "{err}"
    );
}

#[tokio::test]
async fn a_tcp_egress_proxy_fails_closed_until_it_can_be_bridged() {
    let mut f = Fixture::create();
    f.policy.network_enabled = true;
    f.policy.proxy = Some(EgressProxy::Tcp("127.0.0.1:8080".parse().unwrap()));
    let err = f
        .sandbox
        .run(
            &f.policy,
            AgentRole::NonMain,
            "true",
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert_eq!(step_of(&err), "egress proxy", "{err}");
}

#[tokio::test]
async fn network_reaches_only_the_egress_proxy_socket() {
    use std::io::{Read, Write};
    let mut f = Fixture::create();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("egress.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    // The sandbox runs as an unprivileged host uid: let it connect.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let proxy = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let n = conn.read(&mut buf).unwrap();
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nproxy")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    f.policy.network_enabled = true;
    f.policy.proxy = Some(EgressProxy::Unix(socket.clone()));
    let out = f
        .run(
            "python3 -c 'import os,urllib.request\n\
print(os.environ[\"HTTPS_PROXY\"])\n\
print(urllib.request.urlopen(\"http://example.com/\", timeout=5).read().decode())'",
        )
        .await;
    let seen = proxy.join().unwrap();
    assert!(seen.starts_with("GET http://example.com/"), "{seen}");
    assert_eq!(
        out.stdout.text(),
        "http://127.0.0.1:3128\nproxy\n",
        "{}",
        out.stderr.text()
    );
}
