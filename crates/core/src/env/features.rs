//! User features shared by the response model, the dense observation and the tabular state.
//!
//! | name            | value                                               |
//! |-----------------|-----------------------------------------------------|
//! | `age`           | (age − age_mean_years) / age_std_years               |
//! | `age_sq`        | `age`², for responses that peak at some age          |
//! | `seniority`     | (seniority − seniority_mean_years) / seniority_std_years |
//! | `female`        | 1 if gender is "female", else 0                     |
//! | `tz_offset`     | UTC offset in hours / tz_offset_scale_hours          |
//! | `region.<name>` | 1 if the user's nat is in that region, else 0       |

use std::collections::BTreeMap;

use crate::record::{NATIONALITIES, UserRecord};
use serde::{Deserialize, Serialize};

/// Fixed standardisation constants (not fitted to the snapshot, so the response model means
/// the same on every snapshot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standardise {
    /// Mean age in years.
    pub age_mean_years: f64,
    /// Standard deviation of age in years; > 0.
    pub age_std_years: f64,
    /// Mean seniority in years.
    pub seniority_mean_years: f64,
    /// Standard deviation of seniority in years; > 0.
    pub seniority_std_years: f64,
    /// Scale of the timezone offset in hours; > 0.
    pub tz_offset_scale_hours: f64,
}

/// Names of the user features, in the order of [`user_features`], for an env's `regions`.
pub fn names(regions: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    ["age", "age_sq", "seniority", "female", "tz_offset"]
        .into_iter()
        .map(str::to_owned)
        .chain(regions.keys().map(|r| format!("region.{r}")))
        .collect()
}

/// Writes the features of `user` into `out` (length `names(regions).len()`), returning the
/// user's region index.
pub fn user_features(s: &Standardise, region_of_nat: &[usize], user: &UserRecord, out: &mut [f64]) -> usize {
    let age = (f64::from(user.age) - s.age_mean_years) / s.age_std_years;
    out[0] = age;
    out[1] = age * age;
    out[2] = (f64::from(user.seniority_years) - s.seniority_mean_years) / s.seniority_std_years;
    out[3] = f64::from(u8::from(user.gender == "female"));
    out[4] = f64::from(user.tz_offset_minutes) / 60.0 / s.tz_offset_scale_hours;
    let nat = NATIONALITIES
        .iter()
        .position(|n| *n == user.nat)
        .expect("records carry a validated nat");
    let region = region_of_nat[nat];
    out[5..].fill(0.0);
    out[5 + region] = 1.0;
    region
}

/// The index of the bucket that `value` falls in, given strictly increasing `edges`
/// (`value < edges[0]` → 0, `edges[i-1] <= value < edges[i]` → i).
pub fn bucket(value: f64, edges: &[f64]) -> usize {
    edges.partition_point(|e| *e <= value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_closed_on_the_left() {
        let edges = [30.0, 45.0, 60.0];
        assert_eq!(bucket(29.9, &edges), 0);
        assert_eq!(bucket(30.0, &edges), 1);
        assert_eq!(bucket(59.0, &edges), 2);
        assert_eq!(bucket(90.0, &edges), 3);
        assert_eq!(bucket(1.0, &[]), 0);
    }
}
