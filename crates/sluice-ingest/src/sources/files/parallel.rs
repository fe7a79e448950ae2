//! Landing several files of one table at once, each still in its own commit, in file order.
//!
//! Reading a file and encoding its Parquet is most of a landing's work, and it does not depend on
//! the other files: up to `parallelism` files are read and *staged* at once ([`stage_file`]: their
//! rows are written as Parquet files of the table that no commit references yet, on a task of their
//! own). The commits stay what they were, one per file in file-name order ([`commit_staged`]): the
//! file's rejected rows are quarantined under its commit's token, then its staged files are added in
//! one commit that names the file and carries the next txn version, so the landed-files record, the
//! txn order and exactly-once after a crash are those of landing one file after another. A file is
//! read against the table's schema as it was when the batch started; if an earlier file of the batch
//! changed that schema (a new column), its staged files are deleted and it lands the ordinary way
//! against the new one. Staged files of a file that never commits (a crash, an error) are in no
//! version: readers never see them and `VACUUM` deletes them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow::array::RecordBatch;
use sluice_engine::DataFusionError;
use sluice_engine::plan::RecordBatchStreamAdapter;
use sluice_lake::{QuarantinedRow, StagedFiles, TableId, WriteMode};
use tokio::task::JoinHandle;

use super::land::{ChannelSink, FileTarget, Item, Reader, file_metadata, join_reader, quarantined};
use crate::error::IngestError;
use crate::formats::{ReadOptions, stream_file};
use crate::landing::{Landed, Pii, batch_id, bronze_spec, prepare, quarantine_first};
use crate::source::IngestContext;

/// One file to stage: what [`FileTarget`] says, owned (staging runs on a task of its own).
#[derive(Debug, Clone)]
pub(super) struct FileJob {
    pub source: String,
    pub table: String,
    pub rel: String,
    pub pii: BTreeMap<String, Pii>,
    pub txn_version: i64,
    pub path: PathBuf,
}

impl FileJob {
    pub(super) fn target(&self) -> FileTarget<'_> {
        FileTarget {
            source: &self.source,
            table: &self.table,
            rel: &self.rel,
            pii: &self.pii,
            txn_version: self.txn_version,
        }
    }
}

/// A file read and staged, waiting for its turn to commit.
pub(super) struct StagedFile {
    /// Its accepted rows as staged Parquet (`None`: it had none).
    staged: Option<StagedFiles>,
    /// Its rejected rows, for the quarantine.
    rejected: Vec<QuarantinedRow>,
    /// Rows read (accepted).
    rows_read: u64,
}

/// A staging task that is cancelled when dropped (a failed batch stops the files still staging).
pub(super) struct Staging(pub(super) JoinHandle<Result<StagedFile, IngestError>>);

impl Drop for Staging {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Staging {
    /// Starts staging `job` read with `opts` on a task of its own.
    pub(super) fn start(cx: &IngestContext, job: FileJob, opts: ReadOptions) -> Staging {
        let cx = cx.clone();
        Staging(tokio::spawn(
            async move { stage_file(&cx, &job, opts).await },
        ))
    }

