//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("audio-fixtures").join(name)
}

/// Runs the hark binary from the repository root, with the user's model directory (so the model
/// is installed once, by whichever test gets there first, and shared).
pub fn hark(args: &[&str]) -> Output {
    hark_in(&root(), args, &[])
}

pub fn hark_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hark"));
    cmd.current_dir(dir).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running hark")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Lower-case words without punctuation, for asserting on what was said.
pub fn words(text: &str) -> String {
    hark::eval::normalize(text)
}
