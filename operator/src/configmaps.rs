//! Values a LoadTest keeps in a ConfigMap of its namespace (`configMapKeyRef: {name, key}`),
//! read when its test is about to start: `spec.tls.caFrom` and each `spec.mix[i].bodyFrom`,
//! through the same two steps: [`value_of`] decides, pure, from the
//! ConfigMap as read (or its absence); [`read`] does the one GET. A ConfigMap or key that is
//! missing (or a value too large or not text) is not an error but a [`RefPending`] naming the
//! field: the LoadTest waits in Pending, retried, and starts once the ConfigMap is right.

use crate::crd::{ConfigMapKeyRef, LoadTestSpec};
use floodgate::protocol::limits;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use std::collections::BTreeMap;

/// The field of the CA bundle kept in a ConfigMap.
pub const CA_FROM: &str = "spec.tls.caFrom";

/// Why a ConfigMap reference has no value yet; each names the field and the ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefPending {
    #[error("{field}: ConfigMap {name} (key {key}) is not in the LoadTest's namespace")]
    NoConfigMap {
        field: String,
        name: String,
        key: String,
    },
    #[error("{field}: ConfigMap {name} has no key {key}")]
    NoKey {
        field: String,
        name: String,
        key: String,
    },
    #[error("{field}: ConfigMap {name} key {key} holds {bytes} bytes, over the limit of {max}")]
    TooLarge {
        field: String,
        name: String,
        key: String,
        bytes: usize,
        max: usize,
    },
    #[error("{field}: ConfigMap {name} key {key} is binaryData that is not UTF-8 text")]
    NotText {
        field: String,
        name: String,
        key: String,
    },
}

impl RefPending {
    /// The condition's reason (CamelCase, bounded).
    pub fn reason(&self) -> &'static str {
        match self {
            RefPending::NoConfigMap { .. } => "ConfigMapNotFound",
            RefPending::NoKey { .. } => "ConfigMapKeyNotFound",
            RefPending::TooLarge { .. } => "ConfigMapValueTooLarge",
            RefPending::NotText { .. } => "ConfigMapValueNotText",
        }
    }
}

/// The value of `r` in `cm` (the ConfigMap as read; `None` when there is none), at most `max`
/// bytes. `data` is looked in first, then `binaryData` if it is UTF-8 (what `kubectl create
/// configmap --from-file` does with a file that is not).
pub fn value_of(
    field: &str,
    r: &ConfigMapKeyRef,
    cm: Option<&ConfigMap>,
    max: usize,
) -> Result<String, RefPending> {
    let names = || (field.to_string(), r.name.clone(), r.key.clone());
    let Some(cm) = cm else {
        let (field, name, key) = names();
        return Err(RefPending::NoConfigMap { field, name, key });
    };
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(&r.key))
        .map(|s| s.as_bytes());
    let binary = cm.binary_data.as_ref().and_then(|d| d.get(&r.key));
    let bytes = match (text, binary) {
        (Some(t), _) => t,
        (None, Some(b)) => b.0.as_slice(),
        (None, None) => {
            let (field, name, key) = names();
            return Err(RefPending::NoKey { field, name, key });
        }
    };
    // Checked before anything is copied: the API server bounds a ConfigMap at 1 MiB, the
    // field's own limit is smaller (a CA bundle travels in the test's config over Kafka).
    if bytes.len() > max {
        let (field, name, key) = names();
        let bytes = bytes.len();
        return Err(RefPending::TooLarge {
            field,
            name,
            key,
            bytes,
            max,
        });
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        let (field, name, key) = names();
        RefPending::NotText { field, name, key }
    })
}

/// Reads `r` from the LoadTest's namespace (`api`): the value, or why it is pending. Only an
/// API error other than "not found" (e.g. forbidden) is an error.
pub async fn read(
    api: &Api<ConfigMap>,
    field: &str,
    r: &ConfigMapKeyRef,
    max: usize,
) -> Result<Result<String, RefPending>, kube::Error> {
    let cm = api.get_opt(&r.name).await?;
    Ok(value_of(field, r, cm.as_ref(), max))
}

/// The field of mix entry `i`'s body kept in a ConfigMap.
pub fn body_from(i: usize) -> String {
    format!("spec.mix[{i}].bodyFrom")
}

/// Every ConfigMap reference of a spec: its field, the reference and the field's limit.
pub fn refs(spec: &LoadTestSpec) -> Vec<(String, &ConfigMapKeyRef, usize)> {
    let ca = spec.tls.as_ref().and_then(|t| t.ca_from.as_ref());
    let ca = ca.map(|c| {
        let r = &c.config_map_key_ref;
        (CA_FROM.to_string(), r, limits::MAX_CA_PEM_BYTES)
    });
    let bodies = spec.mix.iter().flatten().enumerate().filter_map(|(i, m)| {
        let r = &m.body_from.as_ref()?.config_map_key_ref;
        Some((body_from(i), r, limits::MAX_BODY_BYTES))
    });
    ca.into_iter().chain(bodies).collect()
}

/// The values of a spec's ConfigMap references, by field, or the first that is pending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    pub values: BTreeMap<String, String>,
    pub pending: Option<RefPending>,
}

/// Reads every reference of `spec` (each ConfigMap once), stopping at the first that is
/// pending.
pub async fn resolve(api: &Api<ConfigMap>, spec: &LoadTestSpec) -> Result<Resolved, kube::Error> {
    let mut out = Resolved::default();
    // Each ConfigMap is read once, however many references name it (a mix's bodies may
    // share one).
    let mut maps: BTreeMap<String, Option<ConfigMap>> = BTreeMap::new();
    for (field, r, max) in refs(spec) {
        if !maps.contains_key(&r.name) {
            maps.insert(r.name.clone(), api.get_opt(&r.name).await?);
        }
        let cm = maps.get(&r.name).and_then(Option::as_ref);
        match value_of(&field, r, cm, max) {
            Ok(v) => {
                out.values.insert(field, v);
            }
            Err(p) => {
                out.pending = Some(p);
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "configmaps_tests.rs"]
mod tests;
