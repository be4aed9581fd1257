//! The comparison table of an experiment on the test campaigns: per agent, the IQM over seeds of
//! the final evaluation with its 95% bootstrap interval, the share of the best online reference
//! reached and regret against it, and the share of the upper bound, beside the references
//! (myopic, best online, bound), and the probability of improvement between agents with its
//! interval.

use std::fmt::Write;

use super::stats::{
    bootstrap_interval, improvement_interval, iqm, iqm_interval, mean, probability_of_improvement, seed_for,
};

/// Mean score per test campaign of the references (what each knows: [`Labels`]).
#[derive(Debug, Clone, PartialEq)]
pub struct References {
    /// The myopic policy.
    pub myopic: f64,
    /// The best online policy the env kind can compute: regret and "% of" are against it.
    pub online: f64,
    /// The upper bound on the agents.
    pub bound: f64,
    /// A second, looser bound, valid for more policies, where the kind has one.
    pub second_bound: Option<f64>,
    /// The kind's further references, in [`Labels::others`] order.
    pub others: Vec<f64>,
}

/// A score or a reference as an env kind names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named {
    /// In column names, e.g. `online_optimum`.
    pub key: &'static str,
    /// In text, e.g. "online optimum".
    pub label: &'static str,
    /// What it knows (for references) or means (for the score).
    pub knows: &'static str,
}

/// What a summary calls its score and its references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels {
    pub score: Named,
    pub myopic: Named,
    pub online: Named,
    pub bound: Named,
    /// A second bound, given its own "% of" column.
    pub second_bound: Option<Named>,
    /// Further references, reported as rows beside the agents.
    pub others: &'static [Named],
}

impl Labels {
    /// Every reference with its value in `r`, in report order: myopic, online, bound, the
    /// second bound, the others.
    pub fn references<'a>(&'a self, r: &'a References) -> impl Iterator<Item = (Named, f64)> + 'a {
        [(self.myopic, r.myopic), (self.online, r.online), (self.bound, r.bound)]
            .into_iter()
            .chain(self.second_bound.zip(r.second_bound))
            .chain(self.others.iter().copied().zip(r.others.iter().copied()))
    }
}

/// The final test evaluation of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalEval {
    /// Mean score per test campaign.
    pub score: f64,
    /// Mean regret against the best online reference per campaign.
    pub regret: f64,
    /// Accepted offers per decision ("no offer" decisions included).
    pub acceptance_rate: f64,
    /// Share of offers of each contract, in catalogue order.
    pub mix: Vec<f64>,
    /// Mean score of each test campaign (over its replays), in campaign order.
    pub campaigns: Vec<f64>,
}

/// One agent's line of the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSummary {
    pub agent: String,
    pub runs: usize,
    /// IQM over seeds of the final score.
    pub iqm: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// IQM score as a percentage of the best online reference's.
    pub pct_of_online: f64,
    /// IQM score as a percentage of the upper bound.
    pub pct_of_bound: f64,
    /// IQM score as a percentage of the second bound, where there is one.
    pub pct_of_second_bound: Option<f64>,
    /// The agent's score minus the best online reference's on the same campaigns (same users,
    /// replays and draws), averaged over campaigns and seeds.
    pub paired_difference: f64,
    /// A 95% bootstrap interval of [`Self::paired_difference`] over the campaigns.
    pub paired_ci: (f64, f64),
    /// IQM score as a percentage of the myopic reference's.
    pub pct_of_myopic: f64,
    /// IQM regret against the best online reference.
    pub iqm_regret: f64,
    pub mean_acceptance_rate: f64,
    /// Mean share of offers of each contract, in catalogue order.
    pub mix: Vec<f64>,
}

