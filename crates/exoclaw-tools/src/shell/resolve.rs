//! Resolving what a simple command really runs: argv[0]'s basename, then
//! through wrappers (`env`, `sudo`, `nice`, `timeout`, `nohup`, `xargs`,
//! `busybox X`, `command`, `exec`, `stdbuf`, `setsid`, `time`, ...) to the
//! program they start, each link of the chain kept so every link is
//! checked. Code handed to a shell as a string (`sh -c`, `eval`, `su -c`,
//! `watch`, `trap`, `flock -c`, `script -c`, `env -S`, `parallel`) is
//! returned for re-parsing, interpreter one-liners (`python -c`, `perl -e`,
//! ...) for inspection, and `find -exec` argvs for resolving in turn.

use super::value::Val;

/// One program in a wrapper chain, with its argv (`argv[0]` first).
#[derive(Clone, Debug)]
pub(crate) struct Link {
    /// Basename of `argv[0]`; `None` when it is not known before running.
    pub name: Option<String>,
    pub argv: Vec<Val>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Resolution {
    /// Outermost first; the last link is the program that runs.
    pub chain: Vec<Link>,
    /// Strings a shell will parse and run.
    pub shell_code: Vec<Val>,
    /// `(interpreter, code)` of one-liners.
    pub interp_code: Vec<(String, Val)>,
    /// The program runs code read from its standard input, in this
    /// language (`sh` for shells, else the interpreter family).
    pub reads_code_from_stdin: Option<&'static str>,
    /// Files (or `<(...)` words) a shell or interpreter runs as a script.
    pub code_files: Vec<Val>,
    /// Further argvs the command runs (`find -exec ... ;`).
    pub execs: Vec<Vec<Val>>,
}

impl Resolution {
    /// The program that finally runs, when known.
    pub fn program(&self) -> Option<&str> {
        self.chain.last().and_then(|l| l.name.as_deref())
    }
}

/// The basename of a literal `argv[0]`.
pub(crate) fn program_name(v: &Val) -> Option<String> {
    let s = v.literal()?;
    let base = s.rsplit('/').next().unwrap_or(s);
    (!base.is_empty()).then(|| base.to_owned())
}

pub(crate) const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "rbash", "fish", "yash", "posh", "tcsh",
    "csh", "pwsh",
];

/// The interpreter family of a program name (`python3.12` -> `python`).
pub(crate) fn interpreter(name: &str) -> Option<&'static str> {
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    Some(match base {
        "python" | "pypy" => "python",
        "perl" => "perl",
        "ruby" | "irb" => "ruby",
        "node" | "nodejs" | "deno" | "bun" => "node",
        "php" => "php",
        "lua" | "luajit" => "lua",
        "awk" | "gawk" | "mawk" | "nawk" => "awk",
        "tclsh" | "wish" => "tcl",
        "Rscript" => "r",
        _ => return None,
    })
}

/// Options (short letters and long names) that take a value.
struct Opts {
    short: &'static str,
    long: &'static [&'static str],
}

const NO_OPTS: Opts = Opts {
    short: "",
    long: &[],
};

/// Index of the first operand after `argv[from..]`'s options; also the
/// values of options in `want` (short letter or long name).
fn operands(argv: &[Val], from: usize, opts: &Opts, want: &str) -> (usize, Vec<Val>) {
    let mut wanted = Vec::new();
    let mut i = from;
    while let Some(arg) = argv.get(i) {
        let Some(s) = arg.literal() else { break };
        if s == "--" {
            return (i + 1, wanted);
        }
        if let Some(long) = s.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let takes = opts.long.contains(&name);
            let value = match inline {
                Some(v) => Some(Val::from_str(v)),
                None if takes => {
                    i += 1;
                    argv.get(i).cloned()
                }
                None => None,
            };
            if want.split(',').any(|w| w == name) {
                wanted.extend(value);
            }
            i += 1;
            continue;
        }
        if s.len() < 2 || !(s.starts_with('-') || s.starts_with('+')) {
            break;
        }
        let letters: Vec<char> = s.chars().skip(1).collect();
        for (k, c) in letters.iter().enumerate() {
            if opts.short.contains(*c) {
                let attached: String = letters[k + 1..].iter().collect();
                let value = if attached.is_empty() {
                    i += 1;
                    argv.get(i).cloned()
                } else {
                    Some(Val::from_str(&attached))
                };
                if want.split(',').any(|w| w.len() == 1 && w.starts_with(*c)) {
                    wanted.extend(value);
                }
                break;
            }
            if want.split(',').any(|w| w.len() == 1 && w.starts_with(*c)) {
                wanted.push(Val::from_str(""));
            }
        }
        i += 1;
    }
    (i, wanted)
}

