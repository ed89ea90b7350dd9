//! The access decision, table-tested: tokens, open reads and metrics, the CSRF rules, the
//! start-up exposure rule and the token file.

use super::*;

const A: &str = "token-aaaaaaaaaaaaaaaa";
const B: &str = "token-bbbbbbbbbbbbbbbb";

type Headers<'a> = Vec<(&'a str, &'a str)>;
type Verdict = Result<(), Refusal>;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

fn secured() -> Access {
    Access::with_tokens(vec![A.into(), B.into()])
}

#[test]
fn tokens_guard_reads_and_changes_but_not_the_page_or_health() {
    let (s, o) = (secured(), Access::open());
    let open_reads = Access {
        reads_open: true,
        ..secured()
    };
    let open_metrics = Access {
        metrics_open: true,
        ..secured()
    };
    let json = ("content-type", "application/json");
    let bearer_a = format!("Bearer {A}");
    let bearer_b = format!("bearer {B}");
    let wrong = format!("Bearer {A}x");
    let basic = format!("Basic {A}");
    use Refusal::*;
    #[rustfmt::skip]
    let cases: Vec<(&Access, &str, &str, Headers, Verdict)> = vec![
        (&s, "GET", "/api/v1/tests", vec![], Err(NoToken)),
        (&s, "GET", "/api/v1/tests", vec![("authorization", &bearer_a)], Ok(())),
        (&s, "GET", "/api/v1/tests", vec![("authorization", &bearer_b)], Ok(())),
        (&s, "GET", "/api/v1/events", vec![("authorization", &wrong)], Err(WrongToken)),
        (&s, "GET", "/api/v1/drivers", vec![("authorization", &basic)], Err(NoToken)),
        (&s, "GET", "/api/v1/drivers", vec![("authorization", "Bearer ")], Err(NoToken)),
        (&s, "GET", "/nope", vec![], Err(NoToken)),
        (&s, "GET", "/", vec![], Ok(())),
        (&s, "GET", "/ui/app.js", vec![], Ok(())),
        (&s, "GET", "/healthz", vec![], Ok(())),
        (&s, "GET", "/livez", vec![], Ok(())),
        (&s, "GET", "/api/v1/openapi.json", vec![], Ok(())),
        (&s, "GET", "/metrics", vec![], Err(NoToken)),
        (&open_metrics, "GET", "/metrics", vec![], Ok(())),
        (&open_metrics, "GET", "/api/v1/tests", vec![], Err(NoToken)),
        (&open_reads, "GET", "/api/v1/tests", vec![], Ok(())),
        (&open_reads, "GET", "/metrics", vec![], Ok(())),
        (&open_reads, "POST", "/api/v1/tests", vec![json], Err(NoToken)),
        (&s, "POST", "/api/v1/tests", vec![json], Err(NoToken)),
        (&s, "POST", "/api/v1/tests", vec![json, ("authorization", &wrong)], Err(WrongToken)),
        (&s, "POST", "/api/v1/tests", vec![json, ("authorization", &bearer_a)], Ok(())),
        (&s, "DELETE", "/api/v1/tests/x", vec![json, ("authorization", &bearer_a)], Ok(())),
        // A POST to the page is still a change.
        (&s, "POST", "/", vec![json], Err(NoToken)),
        // The token is checked before the CSRF rules; both hold.
        (&s, "POST", "/api/v1/tests", vec![("authorization", &bearer_a)], Err(NotJson)),
        (&o, "GET", "/api/v1/tests", vec![], Ok(())),
        (&o, "GET", "/metrics", vec![("authorization", &wrong)], Ok(())),
        (&o, "POST", "/api/v1/tests", vec![json], Ok(())),
    ];
    for (i, (access, method, path, h, want)) in cases.into_iter().enumerate() {
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        assert_eq!(
            decide(access, &m, path, &headers(&h)),
            want,
            "case {i}: {method} {path} {h:?}"
        );
    }
}