/// P(row > column) over final scores, with its 95% bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Improvement {
    pub probability: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Experiment name.
    pub experiment: String,
    /// Action names, in action order.
    pub actions: Vec<String>,
    pub labels: Labels,
    pub references: References,
    pub agents: Vec<AgentSummary>,
    /// `improvement[i][j]`: agent i against agent j.
    pub improvement: Vec<Vec<Improvement>>,
    /// Final scores per agent, in seed order.
    finals: Vec<Vec<f64>>,
}

impl Summary {
    /// Summarises `runs`: (agent name, final evaluations over its seeds), in report order, with
    /// the best online reference's score on each campaign (`online_campaigns`, for the paired
    /// differences). Every bootstrap is seeded from the names it concerns.
    pub fn new(
        experiment: &str,
        actions: Vec<String>,
        labels: Labels,
        references: References,
        online_campaigns: &[f64],
        runs: &[(String, Vec<FinalEval>)],
    ) -> Self {
        let finals: Vec<Vec<f64>> = runs
            .iter()
            .map(|(_, evals)| evals.iter().map(|e| e.score).collect())
            .collect();
        let agents = runs
            .iter()
            .zip(&finals)
            .map(|((agent, evals), values)| {
                let (ci_low, ci_high) = iqm_interval(values, seed_for(&[agent]));
                let regrets: Vec<f64> = evals.iter().map(|e| e.regret).collect();
                let value = iqm(values);
                // Per campaign: the agent's mean over seeds minus the reference.
                let differences: Vec<f64> = online_campaigns
                    .iter()
                    .enumerate()
                    .map(|(c, online)| mean(evals.iter().map(|e| e.campaigns[c])) - online)
                    .collect();
                AgentSummary {
                    agent: agent.clone(),
                    runs: evals.len(),
                    iqm: value,
                    ci_low,
                    ci_high,
                    pct_of_online: 100.0 * value / references.online,
                    pct_of_bound: 100.0 * value / references.bound,
                    pct_of_second_bound: references.second_bound.map(|b| 100.0 * value / b),
                    paired_difference: mean(differences.iter().copied()),
                    paired_ci: bootstrap_interval(&differences, seed_for(&[agent, "paired"]), |d| {
                        mean(d.iter().copied())
                    }),
                    pct_of_myopic: 100.0 * value / references.myopic,
                    iqm_regret: iqm(&regrets),
                    mean_acceptance_rate: mean(evals.iter().map(|e| e.acceptance_rate)),
                    mix: (0..actions.len())
                        .map(|c| mean(evals.iter().map(|e| e.mix[c])))
                        .collect(),
                }
            })
            .collect();
        let improvement = runs
            .iter()
            .zip(&finals)
            .map(|((a, _), x)| {
                runs.iter()
                    .zip(&finals)
                    .map(|((b, _), y)| {
                        let (ci_low, ci_high) = improvement_interval(x, y, seed_for(&[a, b]));
                        Improvement {
                            probability: probability_of_improvement(x, y),
                            ci_low,
                            ci_high,
                        }
                    })
                    .collect()
            })
            .collect();
        Self {
            experiment: experiment.to_owned(),
            actions,
            labels,
            references,
            agents,
            improvement,
            finals,
        }
    }

    /// The line of `agent`, if present.
    pub fn agent(&self, agent: &str) -> Option<&AgentSummary> {
        self.agents.iter().find(|a| a.agent == agent)
    }

    /// P(`x` > `y`) with its interval, if both are present.
    pub fn improvement(&self, x: &str, y: &str) -> Option<Improvement> {
        let index = |name: &str| self.agents.iter().position(|a| a.agent == name);
        Some(self.improvement[index(x)?][index(y)?])
    }

