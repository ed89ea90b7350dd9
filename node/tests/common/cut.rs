//! A broker one client can be cut off from: a private broker whose PROXIED listener advertises
//! a TCP proxy of the test's own (`KAFKA_PROXIED_ADVERTISED`, scripts/kafka.sh), so a node
//! bootstrapped at the proxy reaches Kafka only through it while the others use the broker
//! directly. A cut is a partition, not a refusal: the node's connections stay open and carry
//! nothing, as behind a dropped route, until the test heals it.

use super::Broker;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The proxy in front of the PROXIED listener.
pub struct KafkaCut {
    /// Where the cut-off node bootstraps.
    pub addr: String,
    cut: watch::Sender<bool>,
    /// The node's connections while cut: held open, never read or answered.
    held: Arc<Mutex<Vec<TcpStream>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl KafkaCut {
    /// Partitions the node from the broker: nothing more goes either way.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Ends the partition: the held connections are closed, so the node reconnects (through
    /// the proxy, which forwards again) as after a route came back.
    pub fn heal(&self) {
        self.cut.send_replace(false);
        self.held.lock().unwrap().clear();
    }
}

impl Drop for KafkaCut {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A private broker and the proxy to its PROXIED listener.
pub async fn broker_with_cut() -> (Broker, KafkaCut) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let port = addr.port().to_string();
    let broker = tokio::task::spawn_blocking(move || {
        Broker::start_with_env(&[("KAFKA_PROXIED_ADVERTISED", port.as_str())])
    })
    .await
    .unwrap();
    let upstream = std::fs::read_to_string(broker.dir().join("proxied_listener"))
        .expect("kafka.sh wrote the PROXIED listener's address")
        .trim()
        .to_string();
    let (cut, rx) = watch::channel(false);
    let held = Arc::new(Mutex::new(Vec::new()));
    let accept = tokio::spawn(accept_loop(listener, upstream, rx, held.clone()));
    let proxy = KafkaCut {
        addr: addr.to_string(),
        cut,
        held,
        accept,
    };
    (broker, proxy)
}

async fn accept_loop(
    listener: TcpListener,
    upstream: String,
    cut: watch::Receiver<bool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
) {
    while let Ok((client, _)) = listener.accept().await {
        if *cut.borrow() {
            held.lock().unwrap().push(client);
            continue;
        }
        tokio::spawn(forward(client, upstream.clone(), cut.clone(), held.clone()));
    }
}

/// Copies both ways until either side closes, or until a cut, which drops the broker's side
/// and holds the client's open.
async fn forward(
    mut client: TcpStream,
    upstream: String,
    mut cut: watch::Receiver<bool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
) {
    let Ok(mut broker) = TcpStream::connect(&upstream).await else {
        return;
    };
    let cut_now = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut broker) => false,
        r = cut.wait_for(|c| *c) => r.is_ok(),
    };
    if cut_now {
        held.lock().unwrap().push(client);
    }
}
