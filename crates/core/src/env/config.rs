//! The env file (`envs/*.toml`): contract catalogue, response model, standardisation, tabular
//! buckets, campaign length and train/test split. Parsed strictly, then validated as a whole by
//! [`EnvConfig::load`] so that a bad file stops the run before any work.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::features::{self, Standardise};
use crate::config::{ConfigError, load_toml};
use crate::record::NATIONALITIES;

/// Most contracts a catalogue may hold (the action mask is a 16-bit set).
pub const MAX_CONTRACTS: usize = 16;

/// Room for the longest dense observation a valid env file can give: 5 numeric features, one
/// region per nationality at most, one quota per contract at most, and progress.
pub const MAX_DENSE: usize = 48;
/// Most tabular states an env may have (a Q table of 2^24 states × 16 actions is 2 GiB).
pub const MAX_TABULAR_STATES: usize = 1 << 24;

const LONGEST_DENSE: usize = 5 + NATIONALITIES.len() + MAX_CONTRACTS + 1;
const _: () = assert!(LONGEST_DENSE <= MAX_DENSE);

/// A whole env file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// Env name, used in reports.
    pub name: String,
    /// Version of this env definition; bump it when the dynamics change.
    pub version: u32,
    /// Users per campaign (episode length), in 1..=65535.
    pub episode_len: usize,
    /// Share of users held out for the final evaluation (test), chosen by a hash of `user_id`.
    pub test_fraction: f64,
    /// Share of users held out for learning curves and tuning (validation), chosen by the same
    /// hash; `test_fraction + validation_fraction` is below 1, the rest trains.
    pub validation_fraction: f64,
    /// Constants that standardise the numeric features.
    pub standardise: Standardise,
    /// Region name → the `nat` codes it groups; every one of the 21 codes exactly once.
    pub regions: BTreeMap<String, Vec<String>>,
    /// Bucket edges of the tabular state.
    pub state: StateBuckets,
    /// The catalogue: one action per contract, in this order.
    pub contracts: Vec<ContractConfig>,
}

/// Bucket edges of the discrete state used by tabular agents. Edges are strictly increasing;
/// `n` edges make `n + 1` buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateBuckets {
    /// Age edges in years.
    pub age_edges_years: Vec<f64>,
    /// Seniority edges in years.
    pub seniority_edges_years: Vec<f64>,
    /// Edges on the remaining share of each quota, in (0, 1]; an exhausted quota is a bucket of
    /// its own.
    pub quota_remaining_edges: Vec<f64>,
    /// Edges on the share of the campaign already done, in (0, 1).
    pub progress_edges: Vec<f64>,
}

/// One contract of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractConfig {
    /// Unique name, used in reports.
    pub name: String,
    /// Value of an accepted offer; >= 0.
    pub margin: f64,
    /// Cost of making the offer, paid whether or not it is accepted; >= 0.
    pub offer_cost: f64,
    /// Youngest eligible age in years (inclusive).
    #[serde(default)]
    pub min_age_years: Option<i32>,
    /// Oldest eligible age in years (inclusive).
    #[serde(default)]
    pub max_age_years: Option<i32>,
    /// Most offers of this contract per campaign, as a share of `episode_len` in [0, 1].
    #[serde(default)]
    pub quota: Option<f64>,
    /// Response model: P(accept) = sigmoid(bias + Σ coefficients[f] · feature f).
    pub response: Response,
}

/// The logistic response model of one contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// Log-odds of acceptance when every feature is 0.
    pub bias: f64,
    /// Feature name → coefficient; names from [`features::names`].
    #[serde(default)]
    pub coefficients: BTreeMap<String, f64>,
}

impl ContractConfig {
    /// Offers allowed per campaign of `episode_len` users; `None` when unlimited.
    pub fn offer_cap(&self, episode_len: usize) -> Option<u32> {
        self.quota.map(|q| (q * episode_len as f64).round() as u32)
    }

    /// Whether a user of `age` may be offered this contract.
    pub fn eligible(&self, age: i32) -> bool {
        self.min_age_years.is_none_or(|m| age >= m) && self.max_age_years.is_none_or(|m| age <= m)
    }
}