    /// The comparison table (Markdown, readable in a terminal too).
    pub fn table(&self) -> String {
        let (l, r) = (&self.labels, &self.references);
        let second = l.second_bound.zip(r.second_bound);
        let mut out = String::new();
        write!(
            out,
            "| agent | runs | IQM {} | 95% CI | % of {} | Δ vs {} per campaign [95% CI] | % of {} |",
            l.score.label, l.online.label, l.online.label, l.bound.label,
        )
        .unwrap();
        if let Some((named, _)) = second {
            write!(out, " % of {} |", named.label).unwrap();
        }
        writeln!(
            out,
            " IQM regret | % of {} | acceptance | mix ({}) |",
            l.myopic.label,
            self.actions.join(" / ")
        )
        .unwrap();
        let second_column = if second.is_some() { "---:|" } else { "" };
        writeln!(
            out,
            "|---|---:|---:|---|---:|---|---:|{second_column}---:|---:|---:|---|"
        )
        .unwrap();
        let pct_of_second = |value: f64| second.map_or(String::new(), |(_, b)| format!(" {:.1}% |", 100.0 * value / b));
        for (named, value) in l.references(r) {
            writeln!(
                out,
                "| *{}* (reference) | | {value:.1} | | {:.1}% | {:.1} | {:.1}% |{} {:.1} | {:.1}% | | |",
                named.label,
                100.0 * value / r.online,
                value - r.online,
                100.0 * value / r.bound,
                pct_of_second(value),
                r.online - value,
                100.0 * value / r.myopic,
            )
            .unwrap();
        }
        for a in &self.agents {
            let mix: Vec<String> = a.mix.iter().map(|m| format!("{:.0}", 100.0 * m)).collect();
            writeln!(
                out,
                "| {} | {} | {:.1} | [{:.1}, {:.1}] | {:.1}% | {:.1} [{:.1}, {:.1}] | {:.1}% |{} {:.1} | {:.1}% | {:.3} | {}% |",
                a.agent,
                a.runs,
                a.iqm,
                a.ci_low,
                a.ci_high,
                a.pct_of_online,
                a.paired_difference,
                a.paired_ci.0,
                a.paired_ci.1,
                a.pct_of_bound,
                pct_of_second(a.iqm),
                a.iqm_regret,
                a.pct_of_myopic,
                a.mean_acceptance_rate,
                mix.join(" / ")
            )
            .unwrap();
        }
        out
    }

    /// The full `summary.md`: context, the table, and probabilities of improvement.
    pub fn markdown(&self) -> String {
        let l = &self.labels;
        let mut out = format!("# {}\n\n", self.experiment);
        let references: Vec<String> = l
            .references(&self.references)
            .map(|(named, _)| format!("{} (knows {})", named.label, named.knows))
            .collect();
        writeln!(
            out,
            "Test campaigns (users never trained or tuned on), greedy policies, the final evaluation of each run, \
             scored by {} ({}). References: {}. IQM = interquartile mean over seeds; 95% CI = percentile \
             bootstrap over seeds, seeded from the agents' names; Δ = the agent's score minus the {}'s on the \
             same campaigns, averaged over campaigns and seeds, with a 95% bootstrap interval over campaigns; \
             regret is against the {}.\n",
            l.score.label,
            l.score.knows,
            references.join("; "),
            l.online.label,
            l.online.label,
        )
        .unwrap();
        out.push_str(&self.table());
        out.push_str("\n## Probability of improvement P(row > column), with 95% bootstrap interval\n\n| |");
        for a in &self.agents {
            write!(out, " {} |", a.agent).unwrap();
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(self.agents.len()));
        out.push('\n');
        for (a, row) in self.agents.iter().zip(&self.improvement) {
            write!(out, "| {} |", a.agent).unwrap();
            for p in row {
                write!(out, " {:.2} [{:.2}, {:.2}] |", p.probability, p.ci_low, p.ci_high).unwrap();
            }
            out.push('\n');
        }
        writeln!(out, "\n## Final {} per seed\n", l.score.label).unwrap();
        for (a, values) in self.agents.iter().zip(&self.finals) {
            let list: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
            writeln!(out, "- {}: {}", a.agent, list.join(", ")).unwrap();
        }
        out
    }
}
