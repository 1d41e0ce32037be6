//! The deny rules, as tables and small functions over resolved programs and
//! word values: what a program is (downloader, decoder, network client),
//! what it writes, which names and paths are refused. `analyze.rs` decides
//! where each applies.

use super::RuleId;
use super::value::{Tok, Val, could_match, rule_glob};
use std::sync::LazyLock;

pub(crate) type Hit = (RuleId, String);

const PRIVILEGE: &[&str] = &[
    "sudo",
    "su",
    "doas",
    "pkexec",
    "run0",
    "sudoedit",
    "runuser",
    "visudo",
    "machinectl",
    "setpriv",
    "newuidmap",
    "newgidmap",
];
const ACCOUNTS: &[&str] = &[
    "useradd", "usermod", "userdel", "adduser", "deluser", "groupadd", "groupmod", "groupdel",
    "gpasswd", "chpasswd", "passwd", "chage", "newusers", "vipw", "vigr",
];
const CONTAINER: &[&str] = &[
    "nsenter",
    "unshare",
    "mount",
    "umount",
    "chroot",
    "pivot_root",
    "docker",
    "dockerd",
    "podman",
    "nerdctl",
    "ctr",
    "crictl",
    "runc",
    "crun",
    "lxc",
    "lxc-attach",
    "lxc-execute",
    "capsh",
    "systemd-nspawn",
    "buildah",
    "switch_root",
];
const KERNEL: &[&str] = &["insmod", "modprobe", "rmmod", "kexec", "debugfs", "kmod"];
const DISK: &[&str] = &[
    "mke2fs",
    "mkswap",
    "fdisk",
    "sfdisk",
    "cfdisk",
    "parted",
    "gdisk",
    "sgdisk",
    "blkdiscard",
    "wipefs",
    "zpool",
    "lvremove",
    "vgremove",
    "pvremove",
    "cryptsetup",
];
const MINERS: &[&str] = &[
    "xmrig",
    "xmr-stak",
    "minerd",
    "cpuminer",
    "cgminer",
    "bfgminer",
    "ethminer",
    "ccminer",
    "t-rex",
    "nbminer",
    "lolminer",
    "nanominer",
    "phoenixminer",
    "srbminer",
    "teamredminer",
    "gminer",
    "nheqminer",
    "claymore",
    "ewbf",
];
const DOWNLOADERS: &[&str] = &[
    "curl",
    "wget",
    "fetch",
    "aria2c",
    "lwp-download",
    "lwp-request",
    "GET",
    "http",
    "https",
    "axel",
    "tftp",
    "ftp",
    "wget2",
    "curlie",
    "xh",
];
const NETWORK: &[&str] = &[
    "nc", "ncat", "netcat", "socat", "telnet", "cryptcat", "sbd", "pwncat",
];