impl EnvConfig {
    /// Reads and validates the env file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let config: Self = load_toml(path)?;
        config.validate(path)?;
        Ok(config)
    }

    /// The region index of each nat code, in [`NATIONALITIES`] order.
    pub fn region_of_nat(&self) -> [usize; NATIONALITIES.len()] {
        region_of_nat(&self.regions)
    }

    /// Checks every rule a parsed file must also satisfy; `file` is named in errors.
    pub fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        let bad = |field: &str, message: String| Err(ConfigError::invalid(file, field, message));
        if !(1..=usize::from(u16::MAX)).contains(&self.episode_len) {
            return bad("episode_len", format!("must be in 1..=65535, got {}", self.episode_len));
        }
        validate_fractions(file, self.test_fraction, self.validation_fraction)?;
        validate_standardise(file, &self.standardise)?;
        validate_regions(file, &self.regions)?;
        let b = &self.state;
        increasing(file, "state.age_edges_years", &b.age_edges_years, None)?;
        increasing(file, "state.seniority_edges_years", &b.seniority_edges_years, None)?;
        increasing(
            file,
            "state.quota_remaining_edges",
            &b.quota_remaining_edges,
            Some((0.0, 1.0)),
        )?;
        increasing(file, "state.progress_edges", &b.progress_edges, Some((0.0, 1.0)))?;
        self.validate_contracts(file)?;
        if self.tabular_states().is_none_or(|n| n > MAX_TABULAR_STATES) {
            let quotas = self.contracts.iter().filter(|c| c.quota.is_some()).count();
            return bad(
                "state",
                format!(
                    "the tabular state has more than {MAX_TABULAR_STATES} states (age × seniority × gender × region × \
                     quota buckets^{quotas} × progress buckets); use fewer bucket edges, regions or quota'd contracts"
                ),
            );
        }
        Ok(())
    }

    /// Number of tabular states: age × seniority × gender × region × (quota buckets per quota'd
    /// contract) × progress buckets; `None` when it overflows.
    pub fn tabular_states(&self) -> Option<usize> {
        let b = &self.state;
        let quotas = self.contracts.iter().filter(|c| c.quota.is_some()).count() as u32;
        let quota_buckets = (b.quota_remaining_edges.len() + 2).checked_pow(quotas)?;
        [
            b.age_edges_years.len() + 1,
            b.seniority_edges_years.len() + 1,
            2,
            self.regions.len(),
            quota_buckets,
            b.progress_edges.len() + 1,
        ]
        .into_iter()
        .try_fold(1usize, usize::checked_mul)
    }

    fn validate_contracts(&self, file: &Path) -> Result<(), ConfigError> {
        if self.contracts.is_empty() {
            return Err(ConfigError::invalid(
                file,
                "contracts",
                "the catalogue is empty; at least one contract is needed",
            ));
        }
        if self.contracts.len() > MAX_CONTRACTS {
            return Err(ConfigError::invalid(
                file,
                "contracts",
                format!(
                    "{} contracts; at most {MAX_CONTRACTS} are supported",
                    self.contracts.len()
                ),
            ));
        }
        let feature_names = features::names(&self.regions);
        for (i, c) in self.contracts.iter().enumerate() {
            let field = |name: &str| format!("contracts[{i}].{name}");
            let bad = |name: &str, message: String| Err(ConfigError::invalid(file, field(name), message));
            if self.contracts[..i].iter().any(|o| o.name == c.name) {
                return bad(
                    "name",
                    format!("{:?} is used by an earlier contract; names must be unique", c.name),
                );
            }
            if !(c.margin >= 0.0 && c.margin.is_finite()) {
                return bad("margin", format!("must be a finite number >= 0, got {}", c.margin));
            }
            if !(c.offer_cost >= 0.0 && c.offer_cost.is_finite()) {
                return bad(
                    "offer_cost",
                    format!("must be a finite number >= 0, got {}", c.offer_cost),
                );
            }
            if let Some(q) = c.quota {
                if !(0.0..=1.0).contains(&q) {
                    return bad("quota", format!("must be in [0, 1] (a share of episode_len), got {q}"));
                }
                // A share must give a whole number of offers: 0.29 of 100 is 29 offers, not the
                // 28 that 0.29 × 100 = 28.999… would floor to.
                let offers = q * self.episode_len as f64;
                if (offers - offers.round()).abs() > 1e-9 {
                    let len = self.episode_len as f64;
                    return bad(
                        "quota",
                        format!(
                            "{q} of episode_len {} is {offers} offers, not a whole number; the nearest valid shares are {} and {}",
                            self.episode_len,
                            offers.floor() / len,
                            offers.ceil() / len
                        ),
                    );
                }
            }
            if let (Some(lo), Some(hi)) = (c.min_age_years, c.max_age_years)
                && lo > hi
            {
                return bad("max_age_years", format!("{hi} is below min_age_years {lo}"));
            }
            validate_response(file, &field("response"), &c.response, &feature_names)?;
        }
        let fallback = self
            .contracts
            .iter()
            .any(|c| c.min_age_years.is_none() && c.max_age_years.is_none() && c.quota.is_none());
        if !fallback {
            return Err(ConfigError::invalid(
                file,
                "contracts",
                "no contract is open to every user without a quota; add one (e.g. a no-commitment monthly plan) so every user can always be offered something",
            ));
        }
        Ok(())
    }
}

