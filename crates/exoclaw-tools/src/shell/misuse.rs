//! Rules for ordinary tools put to dangerous use (issue 17.1): programs run
//! from option values and config overrides (`tar --to-command`, `git -c
//! core.pager=...`, `ssh -o ProxyCommand`), system control (power, init,
//! firewall), persistence (schedulers, shell start-up files, units), loader
//! and interpreter injection through the environment, environment dumps,
//! and exfiltration (uploads, cloud metadata, the gateway's own port,
//! scans, tunnels). Each is judged on the resolved program and its argv,
//! never on raw text; `analyze.rs` decides where each applies.

use super::RuleId;
use super::resolve::{SHELLS, interpreter, program_name};
use super::rules::{Hit, is_root_like, operands, option_values};
use super::value::Val;

/// What a program-rule found: hits, and program text given as an option
/// value that a shell will run (checked in full by the caller).
#[derive(Default)]
pub(crate) struct Found {
    pub hits: Vec<Hit>,
    pub code: Vec<String>,
}

impl Found {
    fn hit(&mut self, rule: RuleId, detail: impl Into<String>) {
        self.hits.push((rule, detail.into()));
    }

    /// A program named by an option: refused when it is a shell, an
    /// interpreter, a network client or shell syntax; its text is checked.
    fn program_value(&mut self, tool: &str, option: &str, v: &Val) {
        if is_program_value(&v.code) {
            self.hit(
                RuleId::OptionExecProgram,
                format!("`{tool} {option}` runs a shell or program: {}", v.text),
            );
        }
        self.code.push(v.code.clone());
    }
}

