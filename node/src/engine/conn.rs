//! One keep-alive HTTP/1.1 connection owned by one worker: writes the prebuilt request and
//! reads one response (Content-Length, chunked or close-delimited) into a reused buffer. Generic
//! over the stream (a `TcpStream`, or a rustls `TlsStream` over one), so HTTPS shares this path
//! and plain HTTP compiles to the same code as before.
//!
//! Hand-rolled on `httparse` (as wrk does in C) rather than a general client, so a request costs
//! one write and usually one read, and allocates nothing once the buffer has grown to fit.
//! Parsing the head is most of the user-space work left per response, so each connection
//! remembers its last head and skips the parse when the next one is byte-for-byte the same
//! ([`Conn::parse_head`]).
//!
//! The read buffer starts at 4 KiB, so a typical small response arrives in one short `read`
//! (tokio then knows the socket is drained and waits for readiness without a failing `read`),
//! and grows to 64 KiB only on connections whose reads fill it, so large bodies are skipped in
//! few `read`s (without being kept) while small-response tests use little memory per connection.

use super::check::Body;
use std::io;
use std::mem::MaybeUninit;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The read buffer starts small (a typical response fits many times over) ...
const INITIAL_BUF: usize = 4 * 1024;
/// ...and doubles whenever a read fills all the room it had (more was waiting), up to this size,
/// so large bodies are skipped in few `read`s without every connection paying for it.
const MAX_READ_BUF: usize = 64 * 1024;
/// Room a read is always given; less than this grows the buffer first.
const MIN_READ: usize = 1024;
const MAX_HEADERS: usize = 64;
/// A response head larger than this is refused rather than buffered without bound.
const MAX_HEAD: usize = 1024 * 1024;

/// How a request failed, counted separately in the metrics.
#[derive(Debug)]
pub enum SendError {
    /// The connection could not be opened.
    Connect(io::Error),
    /// The TLS handshake failed (an untrusted certificate, a wrong name, no common protocol).
    Tls(io::Error),
    /// An HTTP/2 connection or stream error (a reset, a GOAWAY, a broken connection).
    Http2(h2::Error),
    /// The connection broke, or closed before a whole response arrived.
    Io(io::Error),
    /// The bytes received were not an HTTP/1.x response.
    Protocol(&'static str),
    /// A reused keep-alive connection was found closed before any byte of the response came
    /// back (the server timed it out while idle): safe to retry once on a new connection.
    Stale,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "connect: {e}"),
            SendError::Tls(e) => {
                write!(f, "TLS handshake: {e}")?;
                let bad_cert = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
                if bad_cert {
                    f.write_str(
                        " (trust the server's CA with tls.ca_pem, or set tls.insecure_skip_verify for a test environment)",
                    )?;
                }
                Ok(())
            }
            SendError::Http2(e) => write!(f, "http/2: {e}"),
            SendError::Io(e) => write!(f, "i/o: {e}"),
            SendError::Protocol(what) => write!(f, "protocol: {what}"),
            SendError::Stale => f.write_str("keep-alive connection closed by the server"),
        }
    }
}

/// A complete response: its status, and whether the connection can carry another request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub keep_alive: bool,
}

pub struct Conn<S> {
    stream: S,
    /// Flush after each write (TLS; see `Connect::FLUSH`).
    flush: bool,
    buf: Vec<u8>,
    /// Responses completed on this connection so far.
    served: u64,
    /// The bytes of the last response head parsed on this connection, and what they said.
    head_cache: Vec<u8>,
    cached: Option<CachedHead>,
}