/// The region index of each nat code of validated `regions`, in [`NATIONALITIES`] order.
pub fn region_of_nat(regions: &BTreeMap<String, Vec<String>>) -> [usize; NATIONALITIES.len()] {
    let mut of_nat = [0; NATIONALITIES.len()];
    for (r, nats) in regions.values().enumerate() {
        for nat in nats {
            let i = NATIONALITIES.iter().position(|n| n == nat).expect("validated");
            of_nat[i] = r;
        }
    }
    of_nat
}

/// Checks the held-out shares: each in (0, 1), together below 1.
pub(super) fn validate_fractions(file: &Path, test: f64, validation: f64) -> Result<(), ConfigError> {
    for (field, value) in [("test_fraction", test), ("validation_fraction", validation)] {
        if !(value > 0.0 && value < 1.0) {
            return Err(ConfigError::invalid(
                file,
                field,
                format!("must be in (0, 1), got {value}"),
            ));
        }
    }
    if test + validation >= 1.0 {
        return Err(ConfigError::invalid(
            file,
            "validation_fraction",
            format!("test_fraction + validation_fraction must leave users to train on, got {test} + {validation}"),
        ));
    }
    Ok(())
}

/// Checks that the standardisation scales are positive.
pub(super) fn validate_standardise(file: &Path, s: &Standardise) -> Result<(), ConfigError> {
    for (field, value) in [
        ("standardise.age_std_years", s.age_std_years),
        ("standardise.seniority_std_years", s.seniority_std_years),
        ("standardise.tz_offset_scale_hours", s.tz_offset_scale_hours),
    ] {
        if !(value > 0.0 && value.is_finite()) {
            return Err(ConfigError::invalid(
                file,
                field,
                format!("must be a positive number, got {value}"),
            ));
        }
    }
    Ok(())
}

/// Checks a response model at `field`: a finite bias, and finite coefficients of features in
/// `feature_names` only.
pub(super) fn validate_response(
    file: &Path,
    field: &str,
    response: &Response,
    feature_names: &[String],
) -> Result<(), ConfigError> {
    if !response.bias.is_finite() {
        return Err(ConfigError::invalid(file, format!("{field}.bias"), "must be finite"));
    }
    for (name, value) in &response.coefficients {
        let coef_field = format!("{field}.coefficients.{name}");
        if !feature_names.contains(name) {
            return Err(ConfigError::invalid(
                file,
                coef_field,
                format!("unknown feature; allowed: {}", feature_names.join(", ")),
            ));
        }
        if !value.is_finite() {
            return Err(ConfigError::invalid(file, coef_field, "must be finite"));
        }
    }
    Ok(())
}

/// Checks that `regions` group every nat code exactly once.
pub(super) fn validate_regions(file: &Path, regions: &BTreeMap<String, Vec<String>>) -> Result<(), ConfigError> {
    if regions.is_empty() {
        return Err(ConfigError::invalid(file, "regions", "at least one region is needed"));
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (region, nats) in regions {
        for nat in nats {
            let field = format!("regions.{region}");
            if !NATIONALITIES.contains(&nat.as_str()) {
                return Err(ConfigError::invalid(
                    file,
                    field,
                    format!("unknown nat {nat:?}; allowed: {}", NATIONALITIES.join(", ")),
                ));
            }
            if let Some(other) = seen.insert(nat, region) {
                return Err(ConfigError::invalid(
                    file,
                    field,
                    format!("{nat} is already in region {other}"),
                ));
            }
        }
    }
    let missing: Vec<&str> = NATIONALITIES
        .iter()
        .copied()
        .filter(|n| !seen.contains_key(n))
        .collect();
    if !missing.is_empty() {
        return Err(ConfigError::invalid(
            file,
            "regions",
            format!("every nat needs a region; missing: {}", missing.join(", ")),
        ));
    }
    Ok(())
}

pub(super) fn increasing(
    file: &Path,
    field: &str,
    edges: &[f64],
    open_range: Option<(f64, f64)>,
) -> Result<(), ConfigError> {
    if let Some(e) = edges.iter().find(|e| !e.is_finite()) {
        return Err(ConfigError::invalid(file, field, format!("edge {e} is not finite")));
    }
    if let Some(w) = edges.windows(2).find(|w| w[0] >= w[1]) {
        return Err(ConfigError::invalid(
            file,
            field,
            format!(
                "edges must be strictly increasing, but {} is followed by {}",
                w[0], w[1]
            ),
        ));
    }
    if let Some((lo, hi)) = open_range
        && let Some(e) = edges.iter().find(|e| **e <= lo || **e > hi)
    {
        return Err(ConfigError::invalid(
            file,
            field,
            format!("edge {e} is outside ({lo}, {hi}]"),
        ));
    }
    Ok(())
}
