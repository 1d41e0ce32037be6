//! glibc malloc settings for a long-running gateway. Rust's own allocations
//! go to mimalloc (`main.rs`); glibc's malloc still serves the C libraries
//! (SQLite's page caches and statements). Under load glibc gives
//! each thread that allocates its own arena (up to 8 per core) and keeps what
//! was freed in them; on a heap of a few MB that retention is most of the
//! RSS growth of a soak (BENCHMARKS.md, issue 3), not a leak. [`tune`] caps
//! the arenas at start-up and [`trim`] hands free pages back to the OS; the
//! gateway calls it from a low-frequency task. Other C libraries: no-ops.

/// Arenas glibc may create, at most (the main one included).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENA_MAX: libc::c_int = 2;

/// Cap glibc's arenas at [`ARENA_MAX`]. Call it first thing in `main`, before
/// any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(
    unsafe_code,
    reason = "mallopt has no safe wrapper; see the SAFETY comment"
)]
pub fn tune() {
    // SAFETY: `mallopt` takes two integers and only changes malloc's own
    // parameters; no pointer is passed and no memory of ours is touched. It
    // runs before any other thread exists, so no allocation races with it
    // (and glibc takes its own lock anyway). A refusal (return 0) leaves the
    // default, which is only a matter of memory use.
    let done = unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX) };
    if done == 0 {
        tracing::debug!("mallopt(M_ARENA_MAX) refused; keeping glibc's default");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}

/// Give the free memory at the top of the heap and whole free pages inside
/// the arenas back to the OS. Takes malloc's arena locks for a moment (well
/// under a millisecond on the gateway's heap); call it from a blocking
/// thread, rarely.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(
    unsafe_code,
    reason = "malloc_trim has no safe wrapper; see the SAFETY comment"
)]
pub fn trim() {
    // SAFETY: `malloc_trim` takes an integer (the padding to keep) and only
    // releases memory malloc itself considers free; it is thread-safe (it
    // locks each arena), and no pointer of ours is passed or invalidated.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

/// Have mimalloc free what the calling thread's heap holds empty, and
/// purge the freed memory of every thread that it keeps for reuse.
/// Without it a thread that went idle after a burst keeps its empty pages
/// until it allocates again.
#[allow(
    unsafe_code,
    reason = "mi_collect has no safe wrapper; see the SAFETY comment"
)]
pub fn collect(force: bool) {
    // SAFETY: `mi_collect` takes a flag and only releases memory mimalloc
    // itself holds free; it is thread-safe and touches no memory of ours.
    // Where mimalloc is not the global allocator (the library's tests) its
    // heaps are empty and this is a no-op.
    unsafe { libmimalloc_sys::mi_collect(force) }
}

/// How often an idle worker thread collects its heap, at most.
const COLLECT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Bumped by [`request_collect`]; a worker that parks and has not seen the
/// current value collects its heap with force.
static COLLECT_EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Have every worker thread collect its heap with force the next time it
/// parks. Each worker's heap can only be collected by the worker itself, and
/// [`collect_when_idle`]'s rate limit skips the park that ends a burst when
/// the worker collected less than a second before; a worker that then sleeps
/// keeps what it freed until its next burst. The memory trim calls this,
/// then gives the workers something to wake up for. (It did not move the
/// memory left after 1,000 streamed chats, which is held by live objects:
/// BENCHMARKS.md, issue 19.)
pub fn request_collect() {
    COLLECT_EPOCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// For the async runtime's `on_thread_park`: a worker going idle collects
/// its heap, at most every [`COLLECT_EVERY`] (a park is frequent under
/// load; a clock read is all it costs then), and with force once after each
/// [`request_collect`].
pub fn collect_when_idle() {
    use std::cell::Cell;
    use std::time::Instant;
    thread_local! {
        static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
        static SEEN: Cell<u64> = const { Cell::new(0) };
    }
    let epoch = COLLECT_EPOCH.load(std::sync::atomic::Ordering::Relaxed);
    if SEEN.with(|seen| seen.replace(epoch)) != epoch {
        LAST.with(|last| last.set(Some(Instant::now())));
        collect(true);
        return;
    }
    let now = Instant::now();
    let due = LAST.with(|last| match last.get() {
        Some(at) if now.duration_since(at) < COLLECT_EVERY => false,
        _ => {
            last.set(Some(now));
            true
        }
    });
    if due {
        collect(false);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tune_and_trim_can_be_called_any_time() {
        super::tune();
        let v: Vec<Vec<u8>> = (0..1000).map(|i| vec![0u8; 1024 + i]).collect();
        drop(v);
        super::trim();
        super::trim();
        super::collect(true);
        super::collect_when_idle();
        super::collect_when_idle();
        super::request_collect();
        super::collect_when_idle();
    }

    /// `.cargo/config.toml` builds mimalloc with 16 KiB arena slices (its
    /// CFLAGS); with the library's default, 64 KiB, each page a few objects
    /// that outlive a burst keep resident is four times as large (after
    /// 1,000 streamed chats: +8.0 MiB against +4.7 to +6.6, BENCHMARKS.md).
    #[test]
    #[allow(
        unsafe_code,
        reason = "mi_arena_min_alignment has no binding; see the SAFETY comment"
    )]
    fn mimalloc_is_built_with_16_kib_slices() {
        unsafe extern "C" {
            /// mimalloc v3's arena slice size (`include/mimalloc.h`).
            fn mi_arena_min_alignment() -> usize;
        }
        // SAFETY: the function takes nothing and returns a constant of the
        // static library libmimalloc-sys links; no memory is touched.
        let slice = unsafe { mi_arena_min_alignment() };
        assert_eq!(
            slice,
            16 * 1024,
            "mimalloc's arena slice is {slice} bytes: was CFLAGS (.cargo/config.toml) replaced?"
        );
    }
}
