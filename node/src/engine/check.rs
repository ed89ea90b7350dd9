//! Response checks, built once per test (issue 12, item 4): the statuses a response may have,
//! and a substring and JSON values its body must hold. The worker asks [`Checker::judge`] of
//! every response; only a checker that looks at bodies makes a connection keep one, in a
//! [`Body`] buffer of bounded size reused for every request of its worker.

use memchr::memmem::Finder;
use serde_json::Value;

/// The most of a response body kept to check it: a larger body fails its body and JSON checks
/// (counted as `too_large`) unless the substring is in what was kept, and memory stays bounded.
pub const MAX_CHECKED_BODY: usize = 256 * 1024;

/// What a response must look like to be a success.
#[derive(Clone, Debug)]
pub struct Checker {
    /// Inclusive ranges; empty means 200-299.
    status: Box<[(u16, u16)]>,
    body: Option<Finder<'static>>,
    /// (RFC 6901 pointer, expected value).
    json: Box<[(String, Value)]>,
}

impl Default for Checker {
    /// A 2xx status, nothing asked of the body: what a test without checks expects.
    fn default() -> Self {
        Checker::new(Vec::new(), None, Vec::new())
    }
}

/// How a response fared against a [`Checker`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Judged {
    /// Its status was not one of the expected (the body was then not looked at).
    pub status: bool,
    pub body: bool,
    pub json: bool,
    /// A body or JSON check failed on a body larger than [`MAX_CHECKED_BODY`].
    pub too_large: bool,
}

impl Judged {
    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.status || self.body || self.json
    }
}

impl Checker {
    pub fn new(
        status: Vec<(u16, u16)>,
        body_contains: Option<&[u8]>,
        json: Vec<(String, Value)>,
    ) -> Self {
        Checker {
            status: status.into_boxed_slice(),
            body: body_contains.map(|b| Finder::new(b).into_owned()),
            json: json.into_boxed_slice(),
        }
    }

    /// Whether responses' bodies must be kept for this checker.
    pub fn needs_body(&self) -> bool {
        self.body.is_some() || !self.json.is_empty()
    }

    fn status_ok(&self, status: u16) -> bool {
        if self.status.is_empty() {
            return (200..300).contains(&status);
        }
        self.status.iter().any(|&(a, b)| (a..=b).contains(&status))
    }

    /// Judges one response: its status, then (only if that was expected and the checker looks
    /// at bodies) its body. Allocates only for JSON checks (the parse).
    pub fn judge(&self, status: u16, body: &Body) -> Judged {
        let mut j = Judged::default();
        if !self.status_ok(status) {
            j.status = true;
            return j;
        }
        if let Some(f) = &self.body {
            j.body = f.find(&body.data).is_none();
        }
        if !self.json.is_empty() {
            j.json = match serde_json::from_slice::<Value>(&body.data) {
                Ok(v) => self.json.iter().any(|(p, want)| v.pointer(p) != Some(want)),
                Err(_) => true,
            };
        }
        j.too_large = body.truncated && (j.body || j.json);
        j
    }
}

/// A worker's copy of the current response's body, at most [`MAX_CHECKED_BODY`] bytes; its
/// capacity is reused from request to request.
#[derive(Debug, Default)]
pub struct Body {
    pub data: Vec<u8>,
    /// More bytes came than were kept.
    pub truncated: bool,
}

impl Body {
    pub fn clear(&mut self) {
        self.data.clear();
        self.truncated = false;
    }

    /// Keeps what fits of `bytes`.
    pub fn push(&mut self, bytes: &[u8]) {
        let room = MAX_CHECKED_BODY.saturating_sub(self.data.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        self.data.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(b: &[u8]) -> Body {
        let mut x = Body::default();
        x.push(b);
        x
    }

    #[test]
    fn statuses_then_body_then_json() {
        let none = Checker::default();
        assert!(!none.needs_body());
        assert!(!none.judge(204, &Body::default()).failed());
        assert!(none.judge(404, &Body::default()).status);
        let c = Checker::new(
            vec![(200, 299), (404, 404)],
            Some(b"ok"),
            vec![("/a/0".into(), json!(1))],
        );
        assert!(c.needs_body());
        // (status, body, expected: status, body, json)
        type Case<'a> = (u16, &'a [u8], (bool, bool, bool));
        let cases: [Case<'_>; 6] = [
            (200, br#"{"a":[1],"s":"ok"}"#, (false, false, false)),
            (404, br#"{"a":[1],"s":"ok"}"#, (false, false, false)),
            (500, br#"{"a":[1],"s":"ok"}"#, (true, false, false)),
            (200, br#"{"a":[2],"s":"ok"}"#, (false, false, true)),
            (200, br#"{"a":[1]}"#, (false, true, false)),
            (200, b"not json", (false, true, true)),
        ];
        for (i, (status, b, want)) in cases.iter().enumerate() {
            let j = c.judge(*status, &body(b));
            assert_eq!((j.status, j.body, j.json), *want, "case {i}");
            assert!(!j.too_large);
        }
    }

    #[test]
    fn a_body_is_kept_bounded_and_a_check_on_a_cut_body_says_so() {
        let mut b = Body::default();
        b.push(&vec![b'x'; MAX_CHECKED_BODY - 1]);
        assert!(!b.truncated);
        b.push(b"yz");
        assert!(b.truncated && b.data.len() == MAX_CHECKED_BODY);
        let c = Checker::new(vec![], Some(b"z"), vec![]);
        assert_eq!(
            c.judge(200, &b),
            Judged {
                body: true,
                too_large: true,
                ..Judged::default()
            }
        );
        // Found in what was kept: a success.
        assert!(!Checker::new(vec![], Some(b"xy"), vec![])
            .judge(200, &b)
            .failed());
        b.clear();
        assert!(b.data.is_empty() && !b.truncated);
    }
}
