//! Same config, same bytes; different seed, different data; linear scaling; config validation.

use super::*;
use crate::generator::*;

#[test]
fn same_seed_gives_identical_output() {
    let (a, b) = (ScratchDir::new("same-a"), ScratchDir::new("same-b"));
    let ra = generate(&config(0.05, 7), a.path()).unwrap();
    let rb = generate(&config(0.05, 7), b.path()).unwrap();
    assert_eq!(
        GenerationReport { seconds: 0.0, ..ra },
        GenerationReport { seconds: 0.0, ..rb }
    );
    assert_eq!(text_files(a.path()), text_files(b.path()));
    assert_eq!(dump(&shop_db_path(a.path())), dump(&shop_db_path(b.path())));
}

#[test]
fn different_seed_gives_different_output() {
    let (a, b) = (ScratchDir::new("diff-a"), ScratchDir::new("diff-b"));
    generate(&config(0.05, 7), a.path()).unwrap();
    generate(&config(0.05, 8), b.path()).unwrap();
    for ((name, x), (_, y)) in text_files(a.path()).iter().zip(text_files(b.path())) {
        assert_ne!(*x, y, "{} is the same for seeds 7 and 8", name.display());
    }
    assert_ne!(dump(&shop_db_path(a.path())), dump(&shop_db_path(b.path())));
}

#[test]
fn regenerating_replaces_previous_files_and_keeps_others() {
    let dir = ScratchDir::new("regen");
    generate(&config(0.05, 1), dir.path()).unwrap();
    let first = (text_files(dir.path()), dump(&shop_db_path(dir.path())));
    let stray = events_dir(dir.path()).join("events-0009.jsonl");
    let unrelated = dir.path().join("notes.txt");
    std::fs::write(&stray, "{}\n").unwrap();
    std::fs::write(&unrelated, "keep me").unwrap();
    generate(&config(0.05, 1), dir.path()).unwrap();
    assert_eq!(
        first,
        (text_files(dir.path()), dump(&shop_db_path(dir.path())))
    );
    assert!(!stray.exists(), "old generated event files are removed");
    assert!(
        unrelated.exists(),
        "files the generator did not write are kept"
    );
    let leftovers: Vec<_> = std::fs::read_dir(events_dir(dir.path()))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn counts_scale_linearly() {
    let (a, b) = (ScratchDir::new("lin-a"), ScratchDir::new("lin-b"));
    let small = generate(&config(0.1, 3), a.path()).unwrap();
    let large = generate(&config(0.2, 3), b.path()).unwrap();
    let ratio = |x: u64, y: u64| y as f64 / x as f64;
    for (what, x, y) in [
        ("orders", small.orders, large.orders),
        ("order_items", small.order_items, large.order_items),
        ("payments", small.payments, large.payments),
        ("events", small.events, large.events),
        ("customers", small.customers, large.customers),
        ("crm_accounts", small.crm_accounts, large.crm_accounts),
    ] {
        let r = ratio(x, y);
        assert!((1.8..=2.2).contains(&r), "{what}: {x} -> {y} (x{r})");
    }
    assert_eq!(
        (small.orders, small.customers, small.events),
        (1_000, 200, 5_000)
    );
    let distinct: i64 = scalar(
        &shop_db_path(b.path()),
        "SELECT COUNT(DISTINCT order_id) FROM orders",
    );
    assert_eq!(distinct as u64, large.orders);
    let items: i64 = scalar(&shop_db_path(b.path()), "SELECT COUNT(*) FROM order_items");
    assert_eq!(items as u64, large.order_items);
}

#[test]
fn invalid_scales_are_rejected() {
    let dir = ScratchDir::new("invalid");
    for scale in [0.0, -1.0, f64::NAN, f64::INFINITY, MAX_SCALE * 2.0] {
        let err = generate(&config(scale, 1), dir.path()).unwrap_err();
        assert!(
            matches!(err, GeneratorError::InvalidScale { .. }),
            "{scale}: {err}"
        );
    }
    assert!(!shop_db_path(dir.path()).exists());
}

#[test]
fn defaults_are_scale_one_seed_42() {
    assert_eq!(GeneratorConfig::default(), config(1.0, 42));
    let counts = Counts::for_scale(1.0);
    assert_eq!(
        (
            counts.customers,
            counts.products,
            counts.orders,
            counts.events
        ),
        (2_000, 100, 10_000, 50_000)
    );
}
