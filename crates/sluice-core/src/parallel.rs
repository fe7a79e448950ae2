//! Spreading independent per-file work (reading, rendering) of a large project over the cores.

/// Maps `f` over `items` on up to one thread per core, each taking a contiguous share of at least
/// `min_per_thread` items, and returns the results in the order of `items`. A panic in `f` is
/// re-raised on the calling thread.
///
/// ```
/// let squares = sluice_core::parallel::map_ordered(&[1, 2, 3], 1, |x| x * x);
/// assert_eq!(squares, [1, 4, 9]);
/// ```
pub fn map_ordered<T, R, F>(items: &[T], min_per_thread: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .min(items.len() / min_per_thread.max(1))
        .max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let parts: Vec<_> = items
            .chunks(per)
            .map(|part| s.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::map_ordered;

    #[test]
    fn keeps_the_order_of_the_items() {
        let items: Vec<u32> = (0..10_000).collect();
        let out = map_ordered(&items, 16, |x| x * 2);
        assert_eq!(out.len(), items.len());
        assert!(out.iter().enumerate().all(|(i, x)| *x == 2 * i as u32));
        assert!(map_ordered(&[] as &[u32], 16, |x| *x).is_empty());
    }
}
