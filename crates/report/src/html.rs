//! `report.html`: one page per results or comparison folder that stands alone. It says what
//! the folder is, holds its plots inline (the SVGs of `plots/`), its tables (`summary.md` and
//! `comparison.md`, rendered), and for a results folder what each agent and reference knows
//! and the manifest's configs, hashes and timings. Small CSS, no script, nothing fetched.

use std::fmt::Write;
use std::path::Path;

use contract_rl_core::agents::AgentConfig;
use contract_rl_core::experiment::labels_of;
use serde_json::Value;

use crate::ReportError;
use crate::data::{env_kind, read_manifest};
use crate::markdown::{escape, to_html};
use crate::plots::PLOTS;

/// A part of the page, listed in its contents.
struct Section {
    id: &'static str,
    heading: &'static str,
    html: String,
}

/// The page of the results or comparison folder `dir`.
pub fn page(dir: &Path) -> Result<String, ReportError> {
    let comparison = read_text(dir, "comparison.md")?;
    let plots = Section {
        id: "plots",
        heading: "Plots",
        html: figures(dir)?,
    };
    if !dir.join("manifest.json").is_file() {
        let title = title(&comparison).unwrap_or("Comparison");
        let intro = "<p>A comparison folder written by <code>contract-rl compare</code>: the final \
                     score of every run of the compared results folders on their shared test \
                     campaigns, per agent.</p>\n";
        let sections = [
            plots,
            Section {
                id: "comparison",
                heading: "Aggregates, probability of improvement and performance profiles",
                html: to_html(untitled(&comparison), 2),
            },
        ];
        return Ok(document(title, "comparison", intro, &sections));
    }
    let manifest = read_manifest(dir)?;
    let summary = read_text(dir, "summary.md")?;
    let experiment = manifest["experiment"].as_str().unwrap_or("results");
    let sections = [
        plots,
        Section {
            id: "summary",
            heading: "Summary on the test campaigns",
            html: to_html(untitled(&summary), 2),
        },
        Section {
            id: "aggregates",
            heading: "IQM, median and mean, and performance profiles",
            // P(improvement) is in the summary already (the same bootstraps).
            html: to_html(&without(untitled(&comparison), "## Probability of improvement"), 2),
        },
        Section {
            id: "knows",
            heading: "What each agent and reference knows",
            html: knows(&manifest),
        },
        Section {
            id: "manifest",
            heading: "Configs, hashes and timings",
            html: provenance(&manifest),
        },
    ];
    Ok(document(
        experiment,
        "results",
        &results_intro(dir, &manifest),
        &sections,
    ))
}

fn read_text(dir: &Path, name: &str) -> Result<String, ReportError> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).map_err(|e| ReportError::Read {
        path,
        message: e.to_string(),
    })
}

/// The `# title` a Markdown file starts with.
fn title(markdown: &str) -> Option<&str> {
    markdown.lines().next()?.strip_prefix("# ")
}

/// `markdown` without the `# title` it starts with (the page has its own headings).
fn untitled(markdown: &str) -> &str {
    match title(markdown) {
        Some(_) => markdown.split_once('\n').map_or("", |(_, rest)| rest),
        None => markdown,
    }
}