/// Rules on the program itself and its own arguments.
pub(crate) fn program_rules(name: &str, argv: &[Val]) -> Vec<Hit> {
    let mut hits = Vec::new();
    let args = &argv[1.min(argv.len())..];
    let lower = name.to_ascii_lowercase();
    if PRIVILEGE.contains(&name) {
        hits.push((
            RuleId::PrivilegeEscalation,
            format!("`{name}` changes privileges"),
        ));
    }
    if ACCOUNTS.contains(&name) {
        hits.push((
            RuleId::PrivilegeAccounts,
            format!("`{name}` changes user accounts"),
        ));
    }
    if name == "setcap" {
        hits.push((
            RuleId::PrivilegeSetcap,
            "`setcap` grants file capabilities".into(),
        ));
    }
    if CONTAINER.contains(&name) || name.starts_with("lxc-") {
        hits.push((
            RuleId::ContainerEscapeTool,
            format!("`{name}` can leave the sandbox"),
        ));
    }
    if KERNEL.contains(&name)
        || (name == "sysctl" && args.iter().any(|a| a.text == "-w" || a.text.contains('=')))
    {
        hits.push((
            RuleId::ContainerEscapeKernel,
            format!("`{name}` changes the kernel"),
        ));
    }
    if DISK.contains(&name) || name.starts_with("mkfs") {
        hits.push((
            RuleId::DestructiveDisk,
            format!("`{name}` destroys disks or filesystems"),
        ));
    }
    if MINERS.iter().any(|m| lower.starts_with(m)) {
        hits.push((
            RuleId::MinerBinary,
            format!("`{name}` is a cryptocurrency miner"),
        ));
    }
    if name == "shopt" && args.iter().any(|a| a.code.contains("expand_aliases")) {
        hits.push((
            RuleId::DynamicCommand,
            "expanded aliases hide what a command name runs".into(),
        ));
    }
    match name {
        "rm" | "chmod" | "chown" | "chgrp" if has_arg(args, "--no-preserve-root") => {
            hits.push((RuleId::DestructiveRmRoot, "--no-preserve-root".into()));
        }
        _ => {}
    }
    match name {
        "rm" if is_recursive(args) => {
            for v in operands(args) {
                if is_root_like(&v) {
                    hits.push((RuleId::DestructiveRmRoot, format!("`rm -r {}`", v.text)));
                }
            }
        }
        "find"
            if args
                .iter()
                .any(|a| a.text == "-delete" || a.text == "-exec" || a.text == "-execdir") =>
        {
            let deletes = args
                .iter()
                .any(|a| a.text == "-delete" || a.text == "rm" || a.text == "shred");
            let roots = args.iter().take_while(|a| !a.text.starts_with('-'));
            for v in roots {
                if deletes && is_root_like(v) {
                    hits.push((
                        RuleId::DestructiveRmRoot,
                        format!("`find {} -delete`", v.text),
                    ));
                }
            }
        }
        "shred" => {
            for v in operands(args) {
                if is_root_like(&v) || could_match(&v.toks, &rule_glob("/dev/*")) {
                    hits.push((RuleId::DestructiveShred, format!("`shred {}`", v.text)));
                }
            }
        }
        "chmod" => {
            if let Some(mode) = operands(args).first().filter(|m| is_setuid_mode(&m.text)) {
                hits.push((
                    RuleId::PrivilegeSetuid,
                    format!("mode {} sets setuid/setgid", mode.text),
                ));
            }
        }
        "install" => {
            let mode = option_values(args, 'm', "mode");
            if let Some(m) = mode.iter().find(|m| is_setuid_mode(&m.text)) {
                hits.push((
                    RuleId::PrivilegeSetuid,
                    format!("mode {} sets setuid/setgid", m.text),
                ));
            }
        }
        "nc" | "ncat" | "netcat" | "nc.traditional" | "nc.openbsd" => {
            let exec = args.iter().filter_map(Val::literal).any(|a| {
                matches!(a, "--exec" | "--sh-exec" | "--lua-exec")
                    || a.starts_with("--exec=")
                    || a.starts_with("--sh-exec=")
                    || (a.starts_with('-')
                        && !a.starts_with("--")
                        && (a.contains('e') || a.contains('c')))
            });
            if exec {
                hits.push((
                    RuleId::ReverseShellNcExec,
                    format!("`{name}` with a program to execute"),
                ));
            }
        }
        "socat" => {
            let exec = args.iter().any(|a| {
                let t = a.code.to_ascii_lowercase();
                t.contains("exec:") || t.contains("system:")
            });
            if exec {
                hits.push((
                    RuleId::ReverseShellSocatExec,
                    "`socat` connecting a program".into(),
                ));
            }
        }
        _ => {}
    }
    hits
}

fn has_arg(args: &[Val], s: &str) -> bool {
    args.iter().any(|a| a.text == s)
}

fn is_recursive(args: &[Val]) -> bool {
    args.iter().filter_map(Val::literal).any(|a| {
        // GNU accepts any unambiguous prefix: `--rec`, `--recur`.
        (a.starts_with("--r") && "--recursive".starts_with(a))
            || (a.starts_with('-') && !a.starts_with("--") && (a.contains('r') || a.contains('R')))
    })
}

