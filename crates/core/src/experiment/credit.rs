//! Per-user credit: the cohort's stream of decisions re-cut into each user's own transitions,
//! for learners of the weakly coupled decomposition (each user's trajectory is the MDP).
//!
//! On the customer-lifetime env one step is one decision about one user, the next observation
//! is usually another user's, and a month's close pays the whole cohort's margins on whichever
//! step closes it. [`UserCredit`] follows the env's per-user ledger ([`Env::ledger`]) instead:
//! a user's decision leads to *the same user's* next decision, and its reward is that user's
//! own margins in between, minus the offer's cost. A user's last decision ends terminated
//! (churn or the campaign's end; these transitions are given when the campaign ends). Over a
//! whole campaign the users' rewards add up to the cohort's return (a test).

use crate::agents::UserTransition;
use crate::env::{Env, Observation, Step};

/// A decision whose user has not been met again yet.
#[derive(Debug, Clone, Copy)]
struct Pending {
    obs: Observation,
    action: usize,
    offer_cost: f64,
    handset: bool,
    /// The user's ledger when the decision was taken.
    margins_before: f64,
}

/// Re-cuts one campaign's steps into per-user transitions.
#[derive(Debug, Clone, Default)]
pub struct UserCredit {
    /// Per cohort slot.
    pending: Vec<Option<Pending>>,
}

impl UserCredit {
    /// Before `env` steps the decision `obs`: the slot it is about and that slot's ledger.
    ///
    /// # Panics
    /// When `env` keeps no ledger or has no decision due.
    pub fn before_step<E: Env + ?Sized>(env: &E) -> (usize, f64) {
        let ledger = env
            .ledger()
            .expect("per-user credit needs an env with a per-user ledger");
        let slot = ledger.current.expect("a decision is due");
        (slot, ledger.margins[slot])
    }

    /// After `env` stepped `action` in `obs` (the decision about `slot`, whose ledger was
    /// `margins_before`): the transitions this completes, in `out`. When the campaign is over,
    /// every user's last transition, terminated (the envs with a ledger never truncate).
    pub fn after_step<E: Env + ?Sized>(
        &mut self,
        env: &E,
        (slot, margins_before): (usize, f64),
        obs: &Observation,
        action: usize,
        step: &Step,
        out: &mut Vec<UserTransition>,
    ) {
        let ledger = env
            .ledger()
            .expect("per-user credit needs an env with a per-user ledger");
        if self.pending.len() < ledger.margins.len() {
            self.pending.resize(ledger.margins.len(), None);
        }
        self.pending[slot] = Some(Pending {
            obs: *obs,
            action,
            offer_cost: step.info.offer_cost,
            handset: step.info.handset,
            margins_before,
        });
        if step.terminated || step.truncated {
            for (slot, pending) in self.pending.iter_mut().enumerate() {
                if let Some(p) = pending.take() {
                    out.push(transition(&p, ledger.margins[slot], p.obs, true));
                }
            }
            return;
        }
        let next = ledger.current.expect("a decision is due while the campaign runs");
        if let Some(p) = self.pending[next].take() {
            out.push(transition(&p, ledger.margins[next], step.obs, false));
        }
    }
}

fn transition(p: &Pending, margins_now: f64, next_obs: Observation, terminated: bool) -> UserTransition {
    UserTransition {
        obs: p.obs,
        action: p.action,
        margins: margins_now - p.margins_before,
        offer_cost: p.offer_cost,
        handset: p.handset,
        next_obs,
        terminated,
    }
}
