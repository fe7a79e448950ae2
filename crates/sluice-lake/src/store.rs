//! Where a lake's files live: a local folder or an object store (S3 and S3-compatible servers, GCS,
//! Azure), reached through delta-rs's object-store factories.
//!
//! A lake builds its store once ([`LakeStore::open`]) and hands it to every table it opens, so all
//! tables share one HTTP connection pool and one set of credentials. Listing and probing the lake
//! go through the same store: nothing in this crate reads the lake with `std::fs`.
//!
//! **Concurrent writers.** delta-rs commits version `N` by writing `_delta_log/N.json` only if it
//! does not exist yet (`PutMode::Create`). On S3 that is a conditional put (`If-None-Match: *`),
//! which AWS S3, MinIO, Cloudflare R2 and most S3-compatible servers honour; GCS and Azure have
//! native preconditions. Two writers racing for one version: the store lets exactly one win, the
//! loser gets "version already exists", reloads and retries (delta-rs's commit loop), so no commit
//! is lost and no lock service (DynamoDB) is needed. [`storage_options`] pins conditional puts on
//! and unsafe renames and lock providers off, so an environment variable cannot change that.

use std::collections::HashMap;
use std::sync::Once;

use deltalake::logstore::{ObjectStoreRef, StorageConfig, object_store_factories};
use deltalake::{DeltaTableError, ObjectStore as _, ObjectStoreError, Path};
use sluice_core::lake_options::LakeOptions;
use url::Url;

/// The kinds of storage a lake can live on, told apart by the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// A local folder (`file://` or a path).
    Local,
    /// Amazon S3 or an S3-compatible server (`s3://`, `s3a://`).
    S3,
    /// Google Cloud Storage (`gs://`).
    Gcs,
    /// Azure Blob Storage / ADLS Gen2 (`az://`, `adl://`, `azure://`, `abfs://`, `abfss://`).
    Azure,
}

/// The schemes a lake location may have, for messages.
pub const SUPPORTED_SCHEMES: &str =
    "a local path, file://, s3://, s3a://, gs://, az://, adl://, azure://, abfs:// or abfss://";

impl StoreKind {
    /// The kind of a URL scheme, `None` for one no lake can live on.
    pub fn of_scheme(scheme: &str) -> Option<StoreKind> {
        match scheme {
            "file" => Some(StoreKind::Local),
            "s3" | "s3a" => Some(StoreKind::S3),
            "gs" => Some(StoreKind::Gcs),
            "az" | "adl" | "azure" | "abfs" | "abfss" => Some(StoreKind::Azure),
            _ => None,
        }
    }
}

/// Registers delta-rs's S3, GCS and Azure object-store and log-store factories, once per process.
///
/// The `deltalake` crate also registers them from constructors that run before `main`; doing it
/// here as well does not depend on the linker keeping those constructors, and it is idempotent.
pub(crate) fn register_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        deltalake::aws::register_handlers(None);
        deltalake::gcp::register_handlers(None);
        deltalake::azure::register_handlers(None);
    });
}

/// The delta-rs / `object_store` storage options that `options` mean on a lake of `kind`. An
/// option that does not apply to the kind is an error naming it. A local lake ignores every
/// option, so that a `dev` target can point at a folder while `prod` points at a bucket.
///
/// Options not given here fall back to the environment (`AWS_ENDPOINT_URL`, `AWS_REGION`,
/// `AWS_ACCESS_KEY_ID`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`, ...), which the
/// object-store backends read themselves.
pub fn storage_options(
    kind: StoreKind,
    options: &LakeOptions,
) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    if kind == StoreKind::Local {
        return Ok(out);
    }
    let mut put = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            out.insert(key.to_string(), value);
        }
    };
    put("allow_http", options.allow_http.map(|b| b.to_string()));
    let only_s3 = [
        ("region", options.region.is_some()),
        ("path_style", options.path_style.is_some()),
        ("access_key_id", options.access_key_id.is_some()),
        ("secret_access_key", options.secret_access_key.is_some()),
        ("session_token", options.session_token.is_some()),
    ];
    match kind {
        StoreKind::Local => {}
        StoreKind::S3 => {
            // Commits are put-if-absent (`If-None-Match: *`); see the module doc. Options win over
            // the environment in delta-rs, so `AWS_S3_ALLOW_UNSAFE_RENAME=true` or
            // `AWS_S3_LOCKING_PROVIDER=dynamodb` in the environment cannot switch a lake to
            // rename-based commits (unsafe with two writers) or to a lock service.
            put("aws_conditional_put", Some("etag".into()));
            put("aws_s3_allow_unsafe_rename", Some("false".into()));
            put("aws_s3_locking_provider", Some("none".into()));
            put("aws_endpoint", options.endpoint.clone());
            put("aws_region", options.region.clone());
            put(
                "aws_virtual_hosted_style_request",
                options.path_style.map(|p| (!p).to_string()),
            );
            put("aws_access_key_id", options.access_key_id.clone());
            put("aws_secret_access_key", options.secret_access_key.clone());
            put("aws_session_token", options.session_token.clone());
        }
        StoreKind::Gcs | StoreKind::Azure => {
            if let Some((key, _)) = only_s3.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "lake_options.{key} applies to s3:// lakes only; this lake's credentials and \
                     settings come from the environment (docs/object-storage.md)"
                ));
            }
            let endpoint_key = if kind == StoreKind::Gcs {
                "google_base_url"
            } else {
                "azure_storage_endpoint"
            };
            put(endpoint_key, options.endpoint.clone());
        }
    }
    Ok(out)
}

