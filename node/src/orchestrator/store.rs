//! The orchestrator's metrics store (SQLite): every test with its spec, status, final view and
//! chart points, each driver's latest full report, and the read position on `metrics`, so
//! history and a running test's state survive an orchestrator restart.

use super::series::Point;
use super::spec::TestSpec;
use super::view::TestView;
use crate::model::TestStatus;
use crate::protocol::MetricsReport;
use crate::sqlite::Db;
use rusqlite::{params, OptionalExtension};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tests (
    id          TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    drivers     TEXT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT,
    created_ms  INTEGER NOT NULL,
    started_ms  INTEGER,
    finished_ms INTEGER,
    view        TEXT,
    series      TEXT
);
CREATE TABLE IF NOT EXISTS positions (
    topic     TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next      INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS latest (
    test_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    report  TEXT NOT NULL,
    PRIMARY KEY (test_id, node_id)
);
";

/// A `tests` row: id, spec, drivers, status, created, started, view.
type TestRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
);

/// A test as stored: enough to rebuild it after a restart.
pub struct StoredTest {
    pub id: String,
    pub spec: TestSpec,
    pub drivers: Vec<String>,
    pub status: TestStatus,
    pub created_ms: u64,
    pub started_ms: Option<u64>,
    pub view: Option<TestView>,
    pub latest: Vec<MetricsReport>,
}

#[derive(Clone)]
pub struct OrchestratorStore {
    db: Db,
}

impl OrchestratorStore {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            db: Db::open(path, SCHEMA)?,
        })
    }

    /// Inserts or updates a test's row from its current view.
    pub async fn save_test(&self, v: &TestView) -> anyhow::Result<()> {
        let spec = serde_json::to_string(&v.spec)?;
        let drivers = serde_json::to_string(&v.drivers)?;
        let status = v.status.as_str();
        let view = if v.status.is_finished() {
            Some(serde_json::to_string(v)?)
        } else {
            None
        };
        let row = (
            v.id.clone(),
            v.reason.clone(),
            v.created_at_ms as i64,
            v.started_at_ms.map(|x| x as i64),
            v.finished_at_ms.map(|x| x as i64),
        );
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO tests (id, spec, drivers, status, reason, created_ms, started_ms, finished_ms, view)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT(id) DO UPDATE SET status = ?4, reason = ?5, started_ms = ?7, finished_ms = ?8, view = ?9",
                    params![row.0, spec, drivers, status, row.1, row.2, row.3, row.4, view],
                )?;
                Ok(())
            })
            .await
    }

    /// Keeps a report as its driver's latest, if it is newer than the one stored; `order` is the
    /// report's `seq`, or its arrival number for a sender that numbers nothing.
    pub async fn save_report(&self, r: &MetricsReport, order: u64) -> anyhow::Result<()> {
        let json = serde_json::to_string(r)?;
        let key = (r.test_id.clone(), r.node_id.clone(), order as i64);
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO latest VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(test_id, node_id) DO UPDATE SET seq = ?3, report = ?4 WHERE seq < ?3",
                    params![key.0, key.1, key.2, json],
                )?;
                Ok(())
            })
            .await
    }

    /// Keeps a finished test's chart points.
    pub async fn save_series(&self, test_id: &str, points: &[Point]) -> anyhow::Result<()> {
        let id = test_id.to_string();
        let json = serde_json::to_string(points)?;
        self.db
            .call(move |c| {
                c.execute(
                    "UPDATE tests SET series = ?2 WHERE id = ?1",
                    params![id, json],
                )
                .map(|_| ())
            })
            .await
    }

    /// A finished test's chart points (empty if it has none).
    pub async fn series(&self, test_id: &str) -> anyhow::Result<Vec<Point>> {
        let id = test_id.to_string();
        let json: Option<String> = self
            .db
            .call(move |c| {
                c.query_row("SELECT series FROM tests WHERE id = ?1", [id], |r| r.get(0))
                    .optional()
                    .map(Option::flatten)
            })
            .await?;
        Ok(json
            .map(|j| serde_json::from_str(&j))
            .transpose()?
            .unwrap_or_default())
    }

    /// Remembers the next offset to read on a metrics partition, to resume after a restart.
    pub async fn save_position(
        &self,
        topic: &str,
        partition: i32,
        next: i64,
    ) -> anyhow::Result<()> {
        let topic = topic.to_string();
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO positions VALUES (?1, ?2, ?3) ON CONFLICT(topic, partition) DO UPDATE SET next = ?3",
                    params![topic, partition, next],
                )
                .map(|_| ())
            })
            .await
    }

    pub async fn positions(&self) -> anyhow::Result<Vec<(String, i32, i64)>> {
        self.db
            .call(|c| {
                let mut st = c.prepare("SELECT topic, partition, next FROM positions")?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                rows.collect()
            })
            .await
    }

    /// Every stored test, oldest first, with the latest reports of unfinished ones.
    pub async fn load(&self) -> anyhow::Result<Vec<StoredTest>> {
        let rows: Vec<TestRow> = self
            .db
            .call(|c| {
                let mut st = c.prepare("SELECT id, spec, drivers, status, created_ms, started_ms, view FROM tests ORDER BY created_ms, id")?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))?;
                rows.collect()
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, spec, drivers, status, created, started, view) in rows {
            let latest = if view.is_none() {
                self.latest(&id).await?
            } else {
                Vec::new()
            };
            out.push(StoredTest {
                spec: serde_json::from_str(&spec)?,
                drivers: serde_json::from_str(&drivers)?,
                status: serde_json::from_value(serde_json::Value::String(status))?,
                created_ms: created as u64,
                started_ms: started.map(|s| s as u64),
                view: view.map(|v| serde_json::from_str(&v)).transpose()?,
                latest,
                id,
            });
        }
        Ok(out)
    }

    async fn latest(&self, test_id: &str) -> anyhow::Result<Vec<MetricsReport>> {
        let id = test_id.to_string();
        let rows: Vec<String> = self
            .db
            .call(move |c| {
                let mut st = c.prepare("SELECT report FROM latest WHERE test_id = ?1")?;
                let rows = st.query_map([id], |r| r.get(0))?;
                rows.collect()
            })
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }
}
