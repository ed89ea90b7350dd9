//! HTTPS and HTTP/2 against the real target (TLS with a generated CA, h2, h2c) and small
//! purpose-built servers on loopback: exact counts, handshake figures, trust and its errors.

use super::*;
use crate::protocol::{self, HttpVersion, TlsSettings};
use floodgate_target::{Config, Target};
use std::sync::atomic::AtomicU64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A floodgate-target on loopback, stopped when dropped.
struct TestTarget {
    addr: SocketAddr,
    state: Arc<Target>,
    ca_pem: String,
    _stop: oneshot::Sender<()>,
}

impl TestTarget {
    fn received(&self) -> u64 {
        self.state.counters().requests_received
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/ping", self.addr)
    }
}

/// `tls`: HTTPS with a fresh CA (ALPN h2 and http/1.1); otherwise plain with h2c.
async fn target(tls: bool) -> TestTarget {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = Arc::new(Target::new(&Config::default()).expect("state"));
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let mut ca_pem = String::new();
    if tls {
        let cert = floodgate_target::tls::self_signed(&[]).expect("certificate");
        ca_pem = cert.ca_pem.clone();
        let config = floodgate_target::tls::server_config(cert.chain, cert.key).expect("config");
        tokio::spawn(floodgate_target::serve_tls(
            listener,
            state.clone(),
            config,
            shutdown,
        ));
    } else {
        tokio::spawn(floodgate_target::serve_h2c(
            listener,
            state.clone(),
            shutdown,
        ));
    }
    TestTarget {
        addr,
        state,
        ca_pem,
        _stop: stop,
    }
}

fn settings(http2: bool, streams: Option<u64>, tls: Option<TlsSettings>) -> protocol::Transport {
    protocol::Transport {
        http_version: if http2 {
            HttpVersion::Http2
        } else {
            HttpVersion::Http11
        },
        streams_per_connection: streams,
        tls,
    }
}

fn trusting(ca_pem: &str) -> Option<TlsSettings> {
    Some(TlsSettings {
        ca_pem: Some(ca_pem.to_string()),
        ..Default::default()
    })
}

fn plan_for(url: &str, t: &protocol::Transport, requests: u64, connections: usize) -> Plan {
    let http2 = t.http_version == HttpVersion::Http2;
    let request = PreparedRequest::build_for(url, "GET", &[], None, http2).expect("request");
    let transport =
        crate::driver::engine_transport(&request.url, t, connections).expect("transport");
    Plan {
        request,
        pacer: Pacer::UNPACED,
        requests,
        until: None,
        concurrency: connections,
        timeout: Duration::from_secs(10),
        start_at: None,
        mix: Vec::new(),
        checker: Default::default(),
        record_sends: 0,
        max_retimes: 0,
        transport,
    }
}

