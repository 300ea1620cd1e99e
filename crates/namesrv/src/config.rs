//! The name server's configuration: RocketMQ's NamesrvConfig and NettyServerConfig keys read from
//! a `.properties` file, checked, with where each value came from.
//!
//! Unknown keys stop startup with file:line and the closest known key; keys RocketMQ knows that
//! we do not use yet give one warning each; malformed values name the expected type.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrocket_conf::Kind;
use thiserror::Error;

/// A conf problem, phrased for the operator.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfError {
    /// File syntax, unknown keys, malformed values (the shared conf loader's checks).
    #[error(transparent)]
    Conf(#[from] ferrocket_conf::ConfError),
    #[error("{at}: `{key}={value}` is not valid: expected {expected}")]
    BadValue {
        at: String,
        key: String,
        value: String,
        expected: String,
    },
}

/// Keys we implement, with their defaults as text.
const IMPLEMENTED: &[(&str, &str)] = &[
    ("listenPort", "9876"),
    ("bindAddress", "0.0.0.0"),
    ("kvConfigPath", "~/namesrv/kvConfig.json"),
    ("orderMessageEnable", "false"),
    ("scanNotActiveBrokerInterval", "5000"),
    ("brokerChannelExpiredTime", "120000"),
    ("serverChannelMaxIdleTimeSeconds", "120"),
];

/// The typed configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NamesrvConfig {
    pub listen_port: u16,
    pub bind_address: IpAddr,
    pub kv_config_path: PathBuf,
    pub order_message_enable: bool,
    /// How often expired brokers are looked for.
    pub scan_not_active_broker_interval: Duration,
    /// A broker that has not registered for this long is dropped (RocketMQ: fixed 120 s).
    pub broker_channel_expired_time: Duration,
    pub server_channel_max_idle_time: Duration,
}

/// A loaded configuration: the values, the warnings to log, and the effective key list for `-p`.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: NamesrvConfig,
    pub warnings: Vec<String>,
    /// (key, value, source) for every implemented key, sorted by key.
    pub effective: Vec<(String, String, String)>,
}

impl Default for NamesrvConfig {
    fn default() -> Self {
        load_from(BTreeMap::new())
            .expect("defaults are valid")
            .config
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// Loads `path` (if any) over the defaults.
pub fn load(path: Option<&Path>) -> Result<Loaded, ConfError> {
    let implemented: Vec<&str> = IMPLEMENTED.iter().map(|(k, _)| *k).collect();
    let l = ferrocket_conf::load(Kind::Namesrv, path, None, &implemented)?;
    let file_values = l
        .settings
        .into_iter()
        .filter(|(k, _)| implemented.contains(&k.as_str()))
        .map(|(k, s)| (k, (s.value, s.origin.to_string())))
        .collect();
    let mut loaded = load_from(file_values)?;
    loaded.warnings = l.warnings;
    Ok(loaded)
}

fn load_from(mut values: BTreeMap<String, (String, String)>) -> Result<Loaded, ConfError> {
    let mut effective = Vec::new();
    for (k, default) in IMPLEMENTED {
        let (v, src) = values
            .remove(*k)
            .unwrap_or_else(|| (default.to_string(), "default".to_string()));
        effective.push((k.to_string(), v, src));
    }
    effective.sort();
    let get = |key: &str| {
        effective
            .iter()
            .find(|e| e.0 == key)
            .expect("implemented key")
    };
    let bad = |key: &str, expected: &str| {
        let (k, v, at) = get(key);
        ConfError::BadValue {
            at: at.clone(),
            key: k.clone(),
            value: v.clone(),
            expected: expected.into(),
        }
    };
    let num = |key: &str| {
        get(key)
            .1
            .trim()
            .parse::<u64>()
            .map_err(|_| bad(key, "a whole number"))
    };
    let port = |key: &str| {
        get(key)
            .1
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(key, "a port number 1-65535"))
    };
    let boolean = |key: &str| match get(key).1.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(key, "true or false")),
    };
    let kv = get("kvConfigPath").1.clone();
    let kv_config_path = match kv.strip_prefix("~/") {
        Some(rest) => home().join(rest),
        None => PathBuf::from(kv),
    };
    let config = NamesrvConfig {
        listen_port: port("listenPort")?,
        bind_address: get("bindAddress")
            .1
            .trim()
            .parse()
            .map_err(|_| bad("bindAddress", "an IP address"))?,
        kv_config_path,
        order_message_enable: boolean("orderMessageEnable")?,
        scan_not_active_broker_interval: Duration::from_millis(
            num("scanNotActiveBrokerInterval")?.max(10),
        ),
        broker_channel_expired_time: Duration::from_millis(
            num("brokerChannelExpiredTime")?.max(10),
        ),
        server_channel_max_idle_time: Duration::from_secs(
            num("serverChannelMaxIdleTimeSeconds")?.max(1),
        ),
    };
    Ok(Loaded {
        config,
        warnings: Vec::new(),
        effective,
    })
}

impl Loaded {
    /// `-p`: every key, its value and where it came from.
    pub fn render(&self) -> String {
        self.effective
            .iter()
            .map(|(k, v, s)| format!("{k}={v}    # {s}\n"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A conf file removed when dropped.
    struct ConfFile(PathBuf);

    impl ConfFile {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for ConfFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn write(text: &str) -> ConfFile {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!(
            "namesrv-conf-{}-{n}.properties",
            std::process::id()
        ));
        std::fs::write(&p, text).unwrap();
        ConfFile(p)
    }

    #[test]
    fn defaults_are_rocketmqs() {
        let c = NamesrvConfig::default();
        assert_eq!(c.listen_port, 9876);
        assert_eq!(c.broker_channel_expired_time, Duration::from_secs(120));
    }

    #[test]
    fn file_values_and_provenance() {
        let p = write("# comment\nlistenPort = 19876\n! other\norderMessageEnable:true\nserverWorkerThreads 8\n");
        let l = load(Some(p.path())).unwrap();
        assert_eq!(l.config.listen_port, 19876);
        assert!(l.config.order_message_enable);
        assert_eq!(l.warnings.len(), 1);
        assert!(l
            .render()
            .contains(&format!("listenPort=19876    # {}:2", p.path().display())));
    }

    #[test]
    fn unknown_key_names_line_and_suggests() {
        let p = write("listenPort=1\nlistenPrt=2\n");
        let e = load(Some(p.path())).unwrap_err().to_string();
        assert!(
            e.contains(":2: unknown key `listenPrt` (did you mean `listenPort`?)"),
            "{e}"
        );
    }

    #[test]
    fn malformed_value_names_expectation() {
        let p = write("listenPort=abc\n");
        let e = load(Some(p.path())).unwrap_err().to_string();
        assert!(
            e.contains(":1: `listenPort=abc` is not valid: expected a port number"),
            "{e}"
        );
    }
}
