//! Where a captured table stands, as recorded in its newest bronze commit.
//!
//! Every CDC commit carries, in the same atomic Delta commit as its rows: the phase (`snapshot` or
//! `stream`), the slot, the snapshot's LSN, the primary key of the last snapshot row landed (while
//! snapshotting) and the end LSN of the last transaction landed (while streaming). A restart reads
//! it back, so a crash at any point resumes exactly after what is durable.

use pgwire_replication::Lsn;
use serde_json::{Map, Value};
use sluice_lake::TableId;

use crate::error::IngestError;
use crate::landing::app_id;
use crate::source::IngestContext;

const PHASE: &str = "sluice.cdc.phase";
const SLOT: &str = "sluice.cdc.slot";
const SNAPSHOT_LSN: &str = "sluice.cdc.snapshot_lsn";
const SNAPSHOT_AFTER: &str = "sluice.cdc.snapshot_after";
const LSN: &str = "sluice.cdc.lsn";

/// The capture's phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Nothing landed yet.
    New,
    /// The initial snapshot is under way: chunks after `after` (primary key values as text) remain.
    Snapshot { after: Option<Vec<String>> },
    /// The snapshot is complete; changes up to `lsn` have landed.
    Stream { lsn: u64 },
}

/// The recorded position of one captured table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CdcState {
    /// Idempotency version of the newest commit (0 before the first).
    pub txn_version: i64,
    pub phase: Phase,
    /// The slot the position belongs to.
    pub slot: Option<String>,
    /// The LSN the snapshot is consistent from (stream changes after it are replayed on top).
    pub snapshot_lsn: u64,
}

impl CdcState {
    /// Reads the state of `source.table` from its newest bronze commit.
    pub(crate) async fn read(
        cx: &IngestContext,
        source: &str,
        table: &str,
    ) -> Result<CdcState, IngestError> {
        let last = cx
            .lake
            .commit_metadata(&TableId::bronze(source, table), &app_id(source, table))
            .await?;
        let Some(last) = last else {
            return Ok(CdcState {
                txn_version: 0,
                phase: Phase::New,
                slot: None,
                snapshot_lsn: 0,
            });
        };
        let m = &last.metadata;
        let lsn_of = |key: &str| {
            m.get(key)
                .and_then(Value::as_str)
                .and_then(|s| Lsn::parse(s).ok())
                .map(|l| l.0)
        };
        let phase = match m.get(PHASE).and_then(Value::as_str) {
            Some("stream") => Phase::Stream {
                lsn: lsn_of(LSN).unwrap_or(0),
            },
            Some("snapshot") => Phase::Snapshot {
                after: m.get(SNAPSHOT_AFTER).and_then(Value::as_array).map(|a| {
                    a.iter()
                        .map(|v| v.as_str().unwrap_or_default().to_string())
                        .collect()
                }),
            },
            _ => {
                return Err(IngestError::Read {
                    source_name: source.to_string(),
                    table: table.to_string(),
                    message: format!(
                        "bronze table `{source}.{table}` was not landed by `mode: cdc` (its last \
                         commit has no `{PHASE}`); drop it or land the table under another name"
                    ),
                    transient: false,
                });
            }
        };
        Ok(CdcState {
            txn_version: last.txn_version.unwrap_or(0),
            phase,
            slot: m.get(SLOT).and_then(Value::as_str).map(str::to_string),
            snapshot_lsn: lsn_of(SNAPSHOT_LSN).unwrap_or(0),
        })
    }

    /// The commit metadata recording this state.
    pub(crate) fn metadata(&self) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(slot) = &self.slot {
            m.insert(SLOT.into(), slot.clone().into());
        }
        m.insert(
            SNAPSHOT_LSN.into(),
            Lsn(self.snapshot_lsn).to_string().into(),
        );
        match &self.phase {
            Phase::New => {}
            Phase::Snapshot { after } => {
                m.insert(PHASE.into(), "snapshot".into());
                if let Some(after) = after {
                    m.insert(
                        SNAPSHOT_AFTER.into(),
                        Value::Array(after.iter().cloned().map(Value::from).collect()),
                    );
                }
            }
            Phase::Stream { lsn } => {
                m.insert(PHASE.into(), "stream".into());
                let text = Lsn(*lsn).to_string();
                m.insert(LSN.into(), text.clone().into());
                m.insert("sluice.watermark".into(), text.into());
            }
        }
        m
    }

    /// The LSN landed so far (0 before streaming).
    pub(crate) fn lsn(&self) -> u64 {
        match self.phase {
            Phase::Stream { lsn } => lsn,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_the_lake() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let lake = sluice_lake::Lake::open(dir.path().to_str().unwrap()).unwrap();
            let cx = IngestContext::new(lake, "run1");
            assert_eq!(
                CdcState::read(&cx, "s", "t").await.unwrap().phase,
                Phase::New
            );
            for state in [
                CdcState {
                    txn_version: 1,
                    phase: Phase::Snapshot {
                        after: Some(vec!["7".into(), "a b".into()]),
                    },
                    slot: Some("slot_a".into()),
                    snapshot_lsn: 0x16B_3748,
                },
                CdcState {
                    txn_version: 2,
                    phase: Phase::Stream { lsn: 0x1_0000_0010 },
                    slot: Some("slot_a".into()),
                    snapshot_lsn: 0x16B_3748,
                },
            ] {
                let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
                    arrow::datatypes::Field::new("x", arrow::datatypes::DataType::Int64, true),
                ]));
                let mut spec =
                    sluice_lake::WriteSpec::append().with_txn(app_id("s", "t"), state.txn_version);
                spec.metadata = state.metadata();
                cx.lake
                    .write(
                        &TableId::bronze("s", "t"),
                        vec![arrow::array::RecordBatch::new_empty(schema)],
                        &spec,
                    )
                    .await
                    .unwrap();
                assert_eq!(CdcState::read(&cx, "s", "t").await.unwrap(), state);
            }
        });
    }
}
