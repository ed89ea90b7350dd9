//! Test harness: an in-process server on an ephemeral port and a keep-alive HTTP/1.1 client.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use floodgate_target::{bind, serve, Config, Counters, Target};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Upper bound for any single test, so a regression fails instead of hanging.
pub const TEST_DEADLINE: Duration = Duration::from_secs(60);

pub async fn within_deadline<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_DEADLINE, future)
        .await
        .expect("test exceeded its deadline")
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub async fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    condition()
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<Target>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Target::new(&config).expect("valid config"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, Arc::clone(&state), async {
            let _ = rx.await;
        }));
        Self {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub async fn connect(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Triggers graceful shutdown and waits for `serve` to return.
    pub async fn stop(mut self) -> Duration {
        let started = Instant::now();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("serve task panicked");
        }
        started.elapsed()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn counters(&self) -> Counters {
        serde_json::from_slice(&self.body).expect("counters JSON")
    }
}

/// One keep-alive HTTP/1.1 connection; requests on it are sequential.
pub struct Client {
    sender: SendRequest<Empty<Bytes>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        Self { sender }
    }

    pub async fn request(&mut self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Empty::new()).expect("request");
        self.sender.ready().await.expect("connection ready");
        let response = self.sender.send_request(request).await.expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.request(Method::GET, path, &[]).await
    }

    pub async fn metrics(&mut self) -> Counters {
        self.get("/metrics").await.counters()
    }
}

/// Sends `per_connection` sequential GET /ping on each of `connections`
/// concurrent keep-alive connections; returns every status.
pub async fn ping_concurrently(
    addr: SocketAddr,
    connections: usize,
    per_connection: usize,
) -> Vec<StatusCode> {
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                let mut statuses = Vec::with_capacity(per_connection);
                for _ in 0..per_connection {
                    statuses.push(client.get("/ping").await.status);
                }
                statuses
            })
        })
        .collect();
    let mut all = Vec::with_capacity(connections * per_connection);
    for task in tasks {
        all.extend(task.await.expect("ping task"));
    }
    all
}
