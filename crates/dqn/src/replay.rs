//! The DQN replay buffer: a ring of transitions in flat, contiguous arrays, sampled uniformly
//! with the run's RNG. It stores `terminated`, not `terminated || truncated`: a time limit is
//! not an end of the task. A transition may carry what its decision used of priced resources
//! (an offer's cost, a handset), for learners that relabel rewards at sampled prices.

use rand::RngExt;

use contract_rl_core::agents::AgentRng;

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
}

impl ReplayBuffer {
    /// An empty buffer of `capacity` transitions of `dim`-long observations.
    pub fn new(capacity: usize, dim: usize) -> Self {
        Self {
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
            next_obs,
            terminated,
            next_mask,
        } = t;
        let i = self.next;
        self.uses[i] = uses;
        self.obs[i * self.dim..(i + 1) * self.dim].copy_from_slice(obs);
        self.next_obs[i * self.dim..(i + 1) * self.dim].copy_from_slice(next_obs);
        self.actions[i] = action as u32;
        self.rewards[i] = reward;
        self.terminated[i] = f32::from(u8::from(terminated));
        self.next_masks[i] = next_mask;
        self.next = (i + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// Fills `batch` with `size` transitions drawn uniformly, with replacement.
    pub fn sample(&self, size: usize, rng: &mut AgentRng, batch: &mut Batch) {
        batch.obs.clear();
        batch.next_obs.clear();
        batch.actions.clear();
        batch.rewards.clear();
        batch.terminated.clear();
        batch.next_masks.clear();
        batch.uses.clear();
        for _ in 0..size {
            let i = rng.random_range(0..self.len);
            batch.obs.extend_from_slice(&self.obs[i * self.dim..(i + 1) * self.dim]);
            batch
                .next_obs
                .extend_from_slice(&self.next_obs[i * self.dim..(i + 1) * self.dim]);
            batch.actions.push(i64::from(self.actions[i]));
            batch.rewards.push(self.rewards[i]);
            batch.terminated.push(self.terminated[i]);
            batch.next_masks.push(self.next_masks[i]);
            batch.uses.push(self.uses[i]);
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
            buffer.sample(10, &mut rng, &mut batch);
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
}
