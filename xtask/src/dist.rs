//! `cargo xtask dist`: the release tarball, reproducible (sorted entries, fixed times and owners).
//!
//! Layout: `bin/` (POSIX sh scripts `mqnamesrv`, `mqbroker`, `mqadmin`, `mqconsole`, `mqshutdown`, with the
//! native programs in `bin/native/`), `conf/` (the deploy layouts), `docs/`, `LICENSE`,
//! `CHANGELOG.md`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::{cargo, root};

/// The native programs shipped, and the package that builds each.
const PROGRAMS: &[(&str, &str)] = &[
    ("mqnamesrv", "ferrocket-namesrv"),
    ("mqbroker", "ferrocket-broker"),
    ("mqadmin", "ferrocket-client"),
    ("mqconsole", "ferrocket-console"),
];

/// Fixed modification time of every entry (2024-01-01T00:00:00Z), for reproducible bytes.
const MTIME: u64 = 1_704_067_200;

fn host_triple() -> Result<String> {
    let out = std::process::Command::new("rustc").arg("-vV").output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV printed no host triple")
}

fn version() -> Result<String> {
    let text = fs::read_to_string(root().join("Cargo.toml"))?;
    let in_pkg = text
        .split("[workspace.package]")
        .nth(1)
        .context("no [workspace.package]")?;
    let line = in_pkg
        .lines()
        .find(|l| l.trim_start().starts_with("version"))
        .context("no version")?;
    Ok(line
        .split('"')
        .nth(1)
        .context("malformed version line")?
        .to_string())
}

pub fn dist(args: &[String]) -> Result<()> {
    let mut target: Option<String> = None;
    let mut out_dir = root().join("target/dist");
    let mut debug = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--target" => target = Some(it.next().context("--target needs a triple")?.clone()),
            "--out" => out_dir = PathBuf::from(it.next().context("--out needs a directory")?),
            // Packages the debug binaries: quick, for the tests of the tarball itself.
            "--debug" => debug = true,
            other => bail!(
                "unknown dist option `{other}` \
                 (usage: cargo xtask dist [--target TRIPLE] [--out DIR] [--debug])"
            ),
        }
    }
    let profile = if debug { "debug" } else { "release" };
    let triple = match &target {
        Some(t) => t.clone(),
        None => host_triple()?,
    };
    let version = version()?;
    let name = format!("ferrocket-{version}-{triple}");

    println!("[1/4] building {profile} binaries for {triple}");
    let mut build: Vec<&str> = vec!["build", "--bins"];
    if !debug {
        build.push("--release");
    }
    for (_, pkg) in PROGRAMS {
        build.extend(["-p", pkg]);
    }
    if let Some(t) = &target {
        build.extend(["--target", t.as_str()]);
    }
    cargo(&build)?;
    let bin_dir = match &target {
        Some(t) => root().join("target").join(t).join(profile),
        None => root().join("target").join(profile),
    };

    println!("[2/4] collecting files");
    let mut entries: Vec<(String, Vec<u8>, u32)> = Vec::new();
    for (prog, _) in PROGRAMS {
        let bytes =
            fs::read(bin_dir.join(prog)).with_context(|| format!("reading built {prog}"))?;
        entries.push((format!("bin/native/{prog}"), bytes, 0o755));
    }
    for (script, text) in scripts() {
        entries.push((format!("bin/{script}"), text.into_bytes(), 0o755));
    }
    collect_dir(&root().join("deploy/conf"), "conf", &mut entries)?;
    collect_dir(&root().join("deploy/systemd"), "systemd", &mut entries)?;
    collect_dir(&root().join("docs"), "docs", &mut entries)?;
    for f in ["LICENSE", "CHANGELOG.md", "README.md"] {
        entries.push((f.to_string(), fs::read(root().join(f))?, 0o644));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));

    println!("[3/4] writing the tarball ({} files)", entries.len());
    fs::create_dir_all(&out_dir)?;
    let tar_path = out_dir.join(format!("{name}.tar.gz"));
    let gz = flate2::GzBuilder::new().mtime(0).write(
        Vec::new(),
        flate2::Compression::new(if debug { 1 } else { 9 }),
    );
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut dirs: Vec<String> = Vec::new();
    for (path, bytes, mode) in &entries {
        // Parent directories first, each once, in order.
        let full = format!("{name}/{path}");
        let mut parent = PathBuf::from(&full);
        let mut needed = Vec::new();
        while let Some(p) = parent.parent() {
            if p.as_os_str().is_empty() {
                break;
            }
            needed.push(format!("{}/", p.display()));
            parent = p.to_path_buf();
        }
        for d in needed.into_iter().rev() {
            if !dirs.contains(&d) {
                append(&mut tar, &d, &[], 0o755, tar::EntryType::Directory)?;
                dirs.push(d);
            }
        }
        append(&mut tar, &full, bytes, *mode, tar::EntryType::Regular)?;
    }
    let gz = tar.into_inner()?;
    let bytes = gz.finish()?;
    fs::write(&tar_path, &bytes)?;

    println!("[4/4] writing the checksum");
    let sum = Sha256::digest(&bytes);
    let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    let sha_path = out_dir.join(format!("{name}.tar.gz.sha256"));
    let mut f = fs::File::create(&sha_path)?;
    writeln!(f, "{hex}  {name}.tar.gz")?;
    println!("{}\n{}", tar_path.display(), sha_path.display());
    Ok(())
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
    mode: u32,
    kind: tar::EntryType,
) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(bytes.len() as u64);
    h.set_mode(mode);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h.set_username("root")?;
    h.set_groupname("root")?;
    tar.append_data(&mut h, path, bytes)?;
    Ok(())
}

