//! HTTP/2 with the `h2` crate: over TLS when ALPN chose `h2`, or with prior knowledge (h2c) on
//! a plain connection. `concurrency` connections ([`Slot`]s), each carrying up to
//! `streams_per_connection` requests at once: every stream is a worker of its own (the same
//! hot loop as HTTP/1.1, claiming indices from the same counter), and the workers of one slot
//! share its connection. Exact counts hold as for HTTP/1.1: each claimed index ends in exactly
//! one recorded outcome, and a timed-out stream is reset (dropping it sends `RST_STREAM`)
//! while the connection and its other streams go on.
//!
//! Unlike the hand-written HTTP/1.1 path, a request here allocates (h2 keeps per-stream state
//! and a header map per request); the request's parts are built once per test ([`H2Request`]).

use super::check::Body;
use super::client::{After, Client};
use super::conn::{Response, SendError};
use super::connect::{Connect, Handshake};
use super::{PreparedRequest, Shared};
use crate::http::{Part, RequestError, Url};
use bytes::Bytes;
use h2::client::SendRequest;
use std::io;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Receive windows: a stream may have 1 MiB in flight and a connection 16 MiB, so large bodies
/// are not throttled by the 64 KiB protocol default (h2load uses 1 GiB / 64 KiB -w/-W bits).
const STREAM_WINDOW: u32 = 1 << 20;
const CONNECTION_WINDOW: u32 = 1 << 24;

/// The request as HTTP/2 sends it, built once per test.
#[derive(Clone, Debug)]
pub struct H2Request {
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: Bytes,
}

fn bad(part: Part, message: String) -> RequestError {
    RequestError { part, message }
}

impl H2Request {
    /// From an already checked URL, method and headers (see `crate::http::check`).
    pub fn build(
        url: &Url,
        method: &str,
        headers: &[(String, String)],
        body: Option<&str>,
    ) -> Result<H2Request, RequestError> {
        let method = http::Method::from_bytes(method.as_bytes())
            .map_err(|e| bad(Part::Method, format!("{method:?}: {e}")))?;
        let uri = http::Uri::builder()
            .scheme(url.scheme())
            .authority(url.host_header())
            .path_and_query(url.path.as_str())
            .build()
            .map_err(|e| bad(Part::Url, format!("is not a valid HTTP/2 URI: {e}")))?;
        let mut map = http::HeaderMap::with_capacity(headers.len() + 2);
        let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        if !has("user-agent") {
            map.insert(
                http::header::USER_AGENT,
                http::HeaderValue::from_static(concat!("floodgate/", env!("CARGO_PKG_VERSION"))),
            );
        }
        for (name, value) in headers {
            let n = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| bad(Part::Header, format!("{name}: {e}")))?;
            let v = http::HeaderValue::from_bytes(value.as_bytes())
                .map_err(|e| bad(Part::Header, format!("{name}: {e}")))?;
            map.append(n, v);
        }
        let body = Bytes::copy_from_slice(body.unwrap_or("").as_bytes());
        if !body.is_empty() || matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
            map.insert(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from(body.len()),
            );
        }
        Ok(H2Request {
            method,
            uri,
            headers: map,
            body,
        })
    }

    fn request(&self) -> http::Request<()> {
        let mut r = http::Request::new(());
        *r.method_mut() = self.method.clone();
        *r.uri_mut() = self.uri.clone();
        *r.headers_mut() = self.headers.clone();
        r
    }
}

/// One HTTP/2 connection, shared by the workers (streams) of one slot; reopened by the first
/// of them to find it broken.
pub struct Slot<C: Connect> {
    connector: Arc<C>,
    state: Mutex<SlotState>,
}

struct SlotState {
    /// How many connections this slot has opened; tells a worker whether the connection held
    /// is a newer one than the one that failed it.
    generation: u64,
    send: Option<SendRequest<Bytes>>,
}

impl<C: Connect> Slot<C> {
    pub fn new(connector: Arc<C>) -> Arc<Self> {
        Arc::new(Slot {
            connector,
            state: Mutex::new(SlotState {
                generation: 0,
                send: None,
            }),
        })
    }
}

async fn open<C: Connect>(
    connector: &C,
    addr: std::net::SocketAddr,
) -> Result<(SendRequest<Bytes>, Handshake), SendError> {
    let (stream, handshake) = connector.connect(addr).await?;
    if !C::is_h2(&stream) {
        return Err(SendError::Tls(io::Error::other(
            "the server did not choose h2 in ALPN (it serves HTTP/1.1 only?); use http_version 1.1",
        )));
    }
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake::<_, Bytes>(stream)
        .await
        .map_err(|e| SendError::Connect(io::Error::other(e)))?;
    // Drives the connection's I/O; ends when every `SendRequest` is dropped or it breaks.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((send, handshake))
}