/// `markdown` without the section whose heading starts with `heading`.
fn without(markdown: &str, heading: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in markdown.lines() {
        if line.starts_with("## ") {
            skipping = line.starts_with(heading);
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Every SVG of `dir/plots/`, inline, in [`PLOTS`] order and then by name.
fn figures(dir: &Path) -> Result<String, ReportError> {
    let plots = dir.join("plots");
    let entries = std::fs::read_dir(&plots).map_err(|e| ReportError::Read {
        path: plots.clone(),
        message: e.to_string(),
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".svg").map(str::to_owned))
        .collect();
    names.sort_by_key(|n| (PLOTS.iter().position(|k| k == n).unwrap_or(PLOTS.len()), n.clone()));
    let mut out = String::new();
    for name in names {
        let svg = read_text(&plots, &format!("{name}.svg"))?;
        // The drawing itself, from its root element (no XML prolog inside HTML).
        let svg = &svg[svg.find("<svg").unwrap_or(0)..];
        let name = escape(&name);
        writeln!(
            out,
            "<figure id=\"plot-{name}\">\n{}\n<figcaption>plots/{name}.svg (and .png)</figcaption>\n</figure>",
            svg.trim_end()
        )
        .unwrap();
    }
    Ok(out)
}

/// A JSON scalar as text (strings without quotes, null as "none").
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "none".to_owned(),
        other => other.to_string(),
    }
}

/// A definition list of (term, escaped HTML) pairs.
fn facts(rows: &[(&str, String)]) -> String {
    let mut out = "<dl class=\"facts\">\n".to_owned();
    for (term, html) in rows {
        writeln!(out, "<dt>{}</dt><dd>{html}</dd>", escape(term)).unwrap();
    }
    out.push_str("</dl>\n");
    out
}

fn code(text: &str) -> String {
    format!("<code>{}</code>", escape(text))
}

/// What a results folder is, in a paragraph and its key facts.
fn results_intro(dir: &Path, manifest: &Value) -> String {
    let config = &manifest["config"];
    let agents: Vec<String> = config["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .map(agent_name)
        .collect();
    let seeds = manifest["seeds"].as_array().map_or(0, Vec::len);
    let evaluation = &config["evaluation"];
    let score = labels_of(env_kind(manifest)).map(|l| l.score);
    let mut out = format!(
        "<p>The results folder {} written by <code>contract-rl run</code>: {} agents × {} seeds on the \
         <strong>{}</strong> env, learners trained for {} campaigns. Learning curves and regret are on \
         the validation campaigns; the summary, the aggregates and the final performance on the test \
         campaigns (users never trained or tuned on).</p>\n",
        code(&dir.display().to_string()),
        agents.len(),
        seeds,
        escape(env_kind(manifest)),
        escape(&text(&config["budget"]["train_episodes"])),
    );
    out.push_str(&facts(&[
        ("agents", escape(&agents.join(", "))),
        (
            "score",
            match score {
                Some(s) => format!("{}: {}", escape(s.label), escape(s.knows)),
                None => escape(&text(&manifest["score"])),
            },
        ),
        (
            "evaluation",
            escape(&format!(
                "{} campaigns per split (seed {}), before training and every {} training campaigns",
                text(&evaluation["episodes"]),
                text(&evaluation["seed"]),
                text(&evaluation["every_episodes"]),
            )),
        ),
        (
            "snapshot",
            format!(
                "{}, {} rows",
                code(&text(&manifest["snapshot"]["path"])),
                escape(&text(&manifest["snapshot"]["rows"]))
            ),
        ),
        (
            "build",
            escape(&format!(
                "contract-rl {}, commit {}",
                text(&manifest["build"]["version"]),
                text(&manifest["build"]["commit"])
            )),
        ),
        (
            "ran",
            escape(&format!(
                "{} to {}",
                text(&manifest["started_at"]),
                text(&manifest["finished_at"])
            )),
        ),
    ]));
    out
}

/// An agent's label, as `AgentConfig::name` gives it.
fn agent_name(config: &Value) -> String {
    match serde_json::from_value::<AgentConfig>(config.clone()) {
        Ok(agent) => agent.name(),
        Err(_) => text(&config["name"]),
    }
}

/// The agents with what they know, then the references with what they know.
fn knows(manifest: &Value) -> String {
    let mut out = "<div class=\"table\"><table class=\"knows\">\n<thead><tr><th>agent or reference</th>\
                   <th>kind</th><th>knows</th></tr></thead>\n<tbody>\n"
        .to_owned();
    for config in manifest["config"]["agents"].as_array().into_iter().flatten() {
        let (name, knows) = match serde_json::from_value::<AgentConfig>(config.clone()) {
            Ok(agent) => {
                let learns = if agent.learns() { " (learns)" } else { "" };
                (agent.name(), format!("{}{learns}", agent.knows()))
            }
            Err(_) => (text(&config["name"]), "not described by this version".to_owned()),
        };
        writeln!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>",
            escape(&name),
            escape(&text(&config["kind"])),
            escape(&knows)
        )
        .unwrap();
    }
    if let Some(labels) = labels_of(env_kind(manifest)) {
        for reference in [labels.myopic, labels.online, labels.bound] {
            writeln!(
                out,
                "<tr class=\"reference\"><th scope=\"row\"><em>{}</em></th><td>reference</td><td>{}</td></tr>",
                escape(reference.label),
                escape(reference.knows)
            )
            .unwrap();
        }
    }
    out.push_str("</tbody>\n</table></div>\n");
    out.push_str(
        "<p>References are scored on the same campaigns as the agents; regret and \"% of\" are against \
         the online one.</p>\n",
    );
    out
}

/// The manifest: hashes, build, seeds and times, the runs' timings, and both configs.
fn provenance(manifest: &Value) -> String {
    let snapshot = &manifest["snapshot"];
    let seeds: Vec<String> = manifest["seeds"].as_array().into_iter().flatten().map(text).collect();
    let mut out = facts(&[
        ("config_sha256", code(&text(&manifest["config_sha256"]))),
        ("snapshot path", code(&text(&snapshot["path"]))),
        ("snapshot sha256", code(&text(&snapshot["sha256"]))),
        ("snapshot rows", escape(&text(&snapshot["rows"]))),
        ("build version", escape(&text(&manifest["build"]["version"]))),
        ("build commit", code(&text(&manifest["build"]["commit"]))),
        ("seeds", escape(&seeds.join(", "))),
        ("started at", escape(&text(&manifest["started_at"]))),
        ("finished at", escape(&text(&manifest["finished_at"]))),
    ]);
    out.push_str(&timings(manifest));
    write!(
        out,
        "<h3>Experiment config</h3>\n<pre>{}</pre>\n<details>\n<summary>Env config ({})</summary>\n<pre>{}</pre>\n</details>\n",
        escape(&json(&manifest["config"], 0)),
        escape(&text(&manifest["env"]["name"])),
        escape(&json(&manifest["env"], 0)),
    )
    .unwrap();
    out
}

/// Per agent, its runs' mean training steps, seconds and steps per second.
fn timings(manifest: &Value) -> String {
    let mut agents: Vec<(&str, Vec<&Value>)> = Vec::new();
    for run in manifest["runs"].as_array().into_iter().flatten() {
        let agent = run["agent"].as_str().unwrap_or_default();
        match agents.iter_mut().find(|(a, _)| *a == agent) {
            Some((_, runs)) => runs.push(run),
            None => agents.push((agent, vec![run])),
        }
    }
    let mut out = "<h3>Timings (means over each agent's runs)</h3>\n<div class=\"table\"><table>\n<thead><tr>\
                   <th>agent</th><th class=\"num\">runs</th><th class=\"num\">training steps</th>\
                   <th class=\"num\">seconds</th><th class=\"num\">training steps per second</th></tr></thead>\n<tbody>\n"
        .to_owned();
    for (agent, runs) in agents {
        let mean = |field: &str| runs.iter().filter_map(|r| r[field].as_f64()).sum::<f64>() / runs.len() as f64;
        writeln!(
            out,
            "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td><td class=\"num\">{:.0}</td>\
             <td class=\"num\">{:.3}</td><td class=\"num\">{:.0}</td></tr>",
            escape(agent),
            runs.len(),
            mean("train_steps"),
            mean("seconds"),
            mean("train_steps_per_sec"),
        )
        .unwrap();
    }
    out.push_str("</tbody>\n</table></div>\n");
    out
}

/// `value` as indented JSON; arrays of scalars, and objects of scalars that fit, on one line.
fn json(value: &Value, indent: usize) -> String {
    let pad = |n: usize| "  ".repeat(n);
    let scalar = |v: &Value| !v.is_object() && !v.is_array();
    match value {
        Value::Object(map) if map.values().all(scalar) && value.to_string().len() <= 100 => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {v}", Value::from(k.as_str())))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Value::Object(map) if !map.is_empty() => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}{}: {}",
                        pad(indent + 1),
                        Value::from(k.as_str()),
                        json(v, indent + 1)
                    )
                })
                .collect();
            format!("{{\n{}\n{}}}", fields.join(",\n"), pad(indent))
        }
        Value::Array(items) if items.iter().any(|v| v.is_object() || v.is_array()) => {
            let items: Vec<String> = items
                .iter()
                .map(|v| format!("{}{}", pad(indent + 1), json(v, indent + 1)))
                .collect();
            format!("[\n{}\n{}]", items.join(",\n"), pad(indent))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(Value::to_string).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// The whole page: head with the CSS, header with `title`, `kind` and `intro`, the contents
/// and the sections.
fn document(title: &str, kind: &str, intro: &str, sections: &[Section]) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · contract-rl {kind}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<header>\n\
         <p class=\"kind\">contract-rl · {kind}</p>\n<h1>{}</h1>\n{intro}<nav><ul>\n",
        escape(title),
        escape(title),
    );
    for s in sections {
        writeln!(out, "<li><a href=\"#{}\">{}</a></li>", s.id, escape(s.heading)).unwrap();
    }
    out.push_str("</ul></nav>\n</header>\n");
    for s in sections {
        write!(
            out,
            "<section id=\"{}\">\n<h2>{}</h2>\n{}</section>\n",
            s.id,
            escape(s.heading),
            s.html
        )
        .unwrap();
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

const CSS: &str = "
:root { --ink: #1f2328; --muted: #59636e; --line: #d8dee4; --soft: #f6f8fa; --accent: #0a5c99; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 40px 64px; }
header { border-bottom: 1px solid var(--line); padding-bottom: 12px; }
.kind { margin: 0; color: var(--muted); font-size: 12px; letter-spacing: .08em; text-transform: uppercase; }
h1 { margin: 2px 0 8px; font-size: 30px; line-height: 1.2; overflow-wrap: anywhere; }
h2 { margin: 40px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); font-size: 22px; }
h3 { margin: 28px 0 8px; font-size: 16px; }
header strong { white-space: nowrap; }
p { max-width: 80ch; }
a { color: var(--accent); }
code, pre { font-family: ui-monospace, 'DejaVu Sans Mono', Menlo, monospace; font-size: 13px; }
code { overflow-wrap: anywhere; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 20px; margin: 12px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
nav ul { display: flex; flex-wrap: wrap; gap: 4px 20px; margin: 12px 0 0; padding: 0; list-style: none; }
figure { margin: 16px 0 28px; }
figure svg { display: block; width: 100%; max-width: 1000px; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { margin-top: 4px; color: var(--muted); font-size: 13px; }
.table { overflow-x: auto; margin: 8px 0 16px; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; vertical-align: top; }
thead th { background: var(--soft); border-bottom: 2px solid var(--line); white-space: normal; vertical-align: bottom; }
tbody th { font-weight: 600; }
.num { text-align: right; }
tr.reference th, tr.reference td { background: #fbf8ec; font-weight: normal; }
table.knows td:last-child { white-space: normal; min-width: 28em; }
pre { margin: 8px 0; padding: 12px 14px; max-height: 520px; overflow: auto; background: var(--soft); border-radius: 4px; }
details { margin: 8px 0; }
summary { cursor: pointer; font-weight: 600; }
";
