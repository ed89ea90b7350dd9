//! Request routing and response building for /ping, /metrics, /reset, /arrivals and /headers;
//! /echo and /status are in `endpoints`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use crate::endpoints;
use crate::state::{Counters, Target};

/// Every response body is complete up front, so hyper can send it with a
/// Content-Length in a single write.
pub type Body = Full<Bytes>;

const PONG: &[u8] = br#"{"message":"pong"}"#;
const INJECTED: &[u8] = br#"{"error":"injected"}"#;
const NOT_FOUND: &[u8] = br#"{"error":"not found"}"#;
const METHOD_NOT_ALLOWED: &[u8] = br#"{"error":"method not allowed"}"#;
pub(crate) const INTERNAL: &[u8] = br#"{"error":"internal"}"#;

// `HeaderValue::from_static` does not allocate; these are functions rather than
// consts because a `HeaderValue` holds `Bytes`, which clippy treats as
// interior-mutable.
fn json_content_type() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

fn prometheus_content_type() -> HeaderValue {
    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8")
}

/// hyper service wrapping [`handle`]; one is created per connection, so the
/// `Arc` is cloned per connection rather than per request.
#[derive(Debug, Clone)]
pub struct Handler {
    state: Arc<Target>,
}

impl Handler {
    pub fn new(state: Arc<Target>) -> Self {
        Self { state }
    }
}

impl<B> hyper::service::Service<Request<B>> for Handler
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = HandlerFuture;

    fn call(&self, req: Request<B>) -> HandlerFuture {
        handle(&self.state, req)
    }
}

/// Future of one response.
///
/// Without added latency the response is built synchronously inside
/// [`handle`], so the hot path neither boxes a future nor clones the `Arc`;
/// only delayed responses pay for a boxed sleep.
pub struct HandlerFuture(Inner);

enum Inner {
    Ready(Option<Response<Body>>),
    Delayed(Pin<Box<dyn Future<Output = Response<Body>> + Send>>),
}

impl HandlerFuture {
    pub(crate) fn ready(response: Response<Body>) -> Self {
        Self(Inner::Ready(Some(response)))
    }

    pub(crate) fn boxed(future: impl Future<Output = Response<Body>> + Send + 'static) -> Self {
        Self(Inner::Delayed(Box::pin(future)))
    }
}

impl Future for HandlerFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            // Polling again after completion breaks the Future contract; answer
            // 500 rather than panic inside the connection task.
            Inner::Ready(response) => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| json(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL)))),
            Inner::Delayed(future) => future.as_mut().poll(cx).map(Ok),
        }
    }
}

/// Routes one request. Only /echo reads the body.
///
/// Every request but those to the control endpoints (/metrics, /reset, /arrivals, /headers)
/// is counted by path; GET /ping is counted by `requests_received` alone, so the plain load
/// pays for no lookup.
pub fn handle<B>(state: &Arc<Target>, req: Request<B>) -> HandlerFuture
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let method = req.method();
    let path = req.uri().path();
    match path {
        "/ping" if method == Method::GET => {
            state.on_ping_headers(req.headers());
            ping(state)
        }
        "/ping" => {
            state.paths().count_ping_other_method();
            HandlerFuture::ready(method_not_allowed("GET"))
        }
        "/metrics" if method == Method::GET => HandlerFuture::ready(metrics(state, &req)),
        "/reset" if method == Method::POST => HandlerFuture::ready(counters_json(&state.reset())),
        "/arrivals" if method == Method::GET => HandlerFuture::ready(arrivals(state)),
        "/headers" if method == Method::GET => HandlerFuture::ready(headers(state)),
        "/metrics" | "/arrivals" | "/headers" => HandlerFuture::ready(method_not_allowed("GET")),
        "/reset" => HandlerFuture::ready(method_not_allowed("POST")),
        "/echo" => {
            state.paths().count(path);
            endpoints::echo(req)
        }
        _ => {
            state.paths().count(path);
            match path.strip_prefix("/status") {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                    HandlerFuture::ready(endpoints::status(rest))
                }
                _ => HandlerFuture::ready(json(StatusCode::NOT_FOUND, NOT_FOUND)),
            }
        }
    }
}

