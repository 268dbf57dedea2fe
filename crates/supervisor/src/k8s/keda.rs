//! The KEDA ScaledObject (`keda.sh/v1alpha1`), which `k8s-openapi` does not define: the few
//! fields of KEDA's documented spec that `deploy k8s` sets, as plain serde structs.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// A KEDA ScaledObject: KEDA creates and drives an HPA for its target from its triggers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaledObject {
    /// Always `keda.sh/v1alpha1`.
    pub api_version: String,
    /// Always `ScaledObject`.
    pub kind: String,
    /// Name, namespace and labels.
    pub metadata: ObjectMeta,
    /// What to scale and on what.
    pub spec: ScaledObjectSpec,
}

impl ScaledObject {
    /// The API version KEDA 2 serves.
    pub const API_VERSION: &'static str = "keda.sh/v1alpha1";
    /// The kind.
    pub const KIND: &'static str = "ScaledObject";
}

/// `spec` of a [`ScaledObject`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaledObjectSpec {
    /// The Deployment to scale.
    pub scale_target_ref: KedaScaleTarget,
    /// Seconds between trigger checks.
    pub polling_interval: u32,
    /// Seconds after the last active trigger before scaling down to the minimum.
    pub cooldown_period: u32,
    /// Fewest replicas.
    pub min_replica_count: u32,
    /// Most replicas.
    pub max_replica_count: u32,
    /// The triggers (any active one scales up).
    pub triggers: Vec<KedaTrigger>,
}

/// `spec.scaleTargetRef` of a [`ScaledObject`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KedaScaleTarget {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// The Deployment's name (same namespace).
    pub name: String,
}

/// One trigger of a [`ScaledObject`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KedaTrigger {
    /// The scaler, e.g. `prometheus`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `AverageValue`: the threshold is per replica.
    pub metric_type: String,
    /// The scaler's parameters (KEDA takes them all as strings).
    pub metadata: BTreeMap<String, String>,
}
