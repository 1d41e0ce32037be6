//! Rules for what leaks out of a command (issue 17.1): loader and
//! interpreter injection through the environment, environment dumps
//! (commands and interpreter one-liners), exfiltration (uploads, cloud
//! metadata, the gateway's own port, scans, tunnels, raw sockets), and the
//! shared judgement of program text given as an option value. `misuse.rs`
//! calls these for each resolved program.

use super::RuleId;
use super::resolve::{SHELLS, interpreter};
use super::rules::{Hit, option_values};
use super::value::Val;

/// What a program-rule found: hits, and program text given as an option
/// value that a shell will run (checked in full by the caller).
#[derive(Default)]
pub(crate) struct Found {
    pub hits: Vec<Hit>,
    pub code: Vec<String>,
}

impl Found {
    pub(crate) fn hit(&mut self, rule: RuleId, detail: impl Into<String>) {
        self.hits.push((rule, detail.into()));
    }

    /// A program named by an option: refused when it is a shell, an
    /// interpreter, a network client or shell syntax; its text is checked.
    pub(crate) fn program_value(&mut self, tool: &str, option: &str, v: &Val) {
        if is_program_value(&v.code) {
            self.hit(
                RuleId::OptionExecProgram,
                format!("`{tool} {option}` runs a shell or program: {}", v.text),
            );
        }
        self.code.push(v.code.clone());
    }
}

pub(crate) const NETWORK_CLIENTS: &[&str] = &[
    "nc", "ncat", "netcat", "socat", "telnet", "cryptcat", "pwncat", "sbd",
];
const SCANNERS: &[&str] = &[
    "nmap",
    "masscan",
    "zmap",
    "rustscan",
    "unicornscan",
    "hping3",
    "arp-scan",
    "netdiscover",
    "nbtscan",
    "naabu",
];
const TUNNELS: &[&str] = &[
    "ngrok",
    "cloudflared",
    "localtunnel",
    "lt",
    "bore",
    "frpc",
    "frps",
    "chisel",
    "sshuttle",
    "inlets",
    "pagekite",
    "pagekite.py",
    "zrok",
    "loclx",
    "telebit",
    "gost",
    "iodine",
    "dnscat",
    "dnscat2",
    "ptunnel",
    "ligolo",
    "tunnelto",
    "localxpose",
];
/// Whether option text names a program that gives a shell or a
/// connection: a shell, an interpreter, a network client, or shell syntax.
pub(crate) fn is_program_value(code: &str) -> bool {
    let t = code.trim().trim_start_matches(['!', '|', ' ']);
    if t.contains(['|', ';', '&', '`', '<', '>']) || t.contains("$(") || t.contains("/dev/tcp") {
        return true;
    }
    let first = t.split_whitespace().next().unwrap_or("");
    let base = first.rsplit('/').next().unwrap_or(first);
    SHELLS.contains(&base) || interpreter(base).is_some() || NETWORK_CLIENTS.contains(&base)
}

/// `-o Key=Value`, `-oKey=Value`, `-o 'Key Value'` of ssh, scp and sftp.
pub(crate) fn ssh_options(args: &[Val]) -> Vec<Val> {
    option_values(args, 'o', "")
}

pub(crate) fn split_ssh_option(text: &str) -> (String, &str) {
    let text = text.trim();
    let cut = text.find(['=', ' ']).unwrap_or(text.len());
    let value = text[cut..].trim_start_matches(['=', ' ']);
    (text[..cut].to_ascii_lowercase(), value)
}

