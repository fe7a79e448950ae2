//! The CRM export: `landing/crm/accounts.csv`, one B2B account per ~2 customers.
//!
//! Header `account_id,customer_id,company_name,segment,account_manager,created_at`. Some company names
//! contain a comma and are quoted, as a correct CSV writer does. Exactly two lines are malformed, as a
//! hand-edited export would have them: one where an unquoted comma split the company name (7 fields)
//! and one cut short (3 fields). They sit in the middle of the file, so a reader cannot get away with
//! only checking the first or last rows. Account ids are unique over all lines, malformed ones included.

use std::path::Path;

use rand::Rng;
use rand::seq::{IndexedRandom, index};

use super::clock::{DAY, START, after_within_range, iso};
use super::world::{FIRST_NAMES, LAST_NAMES, World, weighted};
use super::{GeneratorError, STREAM_CRM, publish, tmp_path};

/// The header of `accounts.csv`.
pub(crate) const HEADER: [&str; 6] = [
    "account_id",
    "customer_id",
    "company_name",
    "segment",
    "account_manager",
    "created_at",
];

const SEGMENTS: [(&str, u32); 3] = [("smb", 70), ("mid_market", 22), ("enterprise", 8)];
const COMPANY_WORDS: [&str; 12] = [
    "Harbor",
    "Summit",
    "Blue",
    "Granite",
    "Maple",
    "Northwind",
    "Silver",
    "Cedar",
    "Atlas",
    "Beacon",
    "Orchard",
    "Pioneer",
];
const COMPANY_KINDS: [&str; 8] = [
    "Supply",
    "Trading",
    "Labs",
    "Retail",
    "Foods",
    "Works",
    "Logistics",
    "Studio",
];
const COMPANY_SUFFIXES: [&str; 6] = ["Ltd", "GmbH", "Inc.", "BV", "LLC", "AB"];
const MANAGERS: [&str; 6] = [
    "Dana Whitfield",
    "Marco Ruiz",
    "Aisha Bello",
    "Tom Lindqvist",
    "Mei Chen",
    "Paul Okoro",
];

/// Writes the CRM export for `world` to `path` (through `path.tmp`). Returns the number of
/// well-formed account rows (the 2 malformed lines come on top).
pub(crate) fn write(path: &Path, world: &World, seed: u64) -> Result<u64, GeneratorError> {
    let mut rng = super::rng_for(seed, STREAM_CRM);
    let customers = &world.customers;
    let rows = (customers.len() / 2).max(1).min(customers.len());
    let mut picks = index::sample(&mut rng, customers.len(), rows).into_vec();
    picks.sort_unstable();

    let tmp = tmp_path(path);
    let mut out = csv::WriterBuilder::new()
        .flexible(true)
        .from_path(&tmp)
        .map_err(|source| GeneratorError::Csv {
            path: tmp.clone(),
            line: 1,
            source,
        })?;
    let mut line = 1u64;
    let mut put = |out: &mut csv::Writer<std::fs::File>, fields: &[&str]| {
        let result = out
            .write_record(fields)
            .map_err(|source| GeneratorError::Csv {
                path: tmp.clone(),
                line,
                source,
            });
        line += 1;
        result
    };
    put(&mut out, &HEADER)?;

    // The malformed lines go after a third and after two thirds of the good rows.
    let bad_after = [rows / 3, 2 * rows / 3];
    let mut next_bad = 0;
    for (n, &customer_index) in picks.iter().enumerate() {
        while next_bad < bad_after.len() && bad_after[next_bad] == n && n > 0 {
            let fields = malformed(&mut rng, world, next_bad, rows as u64 + next_bad as u64 + 1)?;
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            put(&mut out, &fields)?;
            next_bad += 1;
        }
        let customer = &customers[customer_index];
        let delay = rng.random_range(0..20 * DAY);
        let created = after_within_range(&mut rng, customer.created_at, delay);
        let account_id = account_id(n as u64 + 1);
        let customer_id = customer.id.to_string();
        let company = company_name(&mut rng);
        let segment = weighted(&mut rng, &SEGMENTS);
        let manager = pick(&mut rng, &MANAGERS);
        let created = iso(created)?;
        put(
            &mut out,
            &[
                &account_id,
                &customer_id,
                &company,
                segment,
                manager,
                &created,
            ],
        )?;
    }
    // Too few rows to put them between good ones: append what is left.
    while next_bad < bad_after.len() {
        let fields = malformed(&mut rng, world, next_bad, rows as u64 + next_bad as u64 + 1)?;
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        put(&mut out, &fields)?;
        next_bad += 1;
    }
    out.flush().map_err(|e| GeneratorError::io(&tmp, e))?;
    drop(out);
    publish(path)?;
    tracing::debug!(path = %path.display(), rows, "wrote CRM accounts");
    Ok(rows as u64)
}

