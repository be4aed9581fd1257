//! Aggregate statistics over runs, after Agarwal et al. (2021), "Deep RL at the Edge of the
//! Statistical Precipice": interquartile mean, percentile bootstrap confidence intervals
//! (stratified by task; one env is one stratum) and the probability of improvement.
//! The bootstrap is seeded, so reports are reproducible.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// Bootstrap resamples behind every interval.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// The interquartile mean: the mean of the middle 50% of `values` (as scipy's
/// `trim_mean(values, 0.25)`, which drops ⌊n/4⌋ values at each end). NaN when empty.
pub fn iqm(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let cut = sorted.len() / 4;
    let middle = &sorted[cut..sorted.len() - cut];
    middle.iter().sum::<f64>() / middle.len() as f64
}

/// The mean of `values`; NaN when empty.
pub fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n as f64
}

/// The bootstrap seed of figures about `names` (e.g. one agent, or a pair): derived from the
/// names alone, so an agent's interval does not change when others join the report.
pub fn seed_for(names: &[&str]) -> u64 {
    let mut hash = Sha256::new();
    for name in names {
        hash.update(name.as_bytes());
        hash.update([0]);
    }
    u64::from_le_bytes(hash.finalize()[..8].try_into().expect("8 bytes"))
}

/// The median of `values` (the mean of the middle two for an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    (sorted[(n - 1) / 2] + sorted[n / 2]) / 2.0
}

/// A 95% percentile-bootstrap interval of the IQM over runs, resampling runs with replacement
/// ([`BOOTSTRAP_RESAMPLES`] times, from `seed`).
pub fn iqm_interval(values: &[f64], seed: u64) -> (f64, f64) {
    bootstrap_interval(values, seed, iqm)
}

/// A 95% percentile-bootstrap interval of `statistic` over runs, resampling runs with
/// replacement ([`BOOTSTRAP_RESAMPLES`] times, from `seed`). One env is one stratum, so the
/// stratified bootstrap of Agarwal et al. (2021) is this one.
pub fn bootstrap_interval(values: &[f64], seed: u64, statistic: impl Fn(&[f64]) -> f64) -> (f64, f64) {
    let mut resample = vec![0.0; values.len()];
    percentile_interval(seed, |rng| {
        draw(values, &mut resample, rng);
        statistic(&resample)
    })
}

/// The share of `values` strictly above `threshold` (a point of a performance profile).
pub fn fraction_above(values: &[f64], threshold: f64) -> f64 {
    values.iter().filter(|v| **v > threshold).count() as f64 / values.len() as f64
}

/// A 95% percentile-bootstrap interval of P(X > Y), resampling the runs of X and of Y
/// independently ([`BOOTSTRAP_RESAMPLES`] times, from `seed`).
pub fn improvement_interval(x: &[f64], y: &[f64], seed: u64) -> (f64, f64) {
    let (mut rx, mut ry) = (vec![0.0; x.len()], vec![0.0; y.len()]);
    percentile_interval(seed, |rng| {
        draw(x, &mut rx, rng);
        draw(y, &mut ry, rng);
        probability_of_improvement(&rx, &ry)
    })
}

/// Fills `resample` with draws from `values` with replacement.
fn draw(values: &[f64], resample: &mut [f64], rng: &mut ChaCha8Rng) {
    for v in resample.iter_mut() {
        *v = values[rng.random_range(0..values.len())];
    }
}

/// The 2.5% and 97.5% quantiles of `estimate` over [`BOOTSTRAP_RESAMPLES`] resamples.
fn percentile_interval(seed: u64, mut estimate: impl FnMut(&mut ChaCha8Rng) -> f64) -> (f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut estimates: Vec<f64> = (0..BOOTSTRAP_RESAMPLES).map(|_| estimate(&mut rng)).collect();
    estimates.sort_by(f64::total_cmp);
    let at = |q: f64| estimates[((q * (BOOTSTRAP_RESAMPLES - 1) as f64).round()) as usize];
    (at(0.025), at(0.975))
}

/// P(X > Y): the Mann–Whitney statistic over all pairs of runs divided by n_x · n_y, ties
/// counting one half.
pub fn probability_of_improvement(x: &[f64], y: &[f64]) -> f64 {
    let wins: f64 = x
        .iter()
        .flat_map(|a| y.iter().map(move |b| (a, b)))
        .map(|(a, b)| match a.total_cmp(b) {
            std::cmp::Ordering::Greater => 1.0,
            std::cmp::Ordering::Equal => 0.5,
            std::cmp::Ordering::Less => 0.0,
        })
        .sum();
    wins / (x.len() * y.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iqm_drops_a_quarter_at_each_end() {
        assert_eq!(iqm(&[1.0, 2.0, 3.0, 4.0, 100.0]), 3.0);
        assert_eq!(iqm(&[5.0, 1.0, 2.0, 3.0, 4.0, 6.0, 7.0, -50.0]), 3.5);
        assert_eq!(iqm(&[2.0, 4.0]), 3.0);
    }

    #[test]
    fn the_interval_is_seeded_and_brackets_the_iqm() {
        let values = [1.0, 2.5, 3.0, 3.5, 4.0, 4.2, 5.0, 6.0, 7.5, 9.0];
        let (lo, hi) = iqm_interval(&values, 1);
        assert_eq!((lo, hi), iqm_interval(&values, 1));
        assert!(lo <= iqm(&values) && iqm(&values) <= hi);
        assert!(lo < hi);
        assert_eq!(iqm_interval(&[2.0; 5], 3), (2.0, 2.0));
    }

    #[test]
    fn the_improvement_interval_brackets_the_estimate_and_is_seeded() {
        let x = [3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5];
        let y = [2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5];
        let (lo, hi) = improvement_interval(&x, &y, 7);
        assert_eq!((lo, hi), improvement_interval(&x, &y, 7));
        let p = probability_of_improvement(&x, &y);
        assert!(lo < p && p < hi && hi <= 1.0 && lo >= 0.0, "{lo} {p} {hi}");
        assert_eq!(improvement_interval(&[2.0; 4], &[1.0; 4], 1), (1.0, 1.0));
    }

    #[test]
    fn median_and_fraction_above_are_the_textbook_ones() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(fraction_above(&[1.0, 2.0, 3.0, 4.0], 2.0), 0.5);
        let (lo, hi) = bootstrap_interval(&[1.0, 2.0, 3.0, 4.0, 5.0], 9, median);
        assert!(lo <= 3.0 && 3.0 <= hi && lo < hi);
    }

    #[test]
    fn seeds_depend_on_the_names_only() {
        assert_eq!(seed_for(&["dqn"]), seed_for(&["dqn"]));
        assert_ne!(seed_for(&["dqn"]), seed_for(&["q_learning"]));
        assert_ne!(seed_for(&["a", "bc"]), seed_for(&["ab", "c"]));
    }

    #[test]
    fn probability_of_improvement_counts_pairs_and_half_ties() {
        assert_eq!(probability_of_improvement(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        assert_eq!(probability_of_improvement(&[1.0], &[1.0]), 0.5);
        assert_eq!(probability_of_improvement(&[1.0, 3.0], &[2.0]), 0.5);
    }
}