    /// Waits for the staging to end.
    pub(super) async fn finish(mut self, job: &FileJob) -> Result<StagedFile, IngestError> {
        (&mut self.0).await.map_err(|e| IngestError::Read {
            source_name: job.source.clone(),
            table: job.table.clone(),
            message: format!("staging {} failed: {e}", job.rel),
            transient: false,
        })?
    }
}

/// Reads `job`'s file with `opts` and stages its prepared rows; see the module docs.
async fn stage_file(
    cx: &IngestContext,
    job: &FileJob,
    opts: ReadOptions,
) -> Result<StagedFile, IngestError> {
    let target = job.target();
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let path = job.path.clone();
    let reader: Reader =
        tokio::task::spawn_blocking(move || stream_file(&path, &opts, &mut ChannelSink(tx)));
    let mut schema = None;
    let mut rejected = Vec::new();
    let mut first = None;
    while let Some(item) = rx.recv().await {
        match item {
            Item::Schema(s) => schema = Some(s),
            Item::Rejected(row) => rejected.push(quarantined(&target, row)),
            Item::Batch(batch) => {
                first = Some(batch);
                break;
            }
        }
    }
    let Some(first) = first else {
        drop(rx);
        join_reader(&target, reader).await?;
        return Ok(StagedFile {
            staged: None,
            rejected,
            rows_read: 0,
        });
    };
    let schema = schema.unwrap_or_else(|| first.schema());
    let batch_id = batch_id(cx, &job.source, &job.table, job.txn_version);
    let landed_schema = prepare(
        RecordBatch::new_empty(schema),
        cx,
        &job.pii,
        &batch_id,
        &job.rel,
    )?
    .schema();
    let (batches_tx, batches) = tokio::sync::mpsc::channel(1);
    let stream = futures::stream::unfold(batches, |mut rx| async move {
        rx.recv().await.map(|batch| (batch, rx))
    });
    let stream = Box::pin(RecordBatchStreamAdapter::new(landed_schema.clone(), stream));
    let id = TableId::bronze(&job.source, &job.table);
    let partition_by = ["_ingest_date".to_string()];
    let stage = cx
        .lake
        .stage_append(&id, landed_schema, &partition_by, stream);
    let feed = async {
        let sent: Result<(), IngestError> = async {
            let mut next = Some(Item::Batch(first));
            while let Some(item) = next.take() {
                match item {
                    Item::Batch(batch) => {
                        let batch = prepare(batch, cx, &job.pii, &batch_id, &job.rel)?;
                        if batches_tx.send(Ok(batch)).await.is_err() {
                            // The stage failed; its error says why.
                            break;
                        }
                    }
                    Item::Rejected(row) => rejected.push(quarantined(&target, row)),
                    Item::Schema(_) => {}
                }
                next = rx.recv().await;
            }
            Ok(())
        }
        .await;
        // Unblocks a reader still sending.
        drop(rx);
        let read = join_reader(&target, reader).await;
        let result = match (sent, read) {
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(()), Ok(summary)) => Ok(summary.rows),
        };
        if let Err(e) = &result {
            // Fails the stage, so that it ends instead of waiting for more.
            let _ = batches_tx
                .send(Err(DataFusionError::Execution(format!(
                    "landing {} stopped: {e}",
                    job.rel
                ))))
                .await;
        }
        drop(batches_tx);
        result
    };
    let (staged, fed) = tokio::join!(stage, feed);
    match (staged, fed) {
        (Ok(staged), Ok(rows_read)) => Ok(StagedFile {
            staged: Some(staged),
            rejected,
            rows_read,
        }),
        (Ok(staged), Err(e)) => {
            cx.lake.discard_staged(staged).await?;
            Err(e)
        }
        // The read's own error explains a failed stage best.
        (Err(_), Err(e)) => Err(e),
        (Err(e), Ok(_)) => Err(e.into()),
    }
}

/// What committing a staged file came to.
pub(super) enum Committed {
    /// Landed: the file's commit is made (or was made before).
    Landed(super::land::FileLanded),
    /// The file cannot be committed as staged (it had no accepted row, or the table's schema
    /// changed since it was read): land it the ordinary way. Its staged files are deleted.
    Again,
}

/// Commits a staged file: quarantine first under the commit's token, then its files in one commit
/// naming it, as [`super::land::land_file`] does.
pub(super) async fn commit_staged(
    cx: &IngestContext,
    job: &FileJob,
    file: StagedFile,
) -> Result<Committed, IngestError> {
    let target = job.target();
    let Some(staged) = file.staged else {
        return Ok(Committed::Again);
    };
    let batch_id = batch_id(cx, &job.source, &job.table, job.txn_version);
    let spec = bronze_spec(
        cx,
        &job.source,
        &job.table,
        WriteMode::Append,
        job.txn_version,
        file_metadata(&target),
        &batch_id,
    );
    if !cx.lake.staged_fit(&staged, &spec).await? {
        cx.lake.discard_staged(staged).await?;
        return Ok(Committed::Again);
    }
    let quarantined = quarantine_first(
        cx,
        &job.source,
        &job.table,
        file.rejected,
        &job.pii,
        &batch_id,
        job.txn_version,
    )
    .await?;
    match cx.lake.append_staged(staged, &spec).await? {
        Some(outcome) => Ok(Committed::Landed(super::land::FileLanded {
            rows_read: file.rows_read,
            landed: Landed::from_outcome(outcome, quarantined),
        })),
        // Another process changed the table between the check and the commit; the quarantine is
        // recorded under this txn, so the file must not land against another schema now.
        None => Err(IngestError::Read {
            source_name: job.source.clone(),
            table: job.table.clone(),
            message: format!(
                "the table's schema changed while {} was landing; run the ingestion again",
                job.rel
            ),
            transient: true,
        }),
    }
}
