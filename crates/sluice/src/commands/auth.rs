//! `sluice auth token create|list|revoke`: the API tokens of `sluice serve` (docs/security.md).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use sluice_orchestrate::StateStore;
use sluice_serve::auth::{self, Role};

use super::load;
use crate::cli::TokenAction;
use crate::table;

fn open_state(dir: &Path) -> Result<StateStore> {
    let compiled = load(dir)?;
    let location = compiled.project.state_location()?;
    StateStore::open(&location).with_context(|| format!("opening the state database {location}"))
}

/// Appends an administrative change made from the command line to the audit log; the change is
/// not reported done unless it is recorded.
fn admin_audit(state: &StateStore, action: &str, detail: serde_json::Value) -> Result<()> {
    let actor = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_string());
    let record = sluice_state::AuditRecord {
        at: sluice_serve::audit::now(),
        kind: "admin".into(),
        action: action.into(),
        actor,
        protocol: Some("cli".into()),
        detail: Some(detail.to_string()),
        ..sluice_state::AuditRecord::default()
    };
    state
        .backend()
        .append_audit(&record)
        .context("recording the change in the audit log")?;
    Ok(())
}

/// Runs one `sluice auth token` action.
pub fn token(dir: &Path, action: TokenAction) -> Result<ExitCode> {
    let state = open_state(dir)?;
    match action {
        TokenAction::Create {
            user,
            role,
            expires,
        } => {
            let role: Role = role.parse().map_err(|e| anyhow!("{e}"))?;
            if let Role::Named(name) = &role {
                let compiled = load(dir)?;
                let known = compiled
                    .project
                    .access
                    .as_ref()
                    .is_some_and(|a| a.role(name).is_some());
                if !known {
                    bail!(
                        "unknown role `{name}`: use reader, operator, admin or a role defined under \
                         `roles:` in access.yml"
                    );
                }
            }
            let expires = expires
                .as_deref()
                .map(auth::parse_expiry)
                .transpose()
                .map_err(|e| anyhow!("{e}"))?;
            let first = state.backend().token_count()? == 0;
            let t = auth::create_token(&state, &user, role, expires, chrono::Utc::now())
                .map_err(|e| anyhow!("{e}"))?;
            admin_audit(
                &state,
                "token_create",
                serde_json::json!({"token": t.record.id, "user": t.record.user, "role": t.record.role}),
            )?;
            // The token alone on stdout, so that `TOKEN=$(sluice auth token create …)` works.
            println!("{}", t.secret);
            eprintln!(
                "Token {} for user `{}` (role {}), {}. It is shown only now: keep it secret.",
                t.record.id,
                t.record.user,
                t.record.role,
                t.record.expires_at.as_deref().map_or_else(
                    || "valid until revoked".to_string(),
                    |e| format!("expires {e}")
                ),
            );
            eprintln!(
                "HTTP: `Authorization: Bearer <token>`; psql: PGPASSWORD=<token> psql -U {} …",
                t.record.user
            );
            if first {
                eprintln!(
                    "This is the first token: `sluice serve` now requires authentication \
                     (restart a server already running without it)."
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenAction::List { json } => {
            let tokens = auth::list_tokens(&state).map_err(|e| anyhow!("{e}"))?;
            if json {
                let rows: Vec<serde_json::Value> = tokens
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "id": t.id, "user": t.user, "role": t.role,
                            "created_at": t.created_at, "expires_at": t.expires_at,
                            "revoked_at": t.revoked_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                let rows = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.clone(),
                            t.user.clone(),
                            t.role.clone(),
                            t.created_at.clone(),
                            t.expires_at.clone().unwrap_or_else(|| "never".to_string()),
                            t.revoked_at.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    table::render(
                        &["id", "user", "role", "created", "expires", "revoked"],
                        rows
                    )
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenAction::Revoke { id } => {
            if !auth::revoke_token(&state, &id).map_err(|e| anyhow!("{e}"))? {
                bail!("no token `{id}` that is not already revoked (see `sluice auth token list`)");
            }
            admin_audit(&state, "token_revoke", serde_json::json!({"token": id}))?;
            println!("Revoked {id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