/// One stream's worth of a slot: the worker's handle on the shared connection.
pub struct H2<C: Connect> {
    slot: Arc<Slot<C>>,
    /// The connection in use and its generation.
    mine: Option<(u64, SendRequest<Bytes>)>,
    /// The generation of the last connection that failed this worker: never taken again.
    failed: u64,
    handshake: Option<Handshake>,
}

impl<C: Connect> H2<C> {
    pub fn new(slot: Arc<Slot<C>>) -> Self {
        H2 {
            slot,
            mine: None,
            failed: 0,
            handshake: None,
        }
    }

    /// The slot's connection, opened (under the slot's lock, so one per slot) if it has none
    /// newer than the one that last failed this worker.
    async fn acquire(&mut self, shared: &Shared) -> Result<(), SendError> {
        if self.mine.is_some() {
            return Ok(());
        }
        let mut st = self.slot.state.lock().await;
        if let Some(send) = &st.send {
            if st.generation > self.failed {
                self.mine = Some((st.generation, send.clone()));
                return Ok(());
            }
        }
        st.send = None;
        let (send, handshake) = open(&*self.slot.connector, shared.addr).await?;
        st.generation += 1;
        st.send = Some(send.clone());
        self.handshake = Some(handshake);
        self.mine = Some((st.generation, send));
        Ok(())
    }

    fn drop_connection(&mut self) {
        if let Some((generation, _)) = self.mine.take() {
            self.failed = generation;
        }
    }
}

/// How a stream failed: before anything was sent (safe to send again on a new connection), or
/// after.
enum StreamError {
    Unsent(h2::Error),
    Sent(h2::Error),
}

async fn exchange(
    send: &mut SendRequest<Bytes>,
    request: &H2Request,
    mut keep: Option<&mut Body>,
) -> Result<Response, StreamError> {
    std::future::poll_fn(|cx| send.poll_ready(cx))
        .await
        .map_err(StreamError::Unsent)?;
    let end = request.body.is_empty();
    let (response, mut body_tx) = send
        .send_request(request.request(), end)
        .map_err(StreamError::Unsent)?;
    if !end {
        body_tx
            .send_data(request.body.clone(), true)
            .map_err(StreamError::Sent)?;
    }
    let response = response.await.map_err(StreamError::Sent)?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    if let Some(b) = keep.as_deref_mut() {
        b.clear();
    }
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(StreamError::Sent)?;
        if let Some(b) = keep.as_deref_mut() {
            b.push(&chunk);
        }
        // Reading is what opens the window again; without it a large body stalls the stream.
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    Ok(Response {
        status,
        keep_alive: true,
    })
}

impl<C: Connect> Client for H2<C> {
    async fn preconnect(&mut self, shared: &Shared) {
        let _ = tokio::time::timeout(shared.timeout, self.acquire(shared)).await;
    }

    async fn send(
        &mut self,
        shared: &Shared,
        request: &PreparedRequest,
        mut body: Option<&mut Body>,
    ) -> Result<Response, SendError> {
        let Some(request) = request.h2.as_deref() else {
            return Err(SendError::Protocol(
                "no HTTP/2 form of the request was built",
            ));
        };
        // A connection that went away (GOAWAY, closed while idle) before this request was
        // sent is replaced, once, as HTTP/1.1 does with a stale keep-alive connection.
        for attempt in 0..2 {
            self.acquire(shared).await?;
            let Some((_, send)) = self.mine.as_mut() else {
                continue;
            };
            match exchange(send, request, body.as_deref_mut()).await {
                Ok(r) => return Ok(r),
                Err(StreamError::Unsent(e)) => {
                    self.drop_connection();
                    if attempt == 1 {
                        return Err(SendError::Http2(e));
                    }
                }
                Err(StreamError::Sent(e)) => {
                    // A reset of this one stream leaves the connection to the others.
                    if !e.is_reset() || e.is_go_away() {
                        self.drop_connection();
                    }
                    return Err(SendError::Http2(e));
                }
            }
        }
        Err(SendError::Protocol("no HTTP/2 connection"))
    }

    fn take_handshake(&mut self) -> Option<Handshake> {
        self.handshake.take()
    }

    fn after(&mut self, _how: After) {
        // A timed-out stream was reset when its future was dropped; errors were handled in
        // `send`. The connection stays for the slot's other streams.
    }
}
