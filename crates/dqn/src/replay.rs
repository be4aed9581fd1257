//! The DQN replay buffer: a ring of transitions in flat, contiguous arrays, sampled uniformly
//! with the run's RNG, or in proportion to priorities (Schaul et al. 2016). It stores
//! `terminated`, not `terminated || truncated`: a time limit is not an end of the task. A
//! transition may sum the rewards of several steps (n-step returns), and may carry what its
//! decision used of priced resources (an offer's cost, a handset), for learners that relabel
//! rewards at sampled prices.

use rand::RngExt;

use contract_rl_core::agents::{AgentRng, PrioritizedReplay};

use crate::priorities::SumTree;

/// A fixed-capacity ring of transitions; when full, the oldest is overwritten first.
#[derive(Debug, Clone)]
pub struct ReplayBuffer {
    capacity: usize,
    dim: usize,
    len: usize,
    next: usize,
    obs: Vec<f32>,
    next_obs: Vec<f32>,
    actions: Vec<u32>,
    rewards: Vec<f32>,
    terminated: Vec<f32>,
    next_masks: Vec<u16>,
    uses: Vec<Uses>,
    steps: Vec<u8>,
    /// Prioritized replay: its terms and each slot's priority^α.
    priorities: Option<(PrioritizedReplay, SumTree)>,
}

/// What a decision used of priced resources: its offer's cost and the handsets it took.
pub type Uses = [f32; 2];

/// One transition to store.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    pub obs: &'a [f32],
    pub action: usize,
    pub reward: f32,
    pub uses: Uses,
    /// Env steps whose rewards `reward` sums (n-step returns; 1 otherwise).
    pub steps: u8,
    pub next_obs: &'a [f32],
    /// The task ended: no bootstrap past it.
    pub terminated: bool,
    /// Valid actions in the next observation.
    pub next_mask: u16,
}

/// A sampled minibatch, row-major.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// `[batch × dim]` observations.
    pub obs: Vec<f32>,
    /// `[batch × dim]` next observations.
    pub next_obs: Vec<f32>,
    /// Actions taken.
    pub actions: Vec<i64>,
    /// Rewards received.
    pub rewards: Vec<f32>,
    /// 1 where the transition ended the task.
    pub terminated: Vec<f32>,
    /// Valid actions in the next observation.
    pub next_masks: Vec<u16>,
    /// What each decision used of priced resources.
    pub uses: Vec<Uses>,
    /// Env steps each reward sums.
    pub steps: Vec<u8>,
    /// Prioritized replay: the slots drawn and their importance weights (empty when uniform).
    pub slots: Vec<usize>,
    pub weights: Vec<f32>,
}

impl ReplayBuffer {
    /// An empty buffer of `capacity` transitions of `dim`-long observations, sampled uniformly.
    pub fn new(capacity: usize, dim: usize) -> Self {
        Self::with_priorities(capacity, dim, None)
    }

    /// An empty buffer, sampled by `priorities` when given.
    pub fn with_priorities(capacity: usize, dim: usize, priorities: Option<PrioritizedReplay>) -> Self {
        Self {
            priorities: priorities.map(|p| (p, SumTree::new(capacity))),
            steps: vec![1; capacity],
            capacity,
            dim,
            len: 0,
            next: 0,
            obs: vec![0.0; capacity * dim],
            next_obs: vec![0.0; capacity * dim],
            actions: vec![0; capacity],
            rewards: vec![0.0; capacity],
            terminated: vec![0.0; capacity],
            next_masks: vec![0; capacity],
            uses: vec![[0.0; 2]; capacity],
        }
    }

    /// Transitions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores a transition, overwriting the oldest when full.
    pub fn push(
        &mut self,
        obs: &[f32],
        action: usize,
        reward: f32,
        next_obs: &[f32],
        terminated: bool,
        next_mask: u16,
    ) {
        self.store(Stored {
            obs,
            action,
            reward,
            uses: [0.0; 2],
            steps: 1,
            next_obs,
            terminated,
            next_mask,
        });
    }

