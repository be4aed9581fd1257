//! Plots drawn from real results folders: every plot in both formats, with the agents, the
//! references and the axes' units in them.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::path::Path;

use contract_rl_core::agents::CoreAgents;
use contract_rl_core::experiment::RunOptions;
use contract_rl_parquet::{Build, LoadedExperiment};

const BUILD: Build = Build {
    version: "test",
    commit: None,
};

/// A shrunk quickstart run into `out`.
fn run_into(dir: &Path, out: &Path) {
    let path = support::experiment_file(dir, |t| support::shrink(t, &[1, 2, 3], 60, 20, 3));
    let loaded = LoadedExperiment::load(&path, None, &CoreAgents).unwrap();
    let results = loaded
        .experiment
        .run(&CoreAgents, &RunOptions::default(), &|_| {})
        .unwrap();
    loaded.write_results(out, &results, BUILD).unwrap();
}

/// Width and height from a PNG's header.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

#[test]
fn a_results_folder_gets_every_plot_as_svg_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    run_into(dir.path(), &out);
    let written = contract_rl_report::plot_results(&out).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for plot in [
        "learning_curves",
        "regret",
        "final_performance",
        "performance_profiles",
        "training_diagnostics",
    ] {
        for extension in ["svg", "png"] {
            assert!(
                names.contains(&format!("{plot}.{extension}")),
                "{plot}.{extension} in {names:?}"
            );
        }
    }
    let svg = |name: &str| std::fs::read_to_string(out.join("plots").join(name)).unwrap();
    let curves = svg("learning_curves.svg");
    for text in [
        "q_learning",
        "online optimum (reference)",
        "training campaigns (episodes)",
        "expected return per campaign",
    ] {
        assert!(curves.contains(text), "learning_curves.svg lacks {text:?}");
    }
    let finals = svg("final_performance.svg");
    for agent in [
        "random",
        "best_single",
        "myopic_oracle",
        "online_oracle",
        "hindsight_oracle",
        "q_learning",
    ] {
        assert!(finals.contains(agent), "final_performance.svg lacks {agent}");
    }
    let regret = svg("regret.svg");
    for text in [
        "Regret to the online optimum",
        "q_learning",
        "online optimum (reference): zero regret",
        "training campaigns (episodes)",
        "regret (expected return per campaign)",
    ] {
        assert!(regret.contains(text), "regret.svg lacks {text:?}");
    }
    assert!(svg("training_diagnostics.svg").contains("q_learning: TD loss"));
    assert_eq!(png_size(&out.join("plots/learning_curves.png")), (960, 600));
    // A PNG with text and lines is far from a blank canvas.
    assert!(std::fs::metadata(out.join("plots/learning_curves.png")).unwrap().len() > 20_000);
}

#[test]
fn a_comparison_gets_its_final_performance_and_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    run_into(dir.path(), &results);
    let out = dir.path().join("comparison");
    let comparison = contract_rl_parquet::compare(std::slice::from_ref(&results)).unwrap();
    contract_rl_parquet::write_comparison(&out, "t", &comparison).unwrap();
    let written = contract_rl_report::plot_comparison(&out).unwrap();
    assert_eq!(written.len(), 4, "{written:?}");
    let profiles = std::fs::read_to_string(out.join("plots/performance_profiles.svg")).unwrap();
    assert!(profiles.contains("share of runs above") && profiles.contains("hindsight_oracle"));

    let error = contract_rl_report::plot_results(&dir.path().join("nowhere"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("nowhere/comparison.parquet"), "{error}");
}
