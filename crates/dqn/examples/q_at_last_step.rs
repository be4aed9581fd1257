//! Probes a saved DQN where its values are known: at the last step of a campaign nothing
//! follows, so Q(s, a) / reward_scale should equal the expected reward of offering `a`. Prints,
//! over the test users of the default env on the sample's users, binned by the true expected
//! reward of one contract, the mean true value beside the network's, and how often the network
//! and the truth prefer that contract.
//!
//! cargo run --release -p contract-rl-dqn --example q_at_last_step -- CHECKPOINT [CONTRACT] [HIDDEN...]

use std::path::PathBuf;

use contract_rl_core::agents::{AgentRng, DqnConfig, masked_argmax};
use contract_rl_core::env::{EnvConfig, EnvModel, MAX_CONTRACTS, Split};
use contract_rl_core::source::{Generator, generate_records};
use contract_rl_dqn::Dqn;
use rand::SeedableRng;

fn main() {
    let mut args = std::env::args().skip(1);
    let checkpoint = PathBuf::from(
        args.next()
            .expect("usage: q_at_last_step CHECKPOINT [CONTRACT] [HIDDEN...]"),
    );
    let contract = args.next().unwrap_or_else(|| "premium".into());
    let hidden: Vec<usize> = args.map(|h| h.parse().expect("hidden sizes")).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = EnvConfig::load(&root.join("envs/contract-choice.toml")).expect("the default env");
    let (records, _) = generate_records(&Generator::new("contract-rl", &[]).unwrap(), 20_000);
    let model = EnvModel::build(config, &records).expect("the sample's users");
    let a = model
        .config()
        .contracts
        .iter()
        .position(|c| c.name == contract)
        .expect("a contract of the default env");
    let dqn_config = DqnConfig {
        hidden: if hidden.is_empty() {
            DqnConfig::default().hidden
        } else {
            hidden
        },
        ..DqnConfig::default()
    };
    let scale = f64::from(dqn_config.reward_scale);
    let mut agent = Dqn::new(
        dqn_config,
        model.dense_len(),
        model.n_actions(),
        1,
        &mut AgentRng::seed_from_u64(0),
    );
    agent.load(&checkpoint).expect("the checkpoint loads");
    // The last user of a campaign, with one offer of every quota left.
    let last = model.episode_len() - 1;
    let offers_left = [1u16; MAX_CONTRACTS];
    let edges = [f64::NEG_INFINITY, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0, f64::INFINITY];
    let mut bins = vec![(0usize, 0.0, 0.0, 0usize, 0usize); edges.len() - 1];
    for &user in model.split(Split::Test) {
        let obs = model.observe(user, last, &offers_left);
        if !obs.mask.contains(a) {
            continue;
        }
        let truth = model.expected_reward(user, a);
        let q = agent.q_values(&obs);
        let bin = edges
            .windows(2)
            .position(|w| truth >= w[0] && truth < w[1])
            .expect("a bin");
        let b = &mut bins[bin];
        b.0 += 1;
        b.1 += truth;
        b.2 += f64::from(q[a]) / scale;
        b.3 += usize::from(masked_argmax(&obs, |x| f64::from(q[x])) == Some(a));
        b.4 += usize::from(masked_argmax(&obs, |x| model.expected_reward(user, x)) == Some(a));
    }
    println!("{contract} at the last step, test users, {}", checkpoint.display());
    println!(
        "| true expected reward | users | mean true | mean Q / reward_scale | network picks it | truth picks it |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (w, (n, truth, q, net, best)) in edges.windows(2).zip(&bins).filter(|(_, b)| b.0 > 0) {
        let n_f = *n as f64;
        println!(
            "| [{}, {}) | {n} | {:.1} | {:.1} | {:.0}% | {:.0}% |",
            w[0],
            w[1],
            truth / n_f,
            q / n_f,
            100.0 * *net as f64 / n_f,
            100.0 * *best as f64 / n_f
        );
    }
}
