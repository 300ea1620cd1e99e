//! Subscription groups (`SubscriptionGroupConfig`): auto-created on first use when
//! `autoCreateSubscriptionGroup` is on, updated by admins, persisted in the metadata KV.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ferrocket_store::kv::{MetaKv, Namespace};

use crate::body::{DataVersion, SubscriptionGroupConfig};
use crate::BrokerError;

struct Table {
    groups: HashMap<String, Arc<SubscriptionGroupConfig>>,
    version: DataVersion,
}

/// The subscription group table.
pub struct GroupManager {
    table: RwLock<Table>,
    kv: MetaKv,
    auto_create: bool,
}

impl GroupManager {
    pub fn load(kv: MetaKv, auto_create: bool) -> Result<Self, BrokerError> {
        let mut groups = HashMap::new();
        for (k, v) in kv.entries(Namespace::SubscriptionGroups)? {
            if let Ok(g) = serde_json::from_slice::<SubscriptionGroupConfig>(&v) {
                groups.insert(k, Arc::new(g));
            }
        }
        Ok(GroupManager {
            table: RwLock::new(Table {
                groups,
                version: DataVersion {
                    timestamp: crate::now_ms(),
                    counter: 0,
                    state_version: None,
                },
            }),
            kv,
            auto_create,
        })
    }

    pub fn get(&self, group: &str) -> Option<Arc<SubscriptionGroupConfig>> {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .groups
            .get(group)
            .cloned()
    }

    /// The group's config, created with defaults when auto-creation is on.
    pub fn find_or_create(
        &self,
        group: &str,
    ) -> Result<Option<Arc<SubscriptionGroupConfig>>, BrokerError> {
        if let Some(g) = self.get(group) {
            return Ok(Some(g));
        }
        if !self.auto_create {
            return Ok(None);
        }
        self.upsert(SubscriptionGroupConfig::new(group)).map(Some)
    }

    pub fn upsert(
        &self,
        g: SubscriptionGroupConfig,
    ) -> Result<Arc<SubscriptionGroupConfig>, BrokerError> {
        self.kv
            .put_json(Namespace::SubscriptionGroups, &g.group_name, &g)?;
        self.kv.flush()?;
        let g = Arc::new(g);
        let mut t = self.table.write().unwrap_or_else(|e| e.into_inner());
        t.groups.insert(g.group_name.clone(), Arc::clone(&g));
        t.version = DataVersion {
            timestamp: crate::now_ms(),
            counter: t.version.counter + 1,
            state_version: None,
        };
        Ok(g)
    }

    /// Turns `consumeEnable` off for `group` (broker protection); false if there is no such
    /// group or it was off already.
    pub fn disable_consume(&self, group: &str) -> Result<bool, BrokerError> {
        match self.get(group) {
            Some(g) if g.consume_enable => {
                let mut g = (*g).clone();
                g.consume_enable = false;
                self.upsert(g)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// `{"subscriptionGroupTable":{…},"dataVersion":{…}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let t = self.table.read().unwrap_or_else(|e| e.into_inner());
        let table: serde_json::Map<String, serde_json::Value> = t
            .groups
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_value(&**v).unwrap_or_default()))
            .collect();
        serde_json::json!({
            "subscriptionGroupTable": table,
            "dataVersion": t.version,
        })
    }
}
