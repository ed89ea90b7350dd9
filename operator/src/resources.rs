//! Pure builders of the Kubernetes objects a LoadTest owns: its driver Deployment.
//!
//! One Deployment per LoadTest (not a shared pool): concurrent LoadTests never share drivers,
//! the owner reference makes deleting a LoadTest delete its drivers, and a finished LoadTest
//! scales its own drivers to zero without touching anyone else's.

use crate::crd::LoadTest;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceFieldSelector, SecretEnvSource, SecretVolumeSource, SecurityContext, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use std::collections::BTreeMap;

/// Port of each driver's HTTP endpoint (`/healthz`, Prometheus `/metrics`).
pub const DRIVER_PORT: i32 = 9090;
/// Where the Kafka Secret's files (CA, client certificate) are mounted, in the operator's pod
/// (by the chart) and in every driver pod alike, so that `--kafka-ssl-*` paths hold in both.
pub const KAFKA_SECRET_MOUNT: &str = "/etc/floodgate/kafka";
/// Label carrying the owning LoadTest's name.
pub const LOADTEST_LABEL: &str = "floodgate.dev/loadtest";

/// Settings shared by every driver the operator creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverDefaults {
    pub image: String,
    pub kafka: String,
    /// The address drivers are told for the orchestrator (the operator's Service).
    pub orchestrator: String,
    pub topic_prefix: String,
    /// The operator's Kafka security settings that are not credentials (`FLOODGATE_KAFKA_*`).
    pub kafka_env: Vec<(String, String)>,
    /// A Secret in each LoadTest's namespace whose keys (`FLOODGATE_KAFKA_SASL_PASSWORD`, …)
    /// become driver environment variables and whose files are mounted at
    /// [`KAFKA_SECRET_MOUNT`]: credentials reach drivers only by this reference.
    pub kafka_secret: Option<String>,
}

/// The driver Deployment's name; driver IDs (pod names) start with it plus `-`.
pub fn deployment_name(lt: &LoadTest) -> String {
    format!(
        "{}-drivers",
        lt.metadata.name.as_deref().unwrap_or("loadtest")
    )
}

/// Whether a registered driver ID belongs to this LoadTest's Deployment.
pub fn owns_driver(lt: &LoadTest, driver_id: &str) -> bool {
    driver_id.starts_with(&format!("{}-", deployment_name(lt)))
}

fn labels(lt: &LoadTest) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "floodgate".to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            "driver".to_string(),
        ),
        (
            "app.kubernetes.io/part-of".to_string(),
            "floodgate".to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "floodgate-operator".to_string(),
        ),
        (
            LOADTEST_LABEL.to_string(),
            lt.metadata.name.clone().unwrap_or_default(),
        ),
    ])
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        ..Default::default()
    }
}