fn ping(state: &Arc<Target>) -> HandlerFuture {
    state.on_ping_arrival();
    let inject_error = state.inject_error();
    match state.ping_delay() {
        None => {
            let response = ping_response(inject_error);
            state.on_ping_response();
            HandlerFuture::ready(response)
        }
        Some(delay) => {
            let state = Arc::clone(state);
            // If the client goes away during the sleep hyper drops this future,
            // so no response is counted for it: responses_sent stays honest.
            HandlerFuture(Inner::Delayed(Box::pin(async move {
                tokio::time::sleep(delay).await;
                let response = ping_response(inject_error);
                state.on_ping_response();
                response
            })))
        }
    }
}

fn ping_response(inject_error: bool) -> Response<Body> {
    if inject_error {
        json(StatusCode::INTERNAL_SERVER_ERROR, INJECTED)
    } else {
        json(StatusCode::OK, PONG)
    }
}

/// `/metrics`: the two /ping counters as they always were, then the counts by path.
fn metrics<B>(state: &Target, req: &Request<B>) -> Response<Body> {
    #[derive(serde::Serialize)]
    struct Metrics {
        #[serde(flatten)]
        counters: Counters,
        paths: BTreeMap<String, u64>,
    }
    let counters = state.counters();
    let paths = state.paths().snapshot(counters.requests_received);
    if !wants_prometheus(req) {
        return match serde_json::to_vec(&Metrics { counters, paths }) {
            Ok(body) => json(StatusCode::OK, body),
            Err(_) => json(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL),
        };
    }
    let mut body = format!(
        "# HELP floodgate_target_requests_received_total /ping requests received, counted on arrival.\n\
         # TYPE floodgate_target_requests_received_total counter\n\
         floodgate_target_requests_received_total {}\n\
         # HELP floodgate_target_responses_sent_total /ping responses produced, injected errors included.\n\
         # TYPE floodgate_target_responses_sent_total counter\n\
         floodgate_target_responses_sent_total {}\n",
        counters.requests_received, counters.responses_sent
    );
    if !paths.is_empty() {
        body.push_str(
            "# HELP floodgate_target_path_requests_total Requests by path, any method, control \
             endpoints excluded; at most 64 paths, the rest as path=\"(other)\".\n\
             # TYPE floodgate_target_path_requests_total counter\n",
        );
        for (path, n) in &paths {
            body.push_str(&format!(
                "floodgate_target_path_requests_total{{path=\"{}\"}} {n}\n",
                label_value(path)
            ));
        }
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, prometheus_content_type());
    response
}

/// Escapes a Prometheus label value (backslash, double quote, newline).
fn label_value(raw: &str) -> String {
    raw.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `?format=prometheus` wins, then `?format=json`, then an `Accept` listing
/// `text/plain` (which Prometheus scrapers always include).
fn wants_prometheus<B>(req: &Request<B>) -> bool {
    let query = req.uri().query().unwrap_or_default();
    for pair in query.split('&') {
        match pair {
            "format=prometheus" => return true,
            "format=json" => return false,
            _ => {}
        }
    }
    req.headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|range| range.split(';').next())
        .any(|media| media.trim().eq_ignore_ascii_case("text/plain"))
}

fn counters_json(counters: &Counters) -> Response<Body> {
    match serde_json::to_vec(counters) {
        Ok(body) => json(StatusCode::OK, body),
        Err(_) => json(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL),
    }
}

fn arrivals(state: &Target) -> Response<Body> {
    #[derive(serde::Serialize)]
    struct Arrivals {
        arrivals_us: Vec<u64>,
        /// The first of them on the wall clock (µs since the Unix epoch); absent with none.
        #[serde(skip_serializing_if = "Option::is_none")]
        first_unix_us: Option<u64>,
    }
    match serde_json::to_vec(&Arrivals {
        arrivals_us: state.arrivals_us(),
        first_unix_us: state.first_arrival_unix_us(),
    }) {
        Ok(body) => json(StatusCode::OK, body),
        Err(_) => json(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL),
    }
}

