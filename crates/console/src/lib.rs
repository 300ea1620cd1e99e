//! `mqconsole`: a web console for a Ferrocket / RocketMQ cluster, built on the client crate's
//! admin API. Pages for the cluster (roles, addresses, TPS, disk, replication, Raft), topics,
//! consumer groups and messages, served from assets embedded in the binary (no CDN, no
//! front-end build). Read-only unless started with `--allow-writes`, and then every write needs
//! the token. The JSON API is documented in `docs/console.md`.

mod api;
mod assets;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use ferrocket_client::{Admin, ClientConfig};

/// How the console runs.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// `host:port;host:port` of the name servers.
    pub namesrv: String,
    pub listen: SocketAddr,
    /// The token writes need (`Authorization: Bearer <token>`); `None` = read-only.
    pub write_token: Option<String>,
}

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("client: {0}")]
    Client(#[from] ferrocket_client::ClientError),
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// Shared by the handlers.
pub struct State {
    pub admin: Admin,
    pub write_token: Option<String>,
}

/// The console's routes.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::app_js))
        .route("/style.css", get(assets::style_css))
        .route("/api/cluster", get(api::cluster))
        .route("/api/topics", get(api::topics).post(api::create_topic))
        .route("/api/topics/{topic}", get(api::topic))
        .route("/api/groups", get(api::groups))
        .route("/api/groups/{group}", get(api::group))
        .route("/api/groups/{group}/reset-offset", post(api::reset_offset))
        .route("/api/messages", get(api::messages))
        .with_state(state)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    cfg: ConsoleConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ConsoleError> {
    let admin = Admin::new(ClientConfig::new(cfg.namesrv.clone()).instance_name("mqconsole"))?;
    let state = Arc::new(State {
        admin,
        write_token: cfg.write_token.clone(),
    });
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ConsoleError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ConsoleError::Serve)?;
    tracing::info!(%addr, namesrv = %cfg.namesrv, writes = cfg.write_token.is_some(), "mqconsole listening");
    println!("mqconsole listening on http://{addr}/");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ConsoleError::Serve)
}
