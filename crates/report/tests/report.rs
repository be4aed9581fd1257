//! Plots and reports drawn from real results folders: every plot in both formats, with the
//! agents, the references and the axes' units in them; `report.html` rendered by headless
//! Chromium (the real program: `$CONTRACT_RL_CHROMIUM`, else `chromium` on the PATH, as
//! `scripts/readers` installs it; the tests fail without it) with every plot, heading and table
//! on the page and nothing on the console.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use contract_rl_core::agents::CoreAgents;
use contract_rl_core::experiment::RunOptions;
use contract_rl_parquet::{Build, LoadedExperiment};
use contract_rl_report::FolderData;

const BUILD: Build = Build {
    version: "test",
    commit: None,
};

/// The learner's name in the runs of these tests: HTML's special characters must reach the
/// page as text.
const LEARNER: &str = "Q <i>&amp; \"it's\"";

/// A shrunk quickstart run into `out`, its learner named [`LEARNER`] when `odd_name`.
fn run_into(dir: &Path, out: &Path, odd_name: bool) {
    let path = support::experiment_file(dir, |t| {
        support::shrink(t, &[1, 2, 3], 60, 20, 3);
        if odd_name {
            let agents = t["agents"].as_array_mut().unwrap();
            let learner = agents.iter_mut().find(|a| a["kind"].as_str() == Some("q_learning"));
            learner
                .unwrap()
                .as_table_mut()
                .unwrap()
                .insert("name".into(), LEARNER.into());
        }
    });
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
    run_into(dir.path(), &out, false);
    let written = contract_rl_report::plot_results(&out).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for plot in contract_rl_report::PLOTS {
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
        "online optimum",
        "dashed: references",
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
    let offers = svg("offers_by_segment.svg");
    for text in [
        "age &lt;33",
        "age 60+",
        "q_learning",
        "myopic oracle (reference)",
        "online optimum (reference)",
        "youth",
        "share of decisions",
    ] {
        assert!(offers.contains(text), "offers_by_segment.svg lacks {text:?}");
    }
    // Each policy's shares in a segment add up to its decisions there: 1, or 0 for none.
    let data = FolderData::read(&out, true).unwrap();
    assert_eq!(data.mix.len(), 4);
    for mix in &data.mix {
        assert_eq!(mix.policies.len(), 8, "6 agents and 2 references");
        for (policy, shares) in &mix.policies {
            let total: f64 = shares.iter().sum();
            assert!((total - 1.0).abs() < 1e-9, "{} / {policy}: {shares:?}", mix.segment);
        }
    }
    // Youth offers go to the under-33s only, and the myopic oracle makes them there.
    let youth = data.actions.iter().position(|a| a == "youth").unwrap();
    for mix in &data.mix[1..] {
        assert!(mix.policies.iter().all(|(_, s)| s[youth] == 0.0), "{}", mix.segment);
    }
    let myopic = &data.mix[0]
        .policies
        .iter()
        .find(|p| p.0 == "myopic oracle (reference)")
        .unwrap()
        .1;
    assert!(myopic[youth] > 0.5, "{myopic:?}");
    assert_eq!(png_size(&out.join("plots/learning_curves.png")), (960, 600));
    // A PNG with text and lines is far from a blank canvas.
    assert!(std::fs::metadata(out.join("plots/learning_curves.png")).unwrap().len() > 20_000);
}

#[test]
fn a_comparison_gets_its_final_performance_and_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    run_into(dir.path(), &results, false);
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

/// The Chromium to render with: `$CONTRACT_RL_CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> PathBuf {
    std::env::var_os("CONTRACT_RL_CHROMIUM").map_or_else(|| PathBuf::from("chromium"), PathBuf::from)
}

/// Loads `page` in headless Chromium: the DOM after loading, and what it logged.
fn render(page: &Path) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let chromium = chromium();
    let output = Command::new(&chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; the report tests need Chromium: run `eval \"$(scripts/readers)\"` or set CONTRACT_RL_CHROMIUM",
                chromium.display()
            )
        });
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{} failed: {stderr}", chromium.display());
    (String::from_utf8(output.stdout).unwrap(), stderr)
}

/// The console messages in Chromium's log: it logs every one, errors and uncaught exceptions
/// included, as `[...:INFO:CONSOLE:<line>] "<message>", source: <url> (<line>)`.
fn console(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// What every report must show: one inline `<svg>` in its figure per SVG file of `plots/`, no
/// console message, nothing fetched; returns the DOM.
fn check_report(dir: &Path) -> String {
    let page = dir.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    for outside in ["<script", "<link", "<img", "<iframe", "src=", "url(", "@import"] {
        assert!(!html.contains(outside), "report.html has {outside:?}");
    }
    assert_eq!(
        html.matches("http").count(),
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
        "report.html names no address but SVG's namespace"
    );
    let (dom, stderr) = render(&page);
    assert!(console(&stderr).is_empty(), "console messages: {:?}", console(&stderr));
    let mut plots: Vec<String> = std::fs::read_dir(dir.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".svg").map(str::to_owned))
        .collect();
    plots.sort();
    assert_eq!(
        dom.matches("<svg").count(),
        plots.len(),
        "one <svg> per plot: {plots:?}"
    );
    for plot in &plots {
        let figure = figure(&dom, plot);
        assert!(
            figure.contains("<svg") && figure.contains("</svg>") && figure.contains(&format!("plots/{plot}.svg")),
            "{plot}'s figure: {}",
            &figure[..figure.len().min(300)]
        );
    }
    dom
}