/// The driver Deployment of `lt` with `replicas` pods.
pub fn driver_deployment(lt: &LoadTest, replicas: i32, d: &DriverDefaults) -> Deployment {
    let labels = labels(lt);
    let selector = BTreeMap::from([(LOADTEST_LABEL.to_string(), labels[LOADTEST_LABEL].clone())]);
    let annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_string(), "true".to_string()),
        ("prometheus.io/port".to_string(), DRIVER_PORT.to_string()),
        ("prometheus.io/path".to_string(), "/metrics".to_string()),
    ]);
    let pod_name = EnvVar {
        name: "FLOODGATE_ID".to_string(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "metadata.name".to_string(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    // The pod's CPU (its limit, else the node's allocatable CPU) in millicores: the capacity the
    // driver declares, by which a test given in totals is shared (issue 13).
    let capacity = EnvVar {
        name: "FLOODGATE_CAPACITY_MILLICORES".to_string(),
        value_from: Some(EnvVarSource {
            resource_field_ref: Some(ResourceFieldSelector {
                container_name: Some("driver".to_string()),
                resource: "limits.cpu".to_string(),
                divisor: Some(k8s_openapi::apimachinery::pkg::api::resource::Quantity(
                    "1m".to_string(),
                )),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let container = Container {
        name: "driver".to_string(),
        image: Some(
            lt.spec
                .driver_image
                .clone()
                .unwrap_or_else(|| d.image.clone()),
        ),
        args: Some(vec!["driver".to_string()]),
        env: Some(
            vec![
                pod_name,
                capacity,
                env("FLOODGATE_KAFKA", &d.kafka),
                env("FLOODGATE_ORCHESTRATOR", &d.orchestrator),
                env("FLOODGATE_TOPIC_PREFIX", &d.topic_prefix),
                env("FLOODGATE_LISTEN", &format!("0.0.0.0:{DRIVER_PORT}")),
                env("FLOODGATE_LOG_FORMAT", "json"),
                // The driver's store survives container restarts, so a restarted driver never
                // reruns a test it already ran.
                env("FLOODGATE_DATA_DIR", "/data"),
            ]
            .into_iter()
            .chain(d.kafka_env.iter().map(|(k, v)| env(k, v)))
            .collect(),
        ),
        env_from: d.kafka_secret.as_ref().map(|name| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: name.clone(),
                    optional: Some(false),
                }),
                ..Default::default()
            }]
        }),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: DRIVER_PORT,
            ..Default::default()
        }]),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/healthz".into()),
                port: IntOrString::Int(DRIVER_PORT),
                ..Default::default()
            }),
            period_seconds: Some(2),
            ..Default::default()
        }),
        resources: lt.spec.driver_resources.clone(),
        volume_mounts: Some(
            std::iter::once(VolumeMount {
                name: "data".into(),
                mount_path: "/data".into(),
                ..Default::default()
            })
            .chain(d.kafka_secret.as_ref().map(|_| VolumeMount {
                name: "kafka".into(),
                mount_path: KAFKA_SECRET_MOUNT.into(),
                read_only: Some(true),
                ..Default::default()
            }))
            .collect(),
        ),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    Deployment {
        metadata: ObjectMeta {
            name: Some(deployment_name(lt)),
            namespace: lt.metadata.namespace.clone(),
            labels: Some(labels.clone()),
            owner_references: lt.controller_owner_ref(&()).map(|r| vec![r]),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(
                        std::iter::once(Volume {
                            name: "data".into(),
                            empty_dir: Some(EmptyDirVolumeSource::default()),
                            ..Default::default()
                        })
                        .chain(d.kafka_secret.as_ref().map(|name| Volume {
                            name: "kafka".into(),
                            secret: Some(SecretVolumeSource {
                                secret_name: Some(name.clone()),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }))
                        .collect(),
                    ),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65532),
                        ..Default::default()
                    }),
                    // Drivers stop cleanly on SIGTERM (a final report is stored, then sent).
                    termination_grace_period_seconds: Some(30),
                    // Drivers talk only to Kafka and the target: no API token, no service env.
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lt() -> LoadTest {
        crate::crd::sample_loadtest()
    }

    fn defaults() -> DriverDefaults {
        DriverDefaults {
            image: "floodgate/node:1".into(),
            kafka: "kafka:9092".into(),
            orchestrator: "op:8090".into(),
            topic_prefix: "".into(),
            kafka_env: vec![],
            kafka_secret: None,
        }
    }

    #[test]
    fn kafka_credentials_reach_drivers_only_by_secret_reference() {
        let d = DriverDefaults {
            kafka_env: vec![
                (
                    "FLOODGATE_KAFKA_SECURITY_PROTOCOL".into(),
                    "sasl_ssl".into(),
                ),
                (
                    "FLOODGATE_KAFKA_SSL_CA".into(),
                    format!("{KAFKA_SECRET_MOUNT}/ca.pem"),
                ),
            ],
            kafka_secret: Some("kafka-creds".into()),
            ..defaults()
        };
        let pod = driver_deployment(&lt(), 2, &d)
            .spec
            .and_then(|s| s.template.spec)
            .expect("pod");
        let c = &pod.containers[0];
        let env = c.env.as_ref().expect("env");
        let value = |n: &str| {
            env.iter()
                .find(|e| e.name == n)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(
            value("FLOODGATE_KAFKA_SECURITY_PROTOCOL").as_deref(),
            Some("sasl_ssl")
        );
        assert!(value("FLOODGATE_KAFKA_SASL_PASSWORD").is_none());
        let from = c.env_from.as_ref().expect("envFrom");
        assert_eq!(
            from[0].secret_ref.as_ref().map(|s| s.name.as_str()),
            Some("kafka-creds")
        );
        let mount = c
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == "kafka")
            .expect("the Secret's files are mounted");
        assert_eq!(mount.mount_path, KAFKA_SECRET_MOUNT);
        let vol = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "kafka")
            .and_then(|v| v.secret.as_ref())
            .and_then(|s| s.secret_name.clone());
        assert_eq!(vol.as_deref(), Some("kafka-creds"));
        // Without a Secret, no reference and no mount.
        let plain = driver_deployment(&lt(), 2, &defaults());
        let c = &plain
            .spec
            .and_then(|s| s.template.spec)
            .expect("pod")
            .containers[0];
        assert!(c.env_from.is_none());
        assert_eq!(c.volume_mounts.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn the_deployment_is_owned_labelled_and_configured() {
        let d = driver_deployment(&lt(), 3, &defaults());
        assert_eq!(d.metadata.name.as_deref(), Some("ping-drivers"));
        assert_eq!(d.metadata.namespace.as_deref(), Some("load"));
        let owner = &d.metadata.owner_references.as_ref().expect("owned")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("LoadTest", "uid-1", Some(true))
        );
        let spec = d.spec.expect("spec");
        assert_eq!(spec.replicas, Some(3));
        let pod = spec.template.spec.expect("pod");
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("floodgate/node:1"));
        let env = c.env.as_ref().expect("env");
        let get = |n: &str| {
            env.iter()
                .find(|e| e.name == n)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(get("FLOODGATE_KAFKA").as_deref(), Some("kafka:9092"));
        assert_eq!(get("FLOODGATE_ORCHESTRATOR").as_deref(), Some("op:8090"));
        let cpu = env
            .iter()
            .find(|e| e.name == "FLOODGATE_CAPACITY_MILLICORES")
            .and_then(|e| e.value_from.as_ref()?.resource_field_ref.clone())
            .expect("the capacity from the pod's CPU");
        assert_eq!(
            (cpu.resource.as_str(), cpu.divisor.map(|q| q.0)),
            ("limits.cpu", Some("1m".to_string()))
        );
        let id = env
            .iter()
            .find(|e| e.name == "FLOODGATE_ID")
            .expect("id from the pod name");
        assert_eq!(
            id.value_from
                .as_ref()
                .and_then(|v| v.field_ref.as_ref())
                .map(|f| f.field_path.as_str()),
            Some("metadata.name")
        );
        let sel = spec.selector.match_labels.expect("selector");
        let tpl = spec
            .template
            .metadata
            .expect("meta")
            .labels
            .expect("labels");
        assert!(
            sel.iter().all(|(k, v)| tpl.get(k) == Some(v)),
            "the selector matches the pods"
        );
    }

    #[test]
    fn a_spec_image_overrides_the_default_and_ids_are_recognised() {
        let mut l = lt();
        l.spec.driver_image = Some("mine:2".into());
        let d = driver_deployment(&l, 2, &defaults());
        let image = d
            .spec
            .and_then(|s| s.template.spec)
            .map(|p| p.containers[0].image.clone());
        assert_eq!(image, Some(Some("mine:2".into())));
        assert!(owns_driver(&l, "ping-drivers-7d9f-abcde"));
        assert!(!owns_driver(&l, "ping-other-1"));
        assert!(!owns_driver(&l, "pingpong-drivers-1"));
    }
}