fn has_flag(argv: &[Val], end: usize, short: char, long: &str) -> bool {
    argv.iter()
        .take(end)
        .skip(1)
        .filter_map(Val::literal)
        .any(|s| {
            s == format!("--{long}")
                || (s.starts_with('-') && !s.starts_with("--") && s.contains(short))
        })
}

/// Resolve `argv` through wrappers.
pub(crate) fn resolve(argv: &[Val]) -> Resolution {
    let mut r = Resolution::default();
    let mut rest: Vec<Val> = argv.to_vec();
    // Each wrapper consumes at least its own name, so this ends.
    for _ in 0..32 {
        let Some(first) = rest.first() else { break };
        let name = program_name(first);
        r.chain.push(Link {
            name: name.clone(),
            argv: rest.clone(),
        });
        let Some(name) = name else { break };
        match step(&name, &rest, &mut r) {
            Some(next) if next > 0 && next < rest.len() => rest = rest.split_off(next),
            _ => break,
        }
    }
    r
}

/// One wrapper: where the wrapped program starts in `argv`, if anywhere.
fn step(name: &str, argv: &[Val], r: &mut Resolution) -> Option<usize> {
    let base = name.trim_end_matches(".traditional");
    match base {
        "env" => {
            let opts = Opts {
                short: "uCS",
                long: &["unset", "chdir", "split-string"],
            };
            let (mut i, split) = operands(argv, 1, &opts, "S,split-string");
            r.shell_code
                .extend(split.into_iter().filter(|v| !v.text.is_empty()));
            while argv
                .get(i)
                .and_then(Val::literal)
                .is_some_and(|s| s.contains('=') && !s.starts_with('='))
            {
                i += 1;
            }
            Some(i)
        }
        "sudo" | "doas" | "run0" | "pkexec" => {
            let opts = Opts {
                short: "ugpChDrtUTa",
                long: &[
                    "user",
                    "group",
                    "prompt",
                    "close-from",
                    "host",
                    "chdir",
                    "role",
                    "type",
                    "other-user",
                    "command-timeout",
                    "description",
                    "setenv",
                    "property",
                ],
            };
            Some(operands(argv, 1, &opts, "").0)
        }
        "su" | "runuser" => {
            let opts = Opts {
                short: "cgGsu",
                long: &[
                    "command",
                    "group",
                    "supp-group",
                    "shell",
                    "user",
                    "whitelist-environment",
                ],
            };
            let (_, code) = operands(argv, 1, &opts, "c,command");
            r.shell_code.extend(code);
            None
        }
        "nice" => Some(
            operands(
                argv,
                1,
                &Opts {
                    short: "n",
                    long: &["adjustment"],
                },
                "",
            )
            .0,
        ),
        "ionice" => Some(
            operands(
                argv,
                1,
                &Opts {
                    short: "cnpPu",
                    long: &["class", "classdata"],
                },
                "",
            )
            .0,
        ),
        "timeout" => {
            let opts = Opts {
                short: "sk",
                long: &["signal", "kill-after"],
            };
            Some(operands(argv, 1, &opts, "").0 + 1)
        }
        "nohup" | "setsid" | "chronic" | "unbuffer" | "builtin" | "catchsegv" | "nocache"
        | "dbus-run-session" | "fakeroot" | "proot" | "firejail" | "caffeinate" => Some(
            operands(
                argv,
                1,
                &Opts {
                    short: "",
                    long: &[],
                },
                "",
            )
            .0,
        ),
        "time" => Some(
            operands(
                argv,
                1,
                &Opts {
                    short: "fo",
                    long: &["format", "output"],
                },
                "",
            )
            .0,
        ),
        "command" => {
            let (i, _) = operands(argv, 1, &NO_OPTS, "");
            // `command -v/-V x` only looks the name up.
            (!has_flag(argv, i, 'v', "") && !has_flag(argv, i, 'V', "")).then_some(i)
        }
        "exec" => Some(
            operands(
                argv,
                1,
                &Opts {
                    short: "a",
                    long: &[],
                },
                "",
            )
            .0,
        ),
        "stdbuf" => Some(
            operands(
                argv,
                1,
                &Opts {
                    short: "ioe",
                    long: &["input", "output", "error"],
                },
                "",
            )
            .0,
        ),
        "taskset" | "chrt" => {
            let (i, _) = operands(argv, 1, &NO_OPTS, "");
            (!has_flag(argv, i, 'p', "pid")).then_some(i + 1)
        }
        "flock" => {
            let opts = Opts {
                short: "wEc",
                long: &["timeout", "conflict-exit-code", "command"],
            };
            let (i, code) = operands(argv, 1, &opts, "c,command");
            if code.is_empty() {
                Some(i + 1)
            } else {
                r.shell_code.extend(code);
                None
            }
        }
        "strace" | "ltrace" => {
            let opts = Opts {
                short: "eopsuEIabPXnA",
                long: &["output", "trace", "signal", "user", "env"],
            };
            Some(operands(argv, 1, &opts, "").0)
        }
        "valgrind" | "systemd-run" | "unshare" | "nsenter" | "capsh" => {
            let opts = Opts {
                short: "pEutSGnmiUCrwe",
                long: &[
                    "property",
                    "unit",
                    "uid",
                    "gid",
                    "target",
                    "setenv",
                    "working-directory",
                ],
            };
            Some(operands(argv, 1, &opts, "").0)
        }
        "chroot" => Some(
            operands(
                argv,
                1,
                &Opts {
                    short: "",
                    long: &["userspec", "groups"],
                },
                "",
            )
            .0 + 1,
        ),
        "xargs" => {
            let opts = Opts {
                short: "adEeIiLlnPs",
                long: &[
                    "arg-file",
                    "delimiter",
                    "eof",
                    "replace",
                    "max-lines",
                    "max-args",
                    "max-procs",
                    "max-chars",
                    "process-slot-var",
                ],
            };
            let i = operands(argv, 1, &opts, "").0;
            // Without a command xargs runs `echo`.
            (i < argv.len()).then_some(i)
        }
        "busybox" | "toybox" => Some(1),
        // Package runners: the package's command runs.
        "npx" | "bunx" | "pnpx" | "uvx" => Some(
            operands(
                argv,
                1,
                &Opts {
                    short: "pc",
                    long: &["package", "call", "from", "with"],
                },
                "",
            )
            .0,
        ),
        "watch" => {
            let opts = Opts {
                short: "ndq",
                long: &["interval", "differences", "equexit"],
            };
            let i = operands(argv, 1, &opts, "").0;
            push_joined(&mut r.shell_code, &argv[i.min(argv.len())..]);
            None
        }
        "script" => {
            let opts = Opts {
                short: "cEeqtTIOB",
                long: &[
                    "command",
                    "echo",
                    "log-in",
                    "log-out",
                    "log-io",
                    "log-timing",
                ],
            };
            let (_, code) = operands(argv, 1, &opts, "c,command");
            r.shell_code.extend(code);
            None
        }
        "parallel" | "sem" => {
            let opts = Opts {
                short: "jSaIdE",
                long: &[
                    "jobs",
                    "sshlogin",
                    "arg-file",
                    "delimiter",
                    "joblog",
                    "results",
                    "tmpdir",
                ],
            };
            let i = operands(argv, 1, &opts, "").0;
            let end = argv
                .iter()
                .position(|v| v.literal().is_some_and(|s| s.starts_with(":::")))
                .unwrap_or(argv.len());
            push_joined(&mut r.shell_code, &argv[i.min(end)..end]);
            None
        }
        "eval" => {
            push_joined(&mut r.shell_code, &argv[1..]);
            None
        }
        "trap" => {
            if let (Some(code), true) = (argv.get(1), argv.len() >= 3)
                && code
                    .literal()
                    .is_none_or(|s| s != "-" && !s.starts_with('-'))
            {
                r.shell_code.push(code.clone());
            }
            None
        }
        "find" => {
            find_execs(argv, r);
            None
        }
        "source" | "." => {
            match argv.get(1) {
                Some(f) if f.literal().is_some_and(|s| s == "/dev/stdin" || s == "-") => {
                    r.reads_code_from_stdin = Some("sh");
                }
                Some(f) => r.code_files.push(f.clone()),
                None => r.reads_code_from_stdin = Some("sh"),
            }
            None
        }
        s if SHELLS.contains(&s) => {
            shell(argv, r);
            None
        }
        s => {
            if let Some(lang) = interpreter(s) {
                interpreter_args(lang, argv, r);
            }
            None
        }
    }
}

