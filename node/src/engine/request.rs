//! The request, built once per test: a parsed `http://` URL and the exact bytes every worker
//! writes for every request, so the hot loop formats and allocates nothing.

use std::fmt::Write as _;

/// Why a target cannot be used; each names the field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TargetError {
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> TargetError {
    TargetError {
        field,
        message: message.into(),
    }
}

/// A parsed `http://host[:port]/path?query` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub path: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, TargetError> {
        let url = url.trim();
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(err(
                    "target_url",
                    format!("scheme {scheme:?} is not supported; use http://"),
                ))
            }
            None => return Err(err("target_url", "must start with http://")),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let path = path.split('#').next().unwrap_or("/").to_string();
        if authority.is_empty() {
            return Err(err("target_url", "has no host"));
        }
        if authority.contains('@') {
            return Err(err(
                "target_url",
                "user info in the URL is not supported; send an Authorization header",
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| err("target_url", "unclosed [ in IPv6 host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p)?,
                None if after.is_empty() => 80,
                None => return Err(err("target_url", "junk after IPv6 host")),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), parse_port(p)?),
                None => (authority.to_string(), 80),
            }
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err("target_url", format!("bad host {host:?}")));
        }
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(
                "target_url",
                "path must be percent-encoded (no spaces or control characters)",
            ));
        }
        Ok(Url { host, port, path })
    }

    /// `host:port` for connecting (IPv6 hosts bracketed).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `Host` header value: the port is left out when it is the default.
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

fn parse_port(p: &str) -> Result<u16, TargetError> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(err("target_url", format!("bad port {p:?}"))),
        Ok(port) => Ok(port),
    }
}

/// Everything a worker needs to send one request, built once.
#[derive(Clone, Debug)]
pub struct PreparedRequest {
    pub url: Url,
    /// The full HTTP/1.1 request, head and body.
    pub bytes: bytes::Bytes,
    /// A HEAD response never has a body, whatever its headers say.
    pub is_head: bool,
}

impl PreparedRequest {
    pub fn build(
        url: &str,
        method: &str,
        headers: &[(String, String)],
        body: Option<&str>,
    ) -> Result<PreparedRequest, TargetError> {
        let url = Url::parse(url)?;
        let method = method.trim().to_ascii_uppercase();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(err("method", format!("{method:?} is not an HTTP method")));
        }
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
        let has_content_length = has("content-length");
        for (name, value) in headers {
            let valid_name =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            if !valid_name {
                return Err(err("headers", format!("bad header name {name:?}")));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(err(
                    "headers",
                    format!("header {name} has a line break in its value"),
                ));
            }
            if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(err("headers", format!("header {name} is set by Floodgate")));
            }
            let _ = write!(head, "{name}: {value}\r\n");
        }
        let body = body.unwrap_or("");
        if !has_content_length
            && (!body.is_empty() || matches!(method.as_str(), "POST" | "PUT" | "PATCH"))
        {
            let _ = write!(head, "Content-Length: {}\r\n", body.len());
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        Ok(PreparedRequest {
            url,
            bytes: bytes.into(),
            is_head: method == "HEAD",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = Url::parse("http://127.0.0.1:8080/ping?x=1").expect("ok");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/ping?x=1")
        );
        let u = Url::parse("HTTP://localhost").expect("ok");
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        let u = Url::parse("http://h?q").expect("ok");
        assert_eq!(u.path, "/?q");
        let u = Url::parse("http://[::1]:9/a#frag").expect("ok");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str(), u.authority()),
            ("::1", 9, "/a", "[::1]:9".to_string())
        );
    }

    #[test]
    fn rejects_bad_urls_naming_the_field() {
        for bad in [
            "",
            "ftp://x",
            "https://x",
            "http://",
            "http://h:0",
            "http://h:99999",
            "http://a b/",
            "http://u@h/",
            "http://h/a b",
            "127.0.0.1:80",
        ] {
            let e = Url::parse(bad).expect_err(bad);
            assert_eq!(e.field, "target_url", "{bad}");
        }
    }

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

    #[test]
    fn rejects_header_injection() {
        let e = PreparedRequest::build(
            "http://h/",
            "GET",
            &[("X".into(), "a\r\nB: c".into())],
            None,
        )
        .expect_err("crlf");
        assert_eq!(e.field, "headers");
        let e =
            PreparedRequest::build("http://h/", "GET", &[("Bad Name".into(), "v".into())], None)
                .expect_err("name");
        assert_eq!(e.field, "headers");
        let e = PreparedRequest::build("http://h/", "GE T", &[], None).expect_err("method");
        assert_eq!(e.field, "method");
    }
}