/// The store a lake lives in: the store at the root of the bucket (or file system), the lake's
/// prefix inside it, and the storage options every table of the lake is opened with.
#[derive(Debug, Clone)]
pub(crate) struct LakeStore {
    pub(crate) kind: StoreKind,
    pub(crate) root_store: ObjectStoreRef,
    pub(crate) prefix: Path,
    pub(crate) options: HashMap<String, String>,
}

impl LakeStore {
    /// Builds the store for the lake at `root` (a directory URL). Makes no request.
    pub(crate) fn open(
        kind: StoreKind,
        root: &Url,
        options: HashMap<String, String>,
    ) -> Result<LakeStore, DeltaTableError> {
        register_handlers();
        let scheme = Url::parse(&format!("{}://", root.scheme()))
            .map_err(|_| DeltaTableError::InvalidTableLocation(root.to_string()))?;
        let factory = object_store_factories()
            .get(&scheme)
            .map(|entry| entry.value().clone())
            .ok_or_else(|| DeltaTableError::InvalidTableLocation(root.to_string()))?;
        let config = StorageConfig::parse_options(options.clone())?;
        let (root_store, prefix) = factory.parse_url_opts(root, &config)?;
        Ok(LakeStore {
            kind,
            root_store,
            prefix,
            options,
        })
    }

    /// The path of `relative` (`bronze/shop`) inside the lake.
    pub(crate) fn path(&self, relative: &[&str]) -> Path {
        relative
            .iter()
            .fold(self.prefix.clone(), |path, part| path.join(*part))
    }

    /// Names of the "folders" directly below `relative` (common prefixes of a delimited listing),
    /// sorted; empty when there is nothing there.
    pub(crate) async fn subfolders(
        &self,
        relative: &[&str],
    ) -> Result<Vec<String>, ObjectStoreError> {
        let dir = self.path(relative);
        let listed = self.root_store.list_with_delimiter(Some(&dir)).await?;
        let mut names: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// One cheap request that shows the lake answers: a listing of its root. A local lake must
    /// also still have its folder (an empty listing of a removed folder is not an answer).
    pub(crate) async fn probe(&self) -> Result<(), String> {
        if self.kind == StoreKind::Local {
            let parts: Vec<_> = self.prefix.parts().collect();
            if let Some((_, parents)) = parts.split_last() {
                let parent: Path = parents.iter().cloned().collect();
                let listed = self
                    .root_store
                    .list_with_delimiter(Some(&parent))
                    .await
                    .map_err(|e| e.to_string())?;
                if !listed.common_prefixes.contains(&self.prefix) {
                    return Err(format!("the lake folder /{} is missing", self.prefix));
                }
                return Ok(());
            }
        }
        // One delimited listing (one request) shows the bucket and the credentials work.
        self.root_store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_map_to_kinds() {
        assert_eq!(StoreKind::of_scheme("s3"), Some(StoreKind::S3));
        assert_eq!(StoreKind::of_scheme("s3a"), Some(StoreKind::S3));
        assert_eq!(StoreKind::of_scheme("gs"), Some(StoreKind::Gcs));
        assert_eq!(StoreKind::of_scheme("abfss"), Some(StoreKind::Azure));
        assert_eq!(StoreKind::of_scheme("file"), Some(StoreKind::Local));
        assert_eq!(StoreKind::of_scheme("hdfs"), None);
    }

    #[test]
    fn s3_options_map_to_object_store_keys_with_conditional_puts() {
        let options = LakeOptions {
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: Some("eu-west-1".into()),
            path_style: Some(true),
            allow_http: Some(true),
            secret_access_key: Some("from-env".into()),
            ..LakeOptions::default()
        };
        let map = storage_options(StoreKind::S3, &options).unwrap();
        assert_eq!(map["aws_endpoint"], "http://127.0.0.1:9000");
        assert_eq!(map["aws_region"], "eu-west-1");
        assert_eq!(map["aws_virtual_hosted_style_request"], "false");
        assert_eq!(map["allow_http"], "true");
        assert_eq!(map["aws_secret_access_key"], "from-env");
        assert_eq!(map["aws_conditional_put"], "etag");
        assert_eq!(map["aws_s3_allow_unsafe_rename"], "false");
        assert_eq!(map["aws_s3_locking_provider"], "none");
        assert!(!map.contains_key("aws_access_key_id"));
        // Virtual-hosted addressing when asked.
        let vhost = LakeOptions {
            path_style: Some(false),
            ..LakeOptions::default()
        };
        let map = storage_options(StoreKind::S3, &vhost).unwrap();
        assert_eq!(map["aws_virtual_hosted_style_request"], "true");
    }

    #[test]
    fn s3_only_options_are_refused_elsewhere_and_local_lakes_ignore_options() {
        let options = LakeOptions {
            region: Some("eu-west-1".into()),
            ..LakeOptions::default()
        };
        let err = storage_options(StoreKind::Gcs, &options).unwrap_err();
        assert!(
            err.contains("lake_options.region applies to s3://"),
            "{err}"
        );
        assert!(
            storage_options(StoreKind::Local, &options)
                .unwrap()
                .is_empty()
        );
        let endpoint = LakeOptions {
            endpoint: Some("http://127.0.0.1:10000/devstoreaccount1".into()),
            ..LakeOptions::default()
        };
        let map = storage_options(StoreKind::Azure, &endpoint).unwrap();
        assert_eq!(
            map["azure_storage_endpoint"],
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        let map = storage_options(StoreKind::Gcs, &endpoint).unwrap();
        assert!(map.contains_key("google_base_url"));
    }
}
