//! The [`Lake`] handle: where the lake is, which tables it holds, and reading them.
//!
//! A `Lake` is only a root URL; it keeps no open tables and no cache, so that every read sees
//! the latest commit another process made. Loading a table reads its Delta log (checkpoint
//! plus the commits after it), which is cheap next to reading the data.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use deltalake::logstore::LogStore as _;
use deltalake::{DeltaTable, DeltaTableBuilder};
use sluice_core::lake_options::LakeOptions;
use sluice_engine::catalog::TableProvider;
use url::Url;

use crate::error::{LakeError, Result};
use crate::layout::{Layer, TableId};
use crate::store::{LakeStore, SUPPORTED_SCHEMES, StoreKind, storage_options};

/// A handle on one lake: a local folder or a prefix in an object store. Cheap to clone; every
/// method reads the current state of the store.
#[derive(Debug, Clone)]
pub struct Lake {
    inner: Arc<LakeInner>,
}

#[derive(Debug)]
struct LakeInner {
    /// The root as a directory URL (ends with `/`).
    root: Url,
    /// The store the lake lives in, shared by all its tables.
    store: LakeStore,
    /// Columns that get Parquet bloom filters, by table ([`Lake::with_bloom_filters`]).
    bloom_filters: BTreeMap<TableId, Vec<String>>,
}

impl Lake {
    /// Open the lake at `location` with no [`LakeOptions`]; see [`Lake::open_with`].
    pub fn open(location: &str) -> Result<Lake> {
        Lake::open_with(location, &LakeOptions::default())
    }

    /// Open the lake at `location`: a local path (relative to the current directory or absolute) or
    /// `file://` URL, whose folder is created if missing; or an object-store URL (`s3://bucket/prefix`,
    /// `gs://…`, `az://…`, `abfss://…`) reached with `options` and the credentials of the environment.
    ///
    /// Opening an object-store lake makes no request: a wrong endpoint or missing credentials show
    /// at the first read or write (or at [`Lake::probe`]). Options that do not apply to the store
    /// kind are refused here.
    pub fn open_with(location: &str, options: &LakeOptions) -> Result<Lake> {
        let invalid = |reason: String| LakeError::InvalidLocation {
            location: location.to_string(),
            reason,
        };
        let trimmed = location.trim();
        if let Some(what) = sluice_core::lake_options::lake_url_credentials(trimmed) {
            // Not `invalid`: the error must not repeat the location with its secret.
            return Err(LakeError::InvalidLocation {
                location: "(redacted)".to_string(),
                reason: format!(
                    "the lake URL carries {what} before `@`; credentials come from the \
                     environment or lake_options (docs/object-storage.md), never from the URL"
                ),
            });
        }
        if trimmed.is_empty() {
            return Err(invalid("the location is empty".to_string()));
        }
        let root = match Url::parse(trimmed) {
            // A one-letter scheme is a Windows drive (`C:\lake`), not a URL.
            Ok(url) if url.scheme().len() > 1 => match StoreKind::of_scheme(url.scheme()) {
                Some(StoreKind::Local) => {
                    let path = url
                        .to_file_path()
                        .map_err(|()| invalid("the file:// URL is not a local path".to_string()))?;
                    local_root(&path, &invalid)?
                }
                Some(_) => object_store_root(url, &invalid)?,
                None => {
                    return Err(invalid(format!(
                        "scheme `{}` is not supported; use {SUPPORTED_SCHEMES}",
                        url.scheme()
                    )));
                }
            },
            _ => local_root(&PathBuf::from(trimmed), &invalid)?,
        };
        let kind = StoreKind::of_scheme(root.scheme()).unwrap_or(StoreKind::Local);
        let options = storage_options(kind, options).map_err(&invalid)?;
        let store = LakeStore::open(kind, &root, options)
            .map_err(|e| invalid(format!("cannot build its object store: {e}")))?;
        tracing::debug!(%root, "opened lake");
        Ok(Lake {
            inner: Arc::new(LakeInner {
                root,
                store,
                bloom_filters: BTreeMap::new(),
            }),
        })
    }