fn headers(state: &Target) -> Response<Body> {
    match state.header_record().map(|r| serde_json::to_vec(&r)) {
        Some(Ok(body)) => json(StatusCode::OK, body),
        Some(Err(_)) => json(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL),
        None => json(StatusCode::NOT_FOUND, NOT_FOUND),
    }
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = json(StatusCode::METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED);
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// Static slices become `Bytes::from_static`, so fixed bodies are never copied.
pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, json_content_type());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Empty;

    fn request(method: Method, uri: &str, accept: Option<&str>) -> Request<Empty<Bytes>> {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(accept) = accept {
            builder = builder.header(ACCEPT, accept);
        }
        builder.body(Empty::new()).unwrap()
    }

    #[test]
    fn prometheus_negotiation() {
        let wants = |uri, accept| wants_prometheus(&request(Method::GET, uri, accept));
        assert!(!wants("/metrics", None));
        assert!(!wants("/metrics", Some("application/json")));
        assert!(wants("/metrics", Some("text/plain")));
        assert!(wants(
            "/metrics",
            Some("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1")
        ));
        assert!(wants("/metrics?format=prometheus", None));
        assert!(wants(
            "/metrics?x=1&format=prometheus",
            Some("application/json")
        ));
        assert!(!wants("/metrics?format=json", Some("text/plain")));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value(r#"/a"b\c"#), r#"/a\"b\\c"#);
        assert_eq!(label_value("/a\nb"), "/a\\nb");
    }

    #[tokio::test]
    async fn routes_without_a_network() {
        let state = Arc::new(Target::new(&crate::Config::default()).unwrap());
        let status = |method, uri| {
            let state = Arc::clone(&state);
            async move {
                handle(&state, request(method, uri, None))
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(status(Method::GET, "/ping").await, StatusCode::OK);
        assert_eq!(status(Method::GET, "/nope").await, StatusCode::NOT_FOUND);
        assert_eq!(
            status(Method::DELETE, "/ping").await,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(Method::GET, "/reset").await,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(state.counters().requests_received, 1);
        assert_eq!(status(Method::GET, "/headers").await, StatusCode::NOT_FOUND);
        assert_eq!(status(Method::PUT, "/status/503").await.as_u16(), 503);
        assert_eq!(
            status(Method::GET, "/status").await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status(Method::GET, "/statusx").await, StatusCode::NOT_FOUND);
        assert_eq!(
            status(Method::POST, "/metrics").await,
            StatusCode::METHOD_NOT_ALLOWED
        );
        // The control endpoints are not counted; everything else is, by path.
        let paths: Vec<_> = state.path_counts().into_iter().collect();
        let expected = [
            ("/nope", 1),
            ("/ping", 2),
            ("/status", 1),
            ("/status/503", 1),
            ("/statusx", 1),
        ];
        assert_eq!(paths, expected.map(|(p, n)| (p.to_owned(), n)));
        assert_eq!(state.counters().requests_received, 1);
    }

    #[tokio::test]
    async fn a_recorded_header_is_counted_with_its_last_value() {
        let config = crate::Config {
            record_header: Some("authorization".into()),
            ..crate::Config::default()
        };
        let state = Arc::new(Target::new(&config).unwrap());
        let mut req = request(Method::GET, "/ping", None);
        req.headers_mut()
            .insert("Authorization", HeaderValue::from_static("Bearer s"));
        handle(&state, req).await.unwrap();
        handle(&state, request(Method::GET, "/ping", None))
            .await
            .unwrap();
        let r = state.header_record().unwrap();
        assert_eq!((r.count, r.last.as_deref()), (1, Some("Bearer s")));
    }
}
