//! Orders, order items and payments of the application database, as plain rows in memory.
//!
//! Kept apart from the SQLite writing (`app_db`) so that the business rules (status mix, amounts,
//! which orders get a payment or a refund, and the deliberate dirt) read on their own and are shared
//! with `append`, which adds more orders to an existing database.

use rand::Rng;
use rand::seq::index;

use super::clock::{DAY, END, HOUR, MINUTE, after_within_range};
use super::world::{World, weighted};
use super::{STREAM_ORDERS, rng_for};

/// Order statuses and their relative weights (percent).
pub(crate) const STATUSES: [(&str, u32); 5] = [
    ("placed", 10),
    ("shipped", 15),
    ("delivered", 60),
    ("cancelled", 8),
    ("abandoned", 7),
];

/// Payment methods and their relative weights.
pub(crate) const METHODS: [(&str, u32); 4] = [
    ("card", 60),
    ("paypal", 25),
    ("bank_transfer", 10),
    ("gift_card", 5),
];

/// Item quantities and their relative weights.
const QUANTITIES: [(i64, u32); 4] = [(1, 70), (2, 20), (3, 7), (4, 3)];

/// Share of orders written twice (exact duplicate rows).
const DUPLICATE_SHARE: f64 = 0.01;
/// Share of orders whose amount is NULL.
const NULL_AMOUNT_SHARE: f64 = 0.005;
/// Share of orders whose amount has its sign flipped.
const NEGATIVE_AMOUNT_SHARE: f64 = 0.003;
/// Share of paid, delivered orders that get a refund.
const REFUND_SHARE: f64 = 0.05;

/// A row of `orders`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Order {
    pub order_id: i64,
    pub customer_id: i64,
    pub status: &'static str,
    /// Sum of its items rounded to cents; `None` or negative for the deliberately dirty rows.
    pub amount: Option<f64>,
    pub order_ts: i64,
    pub updated_at: i64,
}

/// A row of `order_items`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderItem {
    pub order_item_id: i64,
    pub order_id: i64,
    pub product_id: i64,
    pub quantity: i64,
    pub unit_price: f64,
}

/// A row of `payments`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Payment {
    pub payment_id: i64,
    pub order_id: i64,
    /// `payment` or `refund`.
    pub kind: &'static str,
    pub method: &'static str,
    /// Always positive.
    pub amount: f64,
    pub paid_at: i64,
    pub updated_at: i64,
}

/// Everything the sales tables hold.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sales {
    /// Distinct orders, ordered by `order_id` (which increases with `order_ts`).
    pub orders: Vec<Order>,
    /// Indices into `orders` of the orders written a second time, ascending.
    pub duplicates: Vec<usize>,
    pub items: Vec<OrderItem>,
    /// Ordered by `payment_id` (which increases with `paid_at`).
    pub payments: Vec<Payment>,
}

/// `share` of `n`, rounded, at least 1 and at most `n`.
pub(crate) fn share_of(n: usize, share: f64) -> usize {
    ((n as f64 * share).round() as usize).max(1).min(n)
}

/// `x` rounded to cents.
pub(crate) fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// How long after `order_ts` an order in `status` was last updated, at most.
fn status_delay(rng: &mut impl Rng, status: &str) -> i64 {
    match status {
        "shipped" => rng.random_range(6 * HOUR..3 * DAY),
        "delivered" => rng.random_range(2 * DAY..8 * DAY),
        "cancelled" => rng.random_range(10 * MINUTE..2 * DAY),
        "abandoned" => rng.random_range(15 * MINUTE..2 * HOUR),
        _ => 0,
    }
}

/// Draws the items of one order from `catalogue` (`(product_id, price)` pairs): 1 to 4 distinct
/// products (fewer if the catalogue is smaller). Ids start at `next_item_id`, which is advanced.
/// Returns the items and their total rounded to cents.
pub(crate) fn draw_items(
    rng: &mut impl Rng,
    catalogue: &[(i64, f64)],
    order_id: i64,
    next_item_id: &mut i64,
) -> (Vec<OrderItem>, f64) {
    let lines = rng.random_range(1..=4usize).min(catalogue.len());
    let mut picks = index::sample(rng, catalogue.len(), lines).into_vec();
    picks.sort_unstable();
    let mut total = 0.0;
    let items = picks
        .into_iter()
        .map(|pick| {
            let (product_id, unit_price) = catalogue[pick];
            let quantity = weighted(rng, &QUANTITIES);
            total += quantity as f64 * unit_price;
            let item = OrderItem {
                order_item_id: *next_item_id,
                order_id,
                product_id,
                quantity,
                unit_price,
            };
            *next_item_id += 1;
            item
        })
        .collect();
    (items, round_cents(total))
}