    /// Stores a transition that may have used priced resources, overwriting the oldest when
    /// full.
    pub fn store(&mut self, t: Stored) {
        let Stored {
            obs,
            action,
            reward,
            uses,
            steps,
            next_obs,
            terminated,
            next_mask,
        } = t;
        let i = self.next;
        self.uses[i] = uses;
        self.steps[i] = steps;
        if let Some((_, tree)) = &mut self.priorities {
            tree.set(i, tree.max());
        }
        self.obs[i * self.dim..(i + 1) * self.dim].copy_from_slice(obs);
        self.next_obs[i * self.dim..(i + 1) * self.dim].copy_from_slice(next_obs);
        self.actions[i] = action as u32;
        self.rewards[i] = reward;
        self.terminated[i] = f32::from(u8::from(terminated));
        self.next_masks[i] = next_mask;
        self.next = (i + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// Fills `batch` with `size` transitions drawn uniformly, with replacement; with
    /// priorities, one from each of `size` equal shares of their sum (Schaul et al.'s
    /// stratified draw), weighted at `beta`.
    pub fn sample(&self, size: usize, beta: f64, rng: &mut AgentRng, batch: &mut Batch) {
        batch.obs.clear();
        batch.next_obs.clear();
        batch.actions.clear();
        batch.rewards.clear();
        batch.terminated.clear();
        batch.next_masks.clear();
        batch.uses.clear();
        batch.steps.clear();
        batch.slots.clear();
        batch.weights.clear();
        for k in 0..size {
            let i = match &self.priorities {
                None => rng.random_range(0..self.len),
                Some((_, tree)) => {
                    let share = tree.total() / size as f64;
                    let slot = tree.find(share * (k as f64 + rng.random::<f64>()));
                    batch.slots.push(slot);
                    slot
                }
            };
            batch.obs.extend_from_slice(&self.obs[i * self.dim..(i + 1) * self.dim]);
            batch
                .next_obs
                .extend_from_slice(&self.next_obs[i * self.dim..(i + 1) * self.dim]);
            batch.actions.push(i64::from(self.actions[i]));
            batch.rewards.push(self.rewards[i]);
            batch.terminated.push(self.terminated[i]);
            batch.next_masks.push(self.next_masks[i]);
            batch.uses.push(self.uses[i]);
            batch.steps.push(self.steps[i]);
        }
        if let Some((_, tree)) = &self.priorities {
            // w_i = (N · P(i))^−β over the minibatch's largest.
            let n = self.len as f64;
            let raw: Vec<f64> = batch
                .slots
                .iter()
                .map(|&i| (n * tree.get(i) / tree.total()).powf(-beta))
                .collect();
            let max = raw.iter().copied().fold(0.0, f64::max);
            batch.weights.extend(raw.iter().map(|w| (w / max) as f32));
        }
    }

    /// Each held transition's reward, steps and `terminated`, in slot order.
    #[cfg(test)]
    pub(crate) fn held(&self) -> Vec<(f32, u8, f32)> {
        (0..self.len)
            .map(|i| (self.rewards[i], self.steps[i], self.terminated[i]))
            .collect()
    }

    /// Slot `i`'s observation and next observation.
    #[cfg(test)]
    pub(crate) fn row(&self, i: usize) -> (&[f32], &[f32]) {
        let span = i * self.dim..(i + 1) * self.dim;
        (&self.obs[span.clone()], &self.next_obs[span])
    }

    /// Sets the priorities of the slots of `batch` from their TD errors `residuals` (scaled
    /// units); nothing without priorities.
    pub fn update_priorities(&mut self, batch: &Batch, residuals: &[f32]) {
        if let Some((p, tree)) = &mut self.priorities {
            for (&slot, r) in batch.slots.iter().zip(residuals) {
                tree.set(slot, (f64::from(r.abs()) + p.epsilon).powf(p.alpha));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_ring_overwrites_the_oldest_first() {
        let mut buffer = ReplayBuffer::new(3, 1);
        for i in 0..5 {
            buffer.push(&[i as f32], i, i as f32, &[i as f32 + 0.5], false, 1);
        }
        assert_eq!(buffer.len(), 3);
        // 0 and 1 were overwritten by 3 and 4; 2 is the oldest left.
        let mut held = buffer.rewards.clone();
        held.sort_by(f32::total_cmp);
        assert_eq!(held, vec![2.0, 3.0, 4.0]);
        assert_eq!(buffer.obs, vec![3.0, 4.0, 2.0]);
    }

    #[test]
    fn sampling_is_uniform_over_what_is_held() {
        let mut buffer = ReplayBuffer::new(10, 2);
        for i in 0..10 {
            buffer.push(&[i as f32, 0.0], i % 3, i as f32, &[0.0, i as f32], i == 9, 0b111);
        }
        let mut rng = AgentRng::seed_from_u64(4);
        let mut batch = Batch::default();
        let mut counts = [0u32; 10];
        for _ in 0..2000 {
            buffer.sample(10, 1.0, &mut rng, &mut batch);
            for (row, r) in batch.rewards.iter().enumerate() {
                counts[*r as usize] += 1;
                assert_eq!(batch.obs[row * 2], *r, "rows stay aligned");
                assert_eq!(batch.next_obs[row * 2 + 1], *r);
                assert_eq!(batch.terminated[row], f32::from(u8::from(*r == 9.0)));
            }
        }
        // 20,000 draws over 10 slots: each count is 2,000 ± 5 standard deviations (≈ 42).
        for c in counts {
            assert!((1790..=2210).contains(&c), "{counts:?}");
        }
    }

    /// Four slots at TD errors 1, 2, 4 and 8 (α = 1, so priorities in their proportion, and
    /// one at α = 0.5): each is drawn in proportion to its priority, and weighted by
    /// (N·P(i))^−β over the largest weight.
    #[test]
    fn prioritized_sampling_follows_the_priorities() {
        for alpha in [1.0, 0.5] {
            let terms = PrioritizedReplay {
                alpha,
                epsilon: 1e-9,
                ..PrioritizedReplay::default()
            };
            let mut buffer = ReplayBuffer::with_priorities(4, 1, Some(terms));
            for i in 0..4 {
                buffer.push(&[i as f32], 0, i as f32, &[0.0], false, 1);
            }
            let mut batch = Batch::default();
            let mut rng = AgentRng::seed_from_u64(1);
            buffer.sample(4, 0.5, &mut rng, &mut batch);
            // New transitions share the largest priority: uniform, weights all 1.
            assert_eq!(batch.weights, vec![1.0; 4]);
            let errors = [1.0, 2.0, 4.0, 8.0];
            let mut all = batch.clone();
            all.slots = vec![0, 1, 2, 3];
            buffer.update_priorities(&all, &errors);
            let priorities: Vec<f64> = errors.iter().map(|e: &f32| f64::from(*e).powf(alpha)).collect();
            let total: f64 = priorities.iter().sum();
            let mut counts = [0u32; 4];
            for _ in 0..5000 {
                buffer.sample(8, 0.5, &mut rng, &mut batch);
                for (row, &slot) in batch.slots.iter().enumerate() {
                    counts[slot] += 1;
                    assert_eq!(batch.obs[row], slot as f32, "rows follow their slots");
                    let weight = |s: usize| (4.0 * priorities[s] / total).powf(-0.5);
                    let largest = batch.slots.iter().map(|&s| weight(s)).fold(0.0, f64::max);
                    let expected = weight(slot) / largest;
                    assert!((f64::from(batch.weights[row]) - expected).abs() < 1e-6);
                }
            }
            for (slot, c) in counts.iter().enumerate() {
                let expected = 40_000.0 * priorities[slot] / total;
                // Stratified draws vary less than independent ones: 5 binomial deviations bound it.
                let sd = (expected * (1.0 - priorities[slot] / total)).sqrt();
                assert!(
                    (f64::from(*c) - expected).abs() < 5.0 * sd,
                    "α {alpha}: {counts:?} against priorities {priorities:?}"
                );
            }
        }
    }
}