/// What a response head says about reading the rest of the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head {
    /// Bytes up to and including the blank line.
    len: usize,
    status: u16,
    framing: Framing,
    keep_alive: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CachedHead {
    head: Head,
    is_head: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// Heads up to this size are remembered for the byte-comparison fast path (so the cache costs
/// at most 1 KiB per connection); larger, rare heads are parsed every time.
const HEAD_CACHE_MAX: usize = 1024;

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// A connection over an open stream; `flush` for streams that buffer writes (TLS).
    pub fn new(stream: S, flush: bool) -> Conn<S> {
        Conn {
            stream,
            flush,
            buf: Vec::with_capacity(INITIAL_BUF),
            served: 0,
            head_cache: Vec::new(),
            cached: None,
        }
    }

    /// Sends one request and reads its whole response, keeping (a bounded copy of) its body in
    /// `body` when given.
    pub async fn send(
        &mut self,
        request: &[u8],
        is_head: bool,
        mut body: Option<&mut Body>,
    ) -> Result<Response, SendError> {
        self.buf.clear();
        if let Err(e) = self.stream.write_all(request).await {
            return Err(self.broken(e));
        }
        if self.flush {
            if let Err(e) = self.stream.flush().await {
                return Err(self.broken(e));
            }
        }
        loop {
            let head = loop {
                // Nothing to parse until the first read (an empty buffer is always partial).
                if !self.buf.is_empty() {
                    if let Some(head) = self.parse_head(is_head)? {
                        break head;
                    }
                    if self.buf.len() >= MAX_HEAD {
                        return Err(SendError::Protocol("response head too large"));
                    }
                }
                self.fill().await?;
            };
            // An interim 1xx response is followed by the real one on the same request.
            if (100..200).contains(&head.status) && head.status != 101 {
                self.buf.drain(..head.len);
                continue;
            }
            let mut keep_alive = head.keep_alive;
            if let Some(b) = body.as_deref_mut() {
                b.clear();
            }
            match head.framing {
                Framing::Length(n) => self.skip_length(head.len, n, body).await?,
                Framing::Chunked => self.skip_chunked(head.len, body).await?,
                Framing::UntilClose => {
                    self.skip_until_close(head.len, body).await?;
                    keep_alive = false;
                }
            }
            self.served += 1;
            return Ok(Response {
                status: head.status,
                keep_alive,
            });
        }
    }

    /// Reads more bytes into the buffer; EOF before a whole response is an error.
    async fn fill(&mut self) -> Result<usize, SendError> {
        if self.buf.capacity() - self.buf.len() < MIN_READ {
            self.buf.reserve(self.buf.capacity().max(INITIAL_BUF));
        }
        let room = self.buf.capacity() - self.buf.len();
        match self.stream.read_buf(&mut self.buf).await {
            Ok(n) if n == room && self.buf.capacity() < MAX_READ_BUF => {
                // A full read: the socket probably holds more, so read more at a time from now on
                // (a short read also lets tokio skip the read that would fail with `WouldBlock`).
                let target = (2 * self.buf.capacity()).min(MAX_READ_BUF);
                self.buf.reserve(target - self.buf.len());
                Ok(n)
            }
            Ok(0) => Err(self.broken(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-response",
            ))),
            Ok(n) => Ok(n),
            Err(e) => Err(self.broken(e)),
        }
    }

    fn broken(&self, e: io::Error) -> SendError {
        if self.served > 0 && self.buf.is_empty() {
            SendError::Stale
        } else {
            SendError::Io(e)
        }
    }

    /// The head at the start of the buffer, or `None` while it is incomplete.
    ///
    /// A server answers the same request with the same head, byte for byte, except when a
    /// header such as `Date` changes (once a second). So when the buffer starts with the exact
    /// bytes of the previous head, the parse would give the previous result and is skipped: one
    /// `memcmp` instead of a full `httparse` pass, which is most of the user-space work per
    /// response. A head parser reads nothing past the blank line that ends the head, so equal
    /// head bytes always mean an equal result.
    fn parse_head(&mut self, is_head: bool) -> Result<Option<Head>, SendError> {
        if let Some(c) = self.cached {
            if c.is_head == is_head && self.buf.starts_with(&self.head_cache) {
                return Ok(Some(c.head));
            }
        }
        let Some(head) = parse_head(&self.buf, is_head)? else {
            return Ok(None);
        };
        if head.len <= HEAD_CACHE_MAX {
            // Reuses the cache's capacity: allocates only the first time on a connection.
            self.head_cache.clear();
            self.head_cache.extend_from_slice(&self.buf[..head.len]);
            self.cached = Some(CachedHead { head, is_head });
        } else {
            self.cached = None;
        }
        Ok(Some(head))
    }

    async fn skip_length(
        &mut self,
        head_len: usize,
        len: u64,
        mut body: Option<&mut Body>,
    ) -> Result<(), SendError> {
        let have = self.buf.len() - head_len;
        if let Some(b) = body.as_deref_mut() {
            let end = head_len + have.min(usize::try_from(len).unwrap_or(usize::MAX));
            b.push(&self.buf[head_len..end]);
        }
        let mut remaining = len.saturating_sub(have as u64);
        while remaining > 0 {
            self.buf.clear();
            let n = self.fill().await? as u64;
            if let Some(b) = body.as_deref_mut() {
                let take = usize::try_from(n.min(remaining)).unwrap_or(usize::MAX);
                b.push(&self.buf[..take]);
            }
            remaining = remaining.saturating_sub(n);
        }
        Ok(())
    }

    async fn skip_chunked(
        &mut self,
        head_len: usize,
        mut body: Option<&mut Body>,
    ) -> Result<(), SendError> {
        self.buf.drain(..head_len);
        let mut dec = ChunkDecoder::default();
        loop {
            let consumed = dec.feed(&self.buf, body.as_deref_mut())?;
            self.buf.drain(..consumed);
            if dec.is_done() {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    async fn skip_until_close(
        &mut self,
        head_len: usize,
        mut body: Option<&mut Body>,
    ) -> Result<(), SendError> {
        let mut from = head_len.min(self.buf.len());
        loop {
            if let Some(b) = body.as_deref_mut() {
                b.push(&self.buf[from..]);
            }
            from = 0;
            self.buf.clear();
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(SendError::Io(e)),
            }
        }
    }
}

/// Parses a response head with `httparse`; `None` while it is incomplete.
fn parse_head(buf: &[u8], is_head: bool) -> Result<Option<Head>, SendError> {
    // Uninitialised header slots: a `[EMPTY_HEADER; 64]` array would be written in full (2 KiB)
    // before every parse.
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(SendError::Protocol("malformed response head")),
    };
    let status = resp.code.ok_or(SendError::Protocol("no status code"))?;
    let http10 = resp.version == Some(0);
    let mut keep_alive = !http10;
    let mut framing = Framing::UntilClose;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or(SendError::Protocol("bad content-length"))?;
            if !matches!(framing, Framing::Chunked) {
                framing = Framing::Length(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if contains_token(h.value, b"chunked") {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            if contains_token(h.value, b"close") {
                keep_alive = false;
            } else if contains_token(h.value, b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    if is_head || status == 204 || status == 304 || (100..200).contains(&status) {
        framing = Framing::Length(0);
    }
    Ok(Some(Head {
        len,
        status,
        framing,
        keep_alive,
    }))
}

fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token))
}

/// Streaming skipper of a chunked body: consumes what it can, says when the body has ended.
#[derive(Debug, Default)]
struct ChunkDecoder {
    state: ChunkState,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

impl ChunkDecoder {
    fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Consumes as much of `data` as forms whole protocol elements, keeping the chunks' data in
    /// `body` when given; returns the bytes consumed.
    fn feed(&mut self, data: &[u8], mut body: Option<&mut Body>) -> Result<usize, SendError> {
        let mut pos = 0;
        loop {
            let rest = &data[pos..];
            match self.state {
                ChunkState::Size => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((n, 0))) => {
                        pos += n;
                        self.state = ChunkState::Trailers;
                    }
                    Ok(httparse::Status::Complete((n, size))) => {
                        pos += n;
                        self.state = ChunkState::Data(size);
                    }
                    Ok(httparse::Status::Partial) => return Ok(pos),
                    Err(_) => return Err(SendError::Protocol("bad chunk size")),
                },
                ChunkState::Data(left) => {
                    let take = left.min(rest.len() as u64);
                    if let Some(b) = body.as_deref_mut() {
                        b.push(&rest[..take as usize]);
                    }
                    pos += take as usize;
                    if take == left {
                        self.state = ChunkState::DataEnd;
                    } else {
                        self.state = ChunkState::Data(left - take);
                        return Ok(pos);
                    }
                }
                ChunkState::DataEnd => {
                    if rest.len() < 2 {
                        return Ok(pos);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(SendError::Protocol("chunk not followed by CRLF"));
                    }
                    pos += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => match rest.windows(2).position(|w| w == b"\r\n") {
                    Some(0) => {
                        pos += 2;
                        self.state = ChunkState::Done;
                    }
                    Some(i) => pos += i + 2,
                    None => return Ok(pos),
                },
                ChunkState::Done => return Ok(pos),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::net::{TcpListener, TcpStream};

    async fn connect(addr: SocketAddr) -> Result<Conn<TcpStream>, SendError> {
        let s = TcpStream::connect(addr).await.map_err(SendError::Connect)?;
        Ok(Conn::new(s, false))
    }

    /// A one-connection server that answers each request with the next canned response.
    async fn serve(responses: Vec<&'static [u8]>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            let mut buf = vec![0u8; 4096];
            for r in responses {
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.expect("read");
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                // Dribble the response in small pieces to exercise partial parsing.
                for piece in r.chunks(7) {
                    s.write_all(piece).await.expect("write");
                    s.flush().await.expect("flush");
                }
                if r.starts_with(b"HTTP/1.0") {
                    return;
                }
            }
        });
        addr
    }

    const REQ: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    #[tokio::test]
    async fn reads_length_chunked_and_close_delimited_bodies() {
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n2\r\nef\r\n0\r\nTrailer: 1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nuntil close",
        ])
        .await;
        let mut c = connect(addr).await.expect("connect");
        assert_eq!(
            c.send(REQ, false, None).await.expect("1"),
            Response {
                status: 200,
                keep_alive: true
            }
        );
        assert_eq!(
            c.send(REQ, false, None).await.expect("2"),
            Response {
                status: 503,
                keep_alive: true
            }
        );
        assert_eq!(
            c.send(REQ, false, None).await.expect("3"),
            Response {
                status: 204,
                keep_alive: true
            }
        );
        assert_eq!(
            c.send(REQ, false, None).await.expect("4"),
            Response {
                status: 200,
                keep_alive: false
            }
        );
    }

    #[tokio::test]
    async fn bodies_are_kept_when_asked_whatever_their_framing() {
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
            b"HTTP/1.0 200 OK\r\n\r\nuntil close",
        ])
        .await;
        let mut c = connect(addr).await.expect("connect");
        let mut body = Body::default();
        for want in [&b"hello"[..], b"abcdef"] {
            c.send(REQ, false, Some(&mut body)).await.expect("sent");
            assert_eq!(body.data, want);
        }
        // Not asked: nothing kept (and the last body is not mistaken for this one's).
        c.send(REQ, false, None).await.expect("sent");
        assert_eq!(body.data, b"abcdef");
        c.send(REQ, false, Some(&mut body)).await.expect("sent");
        assert_eq!(
            (body.data.as_slice(), body.truncated),
            (&b"until close"[..], false)
        );
    }

    #[tokio::test]
    async fn connection_close_and_errors() {
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        ])
        .await;
        let mut c = connect(addr).await.expect("connect");
        assert!(!c.send(REQ, false, None).await.expect("ok").keep_alive);

        let addr = serve(vec![b"SSH-2.0-nope\r\n\r\n"]).await;
        let mut c = connect(addr).await.expect("connect");
        assert!(matches!(
            c.send(REQ, false, None).await,
            Err(SendError::Protocol(_))
        ));

        let addr = serve(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort"]).await;
        let mut c = connect(addr).await.expect("connect");
        // The server hangs up after a short body (it has no more responses to give).
        assert!(matches!(
            c.send(REQ, false, None).await,
            Err(SendError::Io(_))
        ));

        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let closed = l.local_addr().expect("addr");
        drop(l);
        assert!(matches!(connect(closed).await, Err(SendError::Connect(_))));
    }

    #[tokio::test]
    async fn repeated_heads_use_the_cache_and_changed_heads_are_parsed() {
        const A: &[u8] = b"HTTP/1.1 200 OK\r\nDate: 1\r\nContent-Length: 2\r\n\r\nok";
        const B: &[u8] =
            b"HTTP/1.1 503 Busy\r\nDate: 1\r\nContent-Length: 20\r\n\r\n01234567890123456789";
        const C: &[u8] =
            b"HTTP/1.1 200 OK\r\nDate: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        let addr = serve(vec![A, A, B, A, C]).await;
        let mut c = connect(addr).await.expect("connect");
        let ok = Response {
            status: 200,
            keep_alive: true,
        };
        assert_eq!(c.send(REQ, false, None).await.expect("1"), ok);
        assert_eq!(c.send(REQ, false, None).await.expect("2"), ok);
        assert_eq!(
            c.send(REQ, false, None).await.expect("3"),
            Response {
                status: 503,
                keep_alive: true
            }
        );
        assert_eq!(c.send(REQ, false, None).await.expect("4"), ok);
        assert_eq!(
            c.send(REQ, false, None).await.expect("5"),
            Response {
                status: 200,
                keep_alive: false
            }
        );
        // A HEAD request never has a body, even with the same head bytes.
        c.buf.clear();
        c.buf.extend_from_slice(A);
        c.cached = None;
        let get = c.parse_head(false).expect("parse").expect("complete");
        assert_eq!(get.framing, Framing::Length(2));
        let head = c.parse_head(true).expect("parse").expect("complete");
        assert_eq!(head.framing, Framing::Length(0));
    }

    #[tokio::test]
    async fn large_bodies_are_skipped_with_a_bounded_buffer() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            let mut buf = vec![0u8; 4096];
            let body = vec![b'x'; 300 * 1024];
            for _ in 0..2 {
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                s.write_all(head.as_bytes()).await.expect("head");
                s.write_all(&body).await.expect("body");
            }
        });
        let mut c = connect(addr).await.expect("connect");
        let ok = Response {
            status: 200,
            keep_alive: true,
        };
        assert_eq!(c.send(REQ, false, None).await.expect("1"), ok);
        assert_eq!(c.send(REQ, false, None).await.expect("2"), ok);
        assert!(c.buf.capacity() <= MAX_READ_BUF, "{}", c.buf.capacity());
    }

    #[test]
    fn chunk_decoder_handles_every_split() {
        let body = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
        for split in 0..body.len() {
            let mut dec = ChunkDecoder::default();
            let mut buf = body[..split].to_vec();
            let n = dec.feed(&buf, None).expect("first");
            buf.drain(..n);
            buf.extend_from_slice(&body[split..]);
            let n = dec.feed(&buf, None).expect("second");
            assert!(dec.is_done(), "split {split}");
            assert_eq!(n, buf.len());
        }
        assert!(ChunkDecoder::default().feed(b"zz\r\n", None).is_err());
    }
}