    /// This lake with `bloom_filters` as its bloom filter columns (see `maintain`).
    pub(crate) fn with_bloom_filter_map(
        self,
        bloom_filters: BTreeMap<TableId, Vec<String>>,
    ) -> Lake {
        Lake {
            inner: Arc::new(LakeInner {
                root: self.inner.root.clone(),
                store: self.inner.store.clone(),
                bloom_filters,
            }),
        }
    }

    /// The columns of `id` that get Parquet bloom filters (empty: none).
    pub fn bloom_filter_columns(&self, id: &TableId) -> &[String] {
        self.inner
            .bloom_filters
            .get(id)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The lake root as a directory URL (ends with `/`).
    pub fn root(&self) -> &Url {
        &self.inner.root
    }

    /// Whether the lake is a local folder (not an object store).
    pub fn is_local(&self) -> bool {
        self.inner.store.kind == StoreKind::Local
    }

    /// For an object-store lake, the store at the root of its bucket (or container) and that root's
    /// URL (`s3://bucket/`), for a query session to read files of the lake by URL (staged model
    /// output read as a listing table); `None` for a local lake, which sessions read anyway.
    pub fn root_object_store(&self) -> Option<(Url, deltalake::logstore::ObjectStoreRef)> {
        if self.is_local() {
            return None;
        }
        let root = &self.inner.root;
        let url = Url::parse(&format!("{}://{}/", root.scheme(), root.authority())).ok()?;
        Some((url, self.inner.store.root_store.clone()))
    }

    /// Shows that the lake answers with one cheap request (a listing of its root): for readiness
    /// probes. The error says what failed, without credentials.
    pub async fn probe(&self) -> std::result::Result<(), String> {
        self.inner
            .store
            .probe()
            .await
            .map_err(|e| format!("the lake at {} does not answer: {e}", self.inner.root))
    }

    /// The directory URL of a table (ends with `/`); quarantine tables live in `_quarantine/`.
    ///
    /// Name segments are percent-encoded and `.`/`..` segments dropped, so the URL always
    /// stays inside the lake; methods that touch the table also [`TableId::validate`] it.
    pub fn table_url(&self, id: &TableId) -> Url {
        let mut url = self.inner.root.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            segments.push(id.layer.dir_name());
            segments.extend(id.segments());
            segments.push("");
        }
        url
    }

    /// The delta-rs storage options every table of the lake is opened with.
    pub(crate) fn storage_options(&self) -> &std::collections::HashMap<String, String> {
        &self.inner.store.options
    }

    /// The validated table URL, for methods that touch the table.
    pub(crate) fn checked_url(&self, id: &TableId) -> Result<Url> {
        id.validate()?;
        Ok(self.table_url(id))
    }

    /// A delta-rs handle on the table location, not loaded yet.
    pub(crate) fn unloaded(&self, id: &TableId) -> Result<DeltaTable> {
        let url = self.checked_url(id)?;
        let store = &self.inner.store;
        DeltaTableBuilder::from_url(url.clone())
            .and_then(|builder| {
                builder
                    .with_storage_backend(store.root_store.clone(), url)
                    .with_storage_options(store.options.clone())
                    .build()
            })
            .map_err(|e| LakeError::delta(id, "open", e))
    }

    /// Whether the table exists: its `_delta_log` holds at least one commit or checkpoint.
    pub async fn exists(&self, id: &TableId) -> Result<bool> {
        self.unloaded(id)?
            .verify_deltatable_existence()
            .await
            .map_err(|e| LakeError::delta(id, "check existence", e))
    }

    /// The table at its latest version, or `None` when there is no table at its location.
    pub async fn load(&self, id: &TableId) -> Result<Option<DeltaTable>> {
        let table = self.load_or_uninitialized(id).await?;
        Ok(table.version().is_some().then_some(table))
    }

