//! The shop's master data: customers and products, shared by every source.
//!
//! Orders, clickstream events and CRM accounts all refer to the same customers and products, so they
//! are generated once, held in memory (linear in scale), and handed to each writer.

use rand::Rng;
use rand::seq::IndexedRandom;

use super::clock::{DAY, END, START};
use super::{Counts, STREAM_WORLD, rng_for};

/// Product categories: (name, SKU prefix, lowest price, highest price, product nouns).
pub(crate) const CATEGORIES: [(&str, &str, f64, f64, &[&str]); 10] = [
    (
        "electronics",
        "ELE",
        19.0,
        899.0,
        &[
            "Headphones",
            "Speaker",
            "Charger",
            "Monitor",
            "Keyboard",
            "Webcam",
        ],
    ),
    (
        "books",
        "BOK",
        5.0,
        45.0,
        &[
            "Novel",
            "Cookbook",
            "Atlas",
            "Biography",
            "Guide",
            "Anthology",
        ],
    ),
    (
        "home",
        "HOM",
        9.0,
        250.0,
        &["Lamp", "Rug", "Cushion", "Kettle", "Clock", "Vase"],
    ),
    (
        "garden",
        "GAR",
        7.0,
        180.0,
        &["Hose", "Planter", "Shears", "Seed Kit", "Bench", "Trowel"],
    ),
    (
        "toys",
        "TOY",
        5.0,
        90.0,
        &[
            "Puzzle",
            "Robot",
            "Plush Bear",
            "Board Game",
            "Kite",
            "Blocks",
        ],
    ),
    (
        "sports",
        "SPO",
        9.0,
        300.0,
        &[
            "Yoga Mat",
            "Dumbbells",
            "Racket",
            "Ball",
            "Bottle",
            "Helmet",
        ],
    ),
    (
        "beauty",
        "BEA",
        3.0,
        80.0,
        &[
            "Serum",
            "Lipstick",
            "Shampoo",
            "Perfume",
            "Face Mask",
            "Lotion",
        ],
    ),
    (
        "grocery",
        "GRO",
        1.0,
        30.0,
        &[
            "Coffee",
            "Olive Oil",
            "Tea",
            "Chocolate",
            "Granola",
            "Honey",
        ],
    ),
    (
        "fashion",
        "FAS",
        11.0,
        220.0,
        &[
            "Jacket", "Sneakers", "Scarf", "T-Shirt", "Jeans", "Backpack",
        ],
    ),
    (
        "automotive",
        "AUT",
        7.0,
        400.0,
        &[
            "Dash Cam",
            "Floor Mats",
            "Jump Starter",
            "Wax",
            "Tyre Gauge",
            "Seat Cover",
        ],
    ),
];

const ADJECTIVES: [&str; 12] = [
    "Classic",
    "Smart",
    "Eco",
    "Deluxe",
    "Compact",
    "Premium",
    "Urban",
    "Nordic",
    "Pro",
    "Essential",
    "Vintage",
    "Ultra",
];

/// First names of customers (and CRM account managers).
pub(crate) const FIRST_NAMES: [&str; 24] = [
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Lucas", "Mia", "Elias", "Sofia", "Mateo", "Hannah",
    "Leon", "Chloe", "Arjun", "Yuki", "Omar", "Ines", "Finn", "Zara", "Jonas", "Priya", "Diego",
    "Freya", "Kenji",
];

/// Last names of customers (and CRM company names).
pub(crate) const LAST_NAMES: [&str; 24] = [
    "Smith",
    "Müller",
    "Garcia",
    "Rossi",
    "Dubois",
    "Jansen",
    "Kowalski",
    "Nielsen",
    "Silva",
    "Brown",
    "Schmidt",
    "Martin",
    "Lopez",
    "Bianchi",
    "Andersson",
    "Novak",
    "Walsh",
    "Tanaka",
    "Khan",
    "Fischer",
    "Moreau",
    "Costa",
    "Berg",
    "Okafor",
];

