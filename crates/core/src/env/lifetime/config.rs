//! The customer-lifetime env file (`envs/customer-lifetime.toml`): campaign shape, the response
//! and churn models, fatigue, the latent propensity, the shared handset stock and the offer
//! budget. Parsed strictly and validated as a whole before any work.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::super::config::{
    MAX_DENSE, Response, increasing, validate_fractions, validate_regions, validate_response, validate_standardise,
};
use super::super::features::{self, Standardise};
use crate::config::{ConfigError, load_toml};

/// Most contracts the catalogue may hold: actions are "no offer" and one per contract, and the
/// action mask is a 16-bit set.
pub const MAX_LIFETIME_CONTRACTS: usize = 8;
/// Longest campaign, in months.
pub const MAX_MONTHS: usize = 36;
/// Longest fatigue window, in months (the window is a bit set of recent offers).
pub const MAX_FATIGUE_WINDOW: u32 = 6;

/// The whole env file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifetimeConfig {
    /// Always `"customer-lifetime"`: how an env file says which kind it is.
    pub kind: String,
    /// Env name, used in reports.
    pub name: String,
    /// Version of this env definition; bump it when the dynamics change.
    pub version: u32,
    /// Months per campaign (the horizon), in 1..=36.
    pub months: usize,
    /// Users per campaign, in 1..=65535.
    pub cohort: usize,
    /// New users arrive evenly over the first `arrival_months` months (user i of the cohort in
    /// month ⌊i · arrival_months / cohort⌋), in 1..=months.
    pub arrival_months: usize,
    /// A contract holder is up for a decision in the last `renewal_window_months` months of the
    /// contract; users without a contract are up every month.
    pub renewal_window_months: u32,
    /// Share of users held out for the final evaluation, by a hash of `user_id`.
    pub test_fraction: f64,
    /// Share held out for learning curves and tuning; with `test_fraction` below 1.
    pub validation_fraction: f64,
    /// Constants that standardise the numeric features.
    pub standardise: Standardise,
    /// Region name → the `nat` codes it groups; every one of the 21 codes exactly once.
    pub regions: BTreeMap<String, Vec<String>>,
    /// Monthly margin of a user without a contract (pay as you go).
    pub base_margin: f64,
    /// The per-user latent propensity.
    pub latent: Latent,
    /// How recent offers weigh on acceptance and churn.
    pub fatigue: Fatigue,
    /// The monthly churn hazard.
    pub churn: Churn,
    /// The handset stock shared by the contracts with `uses_stock`.
    pub stock: Stock,
    /// Total offer costs a campaign may spend.
    pub budget: f64,
    /// Bucket edges of the tabular state.
    pub state: LifetimeBuckets,
    /// The catalogue; action 0 is "no offer", action i + 1 offers `contracts[i]`.
    pub contracts: Vec<LifetimeContract>,
}

/// The latent propensity θ ~ Beta(alpha, beta), drawn per user at each reset and never
/// observed; it shifts every acceptance log-odds by `weight · (θ − mean) / sd`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latent {
    pub alpha: f64,
    pub beta: f64,
    pub weight: f64,
}

impl Latent {
    /// Mean of θ.
    pub fn mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }

    /// Standard deviation of θ.
    pub fn sd(&self) -> f64 {
        let n = self.alpha + self.beta;
        (self.alpha * self.beta / (n * n * (n + 1.0))).sqrt()
    }

    /// The log-odds shift of a user whose propensity is `theta`.
    pub fn shift(&self, theta: f64) -> f64 {
        self.weight * (theta - self.mean()) / self.sd()
    }
}

/// Contact fatigue: the number of offers a user got in the last `window_months` months.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fatigue {
    /// Months an offer is remembered, in 1..=6.
    pub window_months: u32,
    /// Acceptance log-odds added per remembered offer (≤ 0: offers wear off).
    pub acceptance: f64,
    /// Churn log-odds added per remembered offer (≥ 0: pestered users leave).
    pub churn: f64,
}

