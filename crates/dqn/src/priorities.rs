//! The sum tree of prioritized replay (Schaul et al. 2016, appendix B.2.1): each slot's
//! priority at a leaf, each inner node the sum of its children, so drawing a slot with
//! probability proportional to its priority and updating one take O(log n).

/// Priorities of a ring's slots, with their sum and the largest ever set.
#[derive(Debug, Clone)]
pub(crate) struct SumTree {
    /// Leaves start at `leaves`; node `i`'s children are `2i` and `2i + 1`; node 1 is the root.
    nodes: Vec<f64>,
    leaves: usize,
    max: f64,
}

impl SumTree {
    /// A tree of `capacity` slots, all at priority 0.
    pub(crate) fn new(capacity: usize) -> Self {
        let leaves = capacity.next_power_of_two();
        Self {
            nodes: vec![0.0; 2 * leaves],
            leaves,
            max: 1.0,
        }
    }

    /// The sum of all priorities.
    pub(crate) fn total(&self) -> f64 {
        self.nodes[1]
    }

    /// The priority of `slot`.
    pub(crate) fn get(&self, slot: usize) -> f64 {
        self.nodes[self.leaves + slot]
    }

    /// The largest priority set so far (1 before any): what a new transition gets.
    pub(crate) fn max(&self) -> f64 {
        self.max
    }

    /// Sets `slot`'s priority.
    pub(crate) fn set(&mut self, slot: usize, priority: f64) {
        self.max = self.max.max(priority);
        let mut i = self.leaves + slot;
        self.nodes[i] = priority;
        while i > 1 {
            i /= 2;
            self.nodes[i] = self.nodes[2 * i] + self.nodes[2 * i + 1];
        }
    }

    /// The slot whose share of the cumulative sum holds `mass` (in [0, total)).
    pub(crate) fn find(&self, mut mass: f64) -> usize {
        let mut i = 1;
        while i < self.leaves {
            let left = self.nodes[2 * i];
            if mass < left || self.nodes[2 * i + 1] <= 0.0 {
                i *= 2;
            } else {
                mass -= left;
                i = 2 * i + 1;
            }
        }
        i - self.leaves
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_follow_updates_and_find_inverts_the_cumulative_sum() {
        let mut tree = SumTree::new(5);
        for (slot, p) in [1.0, 2.0, 3.0, 4.0, 0.0].into_iter().enumerate() {
            tree.set(slot, p);
        }
        assert_eq!(tree.total(), 10.0);
        tree.set(1, 6.0);
        assert_eq!((tree.total(), tree.get(1), tree.max()), (14.0, 6.0, 6.0));
        // Cumulative sums: [0, 1) → 0, [1, 7) → 1, [7, 10) → 2, [10, 14) → 3; slot 4 never.
        for (mass, slot) in [
            (0.0, 0),
            (0.99, 0),
            (1.0, 1),
            (6.99, 1),
            (7.0, 2),
            (10.0, 3),
            (13.99, 3),
        ] {
            assert_eq!(tree.find(mass), slot, "mass {mass}");
        }
    }
}
