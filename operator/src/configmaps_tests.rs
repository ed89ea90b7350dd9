//! The ConfigMap reference decision as a table, and the one GET against a mocked API server.

use super::*;
use crate::crd::{FromConfigMap, LoadTestTls};
use http::{Request, Response};
use k8s_openapi::ByteString;
use kube::client::Body;
use kube::Client;

fn key_ref(name: &str, key: &str) -> ConfigMapKeyRef {
    ConfigMapKeyRef {
        name: name.into(),
        key: key.into(),
    }
}

fn config_map(data: &[(&str, &str)], binary: &[(&str, &[u8])]) -> ConfigMap {
    ConfigMap {
        data: (!data.is_empty()).then(|| {
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        }),
        binary_data: (!binary.is_empty()).then(|| {
            binary
                .iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                .collect()
        }),
        ..Default::default()
    }
}

#[test]
fn a_reference_is_its_value_or_a_reason_naming_the_field() {
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let with_ca = config_map(&[("ca.crt", pem)], &[("other", b"x")]);
    let binary_ca = config_map(&[], &[("ca.crt", pem.as_bytes())]);
    let not_text = config_map(&[], &[("ca.crt", &[0xff, 0xfe, 0x00])]);
    let big = "x".repeat(11);
    let too_big = config_map(&[("ca.crt", &big)], &[]);
    let r = key_ref("ca-bundle", "ca.crt");
    let pending = |reason: &'static str| -> Result<String, &'static str> { Err(reason) };
    let other_key = config_map(&[("tls.crt", pem)], &[]);
    // (case, the ConfigMap as read, the limit, the value or the pending reason)
    type Case<'a> = (
        &'a str,
        Option<&'a ConfigMap>,
        usize,
        Result<String, &'static str>,
    );
    let cases: [Case; 6] = [
        ("in data", Some(&with_ca), 1024, Ok(pem.to_string())),
        (
            "in binaryData, as text",
            Some(&binary_ca),
            1024,
            Ok(pem.to_string()),
        ),
        ("no ConfigMap", None, 1024, pending("ConfigMapNotFound")),
        (
            "no such key",
            Some(&other_key),
            1024,
            pending("ConfigMapKeyNotFound"),
        ),
        (
            "over the limit",
            Some(&too_big),
            10,
            pending("ConfigMapValueTooLarge"),
        ),
        (
            "binary, not text",
            Some(&not_text),
            1024,
            pending("ConfigMapValueNotText"),
        ),
    ];
    for (name, cm, max, want) in cases {
        let got = value_of(CA_FROM, &r, cm, max);
        match (&got, &want) {
            (Ok(v), Ok(w)) => assert_eq!(v, w, "{name}"),
            (Err(p), Err(reason)) => {
                assert_eq!(p.reason(), *reason, "{name}");
                let msg = p.to_string();
                assert!(
                    msg.starts_with("spec.tls.caFrom: ConfigMap ca-bundle")
                        && msg.contains("ca.crt"),
                    "{name}: {msg}"
                );
            }
            _ => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
    let e = value_of(CA_FROM, &r, Some(&too_big), 10).expect_err("too large");
    assert_eq!(
        e.to_string(),
        "spec.tls.caFrom: ConfigMap ca-bundle key ca.crt holds 11 bytes, over the limit of 10"
    );
}

#[test]
fn only_the_ca_from_field_is_a_reference_and_its_limit_is_ca_pem_s() {
    let mut spec = crate::crd::sample_loadtest().spec;
    assert!(refs(&spec).is_empty());
    spec.tls = Some(LoadTestTls {
        ca_from: Some(FromConfigMap {
            config_map_key_ref: key_ref("ca-bundle", "ca.crt"),
        }),
        ..Default::default()
    });
    let got = refs(&spec);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "spec.tls.caFrom");
    assert_eq!(got[0].1, &key_ref("ca-bundle", "ca.crt"));
    assert_eq!(got[0].2, limits::MAX_CA_PEM_BYTES);
}

/// Answers one GET of `/api/v1/namespaces/load/configmaps/ca-bundle` with `status` and `body`.
async fn answer_once(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    status: u16,
    body: serde_json::Value,
) {
    let (req, send) = handle.next_request().await.expect("a request");
    assert_eq!(req.method(), http::Method::GET);
    assert_eq!(
        req.uri().path(),
        "/api/v1/namespaces/load/configmaps/ca-bundle"
    );
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&body).expect("json")))
            .expect("response"),
    );
}

fn api() -> (
    Api<ConfigMap>,
    tower_test::mock::Handle<Request<Body>, Response<Body>>,
) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (
        Api::namespaced(Client::new(service, "default"), "load"),
        handle,
    )
}