/// An assignment `NAME=value` (a prefix, `export`, `env`, `declare`).
pub(crate) fn assignment_rules(name: &str, value: &Val) -> Vec<Hit> {
    let v = value.code.as_str();
    let rule = match name {
        "LD_PRELOAD" | "LD_AUDIT" | "DYLD_INSERT_LIBRARIES" | "LD_DEBUG_OUTPUT" => {
            Some(RuleId::EnvInjectionLoader)
        }
        "LD_LIBRARY_PATH" | "DYLD_LIBRARY_PATH" | "DYLD_FRAMEWORK_PATH" if is_planted_path(v) => {
            Some(RuleId::EnvInjectionLoader)
        }
        "PYTHONSTARTUP" | "PERL5OPT" | "PERL5DB" | "BASH_ENV" | "ENV" | "PROMPT_COMMAND"
        | "PS0" | "SHELLOPTS" | "BASHOPTS" | "LUA_INIT" | "LUA_INIT_5_4" | "LUA_INIT_5_3"
        | "PYTHONHOME" | "ZDOTDIR" => Some(RuleId::EnvInjectionInterpreter),
        "PS1" | "PS2" | "PS4" if v.contains("$(") || v.contains('`') => {
            Some(RuleId::EnvInjectionInterpreter)
        }
        "NODE_OPTIONS"
            if [
                "--require",
                "-r ",
                "-r=",
                "--import",
                "--loader",
                "--experimental-loader",
            ]
            .iter()
            .any(|o| v.contains(o))
                || v.trim() == "-r" =>
        {
            Some(RuleId::EnvInjectionInterpreter)
        }
        "RUBYOPT" if v.contains("-r") || v.contains("-e") => Some(RuleId::EnvInjectionInterpreter),
        "JAVA_TOOL_OPTIONS" | "_JAVA_OPTIONS" | "JDK_JAVA_OPTIONS"
            if v.contains("-javaagent") || v.contains("OnError") || v.contains("OnOutOfMemory") =>
        {
            Some(RuleId::EnvInjectionInterpreter)
        }
        "PYTHONPATH" | "PERL5LIB" | "PERLLIB" | "RUBYLIB" | "NODE_PATH" if is_planted_path(v) => {
            Some(RuleId::EnvInjectionInterpreter)
        }
        "GIT_SSH_COMMAND"
        | "GIT_SSH"
        | "GIT_PROXY_COMMAND"
        | "GIT_EXTERNAL_DIFF"
        | "GIT_ASKPASS"
        | "SSH_ASKPASS"
        | "GIT_CONFIG_PARAMETERS"
        | "GIT_CONFIG_COUNT"
        | "LESSOPEN"
        | "LESSCLOSE" => Some(RuleId::EnvInjectionProgram),
        "PAGER" | "GIT_PAGER" | "MANPAGER" | "SYSTEMD_PAGER" | "EDITOR" | "VISUAL"
        | "GIT_EDITOR" | "BROWSER" | "SUDO_ASKPASS"
            if is_program_value(v) =>
        {
            Some(RuleId::EnvInjectionProgram)
        }
        _ => None,
    };
    rule.map(|r| (r, format!("sets {name}, which loads or runs code")))
        .into_iter()
        .collect()
}

/// A search path with a component in a world-writable or hidden place.
fn is_planted_path(v: &str) -> bool {
    v.split(':').any(|c| {
        let c = c.trim_matches(['"', '\'']);
        ["/tmp", "/var/tmp", "/dev/shm", "/proc/", "/run/user"]
            .iter()
            .any(|p| c.starts_with(p))
            || c.contains("/.")
    })
}

/// `NAME=value` words of `export`, `env`, `declare` and friends.
fn assigned(args: &[Val]) -> Vec<(String, Val)> {
    args.iter()
        .filter_map(|a| {
            let (n, _) = a.text.split_once('=')?;
            let ok = !n.is_empty()
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !n.starts_with(|c: char| c.is_ascii_digit());
            ok.then(|| {
                (
                    n.to_owned(),
                    a.after_eq().unwrap_or_else(|| Val::from_str("")),
                )
            })
        })
        .collect()
}