async fn run(plan: Plan) -> Snapshot {
    start(plan).await.expect("start").finished().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_keep_alive_counts_exactly_and_times_each_handshake_once() {
    let t = target(true).await;
    let s = run(plan_for(
        &t.url("https"),
        &settings(false, None, trusting(&t.ca_pem)),
        500,
        4,
    ))
    .await;
    assert_eq!((s.sent, s.ok(), s.completed()), (500, 500, 500));
    assert_eq!(s.recorder.errors.total(), 0, "{:?}", s.recorder.first_error);
    assert_eq!(t.received(), 500);
    // Four keep-alive connections, each opened once: four connects and four handshakes,
    // none of them inside a request's latency.
    assert_eq!((s.recorder.connect.count(), s.recorder.tls.count()), (4, 4));
    assert!(s.recorder.tls.sum_us > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_over_tls_multiplexes_streams_with_exact_counts() {
    let t = target(true).await;
    let s = run(plan_for(
        &t.url("https"),
        &settings(true, Some(8), trusting(&t.ca_pem)),
        1_000,
        2,
    ))
    .await;
    assert_eq!((s.sent, s.ok(), s.completed()), (1_000, 1_000, 1_000));
    assert_eq!(t.received(), 1_000);
    // Sixteen streams share two connections: two handshakes in all.
    assert_eq!((s.recorder.connect.count(), s.recorder.tls.count()), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_with_prior_knowledge_counts_exactly() {
    let t = target(false).await;
    let s = run(plan_for(
        &t.url("http"),
        &settings(true, Some(4), None),
        600,
        3,
    ))
    .await;
    assert_eq!((s.ok(), s.completed()), (600, 600));
    assert_eq!(t.received(), 600);
    assert_eq!((s.recorder.connect.count(), s.recorder.tls.count()), (3, 0));
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_counted_connect_error_with_a_clear_reason() {
    let t = target(true).await;
    // System roots only: the generated CA is not among them.
    let s = run(plan_for(
        &t.url("https"),
        &settings(false, None, None),
        20,
        2,
    ))
    .await;
    assert_eq!(
        (s.recorder.errors.connect, s.completed(), s.ok()),
        (20, 20, 0)
    );
    let why = s.recorder.first_error.clone().unwrap_or_default();
    assert!(
        why.contains("TLS handshake") && why.contains("tls.ca_pem"),
        "{why}"
    );
    assert_eq!(t.received(), 0);

    // The same for h2, and a wrong name is refused even with the right CA.
    let wrong_name = TlsSettings {
        ca_pem: Some(t.ca_pem.clone()),
        server_name: Some("elsewhere.example".into()),
        ..Default::default()
    };
    let s = run(plan_for(
        &t.url("https"),
        &settings(true, None, Some(wrong_name)),
        5,
        1,
    ))
    .await;
    assert_eq!((s.recorder.errors.connect, s.ok()), (5, 0));

    let insecure = TlsSettings {
        insecure_skip_verify: true,
        ..Default::default()
    };
    let s = run(plan_for(
        &t.url("https"),
        &settings(true, None, Some(insecure)),
        20,
        2,
    ))
    .await;
    assert_eq!((s.ok(), s.recorder.errors.total()), (20, 0));
    assert_eq!(t.received(), 20);
}

#[tokio::test]
async fn the_server_name_replaces_the_url_host_for_sni_and_the_check() {
    let t = target(true).await;
    // The URL names a host the certificate does not; `server_name` names one it does.
    let url = format!("https://floodgate.invalid:{}/ping", t.addr.port());
    let tls = TlsSettings {
        ca_pem: Some(t.ca_pem.clone()),
        server_name: Some("localhost".into()),
        ..Default::default()
    };
    let s = start_at_addr(
        plan_for(&url, &settings(false, None, Some(tls)), 10, 1),
        t.addr,
    )
    .finished()
    .await;
    assert_eq!(s.ok(), 10, "{:?}", s.recorder.first_error);
}

/// A TLS server (the target's certificate) that answers each request and then closes, so that
/// every request opens a new connection.
async fn closing_tls_server() -> (SocketAddr, String, Arc<AtomicU64>) {
    let cert = floodgate_target::tls::self_signed(&[]).expect("certificate");
    let ca = cert.ca_pem.clone();
    let config = floodgate_target::tls::server_config(cert.chain, cert.key).expect("config");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let (acceptor, c) = (acceptor.clone(), c.clone());
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(s).await else {
                    return;
                };
                let mut got = Vec::new();
                let mut buf = [0u8; 1024];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                c.fetch_add(1, Ordering::Relaxed);
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, ca, count)
}

#[tokio::test]
async fn reconnects_resume_the_tls_session_of_the_shared_config() {
    let (addr, ca, count) = closing_tls_server().await;
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let s = run(plan_for(&url, &settings(false, None, trusting(&ca)), 20, 1)).await;
    assert_eq!((s.ok(), count.load(Ordering::Relaxed)), (20, 20));
    // One connection per request: every handshake is timed, and those after the first
    // resume a session from a ticket of an earlier one (a full handshake at most now and
    // then, when no ticket had arrived yet).
    assert_eq!(s.recorder.tls.count(), 20);
    assert!(
        s.recorder.tls_resumed >= 10,
        "resumed {} of 20",
        s.recorder.tls_resumed
    );
}

#[tokio::test]
async fn h2_to_a_server_without_h2_in_alpn_is_a_connect_error() {
    // A server that takes no part in ALPN, as an HTTP/1.1-only server may (one that offers
    // only http/1.1 refuses the handshake itself: "no application protocol").
    let cert = floodgate_target::tls::self_signed(&[]).expect("certificate");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(cert.chain, cert.key)
    .expect("cert");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let h1_only = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut s) = acceptor.accept(s).await {
                    let mut buf = [0u8; 64];
                    let _ = s.read(&mut buf).await;
                }
            });
        }
    });
    let url = format!("https://127.0.0.1:{}/", h1_only.port());
    let s = run(plan_for(
        &url,
        &settings(true, None, trusting(&cert.ca_pem)),
        4,
        1,
    ))
    .await;
    assert_eq!((s.recorder.errors.connect, s.ok()), (4, 0));
    let why = s.recorder.first_error.unwrap_or_default();
    assert!(why.contains("did not choose h2"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_streams_that_time_out_are_counted_and_leave_the_connection_up() {
    // An h2 server that accepts every stream and never answers one.
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let accepted = Arc::new(AtomicU64::new(0));
    let a = accepted.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let a = a.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = ::h2::server::handshake(s).await else {
                    return;
                };
                let mut held = Vec::new();
                while let Some(Ok((_req, respond))) = conn.accept().await {
                    a.fetch_add(1, Ordering::Relaxed);
                    held.push(respond);
                }
            });
        }
    });
    let mut p = plan_for(
        &format!("http://{addr}/"),
        &settings(true, Some(5), None),
        20,
        1,
    );
    p.timeout = Duration::from_millis(150);
    let s = run(p).await;
    assert_eq!(
        (s.recorder.errors.timeout, s.completed(), s.sent),
        (20, 20, 20)
    );
    assert_eq!(accepted.load(Ordering::Relaxed), 20);
    // One connection carried them all: a timed-out stream is reset, not its connection.
    assert_eq!(s.recorder.connect.count(), 1);
}
