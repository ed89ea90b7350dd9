//! `floodgate test run --mix FILE` and the check flags (issue 12, items 3 and 4): a mix file
//! (YAML or JSON, the REST API's `mix` list, with `body_file` read relative to the file) and
//! `--check-status`, `--check-body`, `--check-json` turned into the API's `checks`. A file that
//! cannot be read is the user's error (exit 2), named with its field.

use crate::cli::{CheckArgs, RunArgs};
use crate::protocol::StatusSet;
use serde_json::{json, Map, Value};
use std::path::Path;

/// The `mix` field of a `--mix` file: a list of entries, or `{mix: [...]}`.
pub fn mix_field(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--mix {}: cannot be read: {e}", path.display()))?;
    let doc: Value = serde_yaml::from_str(&text)
        .map_err(|e| format!("--mix {}: not YAML or JSON: {e}", path.display()))?;
    let mut list = match doc {
        Value::Array(l) => l,
        Value::Object(mut o) => match o.remove("mix") {
            Some(Value::Array(l)) => l,
            _ => {
                return Err(format!(
                    "--mix {}: want a list of requests (or mix: [...])",
                    path.display()
                ))
            }
        },
        _ => return Err(format!("--mix {}: want a list of requests", path.display())),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    for (i, e) in list.iter_mut().enumerate() {
        let Some(o) = e.as_object_mut() else {
            return Err(format!(
                "--mix {}: mix[{i}] is not an object",
                path.display()
            ));
        };
        if let Some(f) = o.remove("body_file") {
            let f = f
                .as_str()
                .ok_or_else(|| format!("--mix: mix[{i}].body_file must be a path"))?;
            if o.contains_key("body") {
                return Err(format!("--mix: mix[{i}] has both body and body_file"));
            }
            let body =
                read_body(&dir.join(f)).map_err(|e| format!("--mix: mix[{i}].body_file: {e}"))?;
            o.insert("body".into(), json!(body));
        }
    }
    Ok(Value::Array(list))
}

/// A request body from a file (UTF-8 text, as the API carries it).
pub fn read_body(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))
}

/// The API's `checks` from the flags; `None` when none is given.
pub fn checks_field(c: &CheckArgs) -> Result<Option<Value>, String> {
    let mut o = Map::new();
    if let Some(s) = &c.check_status {
        let set = StatusSet::parse_list(s).map_err(|e| format!("--check-status {s:?}: {e}"))?;
        o.insert("status".into(), json!(set));
    }
    if let Some(b) = &c.check_body {
        o.insert("body_contains".into(), json!(b));
    }
    let json_checks = c
        .check_json
        .iter()
        .map(|x| {
            let (pointer, value) = x
                .split_once('=')
                .ok_or_else(|| format!("--check-json {x:?} must look like /pointer=JSON"))?;
            // A bare word is a string: `--check-json /status=ok`.
            let equals = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
            Ok(json!({"pointer": pointer, "equals": equals}))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if !json_checks.is_empty() {
        o.insert("json".into(), Value::Array(json_checks));
    }
    Ok((!o.is_empty()).then_some(Value::Object(o)))
}

/// Sets the request fields of a `test run` body: the mix, or the one request.
pub fn request_fields(args: &RunArgs, body: &mut Value) -> Result<(), String> {
    if let Some(path) = &args.mix {
        body["mix"] = mix_field(path)?;
    } else {
        body["target_url"] = json!(args.url);
        body["method"] = json!(args.method);
    }
    if let Some(path) = &args.body_file {
        body["body"] = json!(read_body(path).map_err(|e| format!("--body-file {e}"))?);
    }
    if let Some(c) = checks_field(&args.checks)? {
        body["checks"] = c;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_file_reads_its_bodies_relative_to_itself() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("b.json"), r#"{"q":1}"#).expect("body");
        let path = dir.path().join("mix.yaml");
        std::fs::write(
            &path,
            "- name: home\n  url: http://h/\n  weight: 3\n- name: add\n  method: POST\n  url: http://h/cart\n  body_file: b.json\n",
        )
        .expect("mix");
        let m = mix_field(&path).expect("ok");
        assert_eq!(m[0]["weight"], 3);
        assert_eq!(m[1]["body"], r#"{"q":1}"#);
        assert!(m[1].get("body_file").is_none());
        std::fs::write(
            &path,
            "- name: a\n  url: http://h/\n  body_file: nope.txt\n",
        )
        .expect("mix");
        let e = mix_field(&path).expect_err("missing");
        assert!(
            e.contains("mix[0].body_file") && e.contains("nope.txt"),
            "{e}"
        );
        assert!(mix_field(&dir.path().join("absent.yaml")).is_err());
    }

    #[test]
    fn check_flags_become_the_api_s_checks() {
        let c = CheckArgs {
            check_status: Some("2xx,404".into()),
            check_body: Some("ok".into()),
            check_json: vec!["/a/0=1".into(), "/s=ok".into()],
        };
        assert_eq!(
            checks_field(&c).expect("ok"),
            Some(json!({"status": ["200-299", 404], "body_contains": "ok",
                "json": [{"pointer": "/a/0", "equals": 1}, {"pointer": "/s", "equals": "ok"}]}))
        );
        assert_eq!(checks_field(&CheckArgs::default()).expect("none"), None);
        let bad = CheckArgs {
            check_status: Some("7xx".into()),
            ..CheckArgs::default()
        };
        assert!(checks_field(&bad).is_err());
    }
}
