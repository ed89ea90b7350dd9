//! Secret headers end to end: a test sends an `Authorization` header (always secret) and a
//! header the user marked secret; the target receives the real values on every request, while
//! the REST views (list, one test, current) and the JSON, CSV and HTML reports show them only
//! as `<redacted>`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

const TOKEN: &str = "Bearer s3cr3t-token-7f1c";
const TENANT: &str = "tenant-k3y-91ab";

async fn text(url: &str) -> String {
    let r = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status().as_u16(), 200, "GET {url}");
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_headers_reach_the_target_but_no_view_or_report() {
    let target = Target::start(&["--record-header", "authorization"]).await;
    let cluster = Cluster::start(2).await;
    let view = cluster
        .run_test(
            json!({
                "test_type": "avalanche",
                "requests_per_driver": 50,
                "concurrency": 2,
                "target_url": target.url(),
                "headers": {"Authorization": TOKEN, "X-Tenant": TENANT, "Accept": "application/json"},
                "secret_headers": ["x-tenant"],
            }),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(view["status"], "completed", "{view}");
    let id = view["id"].as_str().unwrap();

    // The target got the real value with every request.
    let seen = get(&format!("http://{}/headers", target.addr)).await;
    assert_eq!(seen["count"], 100, "{seen}");
    assert_eq!(seen["last"], TOKEN, "{seen}");

    let headers = &view["spec"]["headers"];
    assert_eq!(headers["Authorization"], "<redacted>", "{view}");
    assert_eq!(headers["X-Tenant"], "<redacted>", "{view}");
    assert_eq!(headers["Accept"], "application/json", "{view}");
    for path in [
        "/api/v1/tests".to_string(),
        format!("/api/v1/tests/{id}"),
        "/api/v1/tests/current".to_string(),
        format!("/api/v1/tests/{id}/report.json"),
        format!("/api/v1/tests/{id}/report.csv"),
        format!("/api/v1/tests/{id}/report.html"),
    ] {
        let body = text(&cluster.url(&path)).await;
        for secret in ["s3cr3t", TENANT] {
            assert!(!body.contains(secret), "{path} shows {secret}: {body}");
        }
        if path.ends_with(".json") || path.ends_with(".html") || path.ends_with(id) {
            assert!(body.contains("redacted"), "{path} lost the header: {body}");
        }
    }
}
