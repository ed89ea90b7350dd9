//! The driver's metrics store (SQLite): every test it ran, its progress reports, and its final
//! report kept in an outbox until Kafka has acknowledged it, so a final report survives a Kafka
//! outage or a driver restart.

use crate::protocol::{MetricsReport, TestConfig};
use crate::sqlite::Db;
use rusqlite::{params, OptionalExtension};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tests (
    test_id     TEXT PRIMARY KEY,
    config      TEXT NOT NULL,
    started_ms  INTEGER NOT NULL,
    finished_ms INTEGER
);
CREATE TABLE IF NOT EXISTS reports (
    test_id    TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    is_final   INTEGER NOT NULL,
    at_ms      INTEGER NOT NULL,
    sent       INTEGER NOT NULL,
    responses  INTEGER NOT NULL,
    errors     INTEGER NOT NULL,
    mean_ms    REAL NOT NULL,
    median_ms  REAL NOT NULL,
    p99_ms     REAL NOT NULL,
    PRIMARY KEY (test_id, seq)
);
CREATE TABLE IF NOT EXISTS outbox (
    test_id   TEXT PRIMARY KEY,
    payload   BLOB NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0
);
";

/// One progress row of a test, as the driver recorded it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReportRow {
    pub seq: u64,
    pub is_final: bool,
    pub at_ms: u64,
    pub sent: u64,
    pub responses: u64,
    pub errors: u64,
    pub mean_ms: f64,
    pub median_ms: f64,
    pub p99_ms: f64,
}

/// A test this driver ran (or refused), with its latest progress row.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TestRecord {
    pub test_id: String,
    pub started_ms: u64,
    pub finished_ms: Option<u64>,
    pub reports: u64,
    pub last: Option<ReportRow>,
}

/// Tests listed by [`DriverStore::tests`] at most.
pub const MAX_LISTED: usize = 100;

#[derive(Clone)]
pub struct DriverStore {
    db: Db,
}