/// Monthly churn hazard = sigmoid(bias + Σ coefficients · features + in_contract (when holding
/// a contract) + fatigue.churn · remembered offers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    pub bias: f64,
    /// Log-odds added while the user holds a contract (≤ 0: contracts retain).
    pub in_contract: f64,
    #[serde(default)]
    pub coefficients: BTreeMap<String, f64>,
}

/// The shared handset stock.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stock {
    /// Handsets at the start of a campaign.
    pub initial: u32,
    /// Handsets added at the start of every later month.
    pub monthly: u32,
}

/// Bucket edges of the tabular state (n edges make n + 1 buckets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifetimeBuckets {
    /// Age edges in years.
    pub age_edges_years: Vec<f64>,
    /// Seniority edges in years (of the per-user tabular state only).
    pub seniority_edges_years: Vec<f64>,
    /// Edges on handsets in stock.
    pub stock_edges: Vec<f64>,
    /// Edges on the share of the budget left, in (0, 1].
    pub budget_edges: Vec<f64>,
    /// Edges on the share of the campaign's months done, in (0, 1).
    pub progress_edges: Vec<f64>,
}

/// One contract of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifetimeContract {
    /// Unique name, used in reports.
    pub name: String,
    /// Duration in months, in 1..=36.
    pub months: u32,
    /// Margin per month while the user holds the contract; ≥ 0.
    pub margin: f64,
    /// Cost of making the offer, paid from the budget whether or not it is accepted; ≥ 0.
    pub offer_cost: f64,
    /// Whether an acceptance takes a handset from the stock.
    #[serde(default)]
    pub uses_stock: bool,
    /// P(accept) = sigmoid(bias + Σ coefficients · features + latent shift + fatigue).
    pub response: Response,
}

/// Names of the features the response and churn models may weigh: the shared user features
/// plus `seniority_sq` and `age_x_seniority`.
pub fn feature_names(regions: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut names = features::names(regions);
    names.extend(["seniority_sq", "age_x_seniority"].map(str::to_owned));
    names
}