/// Whether an order gets a payment: placed, shipped or delivered with a positive amount.
pub(crate) fn is_paid(order: &Order) -> bool {
    matches!(order.status, "placed" | "shipped" | "delivered")
        && order.amount.is_some_and(|a| a > 0.0)
}

/// The payment of a paid order (id 0 until ids are assigned): its full amount, minutes after ordering.
pub(crate) fn payment_for(rng: &mut impl Rng, order: &Order, amount: f64) -> Payment {
    let delay = rng.random_range(5..10 * MINUTE);
    let paid_at = after_within_range(rng, order.order_ts, delay);
    let method = weighted(rng, &METHODS);
    let settle = rng.random_range(0..2 * DAY);
    Payment {
        payment_id: 0,
        order_id: order.order_id,
        kind: "payment",
        method,
        amount,
        paid_at,
        updated_at: after_within_range(rng, paid_at, settle),
    }
}

/// Generates `n_orders` distinct orders with their items and payments for the customers and products
/// of `world`.
pub(crate) fn generate(world: &World, n_orders: u64, seed: u64) -> Sales {
    let mut rng = rng_for(seed, STREAM_ORDERS);
    let catalogue: Vec<(i64, f64)> = world.products.iter().map(|p| (p.id, p.price)).collect();

    let mut orders: Vec<Order> = Vec::with_capacity(n_orders as usize);
    if !world.active.is_empty() && !catalogue.is_empty() {
        for _ in 0..n_orders {
            // Earlier customers order more often: they have been around longer.
            let u: f64 = rng.random();
            let pick =
                ((u.powf(1.3) * world.active.len() as f64) as usize).min(world.active.len() - 1);
            let customer = &world.customers[world.active[pick]];
            let window = (END - HOUR - customer.created_at).max(1);
            let order_ts = customer.created_at + rng.random_range(0..window);
            let status = weighted(&mut rng, &STATUSES);
            let delay = status_delay(&mut rng, status);
            orders.push(Order {
                order_id: 0,
                customer_id: customer.id,
                status,
                amount: None,
                order_ts,
                updated_at: after_within_range(&mut rng, order_ts, delay),
            });
        }
    }
    // Order ids increase with time, as an auto-increment key does.
    orders.sort_by_key(|o| o.order_ts);

    let mut items = Vec::with_capacity(orders.len() * 5 / 2 + 1);
    let mut next_item_id = 1;
    for (order, order_id) in orders.iter_mut().zip(1..) {
        order.order_id = order_id;
        let (mut lines, total) = draw_items(&mut rng, &catalogue, order_id, &mut next_item_id);
        items.append(&mut lines);
        order.amount = Some(total);
    }

    let duplicates = make_dirty(&mut rng, &mut orders);
    let payments = payments(&mut rng, &orders);
    Sales {
        orders,
        duplicates,
        items,
        payments,
    }
}

/// Sets NULL and negative amounts on a few orders and picks a few others to duplicate (all disjoint).
/// Returns the indices to duplicate, ascending.
fn make_dirty(rng: &mut impl Rng, orders: &mut [Order]) -> Vec<usize> {
    let n = orders.len();
    if n == 0 {
        return Vec::new();
    }
    let nulls = share_of(n, NULL_AMOUNT_SHARE);
    let negatives = share_of(n, NEGATIVE_AMOUNT_SHARE);
    let dups = share_of(n, DUPLICATE_SHARE);
    let picked = index::sample(rng, n, (nulls + negatives + dups).min(n)).into_vec();
    let mut picked = picked.into_iter();
    for i in picked.by_ref().take(nulls) {
        orders[i].amount = None;
    }
    for i in picked.by_ref().take(negatives) {
        orders[i].amount = orders[i].amount.map(|a| -a);
    }
    let mut duplicates: Vec<usize> = picked.collect();
    duplicates.sort_unstable();
    duplicates
}

