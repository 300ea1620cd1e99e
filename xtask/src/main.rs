//! `cargo xtask`: the project's automation (local clusters, dist, bench).

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("help") | Some("--help") => {
            println!("usage: cargo xtask <command>\n\ncommands:\n  help   this text");
            Ok(())
        }
        Some(other) => bail!("unknown xtask command `{other}` (try `cargo xtask help`)"),
    }
}
