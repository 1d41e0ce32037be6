#!/usr/bin/env bash
# Run each fuzz target of exoclaw-tools for SECONDS (default 20); exits
# non-zero on a crash. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`)
# and a C++ toolchain; works on stable Rust through RUSTC_BOOTSTRAP=1.
# Seeds from the unit-test corpora are used for shell_parse.
# FUZZ_SEED fixes libFuzzer's seed (CI sets it, so a run is reproducible and a
# CI failure is a real, replayable find, never luck); unset, each run explores
# from a fresh random seed.
set -euo pipefail
seconds="${1:-20}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "error: cargo-fuzz is not installed; run: cargo install cargo-fuzz --locked" >&2
    exit 2
fi
# Seed the shell corpus with the policy's own test corpora, one file per line.
seeds="$here/corpus/shell_parse"
mkdir -p "$seeds" "$here/corpus/path_resolve"
n=0
while IFS= read -r line; do
    [[ -z "$line" || "$line" == \#* ]] && continue
    n=$((n + 1))
    printf '%s' "${line%  # *}" > "$seeds/seed-$n"
done < <(cat "$here/../src/shell/tests/corpus_deny.txt" "$here/../src/shell/tests/corpus_allow.txt")
for p in "a/b/f" "../outside/secret" "out_rel/secret" "in/../../x" "a/chain/secret" "magic/etc/passwd" "loop" "my..file" "%2e%2e/x"; do
    printf '%s' "$p" > "$here/corpus/path_resolve/seed-$(printf '%s' "$p" | md5sum | cut -c1-8)"
done
status=0
for target in shell_parse path_resolve; do
    echo "== fuzz $target for ${seconds}s"
    # -rss_limit_mb guards against a runaway input; a crash exits non-zero.
    if ! cargo fuzz run "$target" "corpus/$target" -- \
        ${FUZZ_SEED:+-seed="$FUZZ_SEED"} \
        -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1; then
        echo "error: fuzz target $target failed; the crashing input is under fuzz/artifacts/$target/" >&2
        status=1
    fi
done
exit "$status"
