//! Taking running tests over when this operator's store does not know them (a new operator pod
//! starts with an empty store). While a test starts, [`recorder`] writes what a successor needs
//! into the LoadTest status ([`RunRecord`]) before the trigger is published. At start-up, before
//! the orchestrator is built, [`running_tests`] lists the LoadTests and turns each running one's
//! record, checked by [`plan::takeover`], into an [`Adoption`]: the orchestrator then reads the
//! metrics topic from the recorded position and finishes the test with exact totals.

use crate::controller::{test_id, test_input, write_status};
use crate::crd::{LoadTest, LoadTestStatus, PartitionOffset, RunRecord};
use crate::plan;
use floodgate::orchestrator::takeover::{Adoption, Recorder, Starting};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long start-up keeps trying to list the LoadTests before the operator gives up (and is
/// restarted by its Deployment).
pub const LIST_WAIT: Duration = Duration::from_secs(60);
/// Attempts at writing the record before the trigger; the trigger waits for it.
const RECORD_ATTEMPTS: u32 = 3;

/// The running tests found at start-up.
#[derive(Debug, Default)]
pub struct Found {
    pub adoptions: Vec<Adoption>,
    /// Running tests that cannot be taken over, by test ID, with the reason.
    pub refused: BTreeMap<String, String>,
}

/// Lists the LoadTests (in `namespace`, or all) and describes every running one for the
/// orchestrator to take over, if its store does not know it.
pub async fn running_tests(
    client: &Client,
    namespace: Option<&str>,
    metrics_topic: &str,
) -> anyhow::Result<Found> {
    let api: Api<LoadTest> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let deadline = Instant::now() + LIST_WAIT;
    let list = loop {
        match api.list(&ListParams::default()).await {
            Ok(list) => break list.items,
            // No CRD, no LoadTests: the controller says so itself.
            Err(kube::Error::Api(e)) if e.code == 404 => {
                tracing::warn!("the LoadTest resource is not served: no test to take over");
                return Ok(Found::default());
            }
            Err(e) if Instant::now() < deadline => {
                tracing::warn!("listing LoadTests to take running tests over: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => anyhow::bail!(
                "cannot list LoadTests to take running tests over within {} s: {e}",
                LIST_WAIT.as_secs()
            ),
        }
    };
    let now_ms = floodgate::protocol::now_unix_ms();
    let mut found = Found::default();
    for lt in list {
        let id = test_id(&lt);
        let taken = plan::takeover(&id, lt.status.as_ref(), metrics_topic, now_ms)
            .map(|r| r.and_then(|record| adoption(&lt, record)));
        match taken {
            None => {}
            Some(Ok(a)) => {
                tracing::info!(loadtest = %lt.name_any(), test_id = %id, "a running test to take over");
                found.adoptions.push(a);
            }
            Some(Err(why)) => {
                tracing::warn!(loadtest = %lt.name_any(), test_id = %id, "cannot take the running test over: {why}");
                found.refused.insert(id, why);
            }
        }
    }
    Ok(found)
}

/// The orchestrator's description of a LoadTest's running test. The secret headers' values
/// are not read again: the drivers have the test's config, and nothing sends it again. A spec
/// that does not convert (so could not have started from this operator) is refused.
pub fn adoption(lt: &LoadTest, mut r: RunRecord) -> Result<Adoption, String> {
    let placeholders = lt
        .spec
        .secret_headers
        .iter()
        .map(|h| (h.name.clone(), floodgate::secrets::REDACTED.to_string()))
        .collect();
    let created_ms = lt
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(|t| u64::try_from(t.0.as_millisecond()).ok())
        .unwrap_or(r.start_at_ms);
    // Nor the ConfigMaps': the CA bundle and the bodies are in the drivers' config already.
    let spec = test_input(lt, &r.drivers, placeholders, &Default::default())
        .map_err(|e| format!("the spec cannot be converted: {e}"))?;
    // Bounded like the participants; a share of a driver that is not one is no share.
    let shares = std::mem::take(&mut r.shares)
        .into_iter()
        .filter(|(d, n)| *n > 0 && r.drivers.contains(d))
        .take(floodgate::protocol::limits::MAX_DRIVERS)
        .collect();
    Ok(Adoption {
        id: r.test_id,
        spec,
        drivers: r.drivers,
        created_ms,
        started_ms: r.start_at_ms,
        shares,
        metrics_from: r
            .metrics_from
            .iter()
            .map(|p| (p.partition, p.offset))
            .collect(),
    })
}

/// What the status records of a starting test.
pub fn record_of(s: Starting) -> RunRecord {
    RunRecord {
        test_id: s.id,
        drivers: s.drivers,
        start_at_ms: s.start_at_ms,
        metrics_topic: s.metrics_topic,
        shares: s.shares,
        metrics_from: s
            .metrics_from
            .into_iter()
            .map(|(partition, offset)| PartitionOffset { partition, offset })
            .collect(),
    }
}

/// Writes `status` with the starting test's record into the LoadTest before its trigger is
/// published, and leaves the record in `written` for the caller's next status write. A record
/// that cannot be written (after a few attempts) fails the test before it starts.
pub fn recorder(
    api: Api<LoadTest>,
    name: String,
    status: LoadTestStatus,
    written: Arc<Mutex<Option<RunRecord>>>,
) -> Recorder {
    Box::new(move |s: Starting| {
        Box::pin(async move {
            let record = record_of(s);
            let mut st = status;
            st.run = Some(record.clone());
            let mut attempt = 1;
            loop {
                match write_status(&api, &name, &st).await {
                    Ok(_) => break,
                    Err(e) if attempt < RECORD_ATTEMPTS => {
                        tracing::warn!(loadtest = %name, "recording the test's start: {e}; retrying");
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                        attempt += 1;
                    }
                    Err(e) => return Err(format!("writing the LoadTest status: {e}")),
                }
            }
            *written.lock().unwrap_or_else(|p| p.into_inner()) = Some(record);
            Ok(())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{HeaderValueFrom, SecretHeader, SecretKeyRef};

    #[test]
    fn a_record_becomes_the_adoption_of_the_same_test_without_its_secrets() {
        let mut lt = crate::crd::sample_loadtest();
        lt.spec.secret_headers = vec![SecretHeader {
            name: "Authorization".into(),
            value_from: HeaderValueFrom {
                secret_key_ref: Some(SecretKeyRef {
                    name: "gone".into(),
                    key: "token".into(),
                }),
                env: None,
            },
        }];
        let starting = Starting {
            id: "uid-1".into(),
            drivers: vec!["ping-drivers-a".into(), "ping-drivers-b".into()],
            start_at_ms: 1_700_000_000_000,
            metrics_topic: "metrics".into(),
            metrics_from: vec![(0, 17)],
            shares: [
                ("ping-drivers-a".to_string(), 70),
                ("ping-drivers-b".to_string(), 31),
            ]
            .into(),
        };
        let mut record = record_of(starting.clone());
        assert_eq!(record.shares, starting.shares);
        // A share for a driver that is no participant (or of nothing) is dropped on the way back.
        record.shares.insert("stranger".into(), 5);
        assert_eq!(
            record.metrics_from,
            [PartitionOffset {
                partition: 0,
                offset: 17
            }]
        );
        let a = adoption(&lt, record).expect("converts");
        assert_eq!(
            (a.id.as_str(), &a.drivers, a.started_ms, &a.metrics_from),
            (
                "uid-1",
                &starting.drivers,
                starting.start_at_ms,
                &starting.metrics_from
            )
        );
        assert_eq!(
            a.created_ms, starting.start_at_ms,
            "no creation time: the start"
        );
        assert_eq!(a.shares, starting.shares);
        // The Secret need not exist any more: its value is never sent again.
        let spec = a.spec.validate().expect("the same rules as at the start");
        assert_eq!(spec.headers["Authorization"], floodgate::secrets::REDACTED);
        assert_eq!(spec.driver_ids, Some(starting.drivers));
    }
}