/// Words joined with spaces, as `eval` and `watch` do.
fn push_joined(out: &mut Vec<Val>, words: &[Val]) {
    if words.is_empty() {
        return;
    }
    let code: Vec<&str> = words.iter().map(|w| w.code.as_str()).collect();
    let mut v = Val::from_str(&code.join(" "));
    v.dynamic = words.iter().any(|w| w.dynamic);
    v.subst = words.iter().any(|w| w.subst);
    out.push(v);
}

fn shell(argv: &[Val], r: &mut Resolution) {
    let opts = Opts {
        short: "oO",
        long: &["rcfile", "init-file"],
    };
    let (i, _) = operands(argv, 1, &opts, "");
    let has_c = has_flag(argv, i, 'c', "command");
    let has_s = has_flag(argv, i, 's', "");
    if has_c {
        match argv.get(i) {
            Some(code) => r.shell_code.push(code.clone()),
            None => r.reads_code_from_stdin = Some("sh"),
        }
    } else if has_s {
        r.reads_code_from_stdin = Some("sh");
    } else {
        match argv.get(i) {
            Some(f) if f.literal().is_some_and(|s| s == "-" || s == "/dev/stdin") => {
                r.reads_code_from_stdin = Some("sh");
            }
            Some(f) => r.code_files.push(f.clone()),
            None => r.reads_code_from_stdin = Some("sh"),
        }
    }
}