#[test]
fn a_change_must_be_json_from_our_own_or_an_allowed_origin() {
    let access = Access::open()
        .allow_origins(&[
            "https://Dash.Example.com:443/".into(),
            "http://10.0.0.7:3000".into(),
        ])
        .expect("origins");
    let host = ("host", "127.0.0.1:8090");
    let json = ("content-type", "application/json; charset=utf-8");
    use Refusal::*;
    #[rustfmt::skip]
    let cases: Vec<(&str, Headers, Verdict)> = vec![
        ("POST", vec![host, json], Ok(())),
        ("POST", vec![host, ("content-type", "APPLICATION/JSON")], Ok(())),
        ("POST", vec![host, ("content-type", "text/plain")], Err(NotJson)),
        ("POST", vec![host, ("content-type", "application/x-www-form-urlencoded")], Err(NotJson)),
        ("POST", vec![host, ("content-type", "multipart/form-data; boundary=x")], Err(NotJson)),
        ("POST", vec![host, ("content-type", "application/jsonx")], Err(NotJson)),
        ("POST", vec![host], Err(NotJson)),
        ("POST", vec![host, json, ("origin", "http://127.0.0.1:8090")], Ok(())),
        ("POST", vec![("host", "LOCALHOST:8090"), json, ("origin", "http://localhost:8090")], Ok(())),
        ("POST", vec![("host", "floodgate.example.com"), json, ("origin", "https://floodgate.example.com")], Ok(())),
        ("POST", vec![("host", "floodgate.example.com:80"), json, ("origin", "http://floodgate.example.com")], Ok(())),
        ("POST", vec![host, json, ("origin", "https://dash.example.com")], Ok(())),
        ("POST", vec![host, json, ("origin", "http://10.0.0.7:3000")], Ok(())),
        ("POST", vec![host, json, ("origin", "http://10.0.0.7:3001")], Err(ForeignOrigin)),
        ("POST", vec![host, json, ("origin", "http://evil.example")], Err(ForeignOrigin)),
        ("POST", vec![host, json, ("origin", "http://127.0.0.1:8091")], Err(ForeignOrigin)),
        ("POST", vec![host, json, ("origin", "null")], Err(ForeignOrigin)),
        ("POST", vec![json, ("origin", "http://127.0.0.1:8090")], Err(ForeignOrigin)),
        // The origin is judged first: a foreign page learns nothing else.
        ("POST", vec![host, ("content-type", "text/plain"), ("origin", "http://evil.example")], Err(ForeignOrigin)),
        // Reads are not changes: a foreign page cannot read the answer anyway (no CORS headers).
        ("GET", vec![host, ("origin", "http://evil.example")], Ok(())),
        // No route takes another method: the router answers 405, whatever the body type, and a
        // foreign page's PUT is still judged by its origin.
        ("PUT", vec![host, ("content-type", "text/plain")], Ok(())),
        ("DELETE", vec![host, ("origin", "http://evil.example")], Err(ForeignOrigin)),
        ("POST", vec![host, ("content-type", "text/plain")], Err(NotJson)),
        ("POST", vec![host], Err(NotJson)),
    ];
    for (i, (method, h, want)) in cases.into_iter().enumerate() {
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        assert_eq!(
            decide(&access, &m, "/api/v1/tests/x/stop", &headers(&h)),
            want,
            "case {i}: {method} {h:?}"
        );
    }
}

#[test]
fn an_open_loopback_api_answers_only_requests_that_name_this_machine() {
    let access = Access {
        loopback_names_only: true,
        ..Access::open()
    };
    let json = ("content-type", "application/json");
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Headers, Verdict)> = vec![
        ("GET", "/api/v1/tests", vec![("host", "127.0.0.1:8090")], Ok(())),
        ("GET", "/api/v1/tests", vec![("host", "127.3.4.5")], Ok(())),
        ("GET", "/api/v1/tests", vec![("host", "localhost:8090")], Ok(())),
        ("GET", "/api/v1/tests", vec![("host", "LocalHost.")], Ok(())),
        ("GET", "/api/v1/tests", vec![("host", "dash.localhost:8090")], Ok(())),
        ("GET", "/api/v1/tests", vec![("host", "[::1]:8090")], Ok(())),
        ("GET", "/api/v1/tests", vec![], Ok(())),
        ("GET", "/api/v1/tests", vec![("host", "evil.example:8090")], Err(Refusal::ForeignHost)),
        ("GET", "/api/v1/tests", vec![("host", "localhost.evil.example")], Err(Refusal::ForeignHost)),
        ("GET", "/api/v1/tests", vec![("host", "10.0.0.1:8090")], Err(Refusal::ForeignHost)),
        ("GET", "/api/v1/events", vec![("host", "[::2]:8090")], Err(Refusal::ForeignHost)),
        // A rebinding page: its Origin and Host agree, so only the Host gives it away.
        ("POST", "/api/v1/tests", vec![("host", "evil.example:8090"), ("origin", "http://evil.example:8090"), json], Err(Refusal::ForeignHost)),
        // The page itself holds nothing.
        ("GET", "/", vec![("host", "evil.example:8090")], Ok(())),
    ];
    for (i, (method, path, h, want)) in cases.into_iter().enumerate() {
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        assert_eq!(
            decide(&access, &m, path, &headers(&h)),
            want,
            "case {i}: {method} {path} {h:?}"
        );
    }
    // With tokens, or opened on purpose (--insecure-no-auth), any name is fine.
    let h = headers(&[("host", "floodgate.example.com")]);
    assert_eq!(
        decide(&Access::open(), &Method::GET, "/api/v1/tests", &h),
        Ok(())
    );
}

