//! `cargo xtask`: the project's automation, one place for it.
//!
//! - `up [single|2m-2s-async|2m-2s-sync|dledger] [--release]`: a whole layout on this machine.
//! - `down [layout]`: stop what `up` started (from its pid file).
//! - `dist [--target TRIPLE]`: the release tarball operators copy to their hosts.
//! - `bench [--quick] [--layouts] [--no-write]`: the performance matrix into docs/performance.md.

mod bench;
mod cluster;
mod dist;

use anyhow::{bail, Result};

const HELP: &str = "usage: cargo xtask <command>

commands:
  up [LAYOUT] [--release]   start a local cluster (LAYOUT: single (default), 2m-2s-async,
                            2m-2s-sync, dledger); hosts map to 127.0.0.x; Ctrl-C stops it
  down [LAYOUT]             stop a cluster started by `up` (all layouts when none is given)
  dist [--target TRIPLE] [--out DIR] [--debug]
                            build target/dist/ferrocket-<version>-<target>.tar.gz and .sha256
  bench [--quick] [--layouts] [--no-write]
                            release build, machine limits, then mqbench over 128 B / 1 KiB,
                            ASYNC/SYNC flush, 1/4/16 connections; writes docs/performance.md
                            and docs/bench.svg (--layouts adds 2m-2s-async, 2m-2s-sync, dledger)
  help                      this text";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or(&[]);
    match args.first().map(String::as_str) {
        None | Some("help") | Some("--help") | Some("-h") => {
            println!("{HELP}");
            Ok(())
        }
        Some("up") => cluster::up(rest),
        Some("down") => cluster::down(rest),
        Some("dist") => dist::dist(rest),
        Some("bench") => bench::bench(rest),
        Some(other) => bail!("unknown xtask command `{other}`\n\n{HELP}"),
    }
}

/// The workspace root (xtask lives one level below it).
pub(crate) fn root() -> std::path::PathBuf {
    let here = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().expect("xtask has a parent").to_path_buf()
}

/// Runs cargo with `args` in the workspace root, failing on a non-zero exit.
pub(crate) fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(args)
        .current_dir(root())
        .status()?;
    if !status.success() {
        bail!("cargo {} failed: {status}", args.join(" "));
    }
    Ok(())
}
