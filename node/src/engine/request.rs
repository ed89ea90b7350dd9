//! The request, built once per test: a parsed `http[s]://` URL and the exact bytes every worker
//! writes for every request, so the hot loop formats and allocates nothing (and, for an HTTP/2
//! test, the request's HTTP/2 parts).

use super::h2::H2Request;
use crate::http::{self, RequestError, Url};
use std::fmt::Write as _;
use std::sync::Arc;

/// Everything a worker needs to send one request, built once.
#[derive(Clone, Debug)]
pub struct PreparedRequest {
    pub url: Url,
    /// The full HTTP/1.1 request, head and body.
    pub bytes: bytes::Bytes,
    /// A HEAD response never has a body, whatever its headers say.
    pub is_head: bool,
    /// The request as HTTP/2 sends it; built only for an HTTP/2 test.
    pub h2: Option<Arc<H2Request>>,
}

impl PreparedRequest {
    /// The HTTP/1.1 request.
    pub fn build(
        url: &str,
        method: &str,
        headers: &[(String, String)],
        body: Option<&str>,
    ) -> Result<PreparedRequest, RequestError> {
        Self::build_for(url, method, headers, body, false)
    }

    /// The request, with its HTTP/2 form too when `http2`.
    pub fn build_for(
        url: &str,
        method: &str,
        headers: &[(String, String)],
        body: Option<&str>,
        http2: bool,
    ) -> Result<PreparedRequest, RequestError> {
        let (url, method) = http::check(url, method, headers)?;
        let h2 = http2
            .then(|| H2Request::build(&url, &method, headers, body).map(Arc::new))
            .transpose()?;
        let mut head = String::with_capacity(256);
        // Writing to a String cannot fail.
        let _ = write!(
            head,
            "{method} {} HTTP/1.1\r\nHost: {}\r\n",
            url.path,
            url.host_header()
        );
        let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        if !has("user-agent") {
            head.push_str(concat!(
                "User-Agent: floodgate/",
                env!("CARGO_PKG_VERSION"),
                "\r\n"
            ));
        }
        for (name, value) in headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        let body = body.unwrap_or("");
        // Always the body's own length: `http::check` refuses a user's Content-Length, so
        // the framing is the engine's and a body can never carry a request of its own.
        if !body.is_empty() || matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
            let _ = write!(head, "Content-Length: {}\r\n", body.len());
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        Ok(PreparedRequest {
            url,
            bytes: bytes.into(),
            is_head: method == "HEAD",
            h2,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_bytes_once() {
        let r = PreparedRequest::build(
            "http://h:81/p",
            "post",
            &[("X-A".into(), "1".into())],
            Some("hi"),
        )
        .expect("ok");
        let text = std::str::from_utf8(&r.bytes).expect("utf8");
        assert!(
            text.starts_with("POST /p HTTP/1.1\r\nHost: h:81\r\nUser-Agent: floodgate/"),
            "{text}"
        );
        assert!(text.contains("X-A: 1\r\n"));
        assert!(text.ends_with("Content-Length: 2\r\n\r\nhi"), "{text}");
        let g = PreparedRequest::build("http://h/", "GET", &[], None).expect("ok");
        assert!(std::str::from_utf8(&g.bytes)
            .expect("utf8")
            .ends_with("\r\n\r\n"));
        assert!(!std::str::from_utf8(&g.bytes)
            .expect("utf8")
            .contains("Content-Length"));
    }
}