impl LifetimeConfig {
    /// Reads and validates the env file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let config: Self = load_toml(path)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks every rule a parsed file must also satisfy; `file` is named in errors.
    pub fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        let bad = |field: &str, message: String| Err(ConfigError::invalid(file, field, message));
        if self.kind != "customer-lifetime" {
            return bad(
                "kind",
                format!("must be \"customer-lifetime\" in this file, got {:?}", self.kind),
            );
        }
        if !(1..=MAX_MONTHS).contains(&self.months) {
            return bad("months", format!("must be in 1..={MAX_MONTHS}, got {}", self.months));
        }
        if !(1..=usize::from(u16::MAX)).contains(&self.cohort) {
            return bad("cohort", format!("must be in 1..=65535, got {}", self.cohort));
        }
        if !(1..=self.months).contains(&self.arrival_months) {
            return bad(
                "arrival_months",
                format!("must be in 1..=months ({}), got {}", self.months, self.arrival_months),
            );
        }
        validate_fractions(file, self.test_fraction, self.validation_fraction)?;
        validate_standardise(file, &self.standardise)?;
        validate_regions(file, &self.regions)?;
        let nonnegative = |field: &str, value: f64| {
            if value >= 0.0 && value.is_finite() {
                Ok(())
            } else {
                bad(field, format!("must be a finite number >= 0, got {value}"))
            }
        };
        nonnegative("base_margin", self.base_margin)?;
        nonnegative("budget", self.budget)?;
        let l = &self.latent;
        for (field, value) in [("latent.alpha", l.alpha), ("latent.beta", l.beta)] {
            if !(value > 0.0 && value.is_finite()) {
                return bad(field, format!("must be a positive number, got {value}"));
            }
        }
        nonnegative("latent.weight", l.weight)?;
        let f = &self.fatigue;
        if !(1..=MAX_FATIGUE_WINDOW).contains(&f.window_months) {
            return bad(
                "fatigue.window_months",
                format!("must be in 1..={MAX_FATIGUE_WINDOW}, got {}", f.window_months),
            );
        }
        if !(f.acceptance <= 0.0 && f.acceptance.is_finite()) {
            return bad(
                "fatigue.acceptance",
                format!("must be a finite number <= 0 (offers wear off), got {}", f.acceptance),
            );
        }
        nonnegative("fatigue.churn", f.churn)?;
        let names = feature_names(&self.regions);
        let churn = Response {
            bias: self.churn.bias,
            coefficients: self.churn.coefficients.clone(),
        };
        validate_response(file, "churn", &churn, &names)?;
        if !(self.churn.in_contract <= 0.0 && self.churn.in_contract.is_finite()) {
            return bad(
                "churn.in_contract",
                format!(
                    "must be a finite number <= 0 (contracts retain), got {}",
                    self.churn.in_contract
                ),
            );
        }
        let b = &self.state;
        increasing(file, "state.age_edges_years", &b.age_edges_years, None)?;
        increasing(file, "state.seniority_edges_years", &b.seniority_edges_years, None)?;
        increasing(file, "state.stock_edges", &b.stock_edges, None)?;
        increasing(file, "state.budget_edges", &b.budget_edges, Some((0.0, 1.0)))?;
        increasing(file, "state.progress_edges", &b.progress_edges, Some((0.0, 1.0)))?;
        if self.contracts.is_empty() || self.contracts.len() > MAX_LIFETIME_CONTRACTS {
            return bad(
                "contracts",
                format!(
                    "{} contracts; 1 to {MAX_LIFETIME_CONTRACTS} are supported",
                    self.contracts.len()
                ),
            );
        }
        for (i, c) in self.contracts.iter().enumerate() {
            let field = |name: &str| format!("contracts[{i}].{name}");
            if self.contracts[..i].iter().any(|o| o.name == c.name) {
                return bad(
                    &field("name"),
                    format!("{:?} is used by an earlier contract; names must be unique", c.name),
                );
            }
            if !(1..=MAX_MONTHS as u32).contains(&c.months) {
                return bad(
                    &field("months"),
                    format!("must be in 1..={MAX_MONTHS}, got {}", c.months),
                );
            }
            nonnegative(&field("margin"), c.margin)?;
            nonnegative(&field("offer_cost"), c.offer_cost)?;
            validate_response(file, &field("response"), &c.response, &names)?;
        }
        if self.dense_len() > MAX_DENSE {
            return bad(
                "contracts",
                format!(
                    "the dense observation would have {} entries, at most {MAX_DENSE} are supported: \
                     use fewer regions, contracts or a shorter fatigue window",
                    self.dense_len()
                ),
            );
        }
        Ok(())
    }

    /// Action count: "no offer" and one per contract.
    pub fn n_actions(&self) -> usize {
        self.contracts.len() + 1
    }

    /// Number of per-user tabular states: holding × offers of the fatigue window's months before
    /// (a bit each) × refusals so far (0, 1, 2+) × age buckets × seniority buckets × month.
    pub fn user_states(&self) -> usize {
        let b = &self.state;
        self.n_actions()
            * (1 << self.fatigue.window_months)
            * 3
            * (b.age_edges_years.len() + 1)
            * (b.seniority_edges_years.len() + 1)
            * self.months
    }

    /// Length of the dense observation ([`super::dense_names`]): the features, the holding
    /// one-hot, months left and remembered offers, the window's offer bits, offers and refusals
    /// per contract, and 7 history, time and resource entries.
    pub fn dense_len(&self) -> usize {
        feature_names(&self.regions).len()
            + self.n_actions()
            + 2
            + self.fatigue.window_months as usize
            + 2 * self.contracts.len()
            + 7
    }

    /// Number of tabular states: holding (none or a contract) × remembered offers (0, 1, 2+) ×
    /// history (never offered, never accepted, accepted before) × age × stock × budget ×
    /// progress buckets.
    pub fn tabular_states(&self) -> usize {
        let b = &self.state;
        self.n_actions()
            * 3
            * 3
            * (b.age_edges_years.len() + 1)
            * (b.stock_edges.len() + 1)
            * (b.budget_edges.len() + 1)
            * (b.progress_edges.len() + 1)
    }
}
