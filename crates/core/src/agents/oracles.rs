//! Oracles that know the env's response model: the myopic oracle (best expected reward now)
//! and the hindsight optimum (knows the whole campaign and assigns contracts exactly under the
//! quotas), the upper bound of every policy. The online oracle is in `online_oracle.rs`.

use std::sync::Arc;

use super::{Agent, AgentRng, masked_argmax};
use crate::env::{ActionMask, EnvModel, Observation, ResetInfo};

/// Offers the valid contract of highest expected reward for the current user.
#[derive(Debug, Clone)]
pub struct MyopicOracle {
    model: Arc<EnvModel>,
}

impl MyopicOracle {
    /// An oracle over `model`'s response model.
    pub fn new(model: Arc<EnvModel>) -> Self {
        Self { model }
    }
}

impl Agent for MyopicOracle {
    fn act(&mut self, obs: &Observation, _rng: &mut AgentRng) -> usize {
        masked_argmax(obs, |a| self.model.expected_reward(obs.user, a)).expect("a valid action")
    }

    fn act_greedy(&mut self, obs: &Observation, rng: &mut AgentRng) -> usize {
        self.act(obs, rng)
    }
}

/// Plans the whole campaign at reset: the assignment of contracts to its users that maximises
/// total expected reward under eligibility and quotas, then follows it.
#[derive(Debug, Clone)]
pub struct HindsightOracle {
    model: Arc<EnvModel>,
    plan: Vec<usize>,
}

impl HindsightOracle {
    /// An oracle over `model`'s response model.
    pub fn new(model: Arc<EnvModel>) -> Self {
        Self {
            model,
            plan: Vec::new(),
        }
    }
}

impl Agent for HindsightOracle {
    fn begin_episode(&mut self, _obs: &Observation, info: &ResetInfo) {
        let users = self.model.campaign(info.split, info.campaign_start);
        let k = self.model.n_actions();
        let values: Vec<f64> = users
            .iter()
            .flat_map(|&u| (0..k).map(move |a| (u, a)))
            .map(|(u, a)| self.model.expected_reward(u, a))
            .collect();
        let eligible: Vec<ActionMask> = users.iter().map(|&u| self.model.eligible(u)).collect();
        self.plan = optimal_assignment(&values, &eligible, self.model.offer_caps());
    }

    fn act(&mut self, obs: &Observation, _rng: &mut AgentRng) -> usize {
        let action = self.plan[obs.t as usize];
        debug_assert!(obs.mask.contains(action), "the plan respects eligibility and quotas");
        action
    }

    fn act_greedy(&mut self, obs: &Observation, rng: &mut AgentRng) -> usize {
        self.act(obs, rng)
    }
}

/// One edge of the flow network, with its reverse at `index ^ 1`.
#[derive(Debug, Clone, Copy)]
struct Edge {
    to: usize,
    capacity: u32,
    cost: f64,
}

