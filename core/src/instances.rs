//! An app's instances: each a pm_id (never reused) and a `NODE_APP_INSTANCE` index, and how
//! `scale` changes them, as PM2 does: scaling down retires the lowest indexes, scaling up
//! gives new ids the lowest free indexes.

/// One instance's numbers: its pm_id and its `NODE_APP_INSTANCE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceNumber {
    pub id: u32,
    pub index: u32,
}

/// The instances of `ids` with their `indexes` (an empty list: their positions, as journals
/// written before indexes were recorded have it).
pub fn paired(ids: &[u32], indexes: &[u32]) -> Vec<InstanceNumber> {
    ids.iter()
        .enumerate()
        .map(|(at, &id)| InstanceNumber {
            id,
            index: indexes.get(at).copied().unwrap_or(at as u32),
        })
        .collect()
}

/// The instances after scaling `current` to `to`, in index order. Down: the lowest indexes
/// go (PM2's order). Up: ids from `next_id` on (which moves past them) take the lowest free
/// indexes, so `scale 4`, `scale 2`, `scale 4` gives back indexes 0 and 1.
pub fn scaled(current: &[InstanceNumber], to: usize, next_id: &mut u32) -> Vec<InstanceNumber> {
    let mut kept = current.to_vec();
    kept.sort_by_key(|i| i.index);
    let surplus = kept.len().saturating_sub(to);
    kept.drain(..surplus);
    let free: Vec<u32> = (0u32..)
        .filter(|index| !kept.iter().any(|i| i.index == *index))
        .take(to.saturating_sub(kept.len()))
        .collect();
    for index in free {
        kept.push(InstanceNumber {
            id: *next_id,
            index,
        });
        *next_id += 1;
    }
    kept.sort_by_key(|i| i.index);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indexes(instances: &[InstanceNumber]) -> Vec<u32> {
        instances.iter().map(|i| i.index).collect()
    }

    fn ids(instances: &[InstanceNumber]) -> Vec<u32> {
        instances.iter().map(|i| i.id).collect()
    }

    #[test]
    fn down_retires_the_lowest_indexes_and_up_fills_them_again() {
        let mut next = 2;
        let two = paired(&[0, 1], &[]);
        let four = scaled(&two, 4, &mut next);
        assert_eq!(
            (ids(&four), indexes(&four)),
            (vec![0, 1, 2, 3], vec![0, 1, 2, 3])
        );
        let down = scaled(&four, 2, &mut next);
        assert_eq!((ids(&down), indexes(&down)), (vec![2, 3], vec![2, 3]));
        let up = scaled(&down, 4, &mut next);
        assert_eq!(
            (ids(&up), indexes(&up)),
            (vec![4, 5, 2, 3], vec![0, 1, 2, 3])
        );
        assert_eq!(next, 6, "ids are never reused");
    }

    #[test]
    fn the_same_count_changes_nothing_and_positions_stand_for_missing_indexes() {
        let mut next = 9;
        let current = paired(&[3, 7, 8], &[]);
        assert_eq!(indexes(&current), vec![0, 1, 2]);
        assert_eq!(scaled(&current, 3, &mut next), current);
        assert_eq!(next, 9);
        assert_eq!(indexes(&paired(&[4, 5], &[2, 0])), vec![2, 0]);
    }

    #[test]
    fn indexes_stay_unique_whatever_the_sequence_of_scales() {
        let mut next = 1;
        let mut current = paired(&[0], &[]);
        for to in [5, 1, 3, 2, 6, 1, 4, 4, 2, 7] {
            current = scaled(&current, to, &mut next);
            let mut seen = indexes(&current);
            assert_eq!(seen.len(), to);
            seen.dedup();
            assert_eq!(seen.len(), to, "{current:?}");
            assert!(seen.iter().all(|&i| i < 7));
        }
    }
}
