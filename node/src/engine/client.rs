//! What a worker sends its requests through: its own HTTP/1.1 connection ([`H1`]), or a stream
//! on an HTTP/2 connection it shares with the other workers of its slot (`h2`). The worker's
//! hot loop (`worker`) is generic over [`Client`], so each combination of protocol and stream is
//! compiled on its own and the plain HTTP/1.1 loop is the one it always was.

use super::check::Body;
use super::conn::{Conn, Response, SendError};
use super::connect::{Connect, Handshake};
use super::{PreparedRequest, Shared};
use std::future::Future;
use std::sync::Arc;

/// How a request ended, as far as its connection is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// A complete response on a connection that stays open.
    Kept,
    /// A complete response after which the server closes the connection.
    Closed,
    /// No response within the timeout.
    TimedOut,
    /// An error.
    Failed,
}

pub trait Client: Send + 'static {
    /// Opens the connection before the first request is due, so that a request's latency is
    /// the target's answer and not a handshake. A failure is not counted: the first request
    /// connects again, and counts its error.
    fn preconnect(&mut self, shared: &Shared) -> impl Future<Output = ()> + Send;

    /// Sends `request` and reads its whole response, connecting first if need be; keeps (a
    /// bounded copy of) the response body in `body` when given, for checks.
    fn send(
        &mut self,
        shared: &Shared,
        request: &PreparedRequest,
        body: Option<&mut Body>,
    ) -> impl Future<Output = Result<Response, SendError>> + Send;

    /// What the connection opened since the last call cost, if one was opened.
    fn take_handshake(&mut self) -> Option<Handshake>;

    /// Lets go of a connection that cannot carry another request.
    fn after(&mut self, how: After);
}

/// One keep-alive HTTP/1.1 connection of one worker, plain or TLS.
pub struct H1<C: Connect> {
    connector: Arc<C>,
    conn: Option<Conn<C::Stream>>,
    handshake: Option<Handshake>,
}

impl<C: Connect> H1<C> {
    pub fn new(connector: Arc<C>) -> Self {
        H1 {
            connector,
            conn: None,
            handshake: None,
        }
    }

    async fn open(&mut self, shared: &Shared) -> Result<&mut Conn<C::Stream>, SendError> {
        let (stream, handshake) = self.connector.connect(shared.addr).await?;
        self.handshake = Some(handshake);
        Ok(self.conn.insert(Conn::new(stream, C::FLUSH)))
    }
}

impl<C: Connect> Client for H1<C> {
    async fn preconnect(&mut self, shared: &Shared) {
        let _ = tokio::time::timeout(shared.timeout, self.open(shared)).await;
    }

    async fn send(
        &mut self,
        shared: &Shared,
        request: &PreparedRequest,
        mut body: Option<&mut Body>,
    ) -> Result<Response, SendError> {
        if let Some(c) = &mut self.conn {
            match c
                .send(&request.bytes, request.is_head, body.as_deref_mut())
                .await
            {
                // Closed by the server while idle: nothing of this request was answered, so it
                // is sent again, once, on a new connection.
                Err(SendError::Stale) => self.conn = None,
                other => return other,
            }
        }
        let c = self.open(shared).await?;
        c.send(&request.bytes, request.is_head, body).await
    }

    fn take_handshake(&mut self) -> Option<Handshake> {
        self.handshake.take()
    }

    fn after(&mut self, how: After) {
        // A timed-out response may still arrive: the connection is out of step, so it goes too.
        if how != After::Kept {
            self.conn = None;
        }
    }
}