pub(crate) fn environment(name: &str, args: &[Val], lits: &[&str], ops: &[Val], f: &mut Found) {
    if matches!(
        name,
        "export" | "env" | "declare" | "typeset" | "local" | "readonly" | "setenv"
    ) {
        for (n, v) in assigned(args) {
            f.hits.extend(assignment_rules(&n, &v));
        }
    }
    let dump = match name {
        "env" => {
            // Nothing left to run after options and assignments.
            let mut i = 0;
            let mut split = false;
            while let Some(a) = lits.get(i) {
                if matches!(*a, "-u" | "--unset" | "-C" | "--chdir") {
                    i += 2;
                    continue;
                }
                if a.starts_with("-S") || a.starts_with("--split-string") {
                    split = true;
                }
                if a.starts_with('-') || a.contains('=') {
                    i += 1;
                    continue;
                }
                break;
            }
            i >= lits.len() && !split
        }
        "printenv" => ops.is_empty(),
        "set" => lits.is_empty() || lits == ["-o", "posix"],
        "export" => lits.is_empty() || lits.iter().all(|a| *a == "-p"),
        "declare" | "typeset" => {
            lits.iter()
                .all(|a| a.starts_with('-') && (a.contains('x') || a.contains('p')))
                || lits.is_empty()
        }
        "compgen" => {
            lits.iter().any(|a| matches!(*a, "-v" | "-e"))
                || lits
                    .windows(2)
                    .any(|w| w[0] == "-A" && matches!(w[1], "variable" | "export"))
        }
        _ => false,
    };
    if dump {
        f.hit(
            RuleId::EnvDumpCommand,
            format!("`{name}` prints the environment"),
        );
    }
}

/// Loopback spellings a command could reach the gateway on.
const LOOPBACK: &[&str] = &[
    "localhost",
    "127.",
    "[::1]",
    "[::]",
    "0.0.0.0",
    "ip6-localhost",
    "[0:0:0:0:0:0:0:1]",
    "2130706433",
    "0x7f000001",
    "0177.",
];

fn is_loopback_host(h: &str) -> bool {
    let h = h.to_ascii_lowercase();
    LOOPBACK.iter().any(|l| h.starts_with(l)) || h == "::1" || h == "0"
}

/// Words reaching the cloud metadata service or the gateway's own port.
pub(crate) fn word_rules(v: &Val, gateway_port: Option<u16>) -> Vec<Hit> {
    let mut hits = Vec::new();
    let lower = v.code.to_ascii_lowercase();
    const METADATA: &[&str] = &[
        "169.254.169.254",
        "169.254.170.2",
        "metadata.google.internal",
        "metadata.goog",
        "fd00:ec2::254",
        "100.100.100.200",
        "instance-data.ec2.internal",
        "2852039166",
        "0xa9fea9fe",
        "0251.0376.0251.0376",
        "0xa9.0xfe.0xa9.0xfe",
        "metadata.azure.internal",
        "169.254.169.123",
    ];
    if METADATA.iter().any(|m| lower.contains(m)) {
        hits.push((
            RuleId::ExfiltrationMetadata,
            format!("reaches the cloud metadata service: {}", v.text),
        ));
    }
    if let Some(port) = gateway_port {
        let port = format!(":{port}");
        let mut rest = lower.as_str();
        if let Some(i) = rest.find("://") {
            rest = &rest[i + 3..];
        }
        let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host_port = host_port.rsplit('@').next().unwrap_or(host_port);
        if host_port.ends_with(&port)
            && is_loopback_host(&host_port[..host_port.len() - port.len()])
        {
            hits.push((
                RuleId::ExfiltrationGatewayPort,
                format!("reaches the gateway's own port: {}", v.text),
            ));
        }
    }
    hits
}

