//! Who may call the API: bearer tokens for reads and changes, and the CSRF rules for changes
//! (JSON only, and an `Origin` that is the server's own or allow-listed). One pure decision
//! ([`decide`]) over the request's method, path and headers; the middleware ([`guard`]) is the
//! I/O edge. The rules and why they are so are in docs/decisions.md ("Who may aim the fleet").

use super::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The environment variable that holds one API token (for the API and for the CLI).
pub const TOKEN_ENV: &str = "FLOODGATE_TOKEN";
/// A token shorter than this is refused at start-up: it could be guessed.
pub const MIN_TOKEN_LEN: usize = 16;
/// A token longer than this is refused at start-up (it must fit an HTTP header).
pub const MAX_TOKEN_LEN: usize = 1024;

/// One API token. Never printed: its `Debug` says only that it is there.
#[derive(Clone)]
struct Token(Vec<u8>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(redacted)")
    }
}

/// Why a token given at start-up cannot be used. Names where it came from, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error(
        "{from}: a token must be {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} characters long (it has {len})"
    )]
    Length { from: String, len: usize },
    #[error(
        "{from}: a token may hold only visible ASCII characters (no spaces or control characters)"
    )]
    Characters { from: String },
    #[error(
        "{from}: no token in it (one a line; blank lines and lines starting with # are skipped)"
    )]
    Empty { from: String },
    #[error("--allowed-origin {origin:?}: an origin is scheme://host[:port], e.g. https://floodgate.example.com")]
    Origin { origin: String },
}

/// The tokens of a token file: one a line, trimmed; blank lines and `#` comments skipped.
/// `source` names the file in errors.
pub fn parse_token_file(text: &str, source: &str) -> Result<Vec<String>, TokenError> {
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if tokens.is_empty() {
        return Err(TokenError::Empty {
            from: source.to_string(),
        });
    }
    for (i, t) in tokens.iter().enumerate() {
        check_token(t, &format!("{source} (token {})", i + 1))?;
    }
    Ok(tokens)
}

/// A token fits a header as it is and is long enough not to be guessed.
pub fn check_token(token: &str, source: &str) -> Result<(), TokenError> {
    if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&token.len()) {
        return Err(TokenError::Length {
            from: source.to_string(),
            len: token.len(),
        });
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::Characters {
            from: source.to_string(),
        });
    }
    Ok(())
}

/// The API's access policy.
#[derive(Clone, Debug, Default)]
pub struct Access {
    tokens: Arc<Vec<Token>>,
    /// GETs need no token (changes still do).
    pub reads_open: bool,
    /// `GET /metrics` needs no token (for scrapers that cannot send one).
    pub metrics_open: bool,
    /// Answer only requests whose `Host` is a loopback name (an open API on loopback: a
    /// DNS-rebinding page names its own host, and its `Origin` then matches).
    pub loopback_names_only: bool,
    /// Origins besides the server's own that may make changes, normalised (`scheme://host[:port]`,
    /// lower case, no default port).
    origins: Arc<Vec<String>>,
}

impl Access {
    /// No tokens: everyone may read and change (the default on loopback). CSRF rules still hold.
    pub fn open() -> Self {
        Self::default()
    }

    /// Requires one of `tokens` (already checked with [`check_token`]).
    pub fn with_tokens(tokens: Vec<String>) -> Self {
        Self {
            tokens: Arc::new(tokens.into_iter().map(|t| Token(t.into_bytes())).collect()),
            ..Self::default()
        }
    }

    /// Lets pages of these origins make changes too.
    pub fn allow_origins(mut self, origins: &[String]) -> Result<Self, TokenError> {
        let normalised = origins
            .iter()
            .map(|o| normalise_origin(o).ok_or_else(|| TokenError::Origin { origin: o.clone() }))
            .collect::<Result<Vec<_>, _>>()?;
        self.origins = Arc::new(normalised);
        Ok(self)
    }

    pub fn requires_token(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Whether `presented` is one of the tokens. Every token is compared, each in constant
    /// time, so the answer's timing does not say how much of a guess was right.
    fn knows(&self, presented: &[u8]) -> bool {
        let hit = self
            .tokens
            .iter()
            .fold(subtle::Choice::from(0), |acc, t| acc | t.0.ct_eq(presented));
        bool::from(hit)
    }
}

/// How the API may be served, given where it listens and whether it has tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Tokens required.
    Tokens,
    /// No tokens, on a loopback address: only this machine can connect.
    Loopback,
    /// No tokens on a reachable address, because the operator asked for it.
    Insecure,
}