/// Payments of the paid orders, plus refunds of ~5% of the paid, delivered ones; ids by `paid_at`.
fn payments(rng: &mut impl Rng, orders: &[Order]) -> Vec<Payment> {
    let mut payments = Vec::with_capacity(orders.len());
    let mut refundable = Vec::new();
    for order in orders {
        if let Some(amount) = order.amount.filter(|_| is_paid(order)) {
            if order.status == "delivered" {
                refundable.push((payments.len(), order));
            }
            payments.push(payment_for(rng, order, amount));
        }
    }
    if !refundable.is_empty() {
        let count = share_of(refundable.len(), REFUND_SHARE);
        let mut picks = index::sample(rng, refundable.len(), count).into_vec();
        picks.sort_unstable();
        for pick in picks {
            let (payment_index, order) = refundable[pick];
            let (paid, method) = (
                payments[payment_index].amount,
                payments[payment_index].method,
            );
            // Most refunds are full; the others give back part of the order.
            let amount = if rng.random_bool(0.6) {
                paid
            } else {
                round_cents(paid * rng.random_range(0.1..0.9)).clamp(0.01, paid)
            };
            let delay = rng.random_range(DAY..14 * DAY);
            let paid_at = after_within_range(rng, order.updated_at, delay);
            payments.push(Payment {
                payment_id: 0,
                order_id: order.order_id,
                kind: "refund",
                method,
                amount,
                paid_at,
                updated_at: paid_at,
            });
        }
    }
    payments.sort_by_key(|p| (p.paid_at, p.order_id, p.kind));
    for (payment, id) in payments.iter_mut().zip(1..) {
        payment.payment_id = id;
    }
    payments
}

#[cfg(test)]
mod tests {
    use super::super::Counts;
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn sales(scale: f64, seed: u64) -> Sales {
        let counts = Counts::for_scale(scale);
        generate(&World::generate(&counts, seed), counts.orders, seed)
    }

    #[test]
    fn amounts_are_item_totals_except_the_dirty_rows() {
        let s = sales(0.2, 5);
        let mut totals: HashMap<i64, f64> = HashMap::new();
        for item in &s.items {
            *totals.entry(item.order_id).or_default() += item.quantity as f64 * item.unit_price;
        }
        let (mut nulls, mut negatives) = (0, 0);
        for o in &s.orders {
            let total = round_cents(totals[&o.order_id]);
            match o.amount {
                None => nulls += 1,
                Some(a) if a < 0.0 => {
                    negatives += 1;
                    assert!((a + total).abs() < 1e-9);
                }
                Some(a) => assert!(
                    (a - total).abs() < 1e-9,
                    "order {}: {a} vs {total}",
                    o.order_id
                ),
            }
            assert!(o.updated_at >= o.order_ts);
        }
        assert_eq!((nulls, negatives), (10, 6));
        assert_eq!(s.duplicates.len(), 20);
        let avg = s.items.len() as f64 / s.orders.len() as f64;
        assert!((2.3..2.7).contains(&avg), "items per order {avg}");
    }

    #[test]
    fn status_mix_is_roughly_as_specified() {
        let s = sales(0.2, 9);
        let delivered = s.orders.iter().filter(|o| o.status == "delivered").count();
        let share = delivered as f64 / s.orders.len() as f64;
        assert!((0.55..0.65).contains(&share), "delivered share {share}");
        for (status, _) in STATUSES {
            assert!(
                s.orders.iter().any(|o| o.status == status),
                "no {status} order"
            );
        }
    }

    #[test]
    fn payments_follow_the_rules() {
        let s = sales(0.2, 11);
        let orders: HashMap<i64, &Order> = s.orders.iter().map(|o| (o.order_id, o)).collect();
        let paid: HashSet<i64> = s
            .payments
            .iter()
            .filter(|p| p.kind == "payment")
            .map(|p| p.order_id)
            .collect();
        assert_eq!(paid.len(), s.orders.iter().filter(|o| is_paid(o)).count());
        let mut refunds = 0;
        for p in &s.payments {
            let order = orders[&p.order_id];
            let amount = order.amount.unwrap();
            assert!(p.amount > 0.0 && p.amount <= amount + 1e-9);
            if p.kind == "refund" {
                refunds += 1;
                assert_eq!(order.status, "delivered");
            } else {
                assert_eq!(p.amount, amount);
            }
        }
        let delivered_paid = s
            .orders
            .iter()
            .filter(|o| is_paid(o) && o.status == "delivered")
            .count();
        assert_eq!(refunds, share_of(delivered_paid, REFUND_SHARE));
        let ids: Vec<i64> = s.payments.iter().map(|p| p.payment_id).collect();
        assert_eq!(ids, (1..=s.payments.len() as i64).collect::<Vec<_>>());
    }

    #[test]
    fn order_ids_follow_time_and_items_follow_orders() {
        let s = sales(0.05, 2);
        for pair in s.orders.windows(2) {
            assert!(pair[0].order_ts <= pair[1].order_ts && pair[0].order_id < pair[1].order_id);
        }
        assert!(
            s.items
                .iter()
                .all(|i| i.order_id >= 1 && i.order_id <= s.orders.len() as i64)
        );
    }

    #[test]
    fn share_of_is_at_least_one_and_at_most_n() {
        assert_eq!(share_of(100, 0.003), 1);
        assert_eq!(share_of(10_000, 0.003), 30);
        assert_eq!(share_of(1, 0.5), 1);
        assert_eq!(share_of(0, 0.5), 0);
    }
}
