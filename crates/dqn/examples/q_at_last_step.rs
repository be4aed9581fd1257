//! Probes the saved DQNs of an experiment where their values are known: at a campaign's last
//! user nothing follows, so Q(s, a) / reward_scale should equal the expected reward of offering
//! `a` (less the per-step baseline b, the same for every contract, when `baseline = "per_step"`).
//! For every seed's checkpoint of AGENT it prints each contract's mean offset (Q / reward_scale
//! − true expected reward) over the test users of the env on the sample's users, with one offer
//! of every quota left, and the spread of those offsets across contracts: what ranks contracts
//! wrongly at the end of a campaign (a common offset ranks nothing wrongly).
//!
//! cargo run --release -p contract-rl-dqn --example q_at_last_step -- EXPERIMENT AGENT
//! (from the project's folder: checkpoints in `results/<experiment name>/checkpoints/`, as `run`
//! writes them)

use std::path::PathBuf;
use std::sync::Arc;

use contract_rl_core::agents::{AgentConfig, AgentRng, RewardBaseline};
use contract_rl_core::env::{EnvKind, MAX_CONTRACTS, Split};
use contract_rl_core::experiment::Experiment;
use contract_rl_core::source::{Generator, generate_records};
use contract_rl_dqn::Dqn;
use rand::SeedableRng;

fn main() {
    let usage = "usage: q_at_last_step EXPERIMENT AGENT";
    let mut args = std::env::args().skip(1);
    let file = PathBuf::from(args.next().expect(usage));
    let agent_name = args.next().expect(usage);
    let (experiment, env) = Experiment::load_config(&file).expect("the experiment file");
    let config = experiment
        .agents
        .iter()
        .find_map(|a| match a {
            AgentConfig::Dqn(c) if a.name() == agent_name => Some(c.clone()),
            _ => None,
        })
        .expect("a dqn agent of that name in the experiment");
    let (records, _) = generate_records(&Generator::new("contract-rl", &[]).unwrap(), 20_000);
    let EnvKind::ContractChoice(model) = env.build(&records).expect("the env on the sample's users") else {
        panic!("the probe reads the contract-choice env");
    };
    let kind = EnvKind::from(Arc::clone(&model));
    let scale = f64::from(config.reward_scale);
    let names: Vec<&str> = model.config().contracts.iter().map(|c| c.name.as_str()).collect();
    println!(
        "{agent_name} at the last step, test users, one offer of every quota left; mean Q / reward_scale − true expected reward{}",
        if config.baseline == RewardBaseline::PerStep {
            " (includes −b: read the spread)"
        } else {
            ""
        }
    );
    println!("| seed | {} | spread |", names.join(" | "));
    println!("|---:|{}---:|", "---:|".repeat(names.len()));
    let last = model.episode_len() - 1;
    let offers_left = [1u16; MAX_CONTRACTS];
    for seed in &experiment.seeds {
        let checkpoint = PathBuf::from("results")
            .join(&experiment.name)
            .join("checkpoints")
            .join(format!("{agent_name}-seed{seed}.bpk"));
        let mut agent = Dqn::new(config.clone(), &kind.spaces(), 1, &mut AgentRng::seed_from_u64(0));
        if agent.load(&checkpoint).is_err() {
            eprintln!("{}: missing or unreadable, skipped", checkpoint.display());
            continue;
        }
        let mut offsets = vec![(0.0, 0usize); names.len()];
        for &user in model.split(Split::Test) {
            let obs = model.observe(user, last, &offers_left);
            let q = agent.q_values(&obs);
            for (a, (sum, n)) in offsets.iter_mut().enumerate() {
                if obs.mask.contains(a) {
                    *sum += f64::from(q[a]) / scale - model.expected_reward(user, a);
                    *n += 1;
                }
            }
        }
        let means: Vec<f64> = offsets.iter().map(|(sum, n)| sum / *n as f64).collect();
        let spread = means.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            - means.iter().copied().fold(f64::INFINITY, f64::min);
        let cells: Vec<String> = means.iter().map(|m| format!("{m:+.1}")).collect();
        println!("| {seed} | {} | {spread:.1} |", cells.join(" | "));
    }
}
