//! The least-recently-used set that pass 1's writers keep (the CSV files, [`crate::open_files`], and
//! the Arrow builders, [`crate::segments`]): a `Vec`, least recently used first. Rows usually arrive in
//! time order, so the entry wanted is almost always the last one.

/// Moves the entry for which `matches` holds to the end (the most recently used) and returns true;
/// false, leaving the set as it is, when there is none.
pub(crate) fn touch<T>(set: &mut Vec<T>, matches: impl Fn(&T) -> bool) -> bool {
    match set.iter().rposition(matches) {
        Some(i) => {
            // A no-op for the common repeat.
            if i + 1 != set.len() {
                let entry = set.remove(i);
                set.push(entry);
            }
            true
        }
        None => false,
    }
}

/// Removes and returns the least recently used entry when the set already holds `max_open`.
pub(crate) fn make_room<T>(set: &mut Vec<T>, max_open: usize) -> Option<T> {
    (set.len() >= max_open.max(1)).then(|| set.remove(0))
}
