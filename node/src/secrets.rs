//! Which request headers are secrets, and how every view and report shows them: the value is
//! replaced by [`REDACTED`]. The real value is kept only where the request must be sent from
//! (the test's spec in the orchestrator, the `test_config` a driver needs), never where it is
//! shown (REST, SSE, dashboard, the CLI, HTML/CSV/JSON reports).

use std::collections::BTreeMap;

/// What a secret header's value is shown as.
pub const REDACTED: &str = "<redacted>";

/// Headers that are always secret (credentials and session cookies), compared without case.
pub const ALWAYS_SECRET: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "x-auth-token",
];

/// Whether `name` is secret: always, or because the user marked it (`secret_headers`).
pub fn is_secret(name: &str, marked: &[String]) -> bool {
    ALWAYS_SECRET.iter().any(|s| s.eq_ignore_ascii_case(name))
        || marked.iter().any(|m| m.eq_ignore_ascii_case(name))
}

/// `headers` as they may be shown: every secret value replaced by [`REDACTED`].
pub fn redact(headers: &BTreeMap<String, String>, marked: &[String]) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| {
            let shown = if is_secret(k, marked) { REDACTED } else { v };
            (k.clone(), shown.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_replaced_and_others_kept() {
        let headers: BTreeMap<String, String> = [
            ("Authorization", "Bearer abc"),
            ("PROXY-AUTHORIZATION", "Basic x"),
            ("cookie", "s=1"),
            ("X-Api-Key", "k"),
            ("X-Tenant-Token", "t"),
            ("Accept", "application/json"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let shown = redact(&headers, &["x-tenant-token".to_string()]);
        for (k, v) in &shown {
            let want = if k == "Accept" {
                "application/json"
            } else {
                REDACTED
            };
            assert_eq!(v, want, "{k}");
        }
        assert_eq!(shown.len(), headers.len());
        assert!(!is_secret("Accept", &[]));
    }
}
