//! The import graph follows the data flow (REST or LoadTest → orchestrator → bus → driver →
//! engine → target, and back), checked on the sources: each stage may use only the stages and
//! shared vocabularies listed for it. Test modules are exempt (they build what they need).

use std::path::{Path, PathBuf};

/// (folder or file under src/, the `crate::` modules it may use besides itself)
const RULES: &[(&str, &[&str])] = &[
    ("engine", &["http", "schedule", "stats"]),
    // The rate schedule: pure arithmetic that the engine and the orchestrator share.
    ("schedule.rs", &[]),
    ("protocol", &[]),
    // The request rules check against the limits the protocol defines once.
    ("http.rs", &["protocol"]),
    ("model.rs", &[]),
    ("stats.rs", &[]),
    ("secrets.rs", &[]),
    ("thresholds", &["stats"]),
    ("bus", &["protocol"]),
    (
        "driver",
        &[
            "bus", "engine", "http", "metrics", "protocol", "schedule", "secrets", "sqlite",
            "stats",
        ],
    ),
    (
        "orchestrator",
        &[
            "bus",
            "http",
            "model",
            "protocol",
            "schedule",
            "secrets",
            "sqlite",
            "stats",
            "thresholds",
        ],
    ),
    (
        "client",
        &[
            "api",
            "cli",
            "model",
            "protocol",
            "report",
            "stats",
            "thresholds",
        ],
    ),
];

fn sources(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        sources(&entry.path(), out);
    }
}

fn is_test_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "tests.rs" || name.ends_with("_tests.rs")
}

#[test]
fn imports_run_one_way_along_the_data_flow() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    for (stage, allowed) in RULES {
        let own = stage.trim_end_matches(".rs");
        let mut files = Vec::new();
        sources(&src.join(stage), &mut files);
        assert!(!files.is_empty(), "no sources for {stage}");
        for f in files.iter().filter(|f| !is_test_file(f)) {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                for used in line.split("crate::").skip(1) {
                    let module: String = used
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if module != own && !allowed.contains(&module.as_str()) {
                        broken.push(format!(
                            "{}:{}: {stage} uses crate::{module}",
                            f.strip_prefix(&src).unwrap_or(f).display(),
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports against the data flow:\n{}",
        broken.join("\n")
    );
}