impl DriverStore {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            db: Db::open(path, SCHEMA)?,
        })
    }

    /// Records that a test started; false when it had already run here (never run a test twice).
    pub async fn begin(&self, config: &TestConfig, now_ms: u64) -> anyhow::Result<bool> {
        let id = config.test_id.clone();
        // Kept for diagnosis, never to run from: credentials are not written to disk.
        let mut kept = config.clone();
        let headers = kept
            .target
            .iter_mut()
            .flat_map(|t| t.headers.iter_mut())
            .chain(kept.mix.iter_mut().flat_map(|e| e.headers.iter_mut()));
        for (name, value) in headers {
            if crate::secrets::is_secret(name, &[]) {
                *value = crate::secrets::REDACTED.to_string();
            }
        }
        let json = kept.to_json(&Default::default()).to_string();
        self.db
            .call(move |c| {
                let n = c.execute(
                    "INSERT OR IGNORE INTO tests (test_id, config, started_ms) VALUES (?1, ?2, ?3)",
                    params![id, json, now_ms as i64],
                )?;
                Ok(n == 1)
            })
            .await
    }

    pub async fn has_run(&self, test_id: &str) -> anyhow::Result<bool> {
        let id = test_id.to_string();
        self.db
            .call(move |c| {
                c.query_row("SELECT 1 FROM tests WHERE test_id = ?1", [id], |_| Ok(()))
                    .optional()
                    .map(|r| r.is_some())
            })
            .await
    }

    /// Keeps a progress row (no histogram: the final report in the outbox carries that).
    pub async fn record(&self, r: &MetricsReport, now_ms: u64) -> anyhow::Result<()> {
        let row = (
            r.test_id.clone(),
            r.seq as i64,
            r.is_final,
            now_ms as i64,
            r.requests_sent as i64,
            r.responses_received as i64,
            r.errors.total() as i64,
            r.metrics.mean_latency.unwrap_or(0.0),
            r.metrics.median_latency.unwrap_or(0.0),
            r.metrics.p99_latency.unwrap_or(0.0),
        );
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT OR REPLACE INTO reports VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9],
                )?;
                Ok(())
            })
            .await
    }

    /// Records a test this driver refused, so that it is never run (or refused) again.
    pub async fn refused(&self, r: &MetricsReport, now_ms: u64) -> anyhow::Result<()> {
        let id = r.test_id.clone();
        let why = serde_json::json!({ "refused": r.reason }).to_string();
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT OR IGNORE INTO tests (test_id, config, started_ms) VALUES (?1, ?2, ?3)",
                    params![id, why, now_ms as i64],
                )
                .map(|_| ())
            })
            .await
    }

    /// Stores the final report (`payload`, as it goes on the wire) for delivery and marks the
    /// test finished.
    pub async fn finish(
        &self,
        r: &MetricsReport,
        payload: Vec<u8>,
        now_ms: u64,
    ) -> anyhow::Result<()> {
        let id = r.test_id.clone();
        self.record(r, now_ms).await?;
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                tx.execute(
                    "INSERT OR REPLACE INTO outbox (test_id, payload, delivered) VALUES (?1, ?2, 0)",
                    params![id, payload],
                )?;
                tx.execute("UPDATE tests SET finished_ms = ?2 WHERE test_id = ?1", params![id, now_ms as i64])?;
                tx.commit()
            })
            .await
    }

    /// Final reports Kafka has not acknowledged yet.
    pub async fn undelivered(&self) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        self.db
            .call(|c| {
                let mut st =
                    c.prepare("SELECT test_id, payload FROM outbox WHERE delivered = 0")?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })
            .await
    }

    pub async fn delivered(&self, test_id: &str) -> anyhow::Result<()> {
        let id = test_id.to_string();
        self.db
            .call(move |c| {
                c.execute("UPDATE outbox SET delivered = 1 WHERE test_id = ?1", [id])
                    .map(|_| ())
            })
            .await
    }

    /// The newest tests, at most [`MAX_LISTED`], newest first.
    pub async fn tests(&self) -> anyhow::Result<Vec<TestRecord>> {
        let rows: Vec<(String, i64, Option<i64>, i64)> = self
            .db
            .call(|c| {
                let mut st = c.prepare(
                    "SELECT t.test_id, t.started_ms, t.finished_ms, \
                     (SELECT COUNT(*) FROM reports r WHERE r.test_id = t.test_id) \
                     FROM tests t ORDER BY t.started_ms DESC LIMIT ?1",
                )?;
                let rows = st.query_map([MAX_LISTED as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?;
                rows.collect()
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (test_id, started, finished, n) in rows {
            let last = self.reports(&test_id, true).await?.pop();
            out.push(TestRecord {
                test_id,
                started_ms: started as u64,
                finished_ms: finished.map(|f| f as u64),
                reports: n as u64,
                last,
            });
        }
        Ok(out)
    }

    /// A test's progress rows in order (only the last one with `last_only`).
    pub async fn reports(&self, test_id: &str, last_only: bool) -> anyhow::Result<Vec<ReportRow>> {
        let id = test_id.to_string();
        let mut rows: Vec<ReportRow> = self
            .db
            .call(move |c| {
                let sql = if last_only {
                    "SELECT seq, is_final, at_ms, sent, responses, errors, mean_ms, median_ms, p99_ms \
                     FROM reports WHERE test_id = ?1 ORDER BY seq DESC LIMIT 1"
                } else {
                    "SELECT seq, is_final, at_ms, sent, responses, errors, mean_ms, median_ms, p99_ms \
                     FROM reports WHERE test_id = ?1 ORDER BY seq"
                };
                let mut st = c.prepare(sql)?;
                let rows = st.query_map([id], |r| {
                    Ok(ReportRow {
                        seq: r.get::<_, i64>(0)? as u64,
                        is_final: r.get(1)?,
                        at_ms: r.get::<_, i64>(2)? as u64,
                        sent: r.get::<_, i64>(3)? as u64,
                        responses: r.get::<_, i64>(4)? as u64,
                        errors: r.get::<_, i64>(5)? as u64,
                        mean_ms: r.get(6)?,
                        median_ms: r.get(7)?,
                        p99_ms: r.get(8)?,
                    })
                })?;
                rows.collect()
            })
            .await?;
        rows.shrink_to_fit();
        Ok(rows)
    }

    /// The final report of a test, if it finished here.
    #[cfg(test)]
    pub async fn final_report(&self, test_id: &str) -> anyhow::Result<Option<MetricsReport>> {
        let id = test_id.to_string();
        let payload: Option<Vec<u8>> = self
            .db
            .call(move |c| {
                c.query_row("SELECT payload FROM outbox WHERE test_id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()
            })
            .await?;
        Ok(payload.and_then(|p| crate::protocol::parse(&p).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TestType;

    fn config(id: &str) -> TestConfig {
        TestConfig {
            test_id: id.into(),
            test_type: TestType::Avalanche,
            delay_us: 0,
            requests: Some(3),
            target: None,
            throughput_per_driver: None,
            concurrency: None,
            timeout_ms: None,
            drivers: vec![],
            orchestrator_id: None,
            time_bound: None,
            transport: Default::default(),
            mix: Vec::new(),
            checks: None,
            fail_safe_ms: None,
            shares: Default::default(),
        }
    }

    #[tokio::test]
    async fn credentials_in_a_config_are_not_written_to_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DriverStore::open(&dir.path().join("d.sqlite")).expect("open");
        let mut c = config("t1");
        c.target = Some(crate::protocol::HttpTarget {
            url: "http://h/".into(),
            method: "GET".into(),
            headers: vec![
                ("Authorization".into(), "Bearer s3cr3t".into()),
                ("Accept".into(), "text/plain".into()),
            ],
            body: None,
        });
        assert!(store.begin(&c, 1).await.expect("begin"));
        drop(store);
        let mut on_disk = Vec::new();
        for f in std::fs::read_dir(dir.path()).expect("dir").flatten() {
            on_disk.extend(std::fs::read(f.path()).unwrap_or_default());
        }
        let text = String::from_utf8_lossy(&on_disk);
        assert!(!text.contains("s3cr3t"));
        assert!(text.contains("text/plain") && text.contains("<redacted>"));
    }

    #[tokio::test]
    async fn a_test_begins_once_and_its_final_report_waits_in_the_outbox() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("d.sqlite");
        let store = DriverStore::open(&path).expect("open");
        assert!(store.begin(&config("t1"), 1).await.expect("begin"));
        assert!(!store.begin(&config("t1"), 2).await.expect("again"));
        assert!(store.has_run("t1").await.expect("has"));
        assert!(!store.has_run("t2").await.expect("has"));

        let report: MetricsReport = crate::protocol::parse(
            br#"{"node_id":"d","test_id":"t1","seq":4,"final":true,"requests_sent":3}"#,
        )
        .expect("report");
        store
            .finish(&report, crate::protocol::emit(&report), 5)
            .await
            .expect("finish");
        drop(store);

        // A restarted driver still owes the report, and still knows the test ran.
        let store = DriverStore::open(&path).expect("reopen");
        assert!(store.has_run("t1").await.expect("has"));
        let owed = store.undelivered().await.expect("owed");
        assert_eq!(owed.len(), 1);
        assert_eq!(store.final_report("t1").await.expect("final"), Some(report));
        store.delivered("t1").await.expect("mark");
        assert!(store.undelivered().await.expect("owed").is_empty());
        // The metrics store shows the test with its rows.
        let tests = store.tests().await.expect("tests");
        assert_eq!(tests.len(), 1);
        assert_eq!((tests[0].reports, tests[0].finished_ms), (1, Some(5)));
        assert_eq!(
            tests[0].last.as_ref().map(|r| (r.seq, r.sent)),
            Some((4, 3))
        );
    }
}