/// Arguments that are not options (everything after `--`).
pub(crate) fn operands(args: &[Val]) -> Vec<Val> {
    let mut out = Vec::new();
    let mut opts = true;
    for a in args {
        if opts && a.text == "--" {
            opts = false;
            continue;
        }
        if opts
            && a.literal()
                .is_some_and(|s| s.starts_with('-') && s.len() > 1)
        {
            continue;
        }
        out.push(a.clone());
    }
    out
}

/// Values of `-x VALUE`, `-xVALUE`, `--long VALUE`, `--long=VALUE`.
pub(crate) fn option_values(args: &[Val], short: char, long: &str) -> Vec<Val> {
    let mut out = Vec::new();
    let long_eq = format!("--{long}=");
    let long_flag = format!("--{long}");
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let t = a.literal().unwrap_or("");
        if t == long_flag || (t.len() == 2 && t.starts_with('-') && t.ends_with(short)) {
            if let Some(v) = args.get(i + 1) {
                out.push(v.clone());
            }
            i += 2;
            continue;
        }
        if let Some(v) = t.strip_prefix(&long_eq) {
            out.push(Val::from_str(v));
        } else if t.len() > 2
            && t.starts_with('-')
            && !t.starts_with("--")
            && t.chars().nth(1) == Some(short)
        {
            out.push(Val::from_str(&t[2..]));
        }
        i += 1;
    }
    out
}

/// A numeric mode with the setuid/setgid bit, or a symbolic `+s`/`=s`.
fn is_setuid_mode(mode: &str) -> bool {
    if mode.chars().all(|c| c.is_digit(8)) {
        let digits: Vec<u32> = mode.chars().filter_map(|c| c.to_digit(8)).collect();
        return digits.len() >= 4 && digits[digits.len() - 4] & 0o6 != 0;
    }
    mode.split(',').any(|clause| {
        clause
            .find(['+', '='])
            .is_some_and(|i| clause[i..].contains('s'))
    })
}

/// `/`, a top-level directory (`/usr`, `/*`), or the home directory.
pub(crate) fn is_root_like(v: &Val) -> bool {
    let mut toks = v.toks.clone();
    let had_slash = toks.contains(&Tok::Char('/'));
    while matches!(toks.last(), Some(Tok::Char('/'))) && toks.len() > 1 {
        toks.pop();
    }
    if matches!(toks.last(), Some(Tok::Star | Tok::StarNoDot)) {
        toks.pop();
        while matches!(toks.last(), Some(Tok::Char('/'))) && toks.len() > 1 {
            toks.pop();
        }
    }
    // `"$DIR/"` or `$DIR/*` where DIR may be empty: the root.
    if toks == [Tok::Any] && had_slash {
        return true;
    }
    let code = v.code.trim_end_matches('*').trim_end_matches('/');
    if matches!(code, "~" | "$HOME" | "${HOME}" | "/root" | "/home") {
        return true;
    }
    if toks.first() != Some(&Tok::Char('/')) {
        return false;
    }
    toks == [Tok::Char('/')] || could_match(&toks, &[Tok::Char('/'), Tok::Star])
}

/// Downloads from the network (its output may be code).
pub(crate) fn is_downloader(name: &str, argv: &[Val]) -> bool {
    DOWNLOADERS.contains(&name)
        || (matches!(name, "lynx" | "w3m" | "links" | "elinks")
            && argv
                .iter()
                .any(|a| a.text.starts_with("-dump") || a.text.starts_with("-source")))
}

/// A network client whose stream could carry a shell (`nc`, `socat`,
/// `telnet`, `openssl s_client`).
pub(crate) fn is_network_client(name: &str, argv: &[Val]) -> bool {
    NETWORK.contains(&name)
        || name.starts_with("nc.")
        || (name == "openssl" && argv.iter().any(|a| a.text == "s_client"))
}

