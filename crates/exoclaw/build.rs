//! Sets the binary's link options (packed relocations, function and data
//! order). The commit `exoclaw version` names is recorded by the gateway
//! library's build script.

// A build script reads cargo's environment; the "only config reads env vars"
// rule is about the gateway.
#![expect(
    clippy::disallowed_methods,
    reason = "a build script reads cargo's environment"
)]
#![expect(
    clippy::disallowed_macros,
    reason = "a build script talks to cargo on stdout"
)]

fn main() {
    // Pack the executable's ~33,000 relative relocations into DT_RELR
    // (glibc >= 2.36): `.rela.dyn` shrinks from about 800 KiB, all of it
    // read by the loader at every start, to a few KiB. Position-independent
    // code and ASLR stay as they are. BENCHMARKS.md has the before and after.
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    // Functions that start-up and the request path execute, listed by
    // `cargo xtask layout`, are placed first and together in `.text`, so the
    // kernel's 64 KiB fault-around maps them instead of most of the binary
    // (idle RSS 13.4 -> 7.4 MiB, BENCHMARKS.md). The options are lld's, the
    // default linker of x86_64-unknown-linux-gnu since Rust 1.90. Names not in
    // this build (stale file, debug build) are skipped: it costs memory,
    // never correctness.
    println!("cargo:rerun-if-changed=link-order.txt");
    let order = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("link-order.txt");
    let x86_64 = std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64");
    // Linked from a copy in OUT_DIR: cargo may reuse this script's output
    // for another checkout sharing the target dir (CI's clone, a worktree),
    // where a path into the first checkout would not exist.
    let copy =
        std::path::Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("link-order.txt");
    if linux_gnu && x86_64 && order.exists() && std::fs::copy(&order, &copy).is_ok() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            copy.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    // The same for read-only data: the constants start-up reads (strings,
    // tables, jump tables), listed by `cargo xtask layout` as `.rodata` input
    // sections, go into one output section before `.rodata` (a linker script
    // that only inserts: lld keeps its default layout for the rest). Sections
    // not in this build match nothing. Release builds only: the names are
    // those of the fat-LTO object, and matching 10,000 patterns against a
    // debug build's many more sections would slow every test build's link.
    println!("cargo:rerun-if-changed=rodata-order.ld");
    let rodata = order.with_file_name("rodata-order.ld");
    let rodata_copy = copy.with_file_name("rodata-order.ld");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    if linux_gnu
        && x86_64
        && release
        && rodata.exists()
        && std::fs::copy(&rodata, &rodata_copy).is_ok()
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", rodata_copy.display());
    }
    // `cargo xtask layout` asks for a link map to name the functions that
    // start-up and the request path execute.
    println!("cargo:rerun-if-env-changed=EXOCLAW_LINK_MAP");
    if let Ok(map) = std::env::var("EXOCLAW_LINK_MAP") {
        // Mangled names in the map: they are what the ordering file must list.
        println!("cargo:rustc-link-arg-bins=-Wl,-Map={map}");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-demangle");
    }
}