pub(crate) fn exfiltration(
    name: &str,
    args: &[Val],
    lits: &[&str],
    ops: &[Val],
    gateway_port: Option<u16>,
    f: &mut Found,
) {
    match name {
        "curl" | "curlie" => {
            if !option_values(args, 'T', "upload-file").is_empty() {
                f.hit(RuleId::ExfiltrationUpload, "`curl -T` uploads a file");
            }
            for v in option_values(args, 'F', "form") {
                if v.text.contains("=@") || v.text.contains("=<") {
                    f.hit(
                        RuleId::ExfiltrationUpload,
                        format!("`curl -F {}` uploads a file", v.text),
                    );
                }
            }
            let data = option_values(args, 'd', "data")
                .into_iter()
                .chain(option_values(args, '\0', "data-binary"))
                .chain(option_values(args, '\0', "data-ascii"))
                .chain(option_values(args, '\0', "json"))
                .chain(option_values(args, '\0', "data-urlencode"));
            for v in data {
                let t = v.text.as_str();
                let named = t
                    .split_once('@')
                    .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                if t.starts_with('@') || named {
                    f.hit(
                        RuleId::ExfiltrationUpload,
                        format!("`curl` sends the file {t}"),
                    );
                }
            }
        }
        "wget" | "wget2"
            if !option_values(args, '\0', "post-file").is_empty()
                || !option_values(args, '\0', "body-file").is_empty() =>
        {
            f.hit(
                RuleId::ExfiltrationUpload,
                "`wget --post-file` uploads a file",
            );
        }
        "http" | "https" | "xh" | "xhs" if lits.iter().skip(1).any(|a| is_httpie_file(a)) => {
            f.hit(
                RuleId::ExfiltrationUpload,
                format!("`{name}` uploads a file"),
            );
        }
        "scp" | "rsync" | "sftp" => {
            if ops.len() >= 2
                && let Some(last) = ops.last()
                && is_remote(&last.text)
            {
                f.hit(
                    RuleId::ExfiltrationUpload,
                    format!("`{name}` copies files to another host: {}", last.text),
                );
            }
        }
        _ => {}
    }
    if SCANNERS.contains(&name) {
        f.hit(
            RuleId::ExfiltrationScan,
            format!("`{name}` scans the network"),
        );
    }
    let nc = NETWORK_CLIENTS.contains(&name) && name != "socat" || name.starts_with("nc.");
    let nc_flags: Vec<char> = lits
        .iter()
        .filter(|a| a.starts_with('-') && !a.starts_with("--"))
        .flat_map(|a| a.chars().skip(1))
        .collect();
    // `nc -z localhost 8080` (is my server up?) stays allowed: one port
    // on loopback.
    let local_probe = ops.len() == 2
        && is_loopback_host(&ops[0].text)
        && ops[1].text.chars().all(|c| c.is_ascii_digit());
    if nc && nc_flags.contains(&'z') && !local_probe {
        f.hit(RuleId::ExfiltrationScan, format!("`{name} -z` scans ports"));
    } else if nc
        && !nc_flags.contains(&'z')
        && !nc_flags.contains(&'l')
        && !lits.contains(&"--listen")
        && !ops.is_empty()
    {
        f.hit(
            RuleId::ExfiltrationRawSocket,
            format!("`{name}` opens a raw connection"),
        );
    }
    if name == "socat" && ops.len() >= 2 {
        f.hit(
            RuleId::ExfiltrationTunnel,
            "`socat` relays between two endpoints",
        );
    }
    if TUNNELS.contains(&name)
        || (name == "tailscale" && ops.first().is_some_and(|o| o.text == "funnel"))
    {
        f.hit(
            RuleId::ExfiltrationTunnel,
            format!("`{name}` exposes or tunnels a connection"),
        );
    }
    if name == "ssh" {
        let flags: Vec<char> = lits
            .iter()
            .filter(|a| a.starts_with('-') && !a.starts_with("--"))
            .flat_map(|a| a.chars().skip(1).take_while(|c| c.is_ascii_alphabetic()))
            .collect();
        let forward_opt = ssh_options(args).iter().any(|o| {
            let (k, _) = split_ssh_option(&o.text);
            matches!(k.as_str(), "remoteforward" | "dynamicforward" | "tunnel")
        });
        if flags.iter().any(|c| matches!(c, 'R' | 'D' | 'w')) || forward_opt {
            f.hit(
                RuleId::ExfiltrationTunnel,
                "`ssh -R/-D/-w` opens a tunnel or proxy",
            );
        }
    }
    // `nc localhost 18789`: host and port as separate words.
    let client = NETWORK_CLIENTS.contains(&name)
        || matches!(name, "curl" | "wget" | "http" | "xh" | "ssh" | "telnet")
        || name.starts_with("nc.");
    if let Some(port) = gateway_port
        && client
        && lits.iter().any(|a| is_loopback_host(a))
        && lits.iter().any(|a| *a == port.to_string())
    {
        f.hit(
            RuleId::ExfiltrationGatewayPort,
            "connects to the gateway's own port",
        );
    }
}