/// Decodes or unpacks its input (its output may be hidden code).
pub(crate) fn is_decoder(name: &str, argv: &[Val]) -> bool {
    let args = &argv[1.min(argv.len())..];
    let flag = |short: char, long: &str| {
        args.iter().filter_map(Val::literal).any(|a| {
            a == format!("--{long}")
                || (a.starts_with('-') && !a.starts_with("--") && a.contains(short))
        })
    };
    match name {
        "base64" | "base32" | "basenc" => flag('d', "decode") || flag('D', "decode"),
        "xxd" => flag('r', "revert"),
        "openssl" => {
            flag('d', "decrypt")
                && args
                    .iter()
                    .any(|a| matches!(a.text.as_str(), "enc" | "base64" | "aes-256-cbc"))
        }
        "uudecode" | "gunzip" | "zcat" | "bunzip2" | "bzcat" | "unxz" | "xzcat" | "unlzma"
        | "unzstd" | "zstdcat" | "rev" | "tr" | "uncompress" | "lzcat" => true,
        "gzip" | "bzip2" | "xz" | "lzma" | "zstd" => flag('d', "decompress"),
        "printf" => args.first().is_some_and(|f| has_escape(&f.code)),
        "echo" => flag('e', "") && args.iter().any(|a| has_escape(&a.code)),
        _ => false,
    }
}

fn has_escape(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(2)
        .any(|w| w[0] == b'\\' && matches!(w[1], b'x' | b'0'..=b'7' | b'u' | b'U'))
}

/// The text `echo`/`printf` print, when known (a pipe into a shell runs it).
pub(crate) fn printed_text(name: &str, argv: &[Val]) -> Option<String> {
    let args = &argv[1.min(argv.len())..];
    let words: Vec<&Val> = match name {
        "echo" => args
            .iter()
            .skip_while(|a| matches!(a.text.as_str(), "-n" | "-e" | "-E" | "-ne" | "-en"))
            .collect(),
        "printf" => args.iter().collect(),
        _ => return None,
    };
    let texts: Option<Vec<&str>> = words.iter().map(|w| w.literal()).collect();
    Some(texts?.join(" ").replace("\\n", "\n"))
}

/// Files a downloader writes (`-o F`, `-O`, `wget URL`), by basename.
pub(crate) fn download_outputs(name: &str, argv: &[Val]) -> Vec<String> {
    let args = &argv[1.min(argv.len())..];
    let url_names = || -> Vec<String> {
        args.iter()
            .filter_map(Val::literal)
            .filter(|a| a.contains("://"))
            .filter_map(|u| {
                let path = u.split(['?', '#']).next().unwrap_or(u);
                let base = path.rsplit('/').next().unwrap_or("");
                (!base.is_empty() && !path.ends_with("//")).then(|| base.to_owned())
            })
            .collect()
    };
    let mut out: Vec<String> = match name {
        "curl" | "curlie" => {
            let mut o: Vec<String> = option_values(args, 'o', "output")
                .iter()
                .map(|v| basename(&v.text))
                .collect();
            if args.iter().any(|a| {
                a.text == "-O"
                    || a.text == "--remote-name"
                    || a.text.starts_with("-O") && a.text.len() > 2 && !a.text.contains('/')
            }) {
                o.extend(url_names());
            }
            o
        }
        "wget" | "wget2" => {
            let o: Vec<String> = option_values(args, 'O', "output-document")
                .iter()
                .map(|v| basename(&v.text))
                .collect();
            if o.is_empty() { url_names() } else { o }
        }
        "aria2c" | "axel" | "fetch" | "lwp-download" => {
            let o: Vec<String> = option_values(args, 'o', "output")
                .iter()
                .map(|v| basename(&v.text))
                .collect();
            if o.is_empty() { url_names() } else { o }
        }
        _ => Vec::new(),
    };
    out.retain(|n| !n.is_empty() && n != "-");
    out
}

pub(crate) fn basename(s: &str) -> String {
    s.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_owned()
}

