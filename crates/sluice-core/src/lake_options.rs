//! `lake_options:` in `sluice.yml`: how to reach a lake on object storage (docs/object-storage.md).
//!
//! ```yaml
//! lake: s3://shop-lake/prod
//! lake_options:
//!   endpoint: http://127.0.0.1:9000   # an S3-compatible server (MinIO, Ceph, R2, …)
//!   region: eu-west-1
//!   path_style: true
//!   allow_http: true
//! ```
//!
//! Credentials come from the environment and the standard provider chains (`AWS_ACCESS_KEY_ID`,
//! `AWS_PROFILE`, web identity, instance metadata; `GOOGLE_APPLICATION_CREDENTIALS`;
//! `AZURE_STORAGE_*`). The credential keys below exist only to name *other* variables
//! (`secret_access_key: ${LAKE_SECRET}`): a value written in clear is refused with its line, so a
//! secret never sits in a file that goes into version control.

use serde::Deserialize;

/// `lake_options:` as written (`${ENV}` allowed in every text value). A local lake ignores them, so
/// that a `dev` target can point at a folder while `prod` points at a bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeOptions {
    /// Endpoint URL of an S3-compatible server, or an Azure storage endpoint (emulators). Default:
    /// the cloud's own (AWS's for the region), or `AWS_ENDPOINT_URL` from the environment.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The bucket's region (S3). Default: `AWS_REGION` / `AWS_DEFAULT_REGION`, then the provider
    /// chain's.
    #[serde(default)]
    pub region: Option<String>,
    /// S3 addressing: `true` puts the bucket in the path (`https://endpoint/bucket/key`, what most
    /// S3-compatible servers want), `false` in the host name (`https://bucket.endpoint/key`).
    /// Default: path style.
    #[serde(default)]
    pub path_style: Option<bool>,
    /// Allow plain HTTP to the endpoint (a server on localhost or in a private network). Default:
    /// HTTPS only.
    #[serde(default)]
    pub allow_http: Option<bool>,
    /// S3 access key id, only as a `${VAR}` reference (default: `AWS_ACCESS_KEY_ID` and the
    /// provider chain).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// S3 secret access key, only as a `${VAR}` reference (default: `AWS_SECRET_ACCESS_KEY`).
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// S3 session token, only as a `${VAR}` reference (default: `AWS_SESSION_TOKEN`).
    #[serde(default)]
    pub session_token: Option<String>,
}

/// The keys of [`LakeOptions`] that hold credentials: each takes only a `${VAR}` reference.
pub const CREDENTIAL_KEYS: [&str; 3] = ["access_key_id", "secret_access_key", "session_token"];

impl LakeOptions {
    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        self == &LakeOptions::default()
    }

    /// Expands `${ENV}` / `${ENV:-default}` in every text value; `path` is `sluice.yml`, for errors.
    pub fn expand_env(&mut self, path: &std::path::Path) -> Result<(), crate::ConfigError> {
        for value in [
            &mut self.endpoint,
            &mut self.region,
            &mut self.access_key_id,
            &mut self.secret_access_key,
            &mut self.session_token,
        ]
        .into_iter()
        .flatten()
        {
            *value = crate::env::expand_env(value, path)?;
        }
        Ok(())
    }
}

