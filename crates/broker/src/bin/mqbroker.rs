//! `mqbroker`: parse arguments, load and check the conf, install tracing, run the broker until
//! SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ferrocket_broker::BrokerConfig;
use ferrocket_conf::Kind;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Ferrocket broker, a drop-in for RocketMQ's mqbroker.
#[derive(Debug, Parser)]
#[command(name = "mqbroker", version)]
struct Args {
    /// Broker conf file (RocketMQ .properties).
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
    /// Name server list, `host:port;host:port` (overrides the file).
    #[arg(short = 'n', long = "namesrvAddr")]
    namesrv_addr: Option<String>,
    /// Print the effective configuration and exit.
    #[arg(short = 'p', long = "printConfigItem")]
    print: bool,
    /// Validate the configuration and exit.
    #[arg(long)]
    check: bool,
    /// Check every conf file under DIR together (ports and store paths per host, one cluster,
    /// master/slave pairs, DLedger peer lists) and exit.
    #[arg(long = "check-layout", value_name = "DIR")]
    check_layout: Option<PathBuf>,
}

/// `--check-layout DIR`: exit 0 when the layout is consistent, 2 with every finding otherwise.
fn check_layout(dir: &std::path::Path) -> ExitCode {
    let parse = |text: &str| {
        ferrocket_conf::properties::parse(text)
            .into_iter()
            .map(|e| (e.key, e.value, e.line))
            .collect()
    };
    let files = match ferrocket_broker::layout::read_dir(dir, parse) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!(
                "mqbroker: no .properties or .conf files under {}",
                dir.display()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("mqbroker: cannot read {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    let implemented = BrokerConfig::implemented_keys();
    let findings = ferrocket_broker::layout::check(&files, |f| {
        let loaded = ferrocket_conf::load(Kind::Broker, Some(&f.path), None, &implemented)
            .map_err(|e| e.to_string())?;
        BrokerConfig::from_properties(&loaded.values())
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    if findings.is_empty() {
        println!(
            "mqbroker: layout {} OK ({} files)",
            dir.display(),
            files.len()
        );
        return ExitCode::SUCCESS;
    }
    for f in &findings {
        eprintln!("{f}");
    }
    eprintln!(
        "mqbroker: layout {}: {} problem(s)",
        dir.display(),
        findings.len()
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.check_layout {
        return check_layout(dir);
    }
    let implemented = BrokerConfig::implemented_keys();
    let loaded = match ferrocket_conf::load(
        Kind::Broker,
        args.config_file.as_deref(),
        args.namesrv_addr.as_deref(),
        &implemented,
    ) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mqbroker: {e}");
            return ExitCode::from(2);
        }
    };
    for w in &loaded.warnings {
        eprintln!("mqbroker: warning: {w}");
    }
    let conf = match BrokerConfig::from_properties(&loaded.values()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mqbroker: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print {
        print!("{}", loaded.render(conf.effective()));
        let known = conf.effective();
        for (k, s) in &loaded.settings {
            if !known.contains_key(k.as_str()) {
                println!("{k}={}    # {} (not used by ferrocket)", s.value, s.origin);
            }
        }
        return ExitCode::SUCCESS;
    }
    if args.check {
        println!("mqbroker: configuration OK");
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    match run(conf) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mqbroker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(conf: BrokerConfig) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("broker")
        .build()?;
    rt.block_on(async {
        // Handlers first: a signal that arrives while the store recovers still stops us cleanly.
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        };
        ferrocket_broker::run(conf, shutdown).await?;
        anyhow::Ok(())
    })
}
