//! `mqnamesrv`: the name server binary. Thin: arguments, conf, tracing, then the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Ferrocket name server, a drop-in for RocketMQ's mqnamesrv.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Name server conf file (RocketMQ .properties).
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
    /// Print the effective configuration (every key, its value and where it came from) and exit.
    #[arg(short = 'p', long = "printConfigItem")]
    print: bool,
    /// Validate the configuration and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let loaded = match ferrocket_namesrv::config::load(args.config_file.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mqnamesrv: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if args.print {
        print!("{}", loaded.render());
        return ExitCode::SUCCESS;
    }
    if args.check {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mqnamesrv: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let handle = ferrocket_namesrv::start(&loaded).await?;
        println!(
            "The Name Server boot success. serializeType=JSON, listening on {}",
            handle.local_addr()
        );
        shutdown_signal().await;
        tracing::info!("signal received, shutting down");
        handle.shutdown().await;
        Ok::<_, std::io::Error>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mqnamesrv: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // No signal handling available: run until killed.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
