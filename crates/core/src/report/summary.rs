//! The comparison table of an experiment on the test campaigns: per agent, the IQM over seeds of
//! the final evaluation with its 95% bootstrap interval, the share of the online optimum reached
//! and regret against it, beside the references (myopic oracle, online optimum, hindsight
//! bound), and the probability of improvement between agents with its interval.

use std::fmt::Write;

use super::stats::{improvement_interval, iqm, iqm_interval, mean, probability_of_improvement, seed_for};

/// Mean expected return per test campaign of the references, each knowing more than the last.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct References {
    /// The model, the current user only.
    pub myopic_oracle: f64,
    /// The model and the user population, not the campaign's order: the best online policy.
    pub online_optimum: f64,
    /// The whole campaign in advance: the upper bound.
    pub hindsight_optimum: f64,
}

/// The final test evaluation of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalEval {
    /// Mean expected return per test campaign.
    pub expected_return: f64,
    /// Mean regret against the online optimum per campaign.
    pub regret: f64,
    /// Accepted offers / offers.
    pub acceptance_rate: f64,
    /// Share of offers of each contract, in catalogue order.
    pub mix: Vec<f64>,
}

/// One agent's line of the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSummary {
    pub agent: String,
    pub runs: usize,
    pub iqm_expected_return: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// IQM expected return as a percentage of the online optimum's.
    pub pct_of_online_optimum: f64,
    /// IQM expected return as a percentage of the myopic oracle's.
    pub pct_of_myopic_oracle: f64,
    /// IQM regret against the online optimum.
    pub iqm_regret: f64,
    pub mean_acceptance_rate: f64,
    /// Mean share of offers of each contract, in catalogue order.
    pub mix: Vec<f64>,
}

/// P(row > column) over final expected returns, with its 95% bootstrap interval.
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
    /// Contract names, in catalogue order.
    pub contracts: Vec<String>,
    pub references: References,
    pub agents: Vec<AgentSummary>,
    /// `improvement[i][j]`: agent i against agent j.
    pub improvement: Vec<Vec<Improvement>>,
    /// Final expected returns per agent, in seed order.
    finals: Vec<Vec<f64>>,
}

impl Summary {
    /// Summarises `runs`: (agent name, final evaluations over its seeds), in report order.
    /// Every bootstrap is seeded from the names it concerns.
    pub fn new(
        experiment: &str,
        contracts: Vec<String>,
        references: References,
        runs: &[(String, Vec<FinalEval>)],
    ) -> Self {
        let finals: Vec<Vec<f64>> = runs
            .iter()
            .map(|(_, evals)| evals.iter().map(|e| e.expected_return).collect())
            .collect();
        let agents = runs
            .iter()
            .zip(&finals)
            .map(|((agent, evals), values)| {
                let (ci_low, ci_high) = iqm_interval(values, seed_for(&[agent]));
                let regrets: Vec<f64> = evals.iter().map(|e| e.regret).collect();
                AgentSummary {
                    agent: agent.clone(),
                    runs: evals.len(),
                    iqm_expected_return: iqm(values),
                    ci_low,
                    ci_high,
                    pct_of_online_optimum: 100.0 * iqm(values) / references.online_optimum,
                    pct_of_myopic_oracle: 100.0 * iqm(values) / references.myopic_oracle,
                    iqm_regret: iqm(&regrets),
                    mean_acceptance_rate: mean(evals.iter().map(|e| e.acceptance_rate)),
                    mix: (0..contracts.len())
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
            contracts,
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
        let mut out = String::new();
        writeln!(
            out,
            "| agent | runs | IQM expected return | 95% CI | % of online optimum | IQM regret | % of myopic | acceptance | mix ({}) |",
            self.contracts.join(" / ")
        )
        .unwrap();
        writeln!(out, "|---|---:|---:|---|---:|---:|---:|---:|---|").unwrap();
        for a in &self.agents {
            let mix: Vec<String> = a.mix.iter().map(|m| format!("{:.0}", 100.0 * m)).collect();
            writeln!(
                out,
                "| {} | {} | {:.1} | [{:.1}, {:.1}] | {:.1}% | {:.1} | {:.1}% | {:.3} | {}% |",
                a.agent,
                a.runs,
                a.iqm_expected_return,
                a.ci_low,
                a.ci_high,
                a.pct_of_online_optimum,
                a.iqm_regret,
                a.pct_of_myopic_oracle,
                a.mean_acceptance_rate,
                mix.join(" / ")
            )
            .unwrap();
        }
        out
    }

    /// The full `summary.md`: context, the table, and probabilities of improvement.
    pub fn markdown(&self) -> String {
        let r = &self.references;
        let mut out = format!("# {}\n\n", self.experiment);
        writeln!(
            out,
            "Test campaigns (users never trained or tuned on), greedy policies, the final evaluation of each run. \
             Per campaign the references expect: myopic oracle {:.1} (knows the model, now only), online optimum \
             {:.1} (knows the model and the user population, not the order), hindsight optimum {:.1} (knows the \
             whole campaign: the upper bound). IQM = interquartile mean over seeds; 95% CI = percentile bootstrap \
             over seeds, seeded from the agents' names; regret is against the online optimum.\n",
            r.myopic_oracle, r.online_optimum, r.hindsight_optimum
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
        out.push_str("\n## Final expected return per seed\n\n");
        for (a, values) in self.agents.iter().zip(&self.finals) {
            let list: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
            writeln!(out, "- {}: {}", a.agent, list.join(", ")).unwrap();
        }
        out
    }
}
