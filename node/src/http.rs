//! What a request to a target may be: an `http://` or `https://` URL, a method, header names
//! and values.
//! One set of rules, used where a test is defined (the REST API) and where it is run (the
//! engine), so that a test accepted by one is never refused by the other.

/// Which part of a request a problem is in; each boundary names its own field for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Url,
    Method,
    Header,
    /// The TLS settings (`tls`).
    Tls,
}

/// Why a request cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    pub part: Part,
    pub message: String,
}

fn err(part: Part, message: impl Into<String>) -> RequestError {
    RequestError {
        part,
        message: message.into(),
    }
}

use crate::protocol::limits;

/// A parsed `http[s]://host[:port]/path?query` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `https://`: the connection is TLS.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub path: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, RequestError> {
        let url = url.trim();
        let (tls, rest) = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (false, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
            Some((scheme, _)) => {
                return Err(err(
                    Part::Url,
                    format!("scheme {scheme:?} is not supported; use http:// or https://"),
                ))
            }
            None => return Err(err(Part::Url, "must start with http:// or https://")),
        };
        let default_port = if tls { 443 } else { 80 };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let path = path.split('#').next().unwrap_or("/").to_string();
        if authority.is_empty() {
            return Err(err(Part::Url, "has no host"));
        }
        if authority.contains('@') {
            return Err(err(
                Part::Url,
                "user info in the URL is not supported; send an Authorization header",
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| err(Part::Url, "unclosed [ in IPv6 host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p)?,
                None if after.is_empty() => default_port,
                None => return Err(err(Part::Url, "junk after IPv6 host")),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), parse_port(p)?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(Part::Url, format!("bad host {host:?}")));
        }
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(
                Part::Url,
                "path must be percent-encoded (no spaces or control characters)",
            ));
        }
        Ok(Url {
            tls,
            host,
            port,
            path,
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// The port a URL of this scheme has when it names none.
    pub fn default_port(&self) -> u16 {
        if self.tls {
            443
        } else {
            80
        }
    }

    /// `host:port` for connecting (IPv6 hosts bracketed).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `Host` header value (HTTP/2's `:authority`): the port is left out when it is the
    /// scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

fn parse_port(p: &str) -> Result<u16, RequestError> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(err(Part::Url, format!("bad port {p:?}"))),
        Ok(port) => Ok(port),
    }
}

/// An HTTP method: upper-cased, letters only.
pub fn method(method: &str) -> Result<String, RequestError> {
    let m = method.trim().to_ascii_uppercase();
    if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(err(Part::Method, format!("{m:?} is not an HTTP method")));
    }
    Ok(m)
}

/// Headers that define how a message is framed or how the connection is used. The engine
/// writes `Host` and `Content-Length` itself and keeps connections alive; taking any of these
/// from a user would let a test's body carry requests of its own (request smuggling: a
/// `Content-Length: 0` with a body of pipelined requests made a target count 116 requests for
/// 20 reported), or change the framing of the next response.
pub const ENGINE_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
    "expect",
];

/// An RFC 9110 token character (what a header name is made of).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A header a test may set: a token for a name, a value without control characters (a tab is
/// allowed), and not one of the [`ENGINE_HEADERS`].
pub fn header(name: &str, value: &str) -> Result<(), RequestError> {
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(err(
            Part::Header,
            format!(
                "bad header name {name:?}: a name is a token (letters, digits, !#$%&'*+-.^_`|~)"
            ),
        ));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(err(
            Part::Header,
            format!("header {name} has a line break or NUL in its value"),
        ));
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(err(
            Part::Header,
            format!("header {name} has a control character in its value"),
        ));
    }
    if ENGINE_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
        return Err(err(
            Part::Header,
            format!(
                "header {name} is computed by Floodgate (it defines the message framing); leave it out"
            ),
        ));
    }
    Ok(())
}

/// A figure over its limit, saying the limit.
fn too_many(part: Part, what: String, max: usize) -> RequestError {
    err(part, format!("{what}; at most {max} are accepted"))
}

/// Checks a test's headers: each one, their number and their total size.
pub fn headers(headers: &[(String, String)]) -> Result<(), RequestError> {
    if headers.len() > limits::MAX_HEADERS {
        return Err(too_many(
            Part::Header,
            format!("{} headers", headers.len()),
            limits::MAX_HEADERS,
        ));
    }
    // The size first, so that no error message quotes a megabyte of header.
    let size: usize = headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    if size > limits::MAX_HEADER_BYTES {
        return Err(too_many(
            Part::Header,
            format!("the headers take {size} bytes"),
            limits::MAX_HEADER_BYTES,
        ));
    }
    headers.iter().try_for_each(|(k, v)| header(k, v))
}