/// An HTTPie item that sends a file: `@file`, `field@file`, `field=@file`.
fn is_httpie_file(a: &str) -> bool {
    a.starts_with('@')
        || a.split_once('@').is_some_and(|(n, _)| {
            !n.is_empty() && !n.contains(['/', ':', '.']) && !n.ends_with('=')
        })
        || a.contains("=@")
}

/// `host:path`, `user@host:path` or `rsync://...`.
fn is_remote(t: &str) -> bool {
    if t.starts_with("rsync://") {
        return true;
    }
    match t.find(':') {
        Some(i) => !t[..i].contains('/') && i > 0,
        None => false,
    }
}

/// Interpreter one-liners: spawning a shell or a program, opening a raw
/// socket, dumping the environment. `code` is the original text (case
/// matters for Ruby's `ENV` and awk's `ENVIRON`).
pub(crate) fn code_rules(lang: &str, code: &str) -> Vec<Hit> {
    let c = code.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| c.contains(w));
    let mut hits = Vec::new();
    let generic = any(&[
        "/bin/sh",
        "/bin/bash",
        "/bin/zsh",
        "/bin/dash",
        "bash -i",
        "sh -i",
        "cmd.exe",
    ]);
    let shell = generic
        || match lang {
            "python" => any(&[
                "os.system",
                "subprocess",
                "pty.spawn",
                "os.exec",
                "os.spawn",
                "os.popen",
                "os.posix_spawn",
                "commands.get",
                "pexpect",
                "execl(",
                "execv(",
                "execvp(",
                "execlp(",
                "execve(",
            ]),
            "perl" => any(&["system", "exec", "qx", "`", "open3", "open2"]),
            "ruby" => any(&["system", "exec", "`", "%x", "spawn", "popen", "open3"]),
            "node" => any(&["child_process", "execsync", "spawnsync", "process.binding"]),
            "php" => any(&[
                "system(",
                "exec(",
                "shell_exec",
                "passthru",
                "popen",
                "proc_open",
                "pcntl_exec",
                "`",
            ]),
            "awk" => any(&["system(", "| getline", "|getline", "|&", "| \"", "|\""]),
            "lua" => any(&["os.execute", "io.popen"]),
            "tcl" => any(&["exec "]),
            "r" => any(&["system(", "system2("]),
            _ => false,
        };
    if shell {
        hits.push((
            RuleId::InterpreterShell,
            format!("a {lang} one-liner that runs a shell or a program"),
        ));
    }
    if any(&[
        "socket",
        "fsockopen",
        "tcpsocket",
        "io::socket",
        "net.connect",
        "require('net')",
        "require(\"net\")",
        "createconnection",
        "/inet/tcp",
        "/inet/udp",
        "tcpclient",
        "pfsockopen",
        "stream_socket_client",
    ]) {
        hits.push((
            RuleId::InterpreterSocket,
            format!("a {lang} one-liner that opens a network socket"),
        ));
    }
    if dumps_environment(lang, code) {
        hits.push((
            RuleId::EnvDumpInterpreter,
            format!("a {lang} one-liner that prints the environment"),
        ));
    }
    hits
}

/// The whole environment read at once (a single named variable is not).
fn dumps_environment(lang: &str, code: &str) -> bool {
    // Each occurrence of `needle` not followed by one of `single`.
    let whole = |needle: &str, single: &[&str]| {
        code.match_indices(needle).any(|(i, _)| {
            let before_ok = code[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
            let after = code[i + needle.len()..].trim_start();
            before_ok && !single.iter().any(|s| after.starts_with(s))
        })
    };
    match lang {
        "python" => whole("os.environ", &["[", ".get(", ".setdefault(", ".pop("]),
        "node" => whole("process.env", &[".", "["]) || code.contains("process.env)"),
        "ruby" => whole("ENV", &["[", ".fetch(", ".key?(", ".fetch", ".include?("]),
        "perl" => code.contains("%ENV"),
        "php" => code.contains("getenv()") || code.contains("$_ENV") || code.contains("$_SERVER"),
        "awk" => whole("ENVIRON", &["["]),
        "lua" => false,
        _ => false,
    }
}
