//! Conf loading shared by `mqnamesrv` and `mqbroker`: RocketMQ's `.properties` files, unchanged,
//! read strictly.
//!
//! Layers, lowest first, merged with the `config` crate: the file, then `FERROCKET_<key>`
//! environment variables (any camelCase key, e.g. `FERROCKET_listenPort=10921`; all-caps names
//! such as `FERROCKET_LOG_DIR` are the launcher scripts' own), then `NAMESRV_ADDR`
//! (only when neither the file nor a `FERROCKET_` variable sets `namesrvAddr`), then `-n`.
//! Every value remembers where it came from ([`Origin`]), for error messages and `-p`.
//!
//! Where RocketMQ silently ignores bad input we stop with file:line: a key RocketMQ does not
//! know ([`ConfError::UnknownKey`], with the closest known key), a malformed value
//! ([`ConfError::BadValue`]), a value with the next line glued on ([`ConfError::Glued`]), and a
//! broken cross-key rule ([`ConfError::Rule`]). A key RocketMQ knows that the program does not
//! implement gives one warning.

mod check;
pub mod properties;
pub mod registry;
mod source;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

pub use check::{closest, edit_distance};
pub use registry::Kind;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { path: String, line: usize },
    Env(String),
    CommandLine,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{path}:{line}"),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::CommandLine => write!(f, "command line -n"),
        }
    }
}

/// A value and its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub origin: Origin,
}

/// A conf problem, phrased for the operator. Binaries exit with code 2 on any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfError {
    #[error("cannot read conf file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{at}: unknown key `{key}`{hint}")]
    UnknownKey {
        at: String,
        key: String,
        hint: String,
    },
    #[error("{at}: `{key}={value}` is not valid: expected {expected}")]
    BadValue {
        at: String,
        key: String,
        value: String,
        expected: String,
    },
    #[error("{at}: `{key}={value}` looks like two lines run together (a missing line break?)")]
    Glued {
        at: String,
        key: String,
        value: String,
    },
    #[error("{at}: `{key}` {message}")]
    Rule {
        at: String,
        key: String,
        message: String,
    },
    #[error("conf merge failed: {0}")]
    Merge(String),
}

/// What a program read: every setting given (file, environment, command line), and warnings.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub settings: BTreeMap<String, Setting>,
    pub warnings: Vec<String>,
}

impl Loaded {
    /// The plain key/value view.
    pub fn values(&self) -> std::collections::HashMap<String, String> {
        self.settings
            .iter()
            .map(|(k, s)| (k.clone(), s.value.clone()))
            .collect()
    }

    /// `-p` lines: every key of `effective` (the program's full view, defaults included) with
    /// its value and origin.
    pub fn render<'a>(&self, effective: impl IntoIterator<Item = (&'a str, String)>) -> String {
        let mut out = String::new();
        for (k, v) in effective {
            match self.settings.get(k) {
                Some(s) => out.push_str(&format!("{k}={v}    # {}\n", s.origin)),
                None => out.push_str(&format!("{k}={v}    # default\n")),
            }
        }
        out
    }
}

/// The environment variable prefix that sets any key.
pub const ENV_PREFIX: &str = "FERROCKET_";

/// Loads the conf of `kind` from `path` (if any), the environment and `-n`.
///
/// `implemented` lists the keys the program acts on; other keys RocketMQ knows give a warning.
pub fn load(
    kind: Kind,
    path: Option<&Path>,
    namesrv_cli: Option<&str>,
    implemented: &[&str],
) -> Result<Loaded, ConfError> {
    let mut layers: Vec<source::Layer> = Vec::new();
    if let Some(path) = path {
        let text = std::fs::read_to_string(path).map_err(|e| ConfError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let p = path.display().to_string();
        layers.push(
            properties::parse(&text)
                .into_iter()
                .map(|e| {
                    (
                        e.key,
                        Setting {
                            value: e.value,
                            origin: Origin::File {
                                path: p.clone(),
                                line: e.line,
                            },
                        },
                    )
                })
                .collect(),
        );
    }
    let env: source::Layer = std::env::vars()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix(ENV_PREFIX)?.to_string();
            // RocketMQ keys are camelCase; all-caps names (FERROCKET_LOG_DIR) belong to the
            // launcher scripts, not to the conf.
            key.chars().any(|c| c.is_ascii_lowercase()).then(|| {
                (
                    key,
                    Setting {
                        value: v.trim().to_string(),
                        origin: Origin::Env(k.clone()),
                    },
                )
            })
        })
        .collect();
    let file_sets_namesrv = layers
        .iter()
        .flatten()
        .chain(env.iter())
        .any(|(k, _)| k == "namesrvAddr");
    layers.push(env);
    if kind == Kind::Broker && !file_sets_namesrv {
        if let Ok(v) = std::env::var("NAMESRV_ADDR") {
            layers.push(vec![(
                "namesrvAddr".into(),
                Setting {
                    value: v.trim().to_string(),
                    origin: Origin::Env("NAMESRV_ADDR".into()),
                },
            )]);
        }
    }
    if let Some(n) = namesrv_cli {
        layers.push(vec![(
            "namesrvAddr".into(),
            Setting {
                value: n.trim().to_string(),
                origin: Origin::CommandLine,
            },
        )]);
    }

    // Names first: unknown keys stop, aliases become canonical.
    let mut warnings = Vec::new();
    for layer in &mut layers {
        for (key, s) in layer.iter_mut() {
            let canon = registry::canonical(key);
            if canon != key {
                warnings.push(format!(
                    "{}: `{key}` is the old spelling of `{canon}`",
                    s.origin
                ));
                *key = canon.to_string();
            }
            if registry::default_of(kind, key).is_none() {
                return Err(ConfError::UnknownKey {
                    at: s.origin.to_string(),
                    hint: closest(kind, key)
                        .map(|k| format!(" (did you mean `{k}`?)"))
                        .unwrap_or_default(),
                    key: key.clone(),
                });
            }
            // Java's Boolean.parseBoolean takes TRUE and True for true: so do we (other
            // spellings, which Java silently reads as false, are refused by the check below).
            if matches!(registry::default_of(kind, key), Some("true" | "false"))
                && (s.value.eq_ignore_ascii_case("true") || s.value.eq_ignore_ascii_case("false"))
            {
                s.value = s.value.to_ascii_lowercase();
            }
            check::value(kind, key, s)?;
            if !implemented.contains(&key.as_str()) {
                warnings.push(format!(
                    "{}: `{key}` is a RocketMQ key Ferrocket does not implement yet; ignored",
                    s.origin
                ));
            }
        }
    }
    let settings = source::merge(layers)?;
    if kind == Kind::Broker {
        warnings.extend(check::broker_rules(&settings)?);
    }
    Ok(Loaded { settings, warnings })
}

#[cfg(test)]
mod tests;