/// Checks a whole request; returns its parsed URL and method.
pub fn check(
    url: &str,
    method_name: &str,
    header_list: &[(String, String)],
) -> Result<(Url, String), RequestError> {
    if url.len() > limits::MAX_URL_LEN {
        return Err(too_many(
            Part::Url,
            format!("is {} bytes long", url.len()),
            limits::MAX_URL_LEN,
        ));
    }
    let url = Url::parse(url)?;
    let m = method(method_name)?;
    headers(header_list)?;
    Ok((url, m))
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
        let u = Url::parse("https://h").expect("ok");
        assert_eq!(
            (u.tls, u.port, u.host_header()),
            (true, 443, "h".to_string())
        );
        let u = Url::parse("HTTPS://h:8443/x").expect("ok");
        assert_eq!(
            (u.scheme(), u.host_header()),
            ("https", "h:8443".to_string())
        );
        assert!(!Url::parse("http://h").expect("ok").tls);
        let u = Url::parse("http://[::1]:9/a#frag").expect("ok");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str(), u.authority()),
            ("::1", 9, "/a", "[::1]:9".to_string())
        );
    }

    #[test]
    fn every_bad_part_is_named() {
        for bad in [
            "",
            "ftp://x",
            "wss://x",
            "http://",
            "http://h:0",
            "http://h:99999",
            "http://a b/",
            "http://u@h/",
            "http://h/a b",
            "127.0.0.1:80",
        ] {
            assert_eq!(Url::parse(bad).expect_err(bad).part, Part::Url, "{bad}");
        }
        let header = |k: &str, v: &str| check("http://h/", "GET", &[(k.into(), v.into())]);
        assert_eq!(
            header("X", "a\r\nB: c").map(|_| ()).map_err(|e| e.part),
            Err(Part::Header)
        );
        assert_eq!(
            header("Bad Name", "v").map(|_| ()).map_err(|e| e.part),
            Err(Part::Header)
        );
        assert_eq!(
            header("Host", "x").map(|_| ()).map_err(|e| e.part),
            Err(Part::Header)
        );
        assert_eq!(method("GE T").map_err(|e| e.part), Err(Part::Method));
    }

    #[test]
    fn framing_headers_are_the_engines_and_names_are_tokens() {
        let one = |k: &str, v: &str| headers(&[(k.into(), v.into())]).map_err(|e| e.message);
        // Issue 10, item 7: each of these would let a user reframe the request.
        for name in [
            "Content-Length",
            "content-length",
            "Transfer-Encoding",
            "HOST",
            "Connection",
            "Keep-Alive",
            "Proxy-Connection",
            "Upgrade",
            "TE",
            "Trailer",
            "Expect",
        ] {
            let e = one(name, "0").expect_err(name);
            assert!(e.contains("computed by Floodgate"), "{name}: {e}");
        }
        for bad in ["X:Y", "X Y", "X\r\nY", "X\0", "", "(x)", "é"] {
            assert!(one(bad, "v").is_err(), "{bad:?}");
        }
        for bad in ["a\rb", "a\nb", "a\0b", "a\x1bb", "a\x7fb"] {
            assert!(one("X-A", bad).is_err(), "{bad:?}");
        }
        for good in [
            ("X-A", "1"),
            ("Authorization", "Bearer a.b"),
            ("X~!#$%&'*+-.^_`|", "a\tb é"),
        ] {
            assert_eq!(one(good.0, good.1), Ok(()), "{good:?}");
        }
        let many: Vec<(String, String)> = (0..=limits::MAX_HEADERS)
            .map(|i| (format!("X-{i}"), "v".to_string()))
            .collect();
        assert!(headers(&many).is_err());
        assert!(headers(&many[1..]).is_ok());
        let big = "v".repeat(limits::MAX_HEADER_BYTES);
        let e = one("X-Big", &big).expect_err("too big");
        assert!(e.len() < 200, "the error does not quote the header: {e}");
        let long_url = format!("http://h/{}", "a".repeat(limits::MAX_URL_LEN));
        assert_eq!(
            check(&long_url, "GET", &[]).map(|_| ()).map_err(|e| e.part),
            Err(Part::Url)
        );
        assert_eq!(method(" post ").as_deref(), Ok("POST"));
    }
}