/// The files a program writes (or removes), from its arguments.
pub(crate) fn write_targets(name: &str, argv: &[Val]) -> Vec<Val> {
    let args = &argv[1.min(argv.len())..];
    let ops = operands(args);
    match name {
        "cp" | "install" | "ln" | "rsync" | "scp" | "link" => {
            let mut t = option_values(args, 't', "target-directory");
            if t.is_empty() && ops.len() >= 2 {
                t.extend(ops.last().cloned());
            }
            t
        }
        "mv" => {
            let mut t = option_values(args, 't', "target-directory");
            t.extend(ops);
            t
        }
        "tee" | "touch" | "truncate" | "mkdir" | "rmdir" | "rm" | "unlink" | "shred"
        | "setfacl" | "mknod" | "mkfifo" => ops,
        "chmod" | "chown" | "chgrp" | "chattr" => ops.into_iter().skip(1).collect(),
        "dd" => args
            .iter()
            .filter_map(|a| a.text.strip_prefix("of=").map(|_| a.after_eq()))
            .flatten()
            .collect(),
        "sed" | "perl"
            if args
                .iter()
                .any(|a| a.text.starts_with("-i") || a.text.starts_with("--in-place")) =>
        {
            let scripted = args.iter().any(|a| a.text == "-e" || a.text == "-f");
            ops.into_iter().skip(usize::from(!scripted)).collect()
        }
        "curl" | "curlie" => {
            let mut t = option_values(args, 'o', "output");
            t.extend(option_values(args, '\0', "output-dir"));
            t
        }
        "wget" | "wget2" => {
            let mut t = option_values(args, 'O', "output-document");
            t.extend(option_values(args, 'P', "directory-prefix"));
            t
        }
        "tar" => option_values(args, 'C', "directory"),
        "unzip" => option_values(args, 'd', ""),
        "sort" => option_values(args, 'o', "output"),
        _ => Vec::new(),
    }
}

static SYSTEM_WRITE_GLOBS: LazyLock<Vec<Vec<Tok>>> = LazyLock::new(|| compile(SYSTEM_WRITE));
static SECRET_PATH_GLOBS: LazyLock<Vec<Vec<Tok>>> = LazyLock::new(|| compile(SECRET_PATHS));
static ESCAPE_PATH_GLOBS: LazyLock<Vec<Vec<Tok>>> = LazyLock::new(|| compile(ESCAPE_PATHS));

fn compile(table: &[&str]) -> Vec<Vec<Tok>> {
    table.iter().map(|g| rule_glob(g)).collect()
}

/// Whether `abs` could be one of the paths of a rule table. A cheap first
/// check skips rules whose first literal characters `abs` cannot start with.
fn matches_any(abs: &[Tok], globs: &[Vec<Tok>]) -> bool {
    globs.iter().any(|g| {
        let clash = abs
            .iter()
            .zip(g.iter())
            .take_while(|(a, b)| matches!(a, Tok::Char(_)) && matches!(b, Tok::Char(_)))
            .any(|(a, b)| a != b);
        !clash && could_match(abs, g)
    })
}

/// Absolute paths a write must never reach.
const SYSTEM_WRITE: &[&str] = &[
    "/",
    "/etc",
    "/etc/*",
    "/usr",
    "/usr/*",
    "/bin",
    "/bin/*",
    "/sbin",
    "/sbin/*",
    "/lib*",
    "/boot",
    "/boot/*",
    "/sys",
    "/sys/*",
    "/proc",
    "/proc/*",
    "/root/.ssh",
    "/root/.ssh/*",
    "/var/spool/cron*",
    "/var/log",
    "/var/log/*",
    "/opt",
    "/srv",
    "/var/lib/dpkg/*",
    "/var/lib/apt/*",
    "*/.ssh/authorized_keys*",
    "*/.bashrc",
    "*/.bash_profile",
    "*/.profile",
    "*/.zshrc",
    "*/.config/autostart/*",
];

