//! The drawings, each once for SVG and once for PNG through plotters' backend-generic API.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::ReportError;
use crate::data::{Curve, FolderData};

/// Plot size in pixels (readable at 100% zoom).
const SIZE: (u32, u32) = (960, 600);
/// The font every label uses.
const FONT: &str = "sans-serif";
/// Every plot's name, in reading order (the order [`write_all`] writes them in).
pub const PLOTS: [&str; 6] = [
    "learning_curves",
    "regret",
    "final_performance",
    "performance_profiles",
    "offers_by_segment",
    "training_diagnostics",
];

type Area<DB> = DrawingArea<DB, Shift>;
type DrawResult = Result<(), String>;

/// Writes every plot `data` has into `out` as `<name>.svg` and `<name>.png`.
pub fn write_all(out: &Path, data: &FolderData) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(out).map_err(|e| ReportError::Draw {
        path: out.to_owned(),
        message: e.to_string(),
    })?;
    // Plots of an earlier run into the same folder must not outlive it (the report embeds every
    // plot it finds).
    for name in PLOTS {
        for extension in ["svg", "png"] {
            std::fs::remove_file(out.join(format!("{name}.{extension}"))).ok();
        }
    }
    if register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_err() {
        unreachable!("the embedded DejaVu Sans parses");
    }
    // One drawing function, generic over the backend, drawn as SVG and as PNG.
    macro_rules! plot {
        ($name:expr, $size:expr, $draw:ident) => {
            both(out, $name, $size, |a| $draw(a, data), |a| $draw(a, data))?
        };
    }
    let mut written = Vec::new();
    if !data.curves.is_empty() {
        written.extend(plot!("learning_curves", SIZE, learning_curves));
        written.extend(plot!("regret", SIZE, regret));
    }
    if !data.finals.is_empty() {
        written.extend(plot!("final_performance", SIZE, final_performance));
        written.extend(plot!("performance_profiles", SIZE, profiles));
    }
    if !data.mix.is_empty() {
        let rows = data.mix.len().div_ceil(2) as u32;
        let policies = data.mix[0].policies.len() as u32;
        written.extend(plot!(
            "offers_by_segment",
            (SIZE.0, 70 + rows * (90 + 30 * policies)),
            offers_by_segment
        ));
    }
    if !data.diagnostics.is_empty() {
        let rows = data.diagnostics.len() as u32 / 2;
        written.extend(plot!("training_diagnostics", (SIZE.0, 320 * rows.max(1)), diagnostics));
    }
    Ok(written)
}

/// Draws one plot as SVG and PNG (the two closures are the same drawing for each backend).
fn both(
    out: &Path,
    name: &str,
    size: (u32, u32),
    svg: impl FnOnce(&Area<SVGBackend>) -> DrawResult,
    png: impl FnOnce(&Area<BitMapBackend>) -> DrawResult,
) -> Result<Vec<PathBuf>, ReportError> {
    let (svg_path, png_path) = (out.join(format!("{name}.svg")), out.join(format!("{name}.png")));
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |message: String| ReportError::Draw { path, message }
    };
    {
        let area = SVGBackend::new(&svg_path, size).into_drawing_area();
        area.fill(&WHITE)
            .map_err(|e| e.to_string())
            .map_err(failed(&svg_path))?;
        svg(&area).map_err(failed(&svg_path))?;
        area.present().map_err(|e| e.to_string()).map_err(failed(&svg_path))?;
    }
    {
        let area = BitMapBackend::new(&png_path, size).into_drawing_area();
        area.fill(&WHITE)
            .map_err(|e| e.to_string())
            .map_err(failed(&png_path))?;
        png(&area).map_err(failed(&png_path))?;
        area.present().map_err(|e| e.to_string()).map_err(failed(&png_path))?;
    }
    Ok(vec![svg_path, png_path])
}

/// Okabe and Ito's colour-blind-safe palette, in order.
const COLORS: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// An axis tick: thousands as "12k", millions as "1.5M", small values with the decimals they
/// need.
fn tick(v: &f64) -> String {
    match v.abs() {
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e4 => format!("{:.0}k", v / 1e3),
        a if a >= 10.0 || *v == 0.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.2}"),
        a if a >= 0.1 => format!("{v:.3}"),
        _ => format!("{v:.4}"),
    }
}

/// (low, high) of `values` padded by 5%, never empty.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(hi.abs().max(1.0) * 1e-3);
    (lo - pad, hi + pad)
}

fn learning_curves<DB: DrawingBackend>(area: &Area<DB>, data: &FolderData) -> DrawResult {
    let references: Vec<(String, f64)> = data.references.iter().map(|r| (r.label.clone(), r.value)).collect();
    curves(
        area,
        data,
        &data.curves,
        format!(
            "Learning curves: validation campaigns, IQM {} over seeds, 95% band; dashed: references",
            data.score
        ),
        format!("{} per campaign", data.score),
        &references,
        SeriesLabelPosition::LowerRight,
    )
}

