//! Rules for ordinary tools put to dangerous use (issue 17.1): programs run
//! from option values and config overrides (`tar --to-command`, `git -c
//! core.pager=...`, `ssh -o ProxyCommand`), system control (power, init,
//! firewall), persistence (schedulers, shell start-up files, units), loader
//! and interpreter injection through the environment, environment dumps,
//! and exfiltration (uploads, cloud metadata, the gateway's own port,
//! scans, tunnels; the last three in `exposure.rs`). Each is judged on the
//! resolved program and its argv, never on raw text; `analyze.rs` decides
//! where each applies.

use super::RuleId;
use super::exposure::{
    Found, environment, exfiltration, is_program_value, split_ssh_option, ssh_options,
};
use super::resolve::{SHELLS, interpreter, program_name};
use super::rules::{Hit, is_root_like, operands, option_values};
use super::value::Val;

/// Compressors that `tar -I` and `sort --compress-program` may name.
const COMPRESSORS: &[&str] = &[
    "gzip", "pigz", "bzip2", "pbzip2", "lbzip2", "xz", "pixz", "zstd", "pzstd", "lz4", "lzma",
    "lzip", "plzip", "lzop", "brotli", "compress",
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
        "less" | "more" | "most" | "pg"
            if lits
                .iter()
                .any(|a| a.starts_with("+!") || a.starts_with("+:!")) =>
        {
            f.hit(
                RuleId::OptionExecShellEscape,
                format!("`{name} +!` runs a shell command"),
            );
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
    // `crontab -l` (and `-u USER -l`) only lists.
    let lists = !lits.is_empty() && lits.iter().all(|a| *a == "-l" || *a == "-u");
    if name == "crontab" && !lists {
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
