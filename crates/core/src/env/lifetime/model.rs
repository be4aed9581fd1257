//! The immutable part of the customer-lifetime env: per-user features and the log-odds of each
//! contract's acceptance and of churn, before the dynamic terms (latent, fatigue, holding), and
//! the train/validation/test splits. Built once per snapshot and shared by envs and references.

use uuid::Uuid;

use super::super::config::region_of_nat;
use super::super::contract_choice::{EnvError, Split, split_of};
use super::super::features::{self, bucket};
use super::config::{LifetimeConfig, feature_names};
use crate::record::UserRecord;

/// Entries at the end of the dense observation that describe the cohort's shared resources
/// (handsets in stock, budget left) rather than the user: per-user learners leave them out.
pub const SHARED_DENSE: usize = 2;

/// The logistic function.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Everything about the users and the models that does not change during a campaign.
#[derive(Debug)]
pub struct LifetimeModel {
    config: LifetimeConfig,
    user_ids: Vec<Uuid>,
    feature_names: Vec<String>,
    /// Row-major users × features.
    features: Vec<f64>,
    /// Row-major users × contracts: the acceptance log-odds without latent and fatigue.
    accept_logit: Vec<f64>,
    /// Per user: the churn log-odds without holding and fatigue.
    churn_logit: Vec<f64>,
    age_bucket: Vec<u8>,
    seniority_bucket: Vec<u8>,
    splits: [Vec<u32>; 3],
    dense_len: usize,
}

impl LifetimeModel {
    /// Precomputes the models for a validated config and a snapshot's records.
    pub fn build(config: LifetimeConfig, records: &[UserRecord]) -> Result<Self, EnvError> {
        let names = feature_names(&config.regions);
        let base = features::names(&config.regions).len();
        let of_nat = region_of_nat(&config.regions);
        let weights = |coefficients: &std::collections::BTreeMap<String, f64>| -> Vec<f64> {
            names
                .iter()
                .map(|n| coefficients.get(n).copied().unwrap_or(0.0))
                .collect()
        };
        let contract_weights: Vec<(f64, Vec<f64>)> = config
            .contracts
            .iter()
            .map(|c| (c.response.bias, weights(&c.response.coefficients)))
            .collect();
        let churn_weights = weights(&config.churn.coefficients);
        let dot = |w: &[f64], x: &[f64]| w.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();

        let n = records.len();
        let mut features = vec![0.0; n * names.len()];
        let mut accept_logit = Vec::with_capacity(n * config.contracts.len());
        let mut churn_logit = Vec::with_capacity(n);
        let mut age_bucket = Vec::with_capacity(n);
        let mut seniority_bucket = Vec::with_capacity(n);
        let mut splits: [Vec<u32>; 3] = Default::default();
        for (u, user) in records.iter().enumerate() {
            let x = &mut features[u * names.len()..(u + 1) * names.len()];
            features::user_features(&config.standardise, &of_nat, user, &mut x[..base]);
            let (age, seniority) = (x[0], x[2]);
            x[base] = seniority * seniority;
            x[base + 1] = age * seniority;
            for (bias, w) in &contract_weights {
                accept_logit.push(bias + dot(w, x));
            }
            churn_logit.push(config.churn.bias + dot(&churn_weights, x));
            age_bucket.push(bucket(f64::from(user.age), &config.state.age_edges_years) as u8);
            seniority_bucket.push(bucket(f64::from(user.seniority_years), &config.state.seniority_edges_years) as u8);
            let split = split_of(&user.user_id, config.test_fraction, config.validation_fraction);
            splits[split as usize].push(u as u32);
        }
        for split in [Split::Train, Split::Validation, Split::Test] {
            let have = splits[split as usize].len();
            if have < config.cohort {
                return Err(EnvError::TooFewUsers {
                    split,
                    have,
                    need: config.cohort,
                });
            }
        }
        let dense_len = config.dense_len();
        Ok(Self {
            dense_len,
            user_ids: records.iter().map(|r| r.user_id).collect(),
            feature_names: names,
            features,
            accept_logit,
            churn_logit,
            age_bucket,
            seniority_bucket,
            splits,
            config,
        })
    }

    pub fn config(&self) -> &LifetimeConfig {
        &self.config
    }

    /// "No offer" and one action per contract.
    pub fn n_actions(&self) -> usize {
        self.config.n_actions()
    }

    /// Tabular states ([`LifetimeConfig::tabular_states`]).
    pub fn n_states(&self) -> usize {
        self.config.tabular_states()
    }

    /// Length of the dense observation ([`super::dense_names`]).
    pub fn dense_len(&self) -> usize {
        self.dense_len
    }

    /// Length of the dense observation's part about the user alone: all of it but the shared
    /// resources at its end ([`SHARED_DENSE`]).
    pub fn user_dense_len(&self) -> usize {
        self.dense_len - SHARED_DENSE
    }

    /// Rows of the users of `split`, in snapshot order.
    pub fn split(&self, split: Split) -> &[u32] {
        &self.splits[split as usize]
    }

    /// Disjoint campaigns of `split`: the whole cohorts it holds, consecutive in split order.
    pub fn campaigns(&self, split: Split) -> usize {
        self.split(split).len() / self.config.cohort
    }

    pub fn user_id(&self, user: u32) -> Uuid {
        self.user_ids[user as usize]
    }

    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The features of `user`, in [`Self::feature_names`] order.
    pub fn features(&self, user: u32) -> &[f64] {
        let k = self.feature_names.len();
        &self.features[user as usize * k..(user as usize + 1) * k]
    }

    pub fn age_bucket(&self, user: u32) -> usize {
        usize::from(self.age_bucket[user as usize])
    }

    pub fn seniority_bucket(&self, user: u32) -> usize {
        usize::from(self.seniority_bucket[user as usize])
    }

    /// The month user `i` of a cohort arrives in.
    pub fn arrival_month(&self, i: usize) -> usize {
        i * self.config.arrival_months / self.config.cohort
    }

    /// P(accept) of `contract` (0-based) for `user` with latent log-odds shift `shift` and
    /// `remembered` offers of the months before ([`super::UserState::remembered`]).
    #[inline]
    pub fn accept_prob(&self, user: u32, contract: usize, shift: f64, remembered: u32) -> f64 {
        let k = self.config.contracts.len();
        let logit = self.accept_logit[user as usize * k + contract]
            + shift
            + self.config.fatigue.acceptance * f64::from(remembered);
        sigmoid(logit)
    }

    /// The monthly churn hazard of `user`, holding a contract or not, with `remembered` offers
    /// at the month's close ([`super::UserState::remembered_at_close`]: this month's included).
    #[inline]
    pub fn churn_prob(&self, user: u32, in_contract: bool, remembered: u32) -> f64 {
        let c = &self.config.churn;
        let logit = self.churn_logit[user as usize]
            + if in_contract { c.in_contract } else { 0.0 }
            + self.config.fatigue.churn * f64::from(remembered);
        sigmoid(logit)
    }

    /// Monthly margin of a user holding `holding` (0: no contract, k: contract k − 1).
    #[inline]
    pub fn margin(&self, holding: usize) -> f64 {
        match holding {
            0 => self.config.base_margin,
            k => self.config.contracts[k - 1].margin,
        }
    }
}
