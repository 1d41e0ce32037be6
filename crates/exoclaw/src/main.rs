//! exoclaw: a hardened multi-agent AI gateway. The program is the `exoclaw`
//! library's [`exoclaw::main`]; this file only picks the allocator.

/// Rust's allocations go to mimalloc: under load glibc's malloc (arena
/// locks, consolidation) was about a quarter of the gateway's CPU time, and
/// completions per second at concurrency 64 rose by a fifth without it
/// (BENCHMARKS.md). `no_thp`: no transparent huge pages, which would put
/// 2 MiB per thread heap into the idle RSS. The C parts (SQLite) still use
/// glibc's malloc, which the library's `alloc` module tunes.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    exoclaw::main()
}