const EMAIL_DOMAINS: [&str; 5] = [
    "example.com",
    "mail.example",
    "inbox.example",
    "post.example",
    "webmail.example",
];

/// Countries (ISO 3166 alpha-2) with relative weights.
const COUNTRIES: [(&str, u32); 10] = [
    ("US", 35),
    ("GB", 12),
    ("DE", 12),
    ("FR", 9),
    ("CA", 7),
    ("ES", 6),
    ("IT", 6),
    ("NL", 5),
    ("AU", 5),
    ("SE", 3),
];

/// Acquisition channels with relative weights.
pub(crate) const CHANNELS: [(&str, u32); 5] = [
    ("organic", 35),
    ("paid_search", 25),
    ("social", 15),
    ("email", 10),
    ("referral", 15),
];

/// Share of customers that are active (place orders and browse while logged in).
const ACTIVE_SHARE: f64 = 0.7;

/// Customers sign up during the first 80 days, so each has at least 10 days left to order in.
const SIGNUP_DAYS: i64 = 80;

/// A customer of the shop.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Customer {
    /// 1-based id, increasing with `created_at`.
    pub id: i64,
    pub email: String,
    pub full_name: String,
    pub country: &'static str,
    pub acquisition_channel: &'static str,
    pub created_at: i64,
    pub updated_at: i64,
    /// Whether the customer orders and browses logged in.
    pub active: bool,
}

/// A product of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Product {
    /// 1-based id.
    pub id: i64,
    pub sku: String,
    pub name: String,
    pub category: &'static str,
    /// Price in the shop's currency, in whole cents (`x.99` prices).
    pub price: f64,
    pub updated_at: i64,
}

/// Customers and products.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct World {
    /// Ordered by id (and so by `created_at`).
    pub customers: Vec<Customer>,
    /// Ordered by id.
    pub products: Vec<Product>,
    /// Indices into `customers` of the active ones, ascending; never empty when `customers` is not.
    pub active: Vec<usize>,
}

impl World {
    /// Generates `counts.customers` customers and `counts.products` products from `seed`.
    pub(crate) fn generate(counts: &Counts, seed: u64) -> Self {
        let mut rng = rng_for(seed, STREAM_WORLD);
        let products = (1..=counts.products as i64)
            .map(|id| product(&mut rng, id))
            .collect();

        let mut signups: Vec<i64> = (0..counts.customers)
            .map(|_| START + rng.random_range(0..SIGNUP_DAYS * DAY))
            .collect();
        signups.sort_unstable();
        let customers: Vec<Customer> = signups
            .into_iter()
            .zip(1..)
            .map(|(created_at, id)| customer(&mut rng, id, created_at))
            .collect();
        let mut active: Vec<usize> = customers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.active)
            .map(|(i, _)| i)
            .collect();
        if active.is_empty() && !customers.is_empty() {
            active.push(0);
        }
        let mut world = Self {
            customers,
            products,
            active,
        };
        if let Some(&first) = world.active.first() {
            world.customers[first].active = true;
        }
        world
    }
}

fn product(rng: &mut impl Rng, id: i64) -> Product {
    let index = (id - 1) as usize % CATEGORIES.len();
    let (category, prefix, low, high, nouns) = CATEGORIES[index];
    let adjective = ADJECTIVES.choose(rng).copied().unwrap_or("Classic");
    let noun = nouns.choose(rng).copied().unwrap_or("Item");
    // Shop prices end in .99; skew towards the cheap end of the category's range.
    let u: f64 = rng.random();
    let price = (low + (high - low) * u * u).floor() + 0.99;
    Product {
        id,
        sku: format!("{prefix}-{id:05}"),
        name: format!("{adjective} {noun}"),
        category,
        price,
        updated_at: START + rng.random_range(0..30 * DAY),
    }
}