/// Device files that may be written.
fn is_harmless_device(v: &Val) -> bool {
    v.literal().is_some_and(|p| {
        matches!(
            p,
            "/dev/null"
                | "/dev/stdout"
                | "/dev/stderr"
                | "/dev/stdin"
                | "/dev/tty"
                | "/dev/zero"
                | "/dev/full"
                | "/dev/random"
                | "/dev/urandom"
        ) || p.starts_with("/dev/fd/")
            || p.starts_with("/dev/shm/")
            || p.starts_with("/dev/pts/")
    })
}

/// Rules for an (absolute, normalised) path that is written.
pub(crate) fn write_rules(v: &Val, abs: &[Tok]) -> Vec<Hit> {
    let mut hits = Vec::new();
    let network = v.code.contains("/dev/tcp/") || v.code.contains("/dev/udp/");
    if network {
        // Reported as a reverse shell by `any_word_rules`.
    } else if could_match(abs, &rule_glob("/dev/*")) && !is_harmless_device(v) {
        hits.push((
            RuleId::DestructiveDeviceWrite,
            format!("writes the device {}", v.text),
        ));
    } else if matches_any(abs, &SYSTEM_WRITE_GLOBS) {
        hits.push((
            RuleId::SystemWrite,
            format!("writes the system path {}", v.text),
        ));
    }
    hits
}

/// Absolute paths whose reading leaks secrets.
const SECRET_PATHS: &[&str] = &[
    "/etc/shadow*",
    "/etc/gshadow*",
    "/etc/sudoers*",
    "/etc/ssh/ssh_host_*",
    "/etc/security/opasswd",
    "/proc/*/environ",
    "/proc/*/mem",
    "/proc/kcore",
    "/dev/mem",
    "/dev/kmem",
    "/dev/port",
];
/// Name fragments that mark secrets wherever they are.
const SECRET_NAMES: &[&str] = &[
    ".ssh/",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    ".gnupg",
    ".aws/credentials",
    ".netrc",
    ".git-credentials",
    ".docker/config.json",
    ".kube/config",
    ".pgpass",
];
/// Name fragments of the gateway's own files.
const GATEWAY_NAMES: &[&str] = &["exoclaw.db"];
/// Paths that reach outside a container.
const ESCAPE_PATHS: &[&str] = &[
    "/proc/1/*",
    "/proc/*/root",
    "/proc/*/root/*",
    "/proc/*/ns/*",
    "/proc/sysrq-trigger",
    "/proc/sys/kernel/*",
    "/sys/kernel/*",
    "/sys/fs/cgroup/*",
];
/// Name fragments of container and kernel escape hatches.
const ESCAPE_NAMES: &[&str] = &[
    "docker.sock",
    "containerd.sock",
    "podman.sock",
    "crio.sock",
    "release_agent",
    "core_pattern",
];

/// Rules for any word (an argument, a redirection target, an option value).
pub(crate) fn any_word_rules(v: &Val, abs: Option<&[Tok]>) -> Vec<Hit> {
    let mut hits = Vec::new();
    let known = v.known_text();
    let lower = v.code.to_ascii_lowercase();
    if lower.contains("/dev/tcp/") || lower.contains("/dev/udp/") || lower.starts_with("/dev/tcp") {
        hits.push((
            RuleId::ReverseShellDevTcp,
            "uses bash's /dev/tcp network device".into(),
        ));
    }
    if ["stratum+", "stratum2+", "stratum://"]
        .iter()
        .any(|s| lower.contains(s))
    {
        hits.push((RuleId::MinerStratum, "names a mining pool (stratum)".into()));
    }
    let name_hit = |names: &[&str]| names.iter().any(|n| known.contains(n));
    if name_hit(SECRET_NAMES) || is_component(&known, ".ssh") {
        hits.push((
            RuleId::SecretReadPath,
            format!("touches secrets: {}", v.text),
        ));
    } else if name_hit(GATEWAY_NAMES) || is_component(&known, ".env") {
        hits.push((
            RuleId::SecretReadGateway,
            format!("touches the gateway's files: {}", v.text),
        ));
    }
    if abs.is_none() && v.toks.first() == Some(&Tok::Any) && rebuilt_secret_path(v) {
        hits.push((RuleId::SecretReadPath, format!("reads secrets: {}", v.text)));
    }
    if let Some(abs) = abs {
        if matches_any(abs, &SECRET_PATH_GLOBS) {
            hits.push((RuleId::SecretReadPath, format!("reads secrets: {}", v.text)));
        }
        if matches_any(abs, &ESCAPE_PATH_GLOBS) {
            hits.push((
                RuleId::ContainerEscapePath,
                format!("reaches outside the sandbox: {}", v.text),
            ));
        }
    }
    if name_hit(ESCAPE_NAMES) {
        hits.push((
            RuleId::ContainerEscapePath,
            format!("reaches outside the sandbox: {}", v.text),
        ));
    }
    hits
}

