//! Standard output of the commands. When the reader goes away early
//! (`exoclaw routes | head -2`), a command ends quietly with the
//! conventional SIGPIPE exit status (141) instead of panicking in
//! `println!`; `clippy.toml` refuses `print!`/`println!` elsewhere so that
//! every print path takes this one.

use std::io::Write as _;

/// The exit status of a process ended by SIGPIPE (128 + 13).
pub const BROKEN_PIPE_STATUS: i32 = 141;

/// Write `args` (and a newline when `newline`) to stdout; end the process
/// quietly when stdout is a closed pipe.
pub fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(BROKEN_PIPE_STATUS);
        }
        // Anything else (a full disk under a redirect): say so once, on
        // stderr, and stop as a failure.
        let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `println!` for commands (see the module docs).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::out::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), true)
    };
}

/// `print!` for commands (see the module docs).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), false)
    };
}