/// Refuses to serve an open API on an address other machines can reach, unless `insecure`.
pub fn exposure(bound: SocketAddr, has_tokens: bool, insecure: bool) -> Result<Exposure, String> {
    match (has_tokens, bound.ip().is_loopback(), insecure) {
        (true, _, _) => Ok(Exposure::Tokens),
        (false, true, _) => Ok(Exposure::Loopback),
        (false, false, true) => Ok(Exposure::Insecure),
        (false, false, false) => Err(format!(
            "refusing to serve the API on {bound} without a token: anyone who can reach it could \
             aim the fleet. Give tokens (FLOODGATE_TOKEN, or --token-file / FLOODGATE_TOKEN_FILE), \
             listen on loopback, or pass --insecure-no-auth"
        )),
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer …` header.
    NoToken,
    /// A bearer token that is not one of the API's.
    WrongToken,
    /// A change from a page of another origin.
    ForeignOrigin,
    /// A change whose body is not declared `application/json`.
    NotJson,
    /// A request to an open loopback API that names another host (DNS rebinding).
    ForeignHost,
}

/// What a request asks for, as far as access goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The page, its files, the OpenAPI document, `/healthz` and `/livez` (probes send no token):
    /// nothing about tests or drivers.
    Public,
    Metrics,
    Read,
    Change,
}

fn kind(method: &Method, path: &str) -> Kind {
    if method != Method::GET && method != Method::HEAD {
        return Kind::Change;
    }
    match path {
        "/" | "/healthz" | "/livez" | "/api/v1/openapi.json" => Kind::Public,
        "/metrics" => Kind::Metrics,
        p if p.starts_with("/ui/") => Kind::Public,
        _ => Kind::Read,
    }
}

/// Whether the request may go on.
pub fn decide(access: &Access, method: &Method, path: &str, h: &HeaderMap) -> Result<(), Refusal> {
    let kind = kind(method, path);
    if access.loopback_names_only && kind != Kind::Public {
        let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
        if host.is_some_and(|h| !is_loopback_name(h)) {
            return Err(Refusal::ForeignHost);
        }
    }
    let needs_token = access.requires_token()
        && match kind {
            Kind::Public => false,
            Kind::Metrics => !(access.metrics_open || access.reads_open),
            Kind::Read => !access.reads_open,
            Kind::Change => true,
        };
    if needs_token {
        let presented = h
            .get(header::AUTHORIZATION)
            .and_then(|v| bearer(v.as_bytes()))
            .ok_or(Refusal::NoToken)?;
        if !access.knows(presented) {
            return Err(Refusal::WrongToken);
        }
    }
    if kind == Kind::Change {
        if let Some(origin) = h.get(header::ORIGIN) {
            let host = h.get(header::HOST).map(HeaderValue::as_bytes);
            if !origin_allowed(access, origin.as_bytes(), host) {
                return Err(Refusal::ForeignOrigin);
            }
        }
        // Only these routes change anything; any other change request is the router's 405,
        // so it is not asked for a body type it does not have.
        let json = !changes_state(method, path)
            || h.get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(Refusal::NotJson);
        }
    }
    Ok(())
}

/// The routes that change state (`api::router`): a POST creating, triggering or stopping a
/// test, and a PATCH of a test (its rate).
fn changes_state(method: &Method, path: &str) -> bool {
    let test = path.strip_prefix("/api/v1/tests/");
    match *method {
        Method::POST => {
            path == "/api/v1/tests"
                || test.is_some_and(|rest| rest.ends_with("/trigger") || rest.ends_with("/stop"))
        }
        Method::PATCH => test.is_some_and(|id| !id.is_empty() && !id.contains('/')),
        _ => false,
    }
}

/// Whether a `Host` value names this machine: localhost (or a name under it), 127.0.0.0/8, ::1.
fn is_loopback_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme in any case).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// `scheme://host[:port]` in lower case without the scheme's default port, or None if `o` is
/// not such an origin (a path, `null`, another scheme).
fn normalise_origin(o: &str) -> Option<String> {
    let o = o.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = o.split_once("://")?;
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || "-._:[]".contains(c);
    if authority.is_empty() || !authority.chars().all(valid) {
        return None;
    }
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    Some(format!("{scheme}://{authority}"))
}

/// An origin may change things if it is allow-listed or is this server as its `Host` names it.
fn origin_allowed(access: &Access, origin: &[u8], host: Option<&[u8]>) -> bool {
    let Some(origin) = std::str::from_utf8(origin).ok().and_then(normalise_origin) else {
        return false; // `null` (a sandboxed frame, a file) or garbage: never our page
    };
    if access.origins.contains(&origin) {
        return true;
    }
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    host.and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| normalise_origin(&format!("{scheme}://{h}")))
        .is_some_and(|own| own.split_once("://").is_some_and(|(_, a)| a == authority))
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let (status, field, message) = match r {
            Refusal::NoToken => (
                StatusCode::UNAUTHORIZED,
                "authorization",
                "this call needs an API token: send `Authorization: Bearer <token>` (the CLI reads \
                 FLOODGATE_TOKEN or --token-file; the dashboard asks for it)",
            ),
            Refusal::WrongToken => (
                StatusCode::UNAUTHORIZED,
                "authorization",
                "the API token was refused: it is not one of this orchestrator's tokens",
            ),
            Refusal::ForeignOrigin => (
                StatusCode::FORBIDDEN,
                "origin",
                "changes are accepted only from the orchestrator's own pages or an allowed origin \
                 (--allowed-origin); this request came from another site",
            ),
            Refusal::ForeignHost => (
                StatusCode::FORBIDDEN,
                "host",
                "an orchestrator without API tokens answers only requests addressed to this \
                 machine (localhost, 127.0.0.1, [::1]); this one names another host, as a \
                 DNS-rebinding page would. Use 127.0.0.1, or give the orchestrator a token",
            ),
            Refusal::NotJson => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content-type",
                "a call that changes state must send Content-Type: application/json",
            ),
        };
        ApiError::with_field(status, message, field)
    }
}

/// The middleware: refuses what [`decide`] refuses, with the API's JSON error.
pub async fn guard(State(access): State<Access>, req: Request, next: Next) -> Response {
    match decide(&access, req.method(), req.uri().path(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(refusal) => {
            let mut res = ApiError::from(refusal).into_response();
            if matches!(refusal, Refusal::NoToken | Refusal::WrongToken) {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"floodgate\""),
                );
            }
            res
        }
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