/// The `<figure>` of `plot` in `dom`.
fn figure<'a>(dom: &'a str, plot: &str) -> &'a str {
    let start = dom
        .find(&format!("<figure id=\"plot-{plot}\">"))
        .unwrap_or_else(|| panic!("no figure for {plot}"));
    let figure = &dom[start..];
    &figure[..figure.find("</figure>").expect("a closed figure")]
}

#[test]
fn chromium_console_errors_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><title>t</title><p>x</p><script>throw new Error('deliberately broken')</script>",
    )
    .unwrap();
    let (dom, stderr) = render(&page);
    assert!(dom.contains("<p>x</p>"), "{dom}");
    let messages = console(&stderr);
    assert_eq!(messages.len(), 1, "{stderr}");
    assert!(
        messages[0].contains("Uncaught Error: deliberately broken"),
        "{messages:?}"
    );
}

#[test]
fn a_results_report_renders_every_plot_table_and_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    run_into(dir.path(), &out, true);
    contract_rl_report::plot_results(&out).unwrap();
    assert_eq!(contract_rl_report::write_report(&out).unwrap(), out.join("report.html"));
    let dom = check_report(&out);
    assert_eq!(dom.matches("<svg").count(), contract_rl_report::PLOTS.len());

    for heading in [
        "<h1>quickstart</h1>",
        "<h2>Plots</h2>",
        "<h2>Summary on the test campaigns</h2>",
        "<h3>Probability of improvement P(row &gt; column), with 95% bootstrap interval</h3>",
        "<h2>IQM, median and mean, and performance profiles</h2>",
        "<h2>What each agent and reference knows</h2>",
        "<h2>Configs, hashes and timings</h2>",
    ] {
        assert!(dom.contains(heading), "no {heading}");
    }
    // summary.md's five (summary with the references as rows, P(improvement), learning curves,
    // learners' diagnostics, offers by segment); the aggregates and profiles; what each knows;
    // the timings.
    assert_eq!(dom.matches("<table").count(), 5 + 2 + 1 + 1, "tables");
    assert_eq!(
        dom.matches("<tr class=\"reference\">").count(),
        3 + 2 + 3,
        "reference rows"
    );
    assert_eq!(
        dom.matches("Probability of improvement").count(),
        1,
        "P(improvement) shown once"
    );
    // The learner's odd name reached the page as text, in the plots and tables alike.
    assert!(!dom.contains("<i>"), "a name made markup");
    let name = "Q &lt;i&gt;&amp;amp; \"it's\"";
    for plot in contract_rl_report::PLOTS {
        assert!(figure(&dom, plot).contains(name), "{name} in {plot}");
    }
    for row in [
        format!("<tr><th scope=\"row\">{name}</th><td class=\"num\">3</td>"),
        format!("<tr><th scope=\"row\">{name}</th><td>q_learning</td>"),
    ] {
        assert!(dom.contains(&row), "no {row}");
    }

    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    for fact in [
        &manifest["config_sha256"],
        &manifest["snapshot"]["sha256"],
        &manifest["started_at"],
        &manifest["build"]["version"],
    ] {
        assert!(dom.contains(fact.as_str().unwrap()), "{fact} not on the page");
    }
    assert!(dom.contains("<h3>Experiment config</h3>") && dom.contains("\"every_episodes\": 20"));
    assert!(dom.contains("<summary>Env config (contract-choice)</summary>"));
    for knows in [
        "nothing: uniform over the valid contracts",
        "only its observations (the discrete state, the valid actions) and rewards (learns)",
        "the whole campaign in advance: the upper bound",
    ] {
        assert!(dom.contains(knows), "{knows:?} not on the page");
    }
}

#[test]
fn a_comparison_report_renders_its_plots_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    run_into(dir.path(), &results, false);
    let out = dir.path().join("comparison");
    let comparison = contract_rl_parquet::compare(std::slice::from_ref(&results)).unwrap();
    contract_rl_parquet::write_comparison(&out, "Comparison of <results>", &comparison).unwrap();
    contract_rl_report::plot_comparison(&out).unwrap();
    contract_rl_report::write_report(&out).unwrap();
    let dom = check_report(&out);
    assert_eq!(dom.matches("<svg").count(), 2);
    assert!(dom.contains("<h1>Comparison of &lt;results&gt;</h1>"));
    assert!(dom.contains("<h2>Aggregates, probability of improvement and performance profiles</h2>"));
    assert_eq!(dom.matches("<table").count(), 3, "aggregates, P(improvement), profiles");
    assert!(dom.contains("<th class=\"num\">median</th>") && dom.contains(">q_learning</th>"));
}
