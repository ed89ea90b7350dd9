//! The endpoints that take input: `/echo` (the request back as JSON, body bounded) and
//! `/status/{code}` (an answer with the status asked for).

use bytes::Bytes;
use bytes::BytesMut;
use http_body_util::BodyExt;
use hyper::header::CONTENT_LENGTH;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

use crate::handler::{json, Body, HandlerFuture, INTERNAL};

/// Largest request body `/echo` reads; a longer one gets 413, so memory stays bounded.
pub const MAX_ECHO_BODY: usize = 1 << 20;
/// How much of an over-long body without a declared length is read and thrown away before the
/// 413. Draining lets the connection close cleanly, so the client reads the 413 instead of a
/// reset; past this the connection is given up on.
const MAX_DRAIN: usize = 8 << 20;

/// What `/echo` answers.
#[derive(Debug, Serialize)]
struct Echo {
    method: String,
    path: String,
    /// Without the `?`; `null` when the URI has none.
    query: Option<String>,
    /// In the order received, repeated names repeated; values as UTF-8, lossy.
    headers: Vec<(String, String)>,
    body: String,
    body_len: usize,
}

fn error(status: StatusCode, message: &str, field: &str) -> Response<Body> {
    match serde_json::to_vec(&serde_json::json!({"error": message, "field": field})) {
        Ok(body) => json(status, body),
        Err(_) => json(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL),
    }
}

fn too_large() -> Response<Body> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body is over {MAX_ECHO_BODY} bytes"),
        "body",
    )
}

/// Answers `/echo`: reads the body (at most [`MAX_ECHO_BODY`] bytes) and sends the request back.
pub(crate) fn echo<B>(req: Request<B>) -> HandlerFuture
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // A declared length over the bound is refused before a byte is read.
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_ECHO_BODY as u64) {
        return HandlerFuture::ready(too_large());
    }
    let (parts, body) = req.into_parts();
    HandlerFuture::boxed(async move {
        let bytes = match read_bounded(body).await {
            Read::Body(bytes) => bytes,
            Read::TooLarge => return too_large(),
            // The client broke off its body: there is nothing sensible to echo.
            Read::Broken => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "request body could not be read",
                    "body",
                )
            }
        };
        let echo = Echo {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
            body_len: bytes.len(),
        };
        match serde_json::to_vec(&echo) {
            Ok(body) => json(StatusCode::OK, body),
            Err(_) => json(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL),
        }
    })
}

enum Read {
    Body(Bytes),
    TooLarge,
    Broken,
}

/// Reads at most [`MAX_ECHO_BODY`] bytes of `body`; past that, drains up to [`MAX_DRAIN`]
/// without keeping anything.
async fn read_bounded<B>(body: B) -> Read
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use bytes::Buf;
    let mut body = std::pin::pin!(body);
    let mut kept = BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return if seen > MAX_ECHO_BODY {
                Read::TooLarge
            } else {
                Read::Broken
            };
        };
        let Ok(mut data) = frame.into_data() else {
            continue; // trailers
        };
        seen = seen.saturating_add(data.remaining());
        if seen <= MAX_ECHO_BODY {
            while data.has_remaining() {
                let chunk = data.chunk();
                kept.extend_from_slice(chunk);
                let n = chunk.len();
                data.advance(n);
            }
        } else if seen > MAX_DRAIN {
            return Read::TooLarge;
        } else {
            kept = BytesMut::new();
        }
    }
    if seen > MAX_ECHO_BODY {
        Read::TooLarge
    } else {
        Read::Body(kept.freeze())
    }
}

/// Answers `/status/{code}` (`rest` is what follows `/status`): 200-599 are answered as asked,
/// anything else is a 400. 1xx are refused because they are not final responses: a client
/// would wait for the real answer after one.
pub(crate) fn status(rest: &str) -> Response<Body> {
    let code = rest
        .strip_prefix('/')
        .filter(|c| !c.is_empty() && c.len() <= 3 && c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (200..=599).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok());
    let Some(code) = code else {
        return error(
            StatusCode::BAD_REQUEST,
            "status code must be an integer from 200 to 599",
            "code",
        );
    };
    // 204 and 304 carry no body by definition; hyper would drop it anyway.
    if code == StatusCode::NO_CONTENT || code == StatusCode::NOT_MODIFIED {
        let mut response = Response::new(Body::new(Bytes::new()));
        *response.status_mut() = code;
        return response;
    }
    json(code, format!(r#"{{"status":{}}}"#, code.as_u16()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_in_range_are_answered_and_the_rest_refused() {
        for (rest, expected) in [
            ("/200", 200),
            ("/503", 503),
            ("/599", 599),
            ("/204", 204),
            ("/199", 400),
            ("/100", 400),
            ("/600", 400),
            ("/abc", 400),
            ("/", 400),
            ("", 400),
            ("/0503", 400),
            ("/+50", 400),
            ("/50/", 400),
        ] {
            assert_eq!(status(rest).status().as_u16(), expected, "{rest:?}");
        }
    }
}