/// `${p%passwd}shadow`: an expansion followed by text that completes a
/// secret path. The literal tail must be a distinctive part of the rule
/// (at least 4 characters of it), so `${f%.png}.jpg` stays allowed.
fn rebuilt_secret_path(v: &Val) -> bool {
    let tail: String = v
        .toks
        .iter()
        .rev()
        .take_while(|t| matches!(t, Tok::Char(_)))
        .filter_map(|t| match t {
            Tok::Char(c) => Some(*c),
            _ => None,
        })
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    tail.chars().count() >= 4
        && SECRET_PATHS
            .iter()
            .zip(SECRET_PATH_GLOBS.iter())
            .any(|(text, glob)| text.contains(tail.as_str()) && could_match(&v.toks, glob))
}

/// Whether `component` is a whole path component of `path`.
fn is_component(path: &str, component: &str) -> bool {
    path.split('/').any(|c| c == component)
}

/// Rules for interpreter one-liners (`python -c`, `perl -e`, awk programs).
pub(crate) fn code_rules(lang: &str, code: &str) -> Vec<Hit> {
    let c = code.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| c.contains(w));
    let mut hits = Vec::new();
    let socket = any(&[
        "socket",
        "fsockopen",
        "tcpsocket",
        "io::socket",
        "net.connect",
        "net.socket",
        "require('net')",
        "require(\"net\")",
        "tcpclient",
        "createconnection",
    ]);
    let exec = any(&[
        "subprocess",
        "os.system",
        "dup2",
        "pty.spawn",
        "exec(",
        "exec ",
        "execve",
        "system(",
        "popen",
        "spawn",
        "/bin/sh",
        "/bin/bash",
        "child_process",
        "proc_open",
        "shell_exec",
        "passthru",
        "`",
        "io.popen",
    ]);
    if (socket && exec) || c.contains("/inet/tcp") || c.contains("/dev/tcp") {
        hits.push((
            RuleId::ReverseShellInterpreter,
            format!("a {lang} one-liner connecting a shell to the network"),
        ));
    }
    let decode = any(&[
        "b64decode",
        "base64",
        "decode_base64",
        "atob(",
        "fromcharcode",
        "unhexlify",
        "fromhex",
        "zlib.decompress",
        "marshal.loads",
        "codecs.decode",
        "rot13",
        "unpack(\"m",
        "unpack('m",
        "buffer.from(",
        "pack(\"h",
        "pack('h",
    ]);
    let eval = any(&[
        "exec(",
        "eval(",
        "eval ",
        "system(",
        "subprocess",
        "popen",
        "new function",
        "compile(",
    ]);
    if decode && eval {
        hits.push((
            RuleId::DecodeExecInterpreter,
            format!("a {lang} one-liner that decodes and runs code"),
        ));
    }
    if c.contains("fork") && any(&["while", "for ", "for(", "loop", "until", "repeat"]) {
        hits.push((
            RuleId::ForkBombInterpreter,
            format!("a {lang} one-liner forking in a loop"),
        ));
    }
    if ["stratum+", "stratum2+"].iter().any(|s| c.contains(s)) {
        hits.push((RuleId::MinerStratum, "names a mining pool (stratum)".into()));
    }
    hits
}