#[tokio::test]
async fn a_present_config_map_gives_its_value_and_a_missing_one_is_pending() {
    let r = key_ref("ca-bundle", "ca.crt");
    let (cms, handle) = api();
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ca-bundle", "namespace": "load"}, "data": {"ca.crt": "PEM"}});
    let server = tokio::spawn(answer_once(handle, 200, cm));
    let got = read(&cms, CA_FROM, &r, 1024).await.expect("no API error");
    assert_eq!(got, Ok("PEM".to_string()));
    server.await.expect("server side ran");

    let (cms, handle) = api();
    let missing = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404});
    let server = tokio::spawn(answer_once(handle, 404, missing));
    let got = read(&cms, CA_FROM, &r, 1024).await.expect("no API error");
    assert_eq!(
        got,
        Err(RefPending::NoConfigMap {
            field: CA_FROM.into(),
            name: "ca-bundle".into(),
            key: "ca.crt".into()
        })
    );
    server.await.expect("server side ran");

    // Forbidden is the operator's RBAC, not the user's ConfigMap: an error, retried as one.
    let (cms, handle) = api();
    let forbidden = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "message": "forbidden", "code": 403});
    let server = tokio::spawn(answer_once(handle, 403, forbidden));
    let e = read(&cms, CA_FROM, &r, 1024).await.expect_err("forbidden");
    assert!(matches!(&e, kube::Error::Api(s) if s.code == 403), "{e}");
    server.await.expect("server side ran");
}

fn mix_entry(name: &str, body_from: Option<ConfigMapKeyRef>) -> crate::crd::MixRequest {
    crate::crd::MixRequest {
        name: name.into(),
        method: None,
        url: "http://t/".into(),
        headers: Default::default(),
        body: None,
        body_from: body_from.map(|r| FromConfigMap {
            config_map_key_ref: r,
        }),
        weight: 1,
        checks: None,
    }
}

/// A mix of three: `a` and `c` take their bodies from ConfigMap `cart`, `b` has none.
fn mix_spec() -> LoadTestSpec {
    let mut spec = crate::crd::sample_loadtest().spec;
    spec.target_url = None;
    spec.mix = Some(vec![
        mix_entry("a", Some(key_ref("cart", "a.json"))),
        mix_entry("b", None),
        mix_entry("c", Some(key_ref("cart", "c.json"))),
    ]);
    spec
}

#[test]
fn each_body_from_is_a_reference_named_by_its_entry_with_the_body_limit() {
    let mut spec = mix_spec();
    spec.tls = Some(LoadTestTls {
        ca_from: Some(FromConfigMap {
            config_map_key_ref: key_ref("ca-bundle", "ca.crt"),
        }),
        ..Default::default()
    });
    let got: Vec<(String, &ConfigMapKeyRef, usize)> = refs(&spec);
    let a = key_ref("cart", "a.json");
    let c = key_ref("cart", "c.json");
    let ca = key_ref("ca-bundle", "ca.crt");
    assert_eq!(
        got,
        [
            ("spec.tls.caFrom".to_string(), &ca, limits::MAX_CA_PEM_BYTES),
            (
                "spec.mix[0].bodyFrom".to_string(),
                &a,
                limits::MAX_BODY_BYTES
            ),
            (
                "spec.mix[2].bodyFrom".to_string(),
                &c,
                limits::MAX_BODY_BYTES
            ),
        ]
    );
}

/// Answers every GET of ConfigMap `cart` with `cart`; returns how many there were.
fn serve_cart(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    cart: serde_json::Value,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut gets = 0;
        while let Some((req, send)) = handle.next_request().await {
            assert_eq!(req.uri().path(), "/api/v1/namespaces/load/configmaps/cart");
            gets += 1;
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&cart).expect("json")))
                    .expect("response"),
            );
        }
        gets
    })
}

#[tokio::test]
async fn a_mix_s_bodies_are_read_by_field_each_config_map_once() {
    let cart = |data: serde_json::Value| {
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cart", "namespace": "load"}, "data": data})
    };
    let (cms, handle) = api();
    let server = serve_cart(
        handle,
        cart(serde_json::json!({"a.json": "A", "c.json": "C"})),
    );
    let got = resolve(&cms, &mix_spec()).await.expect("no API error");
    drop(cms);
    assert_eq!(
        got,
        Resolved {
            values: [
                ("spec.mix[0].bodyFrom".to_string(), "A".to_string()),
                ("spec.mix[2].bodyFrom".to_string(), "C".to_string()),
            ]
            .into(),
            pending: None,
        }
    );
    assert_eq!(
        server.await.expect("server side ran"),
        1,
        "one GET for both"
    );

    // The second body's key is missing: pending, naming that entry's field.
    let (cms, handle) = api();
    let server = serve_cart(handle, cart(serde_json::json!({"a.json": "A"})));
    let got = resolve(&cms, &mix_spec()).await.expect("no API error");
    drop(cms);
    assert_eq!(
        got.pending,
        Some(RefPending::NoKey {
            field: "spec.mix[2].bodyFrom".into(),
            name: "cart".into(),
            key: "c.json".into()
        })
    );
    let message = got.pending.map(|p| p.to_string()).unwrap_or_default();
    assert_eq!(
        message,
        "spec.mix[2].bodyFrom: ConfigMap cart has no key c.json"
    );
    assert_eq!(server.await.expect("server side ran"), 1);
}
