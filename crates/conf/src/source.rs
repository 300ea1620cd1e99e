//! The layers as `config` crate sources: the crate merges them (later layers win), each value
//! carrying its origin, which is read back as the setting's provenance.

use std::collections::BTreeMap;

use config::{Config, Map, Source, Value, ValueKind};

use crate::{ConfError, Origin, Setting};

/// One layer: (key, setting) in order; a later duplicate wins.
pub type Layer = Vec<(String, Setting)>;

#[derive(Debug, Clone)]
struct LayerSource {
    entries: Vec<(String, String, String)>,
}

impl Source for LayerSource {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        let mut m = Map::new();
        for (k, v, origin) in &self.entries {
            m.insert(
                k.clone(),
                Value::new(Some(origin), ValueKind::String(v.clone())),
            );
        }
        Ok(m)
    }
}

/// Merges the layers; the result maps each key to the winning value and its origin.
pub fn merge(layers: Vec<Layer>) -> Result<BTreeMap<String, Setting>, ConfError> {
    // Origins by their text, to turn the merged value's origin back into an `Origin`.
    let mut origins: BTreeMap<String, Origin> = BTreeMap::new();
    let mut builder = Config::builder();
    for layer in layers {
        let entries = layer
            .into_iter()
            .map(|(k, s)| {
                let o = s.origin.to_string();
                origins.insert(o.clone(), s.origin);
                (k, s.value, o)
            })
            .collect();
        builder = builder.add_source(LayerSource { entries });
    }
    let cfg = builder
        .build()
        .map_err(|e| ConfError::Merge(e.to_string()))?;
    let table = cfg.collect().map_err(|e| ConfError::Merge(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (k, v) in table {
        let origin = v
            .origin()
            .and_then(|o| origins.get(o).cloned())
            .unwrap_or(Origin::CommandLine);
        let value = v
            .into_string()
            .map_err(|e| ConfError::Merge(e.to_string()))?;
        out.insert(k, Setting { value, origin });
    }
    Ok(out)
}