/// The assignment of one contract to each of `n` users that maximises the total of `values`
/// (row-major `n × k`), offering each user an eligible contract and contract `a` at most
/// `caps[a]` times (unlimited when `None`).
///
/// Solved exactly as a min-cost flow (source → user → contract → sink) by successive shortest
/// paths with Bellman–Ford queues, which handle the negated values as costs.
///
/// # Panics
/// If no feasible assignment exists (validation guarantees a contract open to all).
pub fn optimal_assignment(values: &[f64], eligible: &[ActionMask], caps: &[Option<u32>]) -> Vec<usize> {
    let n = eligible.len();
    let k = caps.len();
    let (source, sink) = (0, n + k + 1);
    let mut edges: Vec<Edge> = Vec::new();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n + k + 2];
    let mut add = |from: usize, to: usize, capacity: u32, cost: f64| {
        out[from].push(edges.len());
        edges.push(Edge { to, capacity, cost });
        out[to].push(edges.len());
        edges.push(Edge {
            to: from,
            capacity: 0,
            cost: -cost,
        });
    };
    for (u, mask) in eligible.iter().enumerate() {
        add(source, 1 + u, 1, 0.0);
        for a in mask.iter().filter(|a| *a < k) {
            add(1 + u, 1 + n + a, 1, -values[u * k + a]);
        }
    }
    for (a, cap) in caps.iter().enumerate() {
        add(1 + n + a, sink, cap.unwrap_or(n as u32).min(n as u32), 0.0);
    }

    let nodes = n + k + 2;
    for _ in 0..n {
        let mut dist = vec![f64::INFINITY; nodes];
        let mut via = vec![usize::MAX; nodes];
        let mut queued = vec![false; nodes];
        let mut queue = std::collections::VecDeque::from([source]);
        dist[source] = 0.0;
        while let Some(v) = queue.pop_front() {
            queued[v] = false;
            for &e in &out[v] {
                let edge = edges[e];
                if edge.capacity > 0 && dist[v] + edge.cost < dist[edge.to] - 1e-12 {
                    dist[edge.to] = dist[v] + edge.cost;
                    via[edge.to] = e;
                    if !queued[edge.to] {
                        queued[edge.to] = true;
                        queue.push_back(edge.to);
                    }
                }
            }
        }
        assert!(
            dist[sink].is_finite(),
            "no feasible assignment: some user has no eligible contract left"
        );
        let mut v = sink;
        while v != source {
            let e = via[v];
            edges[e].capacity -= 1;
            edges[e ^ 1].capacity += 1;
            v = edges[e ^ 1].to;
        }
    }

    (0..n)
        .map(|u| {
            out[1 + u]
                .iter()
                .map(|&e| edges[e])
                .find(|arc| arc.to > n && arc.to <= n + k && arc.capacity == 0)
                .map(|arc| arc.to - 1 - n)
                .expect("every user is assigned")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn total(values: &[f64], k: usize, plan: &[usize]) -> f64 {
        plan.iter().enumerate().map(|(u, a)| values[u * k + a]).sum()
    }

    fn feasible(plan: &[usize], eligible: &[ActionMask], caps: &[Option<u32>]) -> bool {
        let mut used = vec![0u32; caps.len()];
        for (u, &a) in plan.iter().enumerate() {
            if !eligible[u].contains(a) {
                return false;
            }
            used[a] += 1;
        }
        used.iter().zip(caps).all(|(n, cap)| cap.is_none_or(|c| *n <= c))
    }

    fn brute_force(values: &[f64], eligible: &[ActionMask], caps: &[Option<u32>]) -> f64 {
        let (n, k) = (eligible.len(), caps.len());
        let mut best = f64::NEG_INFINITY;
        for code in 0..k.pow(n as u32) {
            let plan: Vec<usize> = (0..n).map(|u| code / k.pow(u as u32) % k).collect();
            if feasible(&plan, eligible, caps) {
                best = best.max(total(values, k, &plan));
            }
        }
        best
    }

    #[test]
    fn the_assignment_is_optimal_on_random_small_instances() {
        let mut rng = AgentRng::seed_from_u64(3);
        for _ in 0..200 {
            let (n, k) = (rng.random_range(1..7), rng.random_range(2..5));
            let values: Vec<f64> = (0..n * k).map(|_| rng.random_range(-2.0..10.0)).collect();
            let eligible: Vec<ActionMask> = (0..n).map(|_| ActionMask(1 | rng.random_range(0..1u16 << k))).collect();
            let caps: Vec<Option<u32>> = (0..k)
                .map(|a| (a > 0 && rng.random_bool(0.6)).then(|| rng.random_range(0..3)))
                .collect();
            let plan = optimal_assignment(&values, &eligible, &caps);
            assert!(feasible(&plan, &eligible, &caps));
            let expected = brute_force(&values, &eligible, &caps);
            assert!(
                (total(&values, k, &plan) - expected).abs() < 1e-9,
                "{values:?} {eligible:?} {caps:?}"
            );
        }
    }

    #[test]
    fn a_binding_quota_goes_to_the_users_who_gain_most() {
        // Contract 1 is worth more to everyone but may be offered once: user 2 gains most.
        let values = [1.0, 2.0, 1.0, 3.0, 1.0, 9.0];
        let plan = optimal_assignment(&values, &[ActionMask(0b11); 3], &[None, Some(1)]);
        assert_eq!(plan, vec![0, 0, 1]);
    }
}
