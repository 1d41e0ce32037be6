//! The sandbox init as a standalone program: what the gateway executes for
//! every sandboxed command when it is not configured to re-execute itself.
//! Not meant to be run by hand (it reads a spec from a socket on stdin).

fn main() -> std::process::ExitCode {
    exoclaw_tools::sandbox::init_main()
}