/// Regret is the online reference's score minus the learner's: the reference is the zero line.
fn regret<DB: DrawingBackend>(area: &Area<DB>, data: &FolderData) -> DrawResult {
    curves(
        area,
        data,
        &data.regrets,
        format!(
            "Regret to the {}: validation campaigns, IQM over seeds, 95% band",
            data.online
        ),
        format!("regret ({} per campaign)", data.score),
        &[(format!("{} (reference): zero regret", data.online), 0.0)],
        SeriesLabelPosition::UpperRight,
    )
}

/// `curves` over training campaigns with their bands, in each agent's colour, and `levels`
/// (label, value) as dashed horizontal lines.
fn curves<DB: DrawingBackend>(
    area: &Area<DB>,
    data: &FolderData,
    curves: &[Curve],
    caption: String,
    y_desc: String,
    levels: &[(String, f64)],
    legend_position: SeriesLabelPosition,
) -> DrawResult {
    let xs = curves.iter().flat_map(|c| c.points.iter().map(|p| p.0));
    let (x0, x1) = span(xs);
    let ys = curves
        .iter()
        .flat_map(|c| c.points.iter().flat_map(|p| [p.1.ci_low, p.1.ci_high]));
    let (y0, y1) = span(ys.chain(levels.iter().map(|l| l.1)));
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(x0.max(0.0)..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("training campaigns (episodes)")
        .y_desc(y_desc)
        .x_labels(8)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style((FONT, 15))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, curve) in curves.iter().enumerate() {
        // The agent's colour in every plot of the folder: its place among all agents.
        let c = color(data.finals.iter().position(|f| f.0 == curve.agent).unwrap_or(i));
        let band: Vec<(f64, f64)> = curve
            .points
            .iter()
            .map(|p| (p.0, p.1.ci_high))
            .chain(curve.points.iter().rev().map(|p| (p.0, p.1.ci_low)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(band, c.mix(0.2))))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                curve.points.iter().map(|p| (p.0, p.1.value)),
                c.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(&curve.agent)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    // Each level a dashed line named at its right end (levels closer than 2% of the axis share
    // one name), so the legend keeps to the agents.
    let style = ShapeStyle::from(&RGBColor(90, 90, 90)).stroke_width(1);
    let mut sorted: Vec<&(String, f64)> = levels.iter().collect();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut groups: Vec<(Vec<&str>, f64)> = Vec::new();
    for (label, value) in sorted {
        chart
            .draw_series(DashedLineSeries::new(
                [(x0.max(0.0), *value), (x1, *value)],
                8,
                5,
                style,
            ))
            .map_err(|e| e.to_string())?;
        match groups.last_mut() {
            Some((labels, at)) if (*at - value).abs() < 0.02 * (y1 - y0) => labels.push(label),
            _ => groups.push((vec![label], *value)),
        }
    }
    let text = TextStyle::from((FONT, 13).into_font())
        .color(&RGBColor(60, 60, 60))
        .pos(Pos::new(HPos::Right, VPos::Bottom));
    for (labels, value) in groups {
        chart
            .draw_series(std::iter::once(Text::new(
                labels.join(" · "),
                (x1, value),
                text.clone(),
            )))
            .map_err(|e| e.to_string())?;
    }
    legend(&mut chart, legend_position)
}

/// Draws the legend of `chart`'s labelled series at `position`.
fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 15))
        .draw()
        .map_err(|e| e.to_string())
}

/// Room for row labels of `names` at the labels' 15-pixel font (about 7 pixels a character).
fn label_width(names: &[String]) -> u32 {
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0) as u32;
    (longest * 7 + 16).max(120)
}

/// Labels of a chart with one row per name, the first name at the top (y = n − 1).
fn row_labels(names: Vec<String>) -> impl Fn(&f64) -> String {
    move |y: &f64| {
        let (i, n) = (y.round(), names.len());
        if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
            names[n - 1 - i as usize].clone()
        } else {
            String::new()
        }
    }
}

