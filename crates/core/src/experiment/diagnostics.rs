//! The part of `summary.md` that explains the numbers: held-out learning curves, the learners'
//! TD loss and Q-values over training, and on the test campaigns the shared resources left and
//! each agent's offers by segment.

use std::fmt::Write;

use super::{Experiment, Results, RunResult, Trace};
use crate::env::Split;
use crate::report::stats::{iqm, mean};

/// Rows of the learning-curve table at most (evenly spaced, the last always kept).
const CURVE_ROWS: usize = 12;

impl Experiment {
    /// The diagnostics sections of `summary.md` (Markdown).
    pub fn diagnostics(&self, results: &Results) -> String {
        let mut out = String::new();
        self.learning_curves(results, &mut out);
        learner_diagnostics(results, &mut out);
        self.test_diagnostics(results, &mut out);
        out
    }

    /// Runs of agent `name`, in seed order.
    fn runs_of<'a>(&self, results: &'a Results, name: &'a str) -> impl Iterator<Item = &'a RunResult> {
        results.runs.iter().filter(move |r| r.agent == name)
    }

    fn learning_curves(&self, results: &Results, out: &mut String) {
        let learners: Vec<String> = self
            .config
            .agents
            .iter()
            .filter(|a| a.learns())
            .map(|a| a.name())
            .collect();
        let Some(first) = learners.first() else { return };
        let score = self.score();
        let points = self.runs_of(results, first).next().map_or(0, |r| validation(r).count());
        let r = self.references(Split::Validation).means();
        let l = super::labels(&self.kind);
        writeln!(
            out,
            "\n## Learning curves (validation campaigns, IQM {} over seeds)\n\n\
             References on the same campaigns: {} {:.1}, {} {:.1}, {} {:.1}.\n",
            l.score.label, l.myopic.label, r.myopic, l.online.label, r.online, l.bound.label, r.bound
        )
        .unwrap();
        writeln!(out, "| training episodes | {} |", learners.join(" | ")).unwrap();
        writeln!(out, "|---:|{}", "---:|".repeat(learners.len())).unwrap();
        let stride = points.div_ceil(CURVE_ROWS).max(1);
        for i in (0..points).filter(|i| i % stride == 0 || i + 1 == points) {
            let episode = self
                .runs_of(results, first)
                .next()
                .and_then(|r| validation(r).nth(i))
                .map_or(0, |e| e.episode);
            let cells: Vec<String> = learners
                .iter()
                .map(|name| {
                    let values: Vec<f64> = self
                        .runs_of(results, name)
                        .filter_map(|r| validation(r).nth(i))
                        .map(|e| score.mean(&e.campaigns))
                        .collect();
                    format!("{:.1}", iqm(&values))
                })
                .collect();
            writeln!(out, "| {episode} | {} |", cells.join(" | ")).unwrap();
        }
    }

    fn test_diagnostics(&self, results: &Results, out: &mut String) {
        let resources = self.kind.resource_names();
        let segments = self.kind.segment_names();
        let actions = self.kind.action_names();
        writeln!(
            out,
            "\n## Test campaigns: resources left at the end, and offers by segment\n\n\
             Means over seeds and campaigns. Each segment's cell is the share of its decisions that went to \
             {}.\n",
            actions.join(" / ")
        )
        .unwrap();
        let header: Vec<&str> = resources.iter().chain(&segments).map(String::as_str).collect();
        writeln!(out, "| agent | {} |", header.join(" | ")).unwrap();
        writeln!(out, "|---|{}", "---:|".repeat(resources.len() + segments.len())).unwrap();
        let l = super::labels(&self.kind);
        let references = self.references(Split::Test);
        for (label, traces) in [l.myopic, l.online].iter().zip(&references.traces) {
            let row = self.trace_row(traces.iter(), resources.len(), segments.len(), actions.len());
            writeln!(out, "| *{}* (reference) | {row} |", label.label).unwrap();
        }
        for agent in &self.config.agents {
            let name = agent.name();
            let traces = self.runs_of(results, &name).flat_map(|r| &r.test_eval().traces);
            let row = self.trace_row(traces, resources.len(), segments.len(), actions.len());
            writeln!(out, "| {name} | {row} |").unwrap();
        }
    }

    /// The cells of one row of the test diagnostics: mean resources left, then each segment's
    /// shares of the actions.
    fn trace_row<'a>(
        &self,
        traces: impl Iterator<Item = &'a Trace>,
        resources: usize,
        segments: usize,
        actions: usize,
    ) -> String {
        let mut left = vec![Vec::new(); resources];
        let mut counts = vec![vec![0u64; actions]; segments];
        for t in traces {
            for (k, value) in t.resources_left.iter().enumerate() {
                left[k].push(*value);
            }
            for (&user, &action) in t.users.iter().zip(&t.actions) {
                counts[self.kind.segment(user)][usize::from(action)] += 1;
            }
        }
        let left = left.iter().map(|v| format!("{:.1}", mean(v.iter().copied())));
        let mix = counts.iter().map(|c| {
            let total = c.iter().sum::<u64>().max(1) as f64;
            let shares: Vec<String> = c.iter().map(|&n| format!("{:.0}", 100.0 * n as f64 / total)).collect();
            format!("{}%", shares.join(" / "))
        });
        left.chain(mix).collect::<Vec<_>>().join(" | ")
    }
}

/// The validation evaluations of a run, in order.
fn validation(run: &RunResult) -> impl Iterator<Item = &super::EvalPoint> {
    run.evals.iter().filter(|e| e.split == Split::Validation)
}

/// TD loss and mean Q of each learner at its first and last record with a value, and ε at the
/// end (means over seeds).
fn learner_diagnostics(results: &Results, out: &mut String) {
    let mut agents: Vec<&str> = Vec::new();
    for run in results.runs.iter().filter(|r| !r.metrics.is_empty()) {
        if !agents.contains(&run.agent.as_str()) {
            agents.push(&run.agent);
        }
    }
    if agents.is_empty() {
        return;
    }
    out.push_str(
        "\n## Learners over training (means over seeds)\n\n\
         | agent | TD loss, first record | TD loss, last record | mean Q, first record | mean Q, last record | ε at the end | prices at the end (budget, handset) |\n\
         |---|---:|---:|---:|---:|---:|---|\n",
    );
    for agent in agents {
        let runs: Vec<&RunResult> = results.runs.iter().filter(|r| r.agent == agent).collect();
        // Each run's first or last record with a finite value (DQN's loss is NaN before its
        // first gradient step).
        let at = |last: bool, f: fn(&crate::agents::Diagnostics) -> f64| {
            mean(runs.iter().filter_map(|r| {
                let mut values = r.metrics.iter().map(|m| f(&m.diagnostics)).filter(|v| v.is_finite());
                if last { values.next_back() } else { values.next() }
            }))
        };
        let prices = |i: usize| {
            mean(
                runs.iter()
                    .filter_map(|r| r.metrics.last()?.diagnostics.prices.map(|p| p[i])),
            )
        };
        let prices = if runs
            .iter()
            .any(|r| r.metrics.last().is_some_and(|m| m.diagnostics.prices.is_some()))
        {
            format!("{:.3}, {:.2}", prices(0), prices(1))
        } else {
            "—".to_owned()
        };
        writeln!(
            out,
            "| {agent} | {:.4} | {:.4} | {:.2} | {:.2} | {:.3} | {prices} |",
            at(false, |d| d.td_loss),
            at(true, |d| d.td_loss),
            at(false, |d| d.q_values),
            at(true, |d| d.q_values),
            at(true, |d| d.epsilon),
        )
        .unwrap();
    }
}