    /// The table at its latest version; when there is none yet, a handle whose `version()` is
    /// `None` that a first write creates the table through.
    ///
    /// Not `DeltaTable::try_from_url`: on a local folder that does not exist yet it fails with
    /// "Path does not exist" instead of returning an uninitialized table.
    pub(crate) async fn load_or_uninitialized(&self, id: &TableId) -> Result<DeltaTable> {
        let mut table = self.unloaded(id)?;
        let exists = table
            .verify_deltatable_existence()
            .await
            .map_err(|e| LakeError::delta(id, "check existence", e))?;
        if exists {
            table
                .load()
                .await
                .map_err(|e| LakeError::delta(id, "load", e))?;
        }
        Ok(table)
    }

    /// All Delta tables of the lake, in layer order then by name.
    ///
    /// Lists the layout folders only (`bronze/*/*`, `silver/*`, `gold/*`, `_quarantine/*`) through
    /// the object store (a delimited listing per folder) and keeps those that hold a Delta log;
    /// stray folders and files are ignored.
    pub async fn list_tables(&self) -> Result<Vec<TableId>> {
        let mut found = Vec::new();
        for layer in Layer::ALL {
            let layer_dir = layer.dir_name();
            for first in self.subfolders(&[layer_dir]).await? {
                let candidates = if layer.name_depth() == 2 {
                    self.subfolders(&[layer_dir, &first])
                        .await?
                        .into_iter()
                        .map(|second| TableId::bronze(&first, &second))
                        .collect()
                } else {
                    vec![TableId { layer, name: first }]
                };
                for id in candidates {
                    if id.validate().is_ok() && self.exists(&id).await? {
                        found.push(id);
                    }
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// Names of the folders below `relative` (not starting with `.` or `_`); empty if none.
    async fn subfolders(&self, relative: &[&str]) -> Result<Vec<String>> {
        let names = self
            .inner
            .store
            .subfolders(relative)
            .await
            .map_err(|source| LakeError::Store {
                location: format!("{}{}", self.inner.root, relative.join("/")),
                operation: "list",
                source: Box::new(source),
            })?;
        Ok(names
            .into_iter()
            .filter(|n| !(n.starts_with('.') || n.starts_with('_')))
            .collect())
    }

    /// A DataFusion table provider over the table's latest version, or `None` when the table
    /// does not exist.
    ///
    /// The provider is pinned to the version it was built from: build a new one after each
    /// write. It registers the table's object store in the session on first scan, so it can
    /// go straight into `SessionContext::register_table`.
    pub async fn table_provider(&self, id: &TableId) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self
            .versioned_provider(id)
            .await?
            .map(|(_, provider)| provider))
    }

    /// [`Lake::table_provider`] with the version the provider is pinned to.
    pub async fn versioned_provider(
        &self,
        id: &TableId,
    ) -> Result<Option<(u64, Arc<dyn TableProvider>)>> {
        let Some(table) = self.load(id).await? else {
            return Ok(None);
        };
        let Some(version) = table.version() else {
            return Ok(None);
        };
        let provider = table
            .table_provider()
            .await
            .map_err(|e| LakeError::datafusion(id, "build table provider", e))?;
        Ok(Some((version, provider)))
    }

    /// The table's latest version, or `None` when it does not exist, without loading it: lists the
    /// Delta log from `since` (a version known to exist) on, so that asking again after each poll
    /// costs one short listing. Used to notice commits made by other processes.
    pub async fn latest_version(&self, id: &TableId, since: Option<u64>) -> Result<Option<u64>> {
        if let Some(since) = since {
            let table = self.unloaded(id)?;
            // A log cleaned up past `since`, or a table recreated, fails here: load it instead.
            if let Ok(v) = table.log_store().get_latest_version(since).await {
                return Ok(Some(v));
            }
        }
        Ok(self.load(id).await?.and_then(|t| t.version()))
    }

    /// The latest application-transaction version recorded for `app_id` (the Delta `txn`
    /// action), or `None` when the table or the app id is unknown.
    pub async fn txn_version(&self, id: &TableId, app_id: &str) -> Result<Option<i64>> {
        let Some(table) = self.load(id).await? else {
            return Ok(None);
        };
        txn_version_of(&table, id, app_id).await
    }
}

/// The latest txn version for `app_id` in a loaded table.
pub(crate) async fn txn_version_of(
    table: &DeltaTable,
    id: &TableId,
    app_id: &str,
) -> Result<Option<i64>> {
    let Ok(state) = table.snapshot() else {
        return Ok(None);
    };
    state
        .transaction_version(table.log_store().as_ref(), app_id)
        .await
        .map_err(|e| LakeError::delta(id, "read app transaction", e))
}

/// The Arrow schema of a loaded table (what a writer must match, and what schema evolution extends).
pub fn arrow_schema(table: &deltalake::DeltaTable) -> crate::Result<arrow::datatypes::SchemaRef> {
    let state = table.snapshot().map_err(|source| {
        crate::LakeError::delta(&crate::TableId::silver("unknown"), "read schema", source)
    })?;
    Ok(state.snapshot().arrow_schema())
}

/// The root URL of a local lake at `path`, creating its folder.
fn local_root(path: &std::path::Path, invalid: &dyn Fn(String) -> LakeError) -> Result<Url> {
    std::fs::create_dir_all(path).map_err(|source| LakeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let path = std::fs::canonicalize(path).map_err(|source| LakeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Url::from_directory_path(&path)
        .map_err(|()| invalid(format!("{} cannot be written as a URL", path.display())))
}

/// The root URL of an object-store lake: a bucket (container) and an optional prefix, as a
/// directory URL. Nothing is created: an object store has no folders.
fn object_store_root(mut url: Url, invalid: &dyn Fn(String) -> LakeError) -> Result<Url> {
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!(
            "no bucket: write {}://BUCKET/PREFIX",
            url.scheme()
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "a lake URL takes no `?query` or `#fragment`; options go in lake_options".to_string(),
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{int_batch, tmp_lake};
    use crate::write::WriteSpec;

    #[test]
    fn open_creates_the_folder_and_accepts_file_urls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/lake");
        let lake = Lake::open(path.to_str().unwrap()).unwrap();
        assert!(path.is_dir());
        assert!(lake.root().as_str().ends_with("/nested/lake/"));
        assert_eq!(lake.root().scheme(), "file");

        let again = Lake::open(lake.root().as_str()).unwrap();
        assert_eq!(again.root(), lake.root());
    }

    #[test]
    fn open_accepts_object_store_urls_and_refuses_unknown_schemes() {
        for (location, root) in [
            ("s3://bucket", "s3://bucket/"),
            ("s3://bucket/lake", "s3://bucket/lake/"),
            ("s3://bucket/a/lake/", "s3://bucket/a/lake/"),
            ("gs://bucket/lake", "gs://bucket/lake/"),
            (
                "abfss://data@account.dfs.core.windows.net/lake",
                "abfss://data@account.dfs.core.windows.net/lake/",
            ),
        ] {
            let lake = Lake::open(location).unwrap();
            assert_eq!(lake.root().as_str(), root);
            assert!(!lake.is_local());
        }
        let lake = Lake::open("s3://bucket/lake").unwrap();
        assert_eq!(
            lake.table_url(&TableId::bronze("shop", "orders")).as_str(),
            "s3://bucket/lake/bronze/shop/orders/"
        );
        // Azure needs its account: in the URL (abfss://) or AZURE_STORAGE_ACCOUNT_NAME.
        if std::env::var_os("AZURE_STORAGE_ACCOUNT_NAME").is_none() {
            let err = Lake::open("az://container/lake").unwrap_err().to_string();
            assert!(err.contains("Account must be specified"), "{err}");
        }
        let err = Lake::open("hdfs://nn/lake").unwrap_err().to_string();
        assert!(err.contains("scheme `hdfs` is not supported"), "{err}");
        let err = Lake::open("s3:///lake").unwrap_err().to_string();
        assert!(err.contains("no bucket"), "{err}");
        assert!(Lake::open("  ").is_err());
        let err = Lake::open("s3://AKIAEXAMPLE:hunter2@bucket/lake")
            .unwrap_err()
            .to_string();
        assert!(err.contains("carries a password"), "{err}");
        assert!(
            !err.contains("hunter2") && !err.contains("AKIAEXAMPLE"),
            "{err}"
        );
    }

    #[test]
    fn open_with_refuses_options_that_do_not_apply_to_the_store() {
        let options = LakeOptions {
            path_style: Some(true),
            ..LakeOptions::default()
        };
        assert!(Lake::open_with("s3://bucket/lake", &options).is_ok());
        let err = Lake::open_with("gs://bucket/lake", &options)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("lake_options.path_style applies to s3://"),
            "{err}"
        );
        // A local lake ignores them (a dev target on a folder, prod on a bucket).
        let dir = tempfile::tempdir().unwrap();
        assert!(Lake::open_with(dir.path().to_str().unwrap(), &options).is_ok());
    }

    #[test]
    fn table_urls_follow_the_layout() {
        let (_dir, lake) = tmp_lake();
        let root = lake.root().as_str().to_string();
        let cases = [
            (TableId::bronze("shop", "orders"), "bronze/shop/orders/"),
            (TableId::silver("customers"), "silver/customers/"),
            (TableId::gold("daily_sales"), "gold/daily_sales/"),
            (
                TableId::quarantine("load_orders"),
                "_quarantine/load_orders/",
            ),
        ];
        for (id, suffix) in cases {
            assert_eq!(lake.table_url(&id).as_str(), format!("{root}{suffix}"));
        }
        // Even an unvalidated id cannot climb out of the lake.
        let sneaky = TableId::silver("../../etc");
        assert!(lake.table_url(&sneaky).as_str().starts_with(&root));
    }

    #[tokio::test]
    async fn missing_tables_load_as_none() {
        let (_dir, lake) = tmp_lake();
        let id = TableId::silver("nothing_here");
        assert!(!lake.exists(&id).await.unwrap());
        assert!(lake.load(&id).await.unwrap().is_none());
        assert!(lake.table_provider(&id).await.unwrap().is_none());
        assert_eq!(lake.txn_version(&id, "app").await.unwrap(), None);
        assert!(lake.list_tables().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn invalid_ids_are_refused_before_touching_storage() {
        let (_dir, lake) = tmp_lake();
        let err = lake.load(&TableId::silver("a b")).await.unwrap_err();
        assert!(
            matches!(
                err,
                LakeError::Layout(crate::layout::LayoutError::InvalidTableId { .. })
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn list_tables_finds_only_delta_tables() {
        let (dir, lake) = tmp_lake();
        lake.probe().await.unwrap();
        let ids = [
            TableId::bronze("shop", "orders"),
            TableId::silver("customers"),
            TableId::gold("sales"),
            TableId::quarantine("load_orders"),
        ];
        for id in &ids {
            lake.write(id, vec![int_batch(&[1, 2])], &WriteSpec::append())
                .await
                .unwrap();
        }
        // Folders that are not Delta tables are ignored.
        std::fs::create_dir_all(dir.path().join("silver/empty_folder")).unwrap();
        std::fs::create_dir_all(dir.path().join("bronze/shop/not_yet/_delta_log")).unwrap();
        std::fs::write(dir.path().join("gold/README"), "x").unwrap();

        let listed = lake.list_tables().await.unwrap();
        assert_eq!(listed, ids.to_vec());
        assert!(lake.exists(&ids[0]).await.unwrap());
        assert!(
            !lake
                .exists(&TableId::bronze("shop", "not_yet"))
                .await
                .unwrap()
        );
        // A local lake whose folder is gone does not answer.
        drop(listed);
        std::fs::remove_dir_all(dir.path()).unwrap();
        let err = lake.probe().await.unwrap_err();
        assert!(err.contains("missing"), "{err}");
    }
}
