//! KV config (PUT/GET/DELETE_KV_CONFIG): namespace -> key -> value, persisted as JSON in
//! `kvConfigPath` (`{"configTable":{namespace:{key:value}}}`, RocketMQ's file format).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    #[serde(default)]
    config_table: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug)]
pub struct KvConfig {
    path: PathBuf,
    table: BTreeMap<String, BTreeMap<String, String>>,
}

impl KvConfig {
    /// Loads the file if it exists; a missing file is an empty table, an unreadable one is
    /// logged and treated as empty (the name server must start).
    pub fn load(path: PathBuf) -> KvConfig {
        let table = match std::fs::read(&path) {
            Ok(bytes) => match ferrocket_protocol::fastjson::from_slice::<File>(&bytes) {
                Ok(f) => f.config_table,
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unreadable KV config: {e}");
                    BTreeMap::new()
                }
            },
            Err(_) => BTreeMap::new(),
        };
        KvConfig { path, table }
    }

    pub fn put(&mut self, ns: &str, key: &str, value: &str) {
        self.table
            .entry(ns.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
        self.persist();
    }

    pub fn get(&self, ns: &str, key: &str) -> Option<&str> {
        self.table.get(ns)?.get(key).map(String::as_str)
    }

    pub fn delete(&mut self, ns: &str, key: &str) {
        if let Some(t) = self.table.get_mut(ns) {
            t.remove(key);
            if t.is_empty() {
                self.table.remove(ns);
            }
        }
        self.persist();
    }

    pub fn namespace(&self, ns: &str) -> Option<&BTreeMap<String, String>> {
        self.table.get(ns)
    }

    /// Writes the file atomically (temp file + rename); a failure is logged, not fatal.
    fn persist(&self) {
        let file = File {
            config_table: self.table.clone(),
        };
        let result = (|| -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = self.path.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&file)?)?;
            std::fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = result {
            tracing::warn!(path = %self.path.display(), "cannot persist KV config: {e}");
        }
    }
}