fn interpreter_args(lang: &'static str, argv: &[Val], r: &mut Resolution) {
    let (code_flags, opts): (&str, Opts) = match lang {
        "python" => (
            "c",
            Opts {
                short: "cmWXQ",
                long: &[],
            },
        ),
        "perl" => (
            "eE",
            Opts {
                short: "eEMmIlx0iCd",
                long: &[],
            },
        ),
        "ruby" => (
            "e",
            Opts {
                short: "eIrCEFxU",
                long: &[],
            },
        ),
        "node" => (
            "ep",
            Opts {
                short: "eprC",
                long: &["eval", "print", "require", "import", "loader"],
            },
        ),
        "php" => (
            "rBRFE",
            Opts {
                short: "rBRFEcdzt",
                long: &[],
            },
        ),
        "lua" => (
            "e",
            Opts {
                short: "el",
                long: &[],
            },
        ),
        "r" => (
            "e",
            Opts {
                short: "e",
                long: &[],
            },
        ),
        "awk" => (
            "",
            Opts {
                short: "fvF",
                long: &["file", "assign", "field-separator"],
            },
        ),
        _ => ("", NO_OPTS),
    };
    let want: Vec<String> = code_flags
        .chars()
        .map(String::from)
        .chain(["eval", "print", "command"].iter().map(|s| (*s).to_owned()))
        .collect();
    let (i, code) = operands(argv, 1, &opts, &want.join(","));
    let module = lang == "python" && has_flag(argv, i, 'm', "");
    let from_file = lang == "awk" && has_flag(argv, i, 'f', "file");
    let name = argv.first().and_then(program_name).unwrap_or_default();
    if !code.is_empty() {
        r.interp_code
            .extend(code.into_iter().map(|c| (lang.to_owned(), c)));
    } else if lang == "awk" && !from_file {
        if let Some(prog) = argv.get(i) {
            r.interp_code.push((lang.to_owned(), prog.clone()));
        }
    } else if module || from_file || (lang == "node" && name == "deno") {
        // A module or program file runs; nothing read from stdin.
    } else {
        match argv.get(i) {
            Some(f) if f.literal().is_some_and(|s| s == "-" || s == "/dev/stdin") => {
                r.reads_code_from_stdin = Some(lang);
            }
            Some(f) => r.code_files.push(f.clone()),
            None => r.reads_code_from_stdin = Some(lang),
        }
    }
}

/// `find ... -exec cmd args {} ;` (also `-execdir`, `-ok`, `-okdir`, `+`).
fn find_execs(argv: &[Val], r: &mut Resolution) {
    let mut i = 1;
    while i < argv.len() {
        let is_exec = argv[i]
            .literal()
            .is_some_and(|s| matches!(s, "-exec" | "-execdir" | "-ok" | "-okdir"));
        i += 1;
        if !is_exec {
            continue;
        }
        let start = i;
        while argv
            .get(i)
            .is_some_and(|v| v.literal().is_none_or(|s| s != ";" && s != "+"))
        {
            i += 1;
        }
        if i > start {
            r.execs.push(argv[start..i].to_vec());
        }
    }
}
