//! `mqconsole -n NAMESRV [--listen 127.0.0.1:8080] [--allow-writes [--token T]]`

use std::net::SocketAddr;

use anyhow::Result;
use clap::Parser;
use ferrocket_console::{serve, ConsoleConfig};

#[derive(Debug, Parser)]
#[command(
    name = "mqconsole",
    version,
    about = "Ferrocket / RocketMQ web console"
)]
struct Cli {
    /// Name servers, `host:port;host:port` (default: $NAMESRV_ADDR).
    #[arg(short = 'n', long = "namesrvAddr")]
    namesrv: Option<String>,
    /// Where to serve the pages.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Enable actions (create topic, reset offsets); each needs the token.
    #[arg(long)]
    allow_writes: bool,
    /// The token for actions (default: $MQCONSOLE_TOKEN, else a random one printed at start).
    #[arg(long)]
    token: Option<String>,
}

fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i ^ u64::from(std::process::id()));
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let namesrv = cli
        .namesrv
        .or_else(|| std::env::var("NAMESRV_ADDR").ok())
        .ok_or_else(|| anyhow::anyhow!("no name server: give -n host:port or set NAMESRV_ADDR"))?;
    let write_token = if cli.allow_writes {
        let t = cli
            .token
            .or_else(|| std::env::var("MQCONSOLE_TOKEN").ok())
            .unwrap_or_else(|| {
                let t = random_token();
                println!("mqconsole: writes enabled; token {t}");
                t
            });
        Some(t)
    } else {
        None
    };
    let cfg = ConsoleConfig {
        namesrv,
        listen: cli.listen,
        write_token,
    };
    serve(cfg, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