#[test]
fn allowed_origins_must_be_origins() {
    for bad in [
        "dash.example.com",
        "ftp://x",
        "https://x/path",
        "https://",
        "null",
    ] {
        assert!(
            matches!(
                Access::open().allow_origins(&[bad.into()]),
                Err(TokenError::Origin { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn an_open_api_is_served_on_loopback_only_unless_insecure() {
    let lo: SocketAddr = "127.0.0.1:8090".parse().expect("addr");
    let lo6: SocketAddr = "[::1]:8090".parse().expect("addr");
    let any: SocketAddr = "0.0.0.0:8090".parse().expect("addr");
    let lan: SocketAddr = "10.1.2.3:8090".parse().expect("addr");
    assert_eq!(exposure(lo, false, false), Ok(Exposure::Loopback));
    assert_eq!(exposure(lo6, false, false), Ok(Exposure::Loopback));
    assert_eq!(exposure(any, true, false), Ok(Exposure::Tokens));
    assert_eq!(exposure(lo, true, true), Ok(Exposure::Tokens));
    assert_eq!(exposure(any, false, true), Ok(Exposure::Insecure));
    for addr in [any, lan] {
        let e = exposure(addr, false, false).expect_err("refused");
        assert!(
            e.contains("--insecure-no-auth") && e.contains("FLOODGATE_TOKEN"),
            "{e}"
        );
    }
}

#[test]
fn a_token_file_holds_one_token_a_line() {
    let text = format!("# rotated 2026-01\n\n  {A}  \n{B}\n");
    assert_eq!(
        parse_token_file(&text, "f"),
        Ok(vec![A.to_string(), B.to_string()])
    );
    assert!(matches!(
        parse_token_file("# none\n\n", "f"),
        Err(TokenError::Empty { .. })
    ));
    let short = parse_token_file(&format!("{A}\nshort\n"), "tokens.txt").expect_err("short");
    assert_eq!(
        short.to_string(),
        "tokens.txt (token 2): a token must be 16 to 1024 characters long (it has 5)"
    );
    let spaced = format!("{A} {B}");
    let e = parse_token_file(&spaced, "f").expect_err("space");
    assert!(matches!(e, TokenError::Characters { .. }));
    assert!(
        !e.to_string().contains(A),
        "an error never echoes the token: {e}"
    );
    assert!(!format!("{:?}", secured()).contains(A), "nor does Debug");
}

#[test]
fn only_the_routes_that_change_state_ask_for_json() {
    let access = Access::open();
    let host = HeaderMap::from_iter([(header::HOST, HeaderValue::from_static("127.0.0.1:8090"))]);
    for path in [
        "/api/v1/tests",
        "/api/v1/tests/x/trigger",
        "/api/v1/tests/x/stop",
    ] {
        assert_eq!(
            decide(&access, &Method::POST, path, &host),
            Err(Refusal::NotJson),
            "{path}"
        );
    }
    // No POST route: the router's 405, not a 415 about a body it would never read.
    for path in ["/api/v1/drivers", "/api/v1/tests/x", "/healthz", "/metrics"] {
        assert_eq!(
            decide(&access, &Method::POST, path, &host),
            Ok(()),
            "{path}"
        );
    }
}

#[test]
fn a_rate_change_is_a_change_judged_like_a_post() {
    let access = Access::open();
    let host = ("host", "127.0.0.1:8090");
    let json = ("content-type", "application/json");
    use Refusal::*;
    #[rustfmt::skip]
    let cases: Vec<(&str, Headers, Verdict)> = vec![
        ("/api/v1/tests/x", vec![host, json], Ok(())),
        ("/api/v1/tests/x", vec![host, ("content-type", "text/plain")], Err(NotJson)),
        ("/api/v1/tests/x", vec![host], Err(NotJson)),
        ("/api/v1/tests/x", vec![host, json, ("origin", "http://evil.example")], Err(ForeignOrigin)),
        // No PATCH route below a test: the router's 405, whatever the body type.
        ("/api/v1/tests/x/stop", vec![host, ("content-type", "text/plain")], Ok(())),
    ];
    for (i, (path, h, want)) in cases.into_iter().enumerate() {
        assert_eq!(
            decide(&access, &Method::PATCH, path, &headers(&h)),
            want,
            "case {i}: {path} {h:?}"
        );
    }
}
