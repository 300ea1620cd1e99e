//! The name server: stateless RocketMQ routing.
//!
//! Brokers register with every name server; name servers never talk to each other. The state is
//! a [`route::RouteTable`] and a [`kv::KvConfig`]; [`processor::handle`] answers one request;
//! [`server`] runs the sockets. [`start`] runs it in-process (tests, `cargo xtask up`);
//! `mqnamesrv` is a thin binary over [`run`].

pub mod config;
pub mod kv;
pub mod processor;
pub mod route;
pub mod server;

use std::sync::{Arc, Mutex, RwLock};

pub use config::{ConfError, Loaded, NamesrvConfig};
pub use server::NamesrvHandle;

/// Everything a request handler reads or changes.
#[derive(Debug)]
pub struct State {
    pub config: NamesrvConfig,
    /// (key, value, source) of every setting, for GET_NAMESRV_CONFIG.
    pub effective: Vec<(String, String, String)>,
    pub routes: RwLock<route::RouteTable>,
    pub kv: Mutex<kv::KvConfig>,
}

impl State {
    pub fn new(loaded: &Loaded) -> Arc<State> {
        let config = loaded.config.clone();
        Arc::new(State {
            routes: RwLock::new(route::RouteTable::new(config.broker_channel_expired_time)),
            kv: Mutex::new(kv::KvConfig::load(config.kv_config_path.clone())),
            effective: loaded.effective.clone(),
            config,
        })
    }
}

/// Starts a name server in the current tokio runtime.
pub async fn start(loaded: &Loaded) -> std::io::Result<NamesrvHandle> {
    server::start(State::new(loaded)).await
}

/// Runs until `shutdown` resolves, then stops cleanly.
pub async fn run(
    loaded: &Loaded,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let handle = start(loaded).await?;
    tracing::info!(
        "The Name Server boot success. serializeType=JSON, address {}",
        handle.local_addr()
    );
    shutdown.await;
    tracing::info!("shutting down");
    handle.shutdown().await;
    Ok(())
}
