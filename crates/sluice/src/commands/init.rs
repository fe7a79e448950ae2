//! `sluice init DIR`: a small project that `sluice run` builds without edits.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

const FILES: &[(&str, &str)] = &[
    (
        "sluice.yml",
        "# Your Sluice project. Docs: README.md of Sluice.\nname: my_project\nlake: lake\nstate: .sluice/state.db\n",
    ),
    (
        "sources/files.yml",
        "# A files source: every CSV dropped in data/landing/ lands once in bronze.\nkind: files\ntables:\n  - name: sales\n    path: data/landing/*.csv\n    format: csv\n    primary_key: [sale_id]\n",
    ),
    (
        "data/landing/sales-0001.csv",
        "sale_id,sold_at,region,product,quantity,unit_price\n1,2026-01-01T09:00:00Z,north,widget,2,9.5\n2,2026-01-01T10:30:00Z,south,gadget,1,24.0\n3,2026-01-02T11:00:00Z,north,gadget,3,24.0\n4,2026-01-02T15:45:00Z,west,widget,5,9.5\n",
    ),
    (
        "models/silver/stg_sales.sql",
        "-- One row per sale, typed.\nselect\n    sale_id,\n    cast(sold_at as timestamp) as sold_at,\n    region,\n    product,\n    quantity,\n    unit_price,\n    quantity * unit_price as amount\nfrom {{ source('files', 'sales') }}\n",
    ),
    (
        "models/gold/sales_by_region.sql",
        "-- Revenue per region.\nselect region, count(*) as sales, sum(amount) as revenue\nfrom {{ ref('stg_sales') }}\ngroup by region\n",
    ),
    (
        "models/schema.yml",
        "version: 2\nmodels:\n  - name: stg_sales\n    columns:\n      - name: sale_id\n        tests: [not_null, unique]\n      - name: quantity\n        tests:\n          - range: {min: 1}\n  - name: sales_by_region\n    tests:\n      - row_count: {min: 1}\n",
    ),
    (".gitignore", "lake/\n.sluice/\ntarget/\n"),
];

/// Creates the scaffold; refuses to overwrite an existing project.
pub fn init(dir: &Path) -> Result<ExitCode> {
    if dir.join("sluice.yml").exists() {
        bail!(
            "{} already has a sluice.yml; not overwriting",
            dir.display()
        );
    }
    for (rel, text) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("Created a Sluice project in {}", dir.display());
    println!(
        "Next: cd {} && sluice run && sluice query \"select * from gold.sales_by_region\"",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