/// Checks the raw text of a credential key: it must be one whole `${VAR}` reference (no default,
/// which would be a secret in clear, and nothing around it).
pub fn check_credential(key: &str, raw: &str) -> Result<(), String> {
    let name = raw
        .trim()
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'));
    let is_reference = name.is_some_and(|n| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if is_reference {
        Ok(())
    } else {
        Err(format!(
            "credentials are never read from sluice.yml in clear: write `{key}: ${{SOME_VAR}}` and set \
             SOME_VAR in the environment, or leave `{key}` out to use the standard provider chain \
             (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE, web identity, \
             instance metadata)"
        ))
    }
}

/// Whether a URL scheme is one of Azure's, whose authority may name a container
/// (`abfss://container@account.dfs.core.windows.net/prefix`) without it being a credential.
fn is_azure_scheme(scheme: &str) -> bool {
    matches!(
        scheme.to_ascii_lowercase().as_str(),
        "az" | "adl" | "azure" | "abfs" | "abfss"
    )
}

/// The credentials a lake URL carries in its authority, if any: `Some("a password")` for
/// `scheme://user:password@host/…`, `Some("a user name")` for `s3://key@bucket/…`; `None` for a URL
/// without userinfo and for Azure's `container@account` form. Never returns the values themselves.
pub fn lake_url_credentials(url: &str) -> Option<&'static str> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (userinfo, _host) = authority.rsplit_once('@')?;
    if userinfo.contains(':') {
        Some("a password")
    } else if is_azure_scheme(scheme) {
        None
    } else {
        Some("a user name")
    }
}

/// Checks the raw text of `lake:`: a URL with credentials in it (`s3://KEY:SECRET@bucket/…`) is
/// refused, without repeating them.
pub fn check_lake_url(raw: &str) -> Result<(), String> {
    match lake_url_credentials(raw) {
        None => Ok(()),
        Some(what) => Err(format!(
            "the lake URL carries {what} before `@`: credentials are never read from sluice.yml \
             in clear; write the URL without them (`s3://BUCKET/PREFIX`) and set them in the \
             environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS, \
             AZURE_STORAGE_ACCOUNT_KEY, ...) or name variables in lake_options \
             (`secret_access_key: ${{SOME_VAR}}`)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lake_urls_with_credentials_are_refused_without_repeating_them() {
        for good in [
            "lake",
            "/var/lake",
            "s3://bucket/prefix",
            "s3://bucket",
            "gs://bucket/a@b",
            "abfss://container@account.dfs.core.windows.net/prefix",
            "file:///tmp/lake",
        ] {
            assert!(check_lake_url(good).is_ok(), "{good}");
        }
        for (bad, what) in [
            ("s3://AKIAXXXX:wJalrXUtnFEMI@bucket/prefix", "a password"),
            ("s3a://AKIAXXXX@bucket/prefix", "a user name"),
            ("gs://svc:hunter2@bucket", "a password"),
            (
                "abfss://container:hunter2@account.dfs.core.windows.net/p",
                "a password",
            ),
        ] {
            let err = check_lake_url(bad).unwrap_err();
            assert!(err.contains(what), "{bad}: {err}");
            assert!(!err.contains("hunter2") && !err.contains("AKIA"), "{err}");
        }
    }

    #[test]
    fn credentials_must_be_whole_env_references() {
        assert!(check_credential("secret_access_key", "${LAKE_SECRET}").is_ok());
        assert!(check_credential("secret_access_key", " ${A_1} ").is_ok());
        for bad in [
            "wJalrXUtnFEMI/K7MDENG",
            "${LAKE_SECRET:-hunter2}",
            "prefix-${LAKE_SECRET}",
            "${}",
            "${1ABC}",
            "$LAKE_SECRET",
        ] {
            let err = check_credential("secret_access_key", bad).unwrap_err();
            assert!(err.contains("never read from sluice.yml"), "{bad}: {err}");
        }
    }

    #[test]
    fn env_is_expanded_in_text_values() {
        let mut o = LakeOptions {
            endpoint: Some("http://${SLUICE_TEST_LAKE_HOST_UNSET:-127.0.0.1}:9000".into()),
            path_style: Some(true),
            ..LakeOptions::default()
        };
        o.expand_env(std::path::Path::new("sluice.yml")).unwrap();
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(!o.is_empty());
        assert!(LakeOptions::default().is_empty());
        let mut missing = LakeOptions {
            secret_access_key: Some("${SLUICE_TEST_LAKE_SECRET_UNSET}".into()),
            ..LakeOptions::default()
        };
        let err = missing
            .expand_env(std::path::Path::new("sluice.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("SLUICE_TEST_LAKE_SECRET_UNSET"), "{err}");
    }
}