/// Compressors that `tar -I` and `sort --compress-program` may name.
const COMPRESSORS: &[&str] = &[
    "gzip", "pigz", "bzip2", "pbzip2", "lbzip2", "xz", "pixz", "zstd", "pzstd", "lz4", "lzma",
    "lzip", "plzip", "lzop", "brotli", "compress",
];
const NETWORK_CLIENTS: &[&str] = &[
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
const FIREWALLS: &[&str] = &[
    "iptables",
    "ip6tables",
    "iptables-legacy",
    "iptables-nft",
    "ip6tables-legacy",
    "ip6tables-nft",
    "iptables-restore",
    "ip6tables-restore",
    "nft",
    "ufw",
    "firewall-cmd",
    "ebtables",
    "arptables",
    "pfctl",
];
const POWER: &[&str] = &["shutdown", "reboot", "poweroff", "halt", "telinit"];
/// Shell start-up files, scheduler and unit locations, keys: writing one
/// runs code later or grants access later.
const PERSISTENCE_NAMES: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".zshenv",
    ".zlogin",
    ".kshrc",
    ".cshrc",
    ".tcshrc",
    ".xinitrc",
    ".xprofile",
    ".xsessionrc",
    "config.fish",
    "authorized_keys",
    "authorized_keys2",
    ".ssh/rc",
    "rc.local",
];
const PERSISTENCE_DIRS: &[&str] = &[
    "/systemd/",
    "/.config/autostart",
    "/etc/profile.d",
    "/etc/cron",
    "/var/spool/cron",
    "/etc/init.d",
    "/etc/xdg/autostart",
    "/.config/fish/conf.d",
    "/etc/ld.so.preload",
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

/// Rules on one resolved program (a link of a wrapper chain) and its argv.
pub(crate) fn program_rules(name: &str, argv: &[Val], gateway_port: Option<u16>) -> Found {
    let mut f = Found::default();
    let args = &argv[1.min(argv.len())..];
    let lits: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
    let ops = operands(args);
    option_exec(name, args, &lits, &mut f);
    system_control(name, args, &lits, &ops, &mut f);
    persistence(name, &lits, &ops, &mut f);
    environment(name, args, &lits, &ops, &mut f);
    exfiltration(name, args, &lits, &ops, gateway_port, &mut f);
    f
}

fn option_exec(name: &str, args: &[Val], lits: &[&str], f: &mut Found) {
    match name {
        "tar" | "gtar" | "bsdtar" => {
            for v in option_values(args, '\0', "to-command") {
                f.hit(
                    RuleId::OptionExecProgram,
                    "`tar --to-command` runs a program",
                );
                f.code.push(v.code.clone());
            }
            for v in option_values(args, 'F', "info-script")
                .into_iter()
                .chain(option_values(args, '\0', "new-volume-script"))
            {
                f.hit(
                    RuleId::OptionExecProgram,
                    format!("`tar` runs the script {}", v.text),
                );
            }
            if lits.iter().any(|a| {
                a.starts_with("--checkpoint-action=exec") || a.starts_with("--checkpoint-action=sh")
            }) || option_values(args, '\0', "checkpoint-action")
                .iter()
                .any(|v| v.text.starts_with("exec") || v.text.starts_with("sh"))
            {
                f.hit(
                    RuleId::OptionExecProgram,
                    "`tar --checkpoint-action=exec` runs a program",
                );
            }
            for v in option_values(args, 'I', "use-compress-program")
                .into_iter()
                .chain(option_values(args, '\0', "rsh-command"))
            {
                let first = v.text.split_whitespace().next().unwrap_or("");
                if !COMPRESSORS.contains(&first.rsplit('/').next().unwrap_or(first)) {
                    f.hit(
                        RuleId::OptionExecProgram,
                        format!("`tar` runs {} as a filter", v.text),
                    );
                    f.code.push(v.code.clone());
                }
            }
        }
        "sort" => {
            for v in option_values(args, '\0', "compress-program") {
                let first = v.text.split_whitespace().next().unwrap_or("");
                if !COMPRESSORS.contains(&first.rsplit('/').next().unwrap_or(first)) {
                    f.hit(
                        RuleId::OptionExecProgram,
                        format!("`sort --compress-program` runs {}", v.text),
                    );
                }
            }
        }
        "zip" => {
            let mut i = 0;
            while let Some(a) = lits.get(i) {
                if (*a == "-TT" || *a == "--unzip-command")
                    && let Some(v) = args.get(i + 1)
                {
                    f.hit(RuleId::OptionExecProgram, "`zip -TT` runs a program");
                    f.code.push(v.code.clone());
                }
                if let Some(v) = a.strip_prefix("--unzip-command=") {
                    f.hit(RuleId::OptionExecProgram, "`zip -TT` runs a program");
                    f.code.push(v.to_owned());
                }
                i += 1;
            }
        }
        "rsync" => {
            for v in option_values(args, 'e', "rsh")
                .into_iter()
                .chain(option_values(args, '\0', "rsync-path"))
            {
                f.program_value("rsync", "-e", &v);
            }
        }
        "man" => {
            for v in option_values(args, 'P', "pager")
                .into_iter()
                .chain(option_values(args, 'H', "html"))
            {
                f.program_value("man", "-P", &v);
            }
        }
        "less" | "more" | "most" | "pg" => {
            if lits
                .iter()
                .any(|a| a.starts_with("+!") || a.starts_with("+:!"))
            {
                f.hit(
                    RuleId::OptionExecShellEscape,
                    format!("`{name} +!` runs a shell command"),
                );
            }
        }
        "vi" | "vim" | "nvim" | "view" | "vimdiff" | "ex" | "rvim" | "gvim" => {
            let cmds = option_values(args, 'c', "cmd")
                .into_iter()
                .map(|v| v.text)
                .chain(
                    lits.iter()
                        .filter_map(|a| a.strip_prefix('+'))
                        .map(str::to_owned),
                );
            for c in cmds {
                let c = c.trim_start_matches([':', ' ']);
                if c.starts_with('!')
                    || c.contains(":!")
                    || c.contains("system(")
                    || c.starts_with("sh")
                    || c.starts_with("term")
                    || c.starts_with("py")
                    || c.starts_with("lua")
                    || c.starts_with("r !")
                {
                    f.hit(
                        RuleId::OptionExecShellEscape,
                        format!("`{name}` runs a shell command from its options"),
                    );
                }
            }
        }
        "gdb" | "lldb" => {
            let cmds = option_values(args, '\0', "ex")
                .into_iter()
                .chain(option_values(args, '\0', "iex"))
                .chain(option_values(args, '\0', "eval-command"))
                .chain(option_values(args, 'o', "one-line"));
            let mut cmds: Vec<String> = cmds.map(|v| v.text).collect();
            for (i, a) in lits.iter().enumerate() {
                if matches!(*a, "-ex" | "-iex" | "--ex") {
                    cmds.extend(lits.get(i + 1).map(|s| (*s).to_owned()));
                }
            }
            if cmds.iter().any(|c| {
                let c = c.trim();
                c.starts_with('!') || c.starts_with("shell") || c.starts_with("python")
            }) {
                f.hit(
                    RuleId::OptionExecShellEscape,
                    format!("`{name}` runs a shell command from its options"),
                );
            }
        }
        "git" => git(args, lits, f),
        "ssh" | "scp" | "sftp" => {
            for v in ssh_options(args) {
                let (key, value) = split_ssh_option(&v.text);
                match key.as_str() {
                    "proxycommand" | "localcommand" | "knownhostscommand" => {
                        if is_program_value(value) || !value.starts_with("ssh") {
                            f.hit(
                                RuleId::OptionExecProgram,
                                format!("`{name} -o {key}` runs a program"),
                            );
                        }
                        f.code.push(value.to_owned());
                    }
                    "permitlocalcommand" if value.eq_ignore_ascii_case("yes") => f.hit(
                        RuleId::OptionExecProgram,
                        "`ssh -o PermitLocalCommand=yes` runs a program",
                    ),
                    _ => {}
                }
            }
        }
        "find" => {
            // `-exec sh ;`: a shell started with no script reads nothing
            // the policy can see.
            for (i, a) in lits.iter().enumerate() {
                if matches!(*a, "-exec" | "-execdir" | "-ok" | "-okdir")
                    && let Some(prog) = args.get(i + 1).and_then(program_name)
                    && (SHELLS.contains(&prog.as_str()) || interpreter(&prog).is_some())
                    && lits
                        .get(i + 2)
                        .is_none_or(|n| matches!(*n, ";" | "+" | "-i"))
                {
                    f.hit(
                        RuleId::OptionExecShellRunner,
                        format!("`find {a}` starts a shell ({prog})"),
                    );
                }
            }
        }
        _ => {}
    }
}

/// `-o Key=Value`, `-oKey=Value`, `-o 'Key Value'` of ssh, scp and sftp.
fn ssh_options(args: &[Val]) -> Vec<Val> {
    option_values(args, 'o', "")
}

fn split_ssh_option(text: &str) -> (String, &str) {
    let text = text.trim();
    let cut = text.find(['=', ' ']).unwrap_or(text.len());
    let value = text[cut..].trim_start_matches(['=', ' ']);
    (text[..cut].to_ascii_lowercase(), value)
}

/// Git config keys whose value is a program git runs.
fn is_git_program_key(key: &str) -> bool {
    matches!(
        key,
        "core.pager"
            | "core.sshcommand"
            | "core.editor"
            | "core.gitproxy"
            | "core.askpass"
            | "sequence.editor"
            | "diff.external"
            | "credential.helper"
            | "gpg.program"
            | "sendemail.smtpserver"
            | "web.browser"
    ) || key.starts_with("pager.")
        || (key.starts_with("gpg.") && key.ends_with(".program"))
        || (key.starts_with("filter.")
            && (key.ends_with(".clean") || key.ends_with(".smudge") || key.ends_with(".process")))
        || (key.starts_with("diff.") && (key.ends_with(".textconv") || key.ends_with(".command")))
        || (key.starts_with("merge.") && key.ends_with(".driver"))
        || (key.starts_with("credential.") && key.ends_with(".helper"))
}

fn git_config_hit(key: &str, value: &str, f: &mut Found) {
    let key = key.to_ascii_lowercase();
    let always = matches!(
        key.as_str(),
        "core.hookspath" | "uploadpack.packobjectshook" | "protocol.ext.allow"
    ) || (key == "core.fsmonitor"
        && !matches!(value.to_ascii_lowercase().as_str(), "true" | "false"));
    let alias = key.starts_with("alias.") && value.trim_start().starts_with('!');
    let program = is_git_program_key(&key)
        && (value.trim_start().starts_with('!') || is_program_value(value));
    if always || alias || program {
        f.hit(
            RuleId::OptionExecGitConfig,
            format!("git config {key} runs a program"),
        );
        f.code.push(value.trim_start_matches('!').to_owned());
    }
}

fn git(args: &[Val], lits: &[&str], f: &mut Found) {
    let mut i = 0;
    while let Some(a) = lits.get(i) {
        if *a == "-c"
            && let Some((k, v)) = lits.get(i + 1).and_then(|kv| kv.split_once('='))
        {
            git_config_hit(k, v, f);
            i += 2;
            continue;
        }
        if let Some((k, v)) = a.strip_prefix("-c").and_then(|kv| kv.split_once('=')) {
            git_config_hit(k, v, f);
        }
        if a.starts_with("ext::") || a.contains("::ext::") {
            f.hit(
                RuleId::OptionExecGitConfig,
                "git's ext:: transport runs a program",
            );
        }
        for opt in [
            "--upload-pack",
            "--receive-pack",
            "--exec",
            "--open-files-in-pager",
        ] {
            let value = a
                .strip_prefix(opt)
                .and_then(|r| r.strip_prefix('='))
                .map(str::to_owned)
                .or_else(|| (*a == opt).then(|| lits.get(i + 1).map(|s| (*s).to_owned()))?);
            if let Some(v) = value
                && is_program_value(&v)
            {
                f.hit(
                    RuleId::OptionExecGitConfig,
                    format!("`git {opt}` runs a program"),
                );
                f.code.push(v);
            }
        }
        i += 1;
    }
    // `git config [--global] key value`.
    if let Some(at) = lits.iter().position(|a| *a == "config") {
        let rest: Vec<&str> = lits[at + 1..]
            .iter()
            .filter(|a| !a.starts_with('-'))
            .copied()
            .collect();
        if let [key, value, ..] = rest.as_slice() {
            git_config_hit(key, value, f);
        }
    }
    let _ = args;
}

fn system_control(name: &str, args: &[Val], lits: &[&str], ops: &[Val], f: &mut Found) {
    if POWER.contains(&name)
        || (name == "init" && ops.iter().any(|o| o.text.len() == 1))
        || (name == "loginctl"
            && lits
                .iter()
                .any(|a| matches!(*a, "poweroff" | "reboot" | "halt" | "suspend")))
    {
        f.hit(
            RuleId::SystemControlPower,
            format!("`{name}` powers the machine off or changes the runlevel"),
        );
    }
    if name == "systemctl" {
        let verb = ops.first().map_or("", |o| o.text.as_str());
        match verb {
            "poweroff"
            | "reboot"
            | "halt"
            | "kexec"
            | "suspend"
            | "hibernate"
            | "hybrid-sleep"
            | "suspend-then-hibernate"
            | "soft-reboot"
            | "rescue"
            | "emergency"
            | "isolate"
            | "default"
            | "set-default"
            | "daemon-reexec"
            | "switch-root" => f.hit(
                RuleId::SystemControlPower,
                format!("`systemctl {verb}` changes the system's state"),
            ),
            "stop" | "kill" | "mask" | "disable" | "freeze" | "clean" => f.hit(
                RuleId::SystemControlService,
                format!("`systemctl {verb}` stops or disables services"),
            ),
            "enable" | "link" | "reenable" | "preset" | "preset-all" | "edit" | "add-wants"
            | "add-requires" | "revert" => f.hit(
                RuleId::PersistenceService,
                format!("`systemctl {verb}` installs a service that starts again"),
            ),
            _ => {}
        }
    }
    if matches!(name, "service" | "rc-service")
        && ops
            .get(1)
            .is_some_and(|v| matches!(v.text.as_str(), "stop" | "restart"))
    {
        f.hit(RuleId::SystemControlService, "`service ... stop`");
    }
    if matches!(name, "update-rc.d" | "chkconfig" | "rc-update") {
        f.hit(
            RuleId::PersistenceService,
            format!("`{name}` installs a service that starts again"),
        );
    }
    if name == "kill" {
        // `kill [-SIG | -s SIG | -n N] PID...`: PID 1 is init, -1 is
        // every process the caller may signal.
        let mut pids = Vec::new();
        let mut i = 0;
        while let Some(a) = lits.get(i) {
            if i == 0 && a.starts_with('-') && *a != "--" && lits.len() > 1 {
                if matches!(*a, "-s" | "-n") {
                    i += 1;
                }
            } else if *a != "--" {
                pids.push(*a);
            }
            i += 1;
        }
        if pids.iter().any(|p| matches!(*p, "1" | "-1")) {
            f.hit(
                RuleId::SystemControlKillAll,
                "`kill` signals init (PID 1) or every process (-1)",
            );
        }
    }
    if matches!(name, "pkill" | "killall")
        && ops
            .iter()
            .any(|o| matches!(o.text.as_str(), "init" | "systemd" | "sshd" | "dockerd"))
        || name == "killall5"
    {
        f.hit(
            RuleId::SystemControlKillAll,
            format!("`{name}` kills system processes"),
        );
    }
    if FIREWALLS.contains(&name) && !is_firewall_listing(name, lits, ops) {
        f.hit(
            RuleId::SystemControlFirewall,
            format!("`{name}` changes the firewall"),
        );
    }
    let _ = args;
}

fn is_firewall_listing(name: &str, lits: &[&str], ops: &[Val]) -> bool {
    let first = ops.first().map_or("", |o| o.text.as_str());
    match name {
        "nft" => first == "list",
        "ufw" => matches!(first, "status" | "show" | "app") || lits.is_empty(),
        "firewall-cmd" => lits
            .iter()
            .all(|a| a.starts_with("--list") || a.starts_with("--get") || *a == "--state"),
        _ => {
            let lists = lits
                .iter()
                .any(|a| a.starts_with("-L") || a.starts_with("-S") || a.starts_with("--list"));
            let changes = lits.iter().any(|a| {
                matches!(
                    *a,
                    "-A" | "-I"
                        | "-D"
                        | "-F"
                        | "-X"
                        | "-P"
                        | "-R"
                        | "-N"
                        | "-Z"
                        | "-E"
                        | "--append"
                        | "--insert"
                        | "--delete"
                        | "--flush"
                        | "--policy"
                        | "--replace"
                        | "--zero"
                )
            });
            lists && !changes
        }
    }
}

fn persistence(name: &str, lits: &[&str], ops: &[Val], f: &mut Found) {
    if name == "crontab" && !(lits.iter().all(|a| *a == "-l" || *a == "-u") && !lits.is_empty()) {
        f.hit(
            RuleId::PersistenceScheduler,
            "`crontab` installs or removes scheduled jobs",
        );
    }
    if matches!(name, "at" | "batch") && !lits.iter().any(|a| matches!(*a, "-l" | "-V")) {
        f.hit(
            RuleId::PersistenceScheduler,
            format!("`{name}` schedules a job"),
        );
    }
    let _ = ops;
}

/// A path written: shell start-up files, units, scheduler entries and
/// authorized keys run code or grant access later.
pub(crate) fn persistence_path(v: &Val) -> Vec<Hit> {
    let known = v.known_text();
    let trimmed = known.trim_end_matches('/');
    let base = trimmed.rsplit('/').next().unwrap_or(trimmed);
    let named = PERSISTENCE_NAMES
        .iter()
        .any(|n| base == *n || (n.contains('/') && trimmed.ends_with(n)));
    let dir = PERSISTENCE_DIRS.iter().any(|d| {
        known.contains(d)
            || (d.starts_with("/.") && (known.starts_with(&d[1..]) || known.contains(&d[1..])))
    });
    if named || dir {
        vec![(
            RuleId::PersistenceStartupFile,
            format!("writes a start-up, scheduler or key file: {}", v.text),
        )]
    } else {
        Vec::new()
    }
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

fn environment(name: &str, args: &[Val], lits: &[&str], ops: &[Val], f: &mut Found) {
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

fn exfiltration(
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
        "wget" | "wget2" => {
            if !option_values(args, '\0', "post-file").is_empty()
                || !option_values(args, '\0', "body-file").is_empty()
            {
                f.hit(
                    RuleId::ExfiltrationUpload,
                    "`wget --post-file` uploads a file",
                );
            }
        }
        "http" | "https" | "xh" | "xhs" => {
            if lits.iter().skip(1).any(|a| {
                a.starts_with('@')
                    || a.split_once('@').is_some_and(|(n, _)| {
                        !n.is_empty() && !n.contains(['/', ':', '.']) && !n.ends_with('=')
                    })
                    || a.contains("=@")
            }) {
                f.hit(
                    RuleId::ExfiltrationUpload,
                    format!("`{name}` uploads a file"),
                );
            }
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
        && !lits.iter().any(|a| *a == "--listen")
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

/// `chmod -R`/`chown -R` over the root or the home directory.
pub(crate) fn permissions_root(name: &str, argv: &[Val]) -> Vec<Hit> {
    if !matches!(name, "chmod" | "chown" | "chgrp" | "setfacl") {
        return Vec::new();
    }
    let args = &argv[1.min(argv.len())..];
    let recursive = args.iter().filter_map(Val::literal).any(|a| {
        (a.starts_with("--r") && "--recursive".starts_with(a))
            || (a.starts_with('-') && !a.starts_with("--") && a.contains('R'))
    });
    if !recursive {
        return Vec::new();
    }
    operands(args)
        .iter()
        .skip(1)
        .filter(|v| is_root_like(v))
        .map(|v| {
            (
                RuleId::DestructivePermissionsRoot,
                format!("`{name} -R` over {}", v.text),
            )
        })
        .collect()
}
