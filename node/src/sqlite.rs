//! A shared SQLite handle for the metrics stores: opened once in WAL mode, used from async code
//! through `spawn_blocking` so that disk writes never stall a runtime thread.

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) the database at `path` and applies `schema`; `:memory:` works.
    pub fn open(path: &Path, schema: &str) -> anyhow::Result<Db> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                anyhow::anyhow!("cannot create the store's folder {}: {e}", dir.display())
            })?;
        }
        let conn = Connection::open(path).map_err(|e| {
            anyhow::anyhow!("cannot open the metrics store {}: {e}", path.display())
        })?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        )?;
        conn.execute_batch(schema)?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<R, F>(&self, f: F) -> anyhow::Result<R>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| anyhow::anyhow!("store task failed: {e}"))?
        .map_err(|e| anyhow::anyhow!("metrics store: {e}"))
    }
}
