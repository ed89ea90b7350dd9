//! Resolving a LoadTest's `secretHeaders` when its test starts: each value from a key of a
//! Secret in the LoadTest's namespace (`valueFrom.secretKeyRef`) or from an operator variable
//! named `FLOODGATE_HEADER_*` (`valueFrom.env`). The values go to the orchestrator marked
//! secret, so no view, report or status shows them; they are never written to the LoadTest.

use crate::crd::SecretHeader;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

/// The prefix an operator variable must have to be used as a header value.
pub const ENV_PREFIX: &str = "FLOODGATE_HEADER_";

/// Why a secret header has no value; the test does not start (and is retried) until it has.
#[derive(Debug, thiserror::Error)]
pub enum SecretHeaderError {
    #[error("{header}: valueFrom needs exactly one of secretKeyRef and env")]
    Source { header: String },
    #[error("{header}: env {var} must start with {ENV_PREFIX}")]
    EnvName { header: String, var: String },
    #[error("{header}: the operator has no variable {var}")]
    NoEnv { header: String, var: String },
    #[error("{header}: Secret {secret} has no key {key}")]
    NoKey {
        header: String,
        secret: String,
        key: String,
    },
    #[error("{header}: Secret {secret}: {source}")]
    Kube {
        header: String,
        secret: String,
        source: kube::Error,
    },
    #[error("{header}: the value of {secret}/{key} is not UTF-8 text")]
    NotText {
        header: String,
        secret: String,
        key: String,
    },
}

/// The `(name, value)` of every secret header, in order.
pub async fn resolve(
    secrets: &Api<Secret>,
    headers: &[SecretHeader],
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, SecretHeaderError> {
    let mut out = Vec::with_capacity(headers.len());
    for h in headers {
        let header = h.name.clone();
        let value = match (&h.value_from.secret_key_ref, &h.value_from.env) {
            (Some(r), None) => {
                let secret =
                    secrets
                        .get(&r.name)
                        .await
                        .map_err(|source| SecretHeaderError::Kube {
                            header: header.clone(),
                            secret: r.name.clone(),
                            source,
                        })?;
                let bytes = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(&r.key))
                    .ok_or_else(|| SecretHeaderError::NoKey {
                        header: header.clone(),
                        secret: r.name.clone(),
                        key: r.key.clone(),
                    })?;
                String::from_utf8(bytes.0.clone()).map_err(|_| SecretHeaderError::NotText {
                    header: header.clone(),
                    secret: r.name.clone(),
                    key: r.key.clone(),
                })?
            }
            (None, Some(var)) if !var.starts_with(ENV_PREFIX) => {
                return Err(SecretHeaderError::EnvName {
                    header,
                    var: var.clone(),
                })
            }
            (None, Some(var)) => env(var).ok_or_else(|| SecretHeaderError::NoEnv {
                header: header.clone(),
                var: var.clone(),
            })?,
            _ => return Err(SecretHeaderError::Source { header }),
        };
        out.push((h.name.clone(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{HeaderValueFrom, SecretKeyRef};
    use http::{Request, Response};
    use kube::client::Body;
    use kube::Client;

    fn from_secret(name: &str, secret: &str, key: &str) -> SecretHeader {
        SecretHeader {
            name: name.into(),
            value_from: HeaderValueFrom {
                secret_key_ref: Some(SecretKeyRef {
                    name: secret.into(),
                    key: key.into(),
                }),
                env: None,
            },
        }
    }

    fn from_env(name: &str, var: &str) -> SecretHeader {
        SecretHeader {
            name: name.into(),
            value_from: HeaderValueFrom {
                secret_key_ref: None,
                env: Some(var.into()),
            },
        }
    }

    #[tokio::test]
    async fn a_secret_key_ref_is_read_from_the_loadtests_namespace() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            let (req, send) = handle.next_request().await.expect("a request");
            assert_eq!(req.method(), http::Method::GET);
            assert_eq!(
                req.uri().path(),
                "/api/v1/namespaces/load/secrets/api-creds"
            );
            // "Bearer abc" in base64, as the API server returns Secret data.
            let secret = serde_json::json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "api-creds", "namespace": "load"},
                "data": {"token": "QmVhcmVyIGFiYw=="},
            });
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&secret).expect("json")))
                    .expect("response"),
            );
        });
        let api: Api<Secret> = Api::namespaced(Client::new(service, "default"), "load");
        let env = |v: &str| (v == "FLOODGATE_HEADER_TENANT").then(|| "t-1".to_string());
        let got = resolve(
            &api,
            &[
                from_secret("Authorization", "api-creds", "token"),
                from_env("X-Tenant", "FLOODGATE_HEADER_TENANT"),
            ],
            env,
        )
        .await
        .expect("resolved");
        assert_eq!(
            got,
            [
                ("Authorization".to_string(), "Bearer abc".to_string()),
                ("X-Tenant".to_string(), "t-1".to_string())
            ]
        );
        server.await.expect("server side ran");
    }

    #[tokio::test]
    async fn bad_sources_are_refused_without_asking_the_api_server() {
        let (service, _handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api: Api<Secret> = Api::namespaced(Client::new(service, "default"), "load");
        let env = |_: &str| Some("leaked".to_string());
        let e = resolve(&api, &[from_env("X", "FLOODGATE_KAFKA_SASL_PASSWORD")], env)
            .await
            .expect_err("not a header variable");
        assert!(matches!(e, SecretHeaderError::EnvName { .. }), "{e}");
        let none = SecretHeader {
            name: "X".into(),
            value_from: HeaderValueFrom {
                secret_key_ref: None,
                env: None,
            },
        };
        let e = resolve(&api, &[none], env).await.expect_err("no source");
        assert!(matches!(e, SecretHeaderError::Source { .. }), "{e}");
        let e = resolve(&api, &[from_env("X", "FLOODGATE_HEADER_NONE")], |_| None)
            .await
            .expect_err("unset");
        assert!(matches!(e, SecretHeaderError::NoEnv { .. }), "{e}");
    }
}