fn customer(rng: &mut impl Rng, id: i64, created_at: i64) -> Customer {
    let first = FIRST_NAMES.choose(rng).copied().unwrap_or("Alex");
    let last = LAST_NAMES.choose(rng).copied().unwrap_or("Doe");
    let domain = EMAIL_DOMAINS.choose(rng).copied().unwrap_or("example.com");
    let country = weighted(rng, &COUNTRIES);
    let acquisition_channel = weighted(rng, &CHANNELS);
    // Most profiles are never edited; the others are edited once, some time after sign-up.
    let updated_at = if rng.random_bool(0.6) {
        created_at
    } else {
        rng.random_range(created_at..END)
    };
    Customer {
        id,
        email: format!("{}.{}{id}@{domain}", ascii_lower(first), ascii_lower(last)),
        full_name: format!("{first} {last}"),
        country,
        acquisition_channel,
        created_at,
        updated_at,
        active: rng.random_bool(ACTIVE_SHARE),
    }
}

/// Lower-cases a name for an e-mail address, folding the few non-ASCII letters the name lists use.
fn ascii_lower(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'ü' | 'Ü' => 'u',
            other => other.to_ascii_lowercase(),
        })
        .collect()
}

/// Picks one value of `table` with probability proportional to its weight.
///
/// `table` is one of this module's constant tables (non-empty, positive total weight); an empty table
/// would yield its fallback `T::default()` rather than panic.
pub(crate) fn weighted<T: Copy + Default>(rng: &mut impl Rng, table: &[(T, u32)]) -> T {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return T::default();
    }
    let mut x = rng.random_range(0..total);
    for &(value, weight) in table {
        if x < weight {
            return value;
        }
        x -= weight;
    }
    T::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::generate(&Counts::for_scale(0.1), 7)
    }

    #[test]
    fn customers_are_ordered_by_signup_and_inside_the_range() {
        let w = world();
        assert_eq!(w.customers.len(), 200);
        for pair in w.customers.windows(2) {
            assert!(pair[0].created_at <= pair[1].created_at);
            assert_eq!(pair[0].id + 1, pair[1].id);
        }
        for c in &w.customers {
            assert!(c.created_at >= START && c.updated_at >= c.created_at && c.updated_at < END);
            assert!(c.email.is_ascii() && c.email.contains('@'), "{}", c.email);
        }
        let emails: std::collections::HashSet<_> = w.customers.iter().map(|c| &c.email).collect();
        assert_eq!(emails.len(), w.customers.len(), "emails are unique");
    }

    #[test]
    fn about_seventy_percent_are_active() {
        let w = world();
        let share = w.active.len() as f64 / w.customers.len() as f64;
        assert!((0.6..0.8).contains(&share), "active share {share}");
        assert!(w.active.iter().all(|&i| w.customers[i].active));
    }

    #[test]
    fn products_cover_all_categories_with_cent_prices() {
        let w = world();
        assert_eq!(w.products.len(), 10);
        let categories: std::collections::HashSet<_> =
            w.products.iter().map(|p| p.category).collect();
        assert_eq!(categories.len(), 10);
        for p in &w.products {
            assert!(p.price > 0.0);
            assert!(((p.price * 100.0).round() - p.price * 100.0).abs() < 1e-6);
        }
    }

    #[test]
    fn weighted_respects_weights_and_survives_an_empty_table() {
        let mut rng = rng_for(1, 99);
        let table = [("a", 1), ("b", 0), ("c", 3)];
        let picks: Vec<&str> = (0..4000).map(|_| weighted(&mut rng, &table)).collect();
        assert!(!picks.contains(&"b"));
        let a = picks.iter().filter(|p| **p == "a").count();
        assert!((800..1200).contains(&a), "a picked {a} times");
        let empty: [(&str, u32); 0] = [];
        assert_eq!(weighted(&mut rng, &empty), "");
    }

    #[test]
    fn tiny_scale_still_has_an_active_customer() {
        let w = World::generate(&Counts::for_scale(0.0001), 3);
        assert_eq!((w.customers.len(), w.products.len()), (1, 1));
        assert_eq!(w.active, vec![0]);
        assert!(w.customers[0].active);
    }
}
