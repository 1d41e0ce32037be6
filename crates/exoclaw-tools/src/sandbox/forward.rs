//! The in-sandbox end of the egress bridge: the supervisor listens on
//! `127.0.0.1:<port>` inside the sandbox's (otherwise empty) network
//! namespace and copies each connection to the gateway's egress proxy socket,
//! bind-mounted at [`super::rootfs::PROXY_SOCKET`]. The command sees
//! `HTTP(S)_PROXY=http://127.0.0.1:<port>`; nothing else leaves.
//!
//! Threads are fine here: the supervisor forks nothing after the command.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Most connections bridged at once (each costs two threads, which count
/// against the sandbox's pids limit).
pub(crate) const MAX_CONNECTIONS: usize = 8;

pub(crate) fn start(listener: TcpListener, socket: &Path, _port: u16) {
    let socket = socket.to_path_buf();
    let _ = std::thread::Builder::new()
        .name("egress-accept".into())
        .spawn(move || accept(&listener, &socket));
}

fn accept(listener: &TcpListener, socket: &PathBuf) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(tcp) = conn else { continue };
        if active.load(Ordering::Acquire) >= MAX_CONNECTIONS {
            continue;
        }
        let Ok(unix) = UnixStream::connect(socket) else {
            continue;
        };
        active.fetch_add(1, Ordering::AcqRel);
        let active = Arc::clone(&active);
        let _ = std::thread::Builder::new()
            .name("egress-conn".into())
            .spawn(move || {
                bridge(&tcp, &unix);
                active.fetch_sub(1, Ordering::AcqRel);
            });
    }
}

fn bridge(tcp: &TcpStream, unix: &UnixStream) {
    let (Ok(tcp2), Ok(unix2)) = (tcp.try_clone(), unix.try_clone()) else {
        return;
    };
    let up = std::thread::Builder::new()
        .name("egress-up".into())
        .spawn(move || {
            copy(&tcp2, &unix2);
            let _ = unix2.shutdown(Shutdown::Write);
        });
    copy(unix, tcp);
    let _ = tcp.shutdown(Shutdown::Write);
    if let Ok(up) = up {
        let _ = up.join();
    }
}

fn copy(mut from: impl Read, mut to: impl Write) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}
