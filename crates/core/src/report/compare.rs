//! Comparing agents over the final test scores of their runs, after Agarwal et al. (2021): IQM,
//! median and mean with 95% bootstrap intervals, the probability of improvement between every
//! pair with its interval, and performance profiles (the share of runs above each score
//! threshold) with bands. Every bootstrap is seeded from the names of the agents it concerns
//! (as named in their experiments), so an agent's aggregates and P(improvement) do not move when
//! another agent joins the comparison; the profiles' thresholds span the scores compared.

use std::fmt::Write;

use super::stats::{
    bootstrap_interval, fraction_above, improvement_interval, iqm, iqm_interval, mean, median,
    probability_of_improvement, seed_for,
};

/// Thresholds of a performance profile: evenly spaced from the lowest to the highest score.
pub const PROFILE_POINTS: usize = 11;

/// A point estimate with its 95% bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// One agent's runs: its final test score per seed.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRuns {
    /// The label in the comparison.
    pub agent: String,
    /// The name in its experiment, which seeds its bootstraps (equal to `agent` unless the
    /// comparison had to tell two agents of one name apart).
    pub name: String,
    pub scores: Vec<f64>,
}

/// One agent's aggregates over its runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregates {
    pub agent: String,
    pub runs: usize,
    pub iqm: Estimate,
    pub median: Estimate,
    pub mean: Estimate,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// What the scores are, e.g. "expected return".
    pub score: String,
    /// Which campaigns scored the runs: "test" (the default), or "validation" when tuning.
    pub campaigns: String,
    pub agents: Vec<Aggregates>,
    /// `improvement[i][j]`: P(agent i > agent j).
    pub improvement: Vec<Vec<Estimate>>,
    /// The performance profiles' thresholds.
    pub thresholds: Vec<f64>,
    /// `profiles[i][k]`: the share of agent i's runs above `thresholds[k]`.
    pub profiles: Vec<Vec<Estimate>>,
}

impl Comparison {
    /// Compares `runs` (in report order) on scores called `score`.
    pub fn new(score: &str, runs: &[AgentRuns]) -> Self {
        let estimate = |values: &[f64], seed: u64, statistic: fn(&[f64]) -> f64| {
            let (ci_low, ci_high) = bootstrap_interval(values, seed, statistic);
            Estimate {
                value: statistic(values),
                ci_low,
                ci_high,
            }
        };
        let agents = runs
            .iter()
            .map(|r| {
                let (ci_low, ci_high) = iqm_interval(&r.scores, seed_for(&[&r.name]));
                Aggregates {
                    agent: r.agent.clone(),
                    runs: r.scores.len(),
                    iqm: Estimate {
                        value: iqm(&r.scores),
                        ci_low,
                        ci_high,
                    },
                    median: estimate(&r.scores, seed_for(&[&r.name, "median"]), median),
                    mean: estimate(&r.scores, seed_for(&[&r.name, "mean"]), |v| mean(v.iter().copied())),
                }
            })
            .collect();
        let improvement = runs
            .iter()
            .map(|x| {
                runs.iter()
                    .map(|y| {
                        let (ci_low, ci_high) =
                            improvement_interval(&x.scores, &y.scores, seed_for(&[&x.name, &y.name]));
                        Estimate {
                            value: probability_of_improvement(&x.scores, &y.scores),
                            ci_low,
                            ci_high,
                        }
                    })
                    .collect()
            })
            .collect();
        let all = runs.iter().flat_map(|r| r.scores.iter().copied());
        let (low, high) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
        let thresholds: Vec<f64> = (0..PROFILE_POINTS)
            .map(|k| low + (high - low) * k as f64 / (PROFILE_POINTS - 1) as f64)
            .collect();
        let profiles = runs
            .iter()
            .map(|r| {
                thresholds
                    .iter()
                    .map(|&t| {
                        let seed = seed_for(&[&r.name, "profile"]);
                        let (ci_low, ci_high) = bootstrap_interval(&r.scores, seed, |v| fraction_above(v, t));
                        Estimate {
                            value: fraction_above(&r.scores, t),
                            ci_low,
                            ci_high,
                        }
                    })
                    .collect()
            })
            .collect();
        Self {
            score: score.to_owned(),
            campaigns: "test".into(),
            agents,
            improvement,
            thresholds,
            profiles,
        }
    }