fn collect_dir(dir: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>, u32)>) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
                out.push((format!("{prefix}/{rel}"), fs::read(&p)?, 0o644));
            }
        }
    }
    Ok(())
}

/// The `bin/` scripts. Each finds the install directory from its own path, so `sh bin/mqbroker`
/// works from any directory, and passes `NAMESRV_ADDR` through (the programs read it).
fn scripts() -> Vec<(&'static str, String)> {
    let head = r#"#!/bin/sh
# Ferrocket launcher: runs the native program beside this script.
BASE_DIR=$(cd "$(dirname "$0")/.." && pwd)
LOG_DIR=${FERROCKET_LOG_DIR:-$HOME/logs/ferrocket}
mkdir -p "$LOG_DIR"
"#;
    // `--check`, `-p` and `--help` answer on the terminal; a running server logs to a file.
    let server = |prog: &str, log: &str| {
        format!(
            "{head}case \" $* \" in\n  \
             *\" --check \"*|*\" -p \"*|*\" -h \"*|*\" --help \"*|*\" --check-layout \"*) \
             exec \"$BASE_DIR/bin/native/{prog}\" \"$@\" ;;\n\
             esac\n\
             echo \"{prog}: logs go to $LOG_DIR/{log} (set FERROCKET_LOG_DIR to change)\"\n\
             exec \"$BASE_DIR/bin/native/{prog}\" \"$@\" >>\"$LOG_DIR/{log}\" 2>&1\n"
        )
    };
    let admin = format!("{head}exec \"$BASE_DIR/bin/native/mqadmin\" \"$@\"\n");
    let console = format!("{head}exec \"$BASE_DIR/bin/native/mqconsole\" \"$@\"\n");
    let shutdown = r#"#!/bin/sh
# Ferrocket: stop the local mqbroker or mqnamesrv processes (SIGTERM: they flush and unregister).
case "$1" in
  broker) prog=mqbroker ;;
  namesrv) prog=mqnamesrv ;;
  *) echo "usage: sh bin/mqshutdown broker|namesrv" >&2; exit 1 ;;
esac
pids=$(ps -eo pid=,args= | awk -v p="native/$prog" 'index($0, p) && !index($0, "awk") {print $1}')
if [ -z "$pids" ]; then
  echo "no $prog running"
  exit 0
fi
echo "stopping $prog: $pids"
kill $pids
i=0
while [ $i -lt 30 ]; do
  alive=""
  for p in $pids; do
    # A zombie (exited, not yet reaped by its parent) has stopped too.
    if kill -0 "$p" 2>/dev/null && [ "$(ps -o stat= -p "$p" 2>/dev/null | cut -c1)" != "Z" ]; then
      alive="$alive $p"
    fi
  done
  [ -z "$alive" ] && { echo "$prog stopped"; exit 0; }
  sleep 1; i=$((i + 1))
done
echo "$prog still running after 30 s:$alive" >&2
exit 1
"#
    .to_string();
    vec![
        ("mqnamesrv", server("mqnamesrv", "namesrv.log")),
        ("mqbroker", server("mqbroker", "broker.log")),
        ("mqadmin", admin),
        ("mqconsole", console),
        ("mqshutdown", shutdown),
    ]
}
