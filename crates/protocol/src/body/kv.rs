//! `KVTable`: `{"table":{key:value}}`, used for KV config namespaces and broker runtime info.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KvTable {
    #[serde(default)]
    pub table: BTreeMap<String, String>,
}
