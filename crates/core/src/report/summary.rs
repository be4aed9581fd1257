//! The comparison table of an experiment: per agent, the IQM over seeds of the final held-out
//! evaluation with its 95% bootstrap interval, the share of the myopic oracle reached, regret
//! against the hindsight optimum, and the probability of improvement between agents.

use std::fmt::Write;

use super::stats::{iqm, iqm_interval, probability_of_improvement};

/// The final held-out evaluation of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalEval {
    /// Mean expected return per held-out campaign.
    pub expected_return: f64,
    /// Mean regret against the hindsight optimum per campaign.
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
    /// IQM expected return as a percentage of the myopic oracle's.
    pub pct_of_myopic_oracle: f64,
    pub iqm_regret: f64,
    pub mean_acceptance_rate: f64,
    /// Mean share of offers of each contract, in catalogue order.
    pub mix: Vec<f64>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Experiment name.
    pub experiment: String,
    /// Contract names, in catalogue order.
    pub contracts: Vec<String>,
    /// Mean expected return per held-out campaign of the myopic oracle.
    pub myopic_oracle_expected_return: f64,
    /// Mean expected return per held-out campaign of the hindsight optimum.
    pub hindsight_expected_return: f64,
    pub agents: Vec<AgentSummary>,
    /// `improvement[i][j]` = P(agent i > agent j) over final expected returns.
    pub improvement: Vec<Vec<f64>>,
    /// Final expected returns per agent, in seed order.
    finals: Vec<Vec<f64>>,
}

impl Summary {
    /// Summarises `runs`: (agent name, final evaluations over its seeds), in report order.
    pub fn new(
        experiment: &str,
        contracts: Vec<String>,
        myopic: f64,
        hindsight: f64,
        runs: &[(String, Vec<FinalEval>)],
    ) -> Self {
        let finals: Vec<Vec<f64>> = runs
            .iter()
            .map(|(_, evals)| evals.iter().map(|e| e.expected_return).collect())
            .collect();
        let agents = runs
            .iter()
            .zip(&finals)
            .enumerate()
            .map(|(i, ((agent, evals), values))| {
                let (ci_low, ci_high) = iqm_interval(values, i as u64);
                let regrets: Vec<f64> = evals.iter().map(|e| e.regret).collect();
                AgentSummary {
                    agent: agent.clone(),
                    runs: evals.len(),
                    iqm_expected_return: iqm(values),
                    ci_low,
                    ci_high,
                    pct_of_myopic_oracle: 100.0 * iqm(values) / myopic,
                    iqm_regret: iqm(&regrets),
                    mean_acceptance_rate: evals.iter().map(|e| e.acceptance_rate).sum::<f64>() / evals.len() as f64,
                    mix: (0..contracts.len())
                        .map(|c| evals.iter().map(|e| e.mix[c]).sum::<f64>() / evals.len() as f64)
                        .collect(),
                }
            })
            .collect();
        let improvement = finals
            .iter()
            .map(|x| finals.iter().map(|y| probability_of_improvement(x, y)).collect())
            .collect();
        Self {
            experiment: experiment.to_owned(),
            contracts,
            myopic_oracle_expected_return: myopic,
            hindsight_expected_return: hindsight,
            agents,
            improvement,
            finals,
        }
    }

    /// The line of `agent`, if present.
    pub fn agent(&self, agent: &str) -> Option<&AgentSummary> {
        self.agents.iter().find(|a| a.agent == agent)
    }

    /// The comparison table (Markdown, readable in a terminal too).
    pub fn table(&self) -> String {
        let mut out = String::new();
        writeln!(
            out,
            "| agent | runs | IQM expected return | 95% CI | % of myopic oracle | IQM regret | acceptance | mix ({}) |",
            self.contracts.join(" / ")
        )
        .unwrap();
        writeln!(out, "|---|---:|---:|---|---:|---:|---:|---|").unwrap();
        for a in &self.agents {
            let mix: Vec<String> = a.mix.iter().map(|m| format!("{:.0}", 100.0 * m)).collect();
            writeln!(
                out,
                "| {} | {} | {:.1} | [{:.1}, {:.1}] | {:.1}% | {:.1} | {:.3} | {}% |",
                a.agent,
                a.runs,
                a.iqm_expected_return,
                a.ci_low,
                a.ci_high,
                a.pct_of_myopic_oracle,
                a.iqm_regret,
                a.mean_acceptance_rate,
                mix.join(" / ")
            )
            .unwrap();
        }
        out
    }

    /// The full `summary.md`: context, the table, and probabilities of improvement.
    pub fn markdown(&self) -> String {
        let mut out = format!("# {}\n\n", self.experiment);
        writeln!(
            out,
            "Held-out evaluation, greedy policies, final evaluation of each run. Per campaign, the myopic oracle \
             expects {:.1} and the hindsight optimum {:.1}. IQM = interquartile mean over seeds; 95% CI = \
             percentile bootstrap over seeds; regret is against the hindsight optimum.\n",
            self.myopic_oracle_expected_return, self.hindsight_expected_return
        )
        .unwrap();
        out.push_str(&self.table());
        out.push_str("\n## Probability of improvement P(row > column)\n\n| |");
        for a in &self.agents {
            write!(out, " {} |", a.agent).unwrap();
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(self.agents.len()));
        out.push('\n');
        for (a, row) in self.agents.iter().zip(&self.improvement) {
            write!(out, "| {} |", a.agent).unwrap();
            for p in row {
                write!(out, " {p:.2} |").unwrap();
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