    /// The aggregates table (Markdown, readable in a terminal too).
    pub fn table(&self) -> String {
        let mut out =
            "| agent | runs | IQM | 95% CI | median | 95% CI | mean | 95% CI |\n|---|---:|---:|---|---:|---|---:|---|\n".to_owned();
        for a in &self.agents {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                a.agent,
                a.runs,
                cells(a.iqm, 1),
                cells(a.median, 1),
                cells(a.mean, 1)
            )
            .unwrap();
        }
        out
    }

    /// `comparison.md`: the aggregates, P(improvement) and the performance profiles.
    pub fn markdown(&self, title: &str) -> String {
        let mut out = format!("# {title}\n\n");
        writeln!(
            out,
            "Final {} on the {} campaigns, per run (one run per agent and seed). 95% intervals: percentile \
             bootstrap over runs (2,000 resamples), seeded from the agents' names (Agarwal et al. 2021).\n",
            self.score, self.campaigns
        )
        .unwrap();
        out.push_str(&self.table());
        out.push_str("\n## Probability of improvement P(row > column), with 95% interval\n\n| |");
        for a in &self.agents {
            write!(out, " {} |", a.agent).unwrap();
        }
        writeln!(out, "\n|---|{}", "---:|".repeat(self.agents.len())).unwrap();
        for (a, row) in self.agents.iter().zip(&self.improvement) {
            let row: Vec<String> = row.iter().map(|p| interval(*p, 2)).collect();
            writeln!(out, "| {} | {} |", a.agent, row.join(" | ")).unwrap();
        }
        writeln!(
            out,
            "\n## Performance profiles: share of runs whose {} is above each threshold, with 95% band\n",
            self.score
        )
        .unwrap();
        let names: Vec<&str> = self.agents.iter().map(|a| a.agent.as_str()).collect();
        writeln!(out, "| threshold | {} |", names.join(" | ")).unwrap();
        writeln!(out, "|---:|{}", "---:|".repeat(names.len())).unwrap();
        for (k, t) in self.thresholds.iter().enumerate() {
            let row: Vec<String> = self.profiles.iter().map(|p| interval(p[k], 2)).collect();
            writeln!(out, "| {t:.1} | {} |", row.join(" | ")).unwrap();
        }
        out
    }
}

/// "value | [low, high]" for a table.
fn cells(e: Estimate, decimals: usize) -> String {
    format!(
        "{:.decimals$} | [{:.decimals$}, {:.decimals$}]",
        e.value, e.ci_low, e.ci_high
    )
}

/// "value [low, high]" in one cell.
fn interval(e: Estimate, decimals: usize) -> String {
    format!(
        "{:.decimals$} [{:.decimals$}, {:.decimals$}]",
        e.value, e.ci_low, e.ci_high
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(agent: &str, scores: &[f64]) -> AgentRuns {
        AgentRuns {
            agent: agent.to_owned(),
            name: agent.to_owned(),
            scores: scores.to_vec(),
        }
    }

    #[test]
    fn aggregates_profiles_and_improvement_describe_the_runs() {
        let a = runs("a", &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]);
        let b = runs("b", &[11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0]);
        let c = Comparison::new("return", &[a.clone(), b.clone()]);
        assert_eq!(c.agents[0].median.value, 5.5);
        assert_eq!(c.agents[1].mean.value, 15.5);
        assert_eq!(c.agents[0].iqm.value, 5.5);
        assert!(c.agents[0].mean.ci_low < 5.5 && 5.5 < c.agents[0].mean.ci_high);
        assert_eq!(c.improvement[1][0].value, 1.0);
        assert_eq!(c.improvement[0][1].value, 0.0);
        assert_eq!((c.thresholds[0], c.thresholds[PROFILE_POINTS - 1]), (1.0, 20.0));
        // Profiles fall from (almost) every run to none.
        assert_eq!(c.profiles[0][0].value, 0.9);
        assert_eq!(c.profiles[1][PROFILE_POINTS - 1].value, 0.0);
        assert!(c.profiles[1].windows(2).all(|w| w[0].value >= w[1].value));
        // An agent's figures do not move when another joins.
        let with_more = Comparison::new("return", &[a, b, runs("c", &[0.0; 10])]);
        assert_eq!(with_more.agents[0].iqm, c.agents[0].iqm);
        assert_eq!(with_more.improvement[1][0], c.improvement[1][0]);
        let md = c.markdown("t");
        assert!(
            md.contains("| a | 10 | 5.5 |") && md.contains("## Performance profiles"),
            "{md}"
        );
    }
}