fn account_id(n: u64) -> String {
    format!("ACC-{n:06}")
}

fn pick(rng: &mut impl Rng, words: &[&'static str]) -> &'static str {
    words.choose(rng).copied().unwrap_or("Acme")
}

fn company_name(rng: &mut impl Rng) -> String {
    if rng.random_bool(0.1) {
        // Partnerships: a comma inside a field, quoted by the writer.
        let a = pick(rng, &LAST_NAMES);
        let b = pick(rng, &LAST_NAMES);
        format!("{a}, {b} & Partners")
    } else {
        let word = pick(rng, &COMPANY_WORDS);
        let kind = pick(rng, &COMPANY_KINDS);
        let suffix = pick(rng, &COMPANY_SUFFIXES);
        format!("{word} {kind} {suffix}")
    }
}

/// Malformed line `which` (0: a company name split by an unquoted comma, 7 fields; 1: a line cut
/// short, 3 fields) for account number `n`.
fn malformed(
    rng: &mut impl Rng,
    world: &World,
    which: usize,
    n: u64,
) -> Result<Vec<String>, GeneratorError> {
    let customer_id = world
        .customers
        .choose(rng)
        .map(|c| c.id.to_string())
        .unwrap_or_default();
    let word = pick(rng, &COMPANY_WORDS);
    let first = pick(rng, &FIRST_NAMES);
    Ok(if which == 0 {
        vec![
            account_id(n),
            customer_id,
            format!("{word} Holdings"),
            " Inc.".to_string(),
            "enterprise".to_string(),
            format!("{first} (temp)"),
            iso(START + 45 * DAY)?,
        ]
    } else {
        vec![account_id(n), customer_id, format!("{word} Trad")]
    })
}

#[cfg(test)]
mod tests {
    use super::super::Counts;
    use super::super::tests::ScratchDir;
    use super::*;

    fn write_for(scale: f64) -> (String, u64) {
        let dir = ScratchDir::new(&format!("crm-{scale}"));
        let path = dir.path().join("accounts.csv");
        let world = World::generate(&Counts::for_scale(scale), 3);
        let rows = write(&path, &world, 3).unwrap();
        (std::fs::read_to_string(&path).unwrap(), rows)
    }

    /// Field counts of each line, parsed the way a lenient reader would.
    fn field_counts(text: &str) -> Vec<usize> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .from_reader(text.as_bytes());
        reader.records().map(|r| r.unwrap().len()).collect()
    }

    #[test]
    fn exactly_two_malformed_lines_in_the_middle() {
        for scale in [0.01, 0.1] {
            let (text, rows) = write_for(scale);
            let counts = field_counts(&text);
            assert_eq!(counts.len() as u64, rows + 3, "header + rows + 2 malformed");
            let bad: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] != 6).collect();
            assert_eq!(bad.len(), 2, "scale {scale}: {counts:?}");
            for i in bad {
                assert!(
                    i > 1 && i < counts.len() - 1,
                    "malformed line {i} not in the middle"
                );
            }
        }
    }

    #[test]
    fn account_ids_are_unique_and_commas_are_quoted() {
        let (text, rows) = write_for(0.2);
        assert_eq!(rows, 200);
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        let ids: std::collections::HashSet<&str> = records.iter().map(|r| &r[0]).collect();
        assert_eq!(ids.len(), records.len());
        assert!(
            records.iter().any(|r| r.len() == 6 && r[2].contains(',')),
            "some well-formed company name holds a quoted comma"
        );
        for r in records.iter().filter(|r| r.len() == 6) {
            assert!(["smb", "mid_market", "enterprise"].contains(&&r[3]));
        }
    }
}