fn final_performance<DB: DrawingBackend>(area: &Area<DB>, data: &FolderData) -> DrawResult {
    let n = data.finals.len();
    let (x0, x1) = span(data.finals.iter().flat_map(|f| [f.1.ci_low, f.1.ci_high, f.1.value]));
    let names: Vec<String> = data.finals.iter().map(|f| f.0.clone()).collect();
    let width = label_width(&names);
    let label = row_labels(names);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Final performance: IQM {} on the test campaigns, 95% CI", data.score),
            (FONT, 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(width)
        .build_cartesian_2d(x0..x1, -0.5..(n as f64 - 0.5))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(format!("{} per campaign", data.score))
        .x_labels(8)
        .x_label_formatter(&tick)
        .y_labels(n)
        .y_label_formatter(&label)
        .disable_y_mesh()
        .label_style((FONT, 15))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (_, e)) in data.finals.iter().enumerate() {
        let (y, c) = ((n - 1 - i) as f64, color(i));
        chart
            .draw_series([
                PathElement::new(vec![(e.ci_low, y), (e.ci_high, y)], c.stroke_width(3)),
                PathElement::new(vec![(e.ci_low, y - 0.15), (e.ci_low, y + 0.15)], c.stroke_width(2)),
                PathElement::new(vec![(e.ci_high, y - 0.15), (e.ci_high, y + 0.15)], c.stroke_width(2)),
            ])
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(Circle::new((e.value, y), 6, c.filled())))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn profiles<DB: DrawingBackend>(area: &Area<DB>, data: &FolderData) -> DrawResult {
    let (x0, x1) = span(data.profiles.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)));
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Performance profiles: share of runs above each {}", data.score),
            (FONT, 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, 0.0..1.05)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(format!("threshold ({} per campaign)", data.score))
        .y_desc("share of runs above (95% band)")
        .x_labels(8)
        .x_label_formatter(&tick)
        .label_style((FONT, 15))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (agent, points)) in data.profiles.iter().enumerate() {
        let c = color(i);
        let band: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.0, p.1.ci_high))
            .chain(points.iter().rev().map(|p| (p.0, p.1.ci_low)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(band, c.mix(0.15))))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.1.value)),
                c.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(agent)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// One panel per user segment: each policy's decisions on the test campaigns as a bar stacked
/// by action, the references' last.
fn offers_by_segment<DB: DrawingBackend>(area: &Area<DB>, data: &FolderData) -> DrawResult {
    let (top, panels) = area.split_vertically(70);
    let title = "Offers by user segment on the test campaigns: share of each policy's decisions";
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    top.draw(&Text::new(title, (16, 8), (FONT, 22))).map_err(err)?;
    // One legend of the actions for every panel, across the top.
    let step = (SIZE.0 as i32 - 32) / data.actions.len().max(1) as i32;
    for (a, action) in data.actions.iter().enumerate() {
        let x = 16 + a as i32 * step;
        top.draw(&Rectangle::new([(x, 44), (x + 14, 56)], color(a).filled()))
            .map_err(err)?;
        top.draw(&Text::new(action.as_str(), (x + 20, 42), (FONT, 15)))
            .map_err(err)?;
    }
    let cells = panels.split_evenly((data.mix.len().div_ceil(2), 2));
    for (cell, mix) in cells.iter().zip(&data.mix) {
        let n = mix.policies.len();
        let names: Vec<String> = mix.policies.iter().map(|p| p.0.clone()).collect();
        let width = label_width(&names);
        let label = row_labels(names);
        let mut chart = ChartBuilder::on(cell)
            .caption(&mix.segment, (FONT, 17))
            .margin(10)
            .margin_right(24)
            .x_label_area_size(36)
            .y_label_area_size(width)
            .build_cartesian_2d(0.0..1.0, -0.5..(n as f64 - 0.5))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("share of decisions")
            .x_labels(5)
            .x_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .y_labels(n)
            .y_label_formatter(&label)
            .disable_y_mesh()
            .label_style((FONT, 13))
            .draw()
            .map_err(|e| e.to_string())?;
        for a in 0..data.actions.len() {
            let bars = mix.policies.iter().enumerate().map(|(i, (_, shares))| {
                let (y, x) = ((n - 1 - i) as f64, shares[..a].iter().sum::<f64>());
                Rectangle::new([(x, y - 0.35), (x + shares[a], y + 0.35)], color(a).filled())
            });
            chart.draw_series(bars).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// One row per learner: its TD loss and its mean Q over training steps.
fn diagnostics<DB: DrawingBackend>(area: &Area<DB>, data: &FolderData) -> DrawResult {
    let cells = area.split_evenly(((data.diagnostics.len() / 2).max(1), 2));
    for (cell, series) in cells.iter().zip(&data.diagnostics) {
        let (agent, metric, points) = (&series.agent, series.metric, &series.points);
        let (x0, x1) = span(points.iter().map(|p| p.0));
        let (y0, y1) = span(points.iter().map(|p| p.1));
        let what = if metric == "losses/td_loss" {
            "TD loss"
        } else {
            "mean Q"
        };
        let mut chart = ChartBuilder::on(cell)
            .caption(format!("{agent}: {what} ({metric}), mean over seeds"), (FONT, 17))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(x0.max(0.0)..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("training env steps")
            .y_desc(if metric == "losses/td_loss" {
                "loss (learner's units)"
            } else {
                "Q (learner's units)"
            })
            .x_labels(5)
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style((FONT, 13))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color(0).stroke_width(2)))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
