//! The live web dashboard: static files compiled into the binary and served on the API's port,
//! `/` (the page) and `/ui/…` (its scripts, styles and the vendored uPlot). The page itself is
//! plain HTML, CSS and ES modules with no build step; it reads the REST API and the `events`
//! stream (Server-Sent Events), so it needs nothing from the network but the orchestrator.
//!
//! Caching: every response carries a strong `ETag` (a hash of the file) and
//! `Cache-Control: no-cache`, so a browser revalidates with `If-None-Match` and gets a `304`
//! until the binary (and so the file) changes; a new version is never hidden by a stale cache.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::LazyLock;

use super::ApiError;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// The page may load and connect to its own origin only (no CDN, nothing inline but styles,
/// which uPlot sets on its elements).
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'; form-action 'self'";

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($path:literal, $ct:expr) => {
        Asset {
            path: $path,
            content_type: $ct,
            body: include_str!(concat!("../../ui/", $path)),
        }
    };
}

/// Everything the page loads; `/ui/<path>` serves the asset of that path, anything else is a 404.
const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("format.js", JS),
    asset!("charts.js", JS),
    asset!("views.js", JS),
    asset!("form.js", JS),
    asset!("mix.js", JS),
    asset!("parse.js", JS),
    asset!("byrequest.js", JS),
    asset!("rate.js", JS),
    asset!("handover.js", JS),
    asset!("app.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("vendor/uPlot.iife.min.js", JS),
    asset!("vendor/uPlot.min.css", CSS),
];

/// Strong validators, one per asset (FNV-1a 64 of the content), computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| format!("\"{:016x}\"", fnv1a(a.body.as_bytes())))
        .collect()
});

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The dashboard's routes; generic over the router state because the files need none.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{*path}", get(ui_file))
}

async fn index(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

async fn ui_file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|a| a.path == path) {
        Some(i) => serve(i, &headers),
        None => ApiError::not_found("no such dashboard file").into_response(),
    }
}

fn serve(i: usize, req: &HeaderMap) -> Response {
    let asset = &ASSETS[i];
    let etag = ETAGS[i].as_str();
    let fresh = req
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*");
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if asset.content_type == HTML {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves the dashboard routes alone (they need no orchestrator) on an ephemeral port.
    async fn server() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, routes::<()>()).await });
        format!("http://{addr}")
    }

    async fn get(url: &str, etag: Option<&str>) -> reqwest::Response {
        let mut req = reqwest::Client::new().get(url);
        if let Some(e) = etag {
            req = req.header("if-none-match", e);
        }
        req.send().await.expect("GET")
    }

    fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn the_page_and_its_files_are_served_with_types_and_validators() {
        let base = server().await;
        let r = get(&format!("{base}/"), None).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-type"), HTML);
        assert_eq!(header(&r, "cache-control"), "no-cache");
        assert!(header(&r, "content-security-policy").contains("default-src 'self'"));
        let body = r.text().await.expect("body");
        assert!(body.contains("<title>Floodgate</title>"), "{body}");
        assert!(body.contains(r#"src="/ui/app.js""#));

        for (path, ct) in [
            ("app.js", JS),
            ("format.js", JS),
            ("app.css", CSS),
            ("vendor/uPlot.iife.min.js", JS),
            ("vendor/uPlot.min.css", CSS),
            ("favicon.svg", SVG),
        ] {
            let r = get(&format!("{base}/ui/{path}"), None).await;
            assert_eq!(r.status(), 200, "{path}");
            assert_eq!(header(&r, "content-type"), ct, "{path}");
            let etag = header(&r, "etag").to_string();
            assert!(etag.starts_with('"') && etag.len() == 18, "{path}: {etag}");
            let again = get(&format!("{base}/ui/{path}"), Some(&etag)).await;
            assert_eq!(again.status(), 304, "{path} revalidates");
        }
    }

    #[tokio::test]
    async fn unknown_files_are_404() {
        let base = server().await;
        for path in [
            "/ui/nope.js",
            "/ui/vendor/LICENSE",
            "/ui/../Cargo.toml",
            "/ui/",
        ] {
            let r = get(&format!("{base}{path}"), None).await;
            assert_eq!(r.status(), 404, "{path}");
        }
    }

    #[test]
    fn every_module_the_page_imports_is_served() {
        // The page's ES modules import each other by relative path; each must be an asset.
        let mut imports = 0;
        for a in ASSETS.iter().filter(|a| a.content_type == JS) {
            for rest in a.body.split("from './").skip(1) {
                let file = rest.split('\'').next().unwrap_or_default();
                assert!(
                    ASSETS.iter().any(|b| b.path == file),
                    "{} imports {file}, which is not served",
                    a.path
                );
                imports += 1;
            }
        }
        assert!(imports >= 6, "only {imports} imports found");
    }
}
