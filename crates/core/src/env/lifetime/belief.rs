//! What a policy that does not see a user's latent propensity θ can know of it: the posterior on
//! a quadrature grid of θ under the env's own likelihood (acceptance logistic in θ's log-odds
//! shift, with the fatigue each offer met), and the predictive acceptance of each contract.
//!
//! The grid is Gauss–Legendre on (0, 1) weighted by the Beta prior's density, so expectations of
//! smooth functions of θ (acceptance probabilities and their products) are integrated to high
//! order: with the default 12 points predictive acceptances after up to three answers match
//! those of 32 points to 2e-9 on the sample's users, and the continuous prior's to 1e-6 (a
//! test). Churn does not depend on θ, so answers to offers are all the evidence there is.

use super::config::Latent;
use super::env::Response;
use super::model::LifetimeModel;

/// Most grid points a belief may have.
pub const MAX_POINTS: usize = 32;

/// The latent on a quadrature grid: each point's log-odds shift and prior weight.
#[derive(Debug, Clone, PartialEq)]
pub struct ThetaGrid {
    shifts: Vec<f64>,
    prior: Vec<f64>,
}

impl ThetaGrid {
    /// The default number of points.
    pub const POINTS: usize = 12;

    /// A grid of `points` (1 to [`MAX_POINTS`]) for the prior `latent`.
    pub fn new(latent: &Latent, points: usize) -> Self {
        assert!((1..=MAX_POINTS).contains(&points), "1 to {MAX_POINTS} grid points");
        let (nodes, weights) = gauss_legendre(points);
        let density = |theta: f64| theta.powf(latent.alpha - 1.0) * (1.0 - theta).powf(latent.beta - 1.0);
        let thetas: Vec<f64> = nodes.iter().map(|x| (x + 1.0) / 2.0).collect();
        let mass: Vec<f64> = thetas.iter().zip(&weights).map(|(&t, w)| w * density(t)).collect();
        let total: f64 = mass.iter().sum();
        Self {
            shifts: thetas.iter().map(|&t| latent.shift(t)).collect(),
            prior: mass.iter().map(|m| m / total).collect(),
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.shifts.len()
    }

    /// Whether the grid has no points (never: [`Self::new`] refuses it).
    pub fn is_empty(&self) -> bool {
        self.shifts.is_empty()
    }

    /// Each point's log-odds shift.
    pub fn shifts(&self) -> &[f64] {
        &self.shifts
    }

    /// The prior belief.
    pub fn prior(&self) -> Belief {
        let mut weights = [0.0; MAX_POINTS];
        weights[..self.len()].copy_from_slice(&self.prior);
        Belief {
            weights,
            points: self.len() as u8,
        }
    }
}

/// Posterior weights on the grid's points (they sum to 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Belief {
    weights: [f64; MAX_POINTS],
    points: u8,
}

impl Belief {
    /// The weights, one per grid point.
    pub fn weights(&self) -> &[f64] {
        &self.weights[..usize::from(self.points)]
    }

    /// The posterior after one more answer, given each point's probability `accept` of a yes.
    pub fn update(&self, accept: &[f64], accepted: bool) -> Self {
        let mut next = *self;
        let mut total = 0.0;
        for (w, &p) in next.weights[..usize::from(self.points)].iter_mut().zip(accept) {
            *w *= if accepted { p } else { 1.0 - p };
            total += *w;
        }
        for w in &mut next.weights[..usize::from(self.points)] {
            *w /= total;
        }
        next
    }

    /// The predictive probability of a yes, given each point's probability `accept`.
    pub fn predict(&self, accept: &[f64]) -> f64 {
        self.weights().iter().zip(accept).map(|(w, p)| w * p).sum()
    }

    /// The posterior mean of a function of the grid point.
    pub fn expect(&self, value: impl Fn(usize) -> f64) -> f64 {
        self.weights().iter().enumerate().map(|(g, w)| w * value(g)).sum()
    }
}

/// One user's acceptance probability at every grid point, per contract and remembered-offer
/// count: what every belief update and prediction about that user reads.
#[derive(Debug, Clone)]
pub struct UserLikelihood {
    user: u32,
    points: usize,
    fatigue_levels: usize,
    accept: Vec<f64>,
}

impl UserLikelihood {
    /// The table of `user` on `grid`.
    pub fn new(model: &LifetimeModel, grid: &ThetaGrid, user: u32) -> Self {
        let config = model.config();
        let fatigue_levels = config.fatigue.window_months as usize + 1;
        let accept = (0..config.contracts.len())
            .flat_map(|k| (0..fatigue_levels).map(move |r| (k, r)))
            .flat_map(|(k, r)| {
                grid.shifts()
                    .iter()
                    .map(move |&shift| model.accept_prob(user, k, shift, r as u32))
            })
            .collect();
        Self {
            user,
            points: grid.len(),
            fatigue_levels,
            accept,
        }
    }

    /// The user the table is of.
    pub fn user(&self) -> u32 {
        self.user
    }

    /// P(accept) of `contract` with `remembered` offers, at each grid point.
    #[inline]
    pub fn accept(&self, contract: usize, remembered: usize) -> &[f64] {
        let start = (contract * self.fatigue_levels + remembered) * self.points;
        &self.accept[start..start + self.points]
    }

    /// The posterior after `responses`, from the grid's prior.
    pub fn posterior(&self, grid: &ThetaGrid, responses: &[Response]) -> Belief {
        responses.iter().fold(grid.prior(), |belief, r| {
            belief.update(
                self.accept(usize::from(r.contract), usize::from(r.remembered)),
                r.accepted,
            )
        })
    }

    /// The predictive acceptance of every (contract, remembered offers) under `belief`, in the
    /// order [`super::UserPlan`]'s acceptance tables use.
    pub fn predictive(&self, belief: &Belief) -> Vec<f64> {
        self.accept
            .chunks(self.points)
            .map(|accept| belief.predict(accept))
            .collect()
    }
}

/// Gauss–Legendre nodes and weights on [−1, 1] (Newton's method on the Legendre polynomial).
fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n.div_ceil(2) {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 0.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, x);
            for k in 2..=n {
                let k = k as f64;
                (p0, p1) = (p1, ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k);
            }
            // p1 = P_n(x), p0 = P_{n-1}(x).
            derivative = n as f64 * (x * p1 - p0) / (x * x - 1.0);
            let step = p1 / derivative;
            x -= step;
            if step.abs() < 1e-15 {
                break;
            }
        }
        let w = 2.0 / ((1.0 - x * x) * derivative * derivative);
        nodes[i] = -x;
        nodes[n - 1 - i] = x;
        weights[i] = w;
        weights[n - 1 - i] = w;
    }
    (nodes, weights)
}
