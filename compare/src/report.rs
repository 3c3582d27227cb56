//! The comparison's outputs: the printed table with each row's target and verdict, a
//! summary of the targets, results/compare.csv and results/compare.svg.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::measure::{Cond, Measured};
use crate::suite::{Caller, Goal, Target};

/// The comparison's two sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Each implementation in its own process: what a program that uses parfor
    /// instead of OpenMP sees.
    InsteadOf,
    /// Every implementation in one process, interleaved: what a program that uses
    /// parfor beside OpenMP (or TBB, rayon) sees.
    Beside,
}

impl Section {
    pub fn title(self) -> &'static str {
        match self {
            Section::InsteadOf => "instead of OpenMP (each implementation in its own process)",
            Section::Beside => "beside OpenMP (every implementation in one process)",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Section::InsteadOf => "instead of",
            Section::Beside => "beside",
        }
    }
}

/// A target's result: PASS when the ratio holds at the upper quartile (the
/// subject's third quartile against the best peer's), TIE when it holds only at
/// the median, FAIL otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Tie,
    Fail,
}

impl Outcome {
    pub fn text(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Tie => "TIE",
            Outcome::Fail => "FAIL",
        }
    }
}

/// A row after it ran: what was measured, or why it could not be.
pub struct RowResult {
    pub section: Section,
    pub group: String,
    pub workload: String,
    pub size: usize,
    pub bytes: f64,
    pub cond: Cond,
    pub caller: Caller,
    pub outcome: Result<Vec<Measured>, Vec<String>>,
    pub targets: Vec<Target>,
    /// Wall time the row took, settling and calibration included.
    pub seconds: f64,
}

/// A target checked against the figures.
pub struct Verdict {
    /// The subject's median against the best peer's (the peer with the lowest
    /// median): time ratio for `AtMost`, throughput fraction for `AtLeastThroughput`.
    pub ratio: f64,
    /// The same at the upper quartile of time: the subject's q3 against that peer's
    /// q3.
    pub ratio_q3: f64,
    pub best_peer: String,
    /// Fraction of the subject's calls that used two threads, when the target asks.
    pub two_thread_calls: Option<f64>,
    pub outcome: Outcome,
}

impl RowResult {
    fn find(&self, label: &str) -> Option<&Measured> {
        self.outcome
            .as_ref()
            .ok()?
            .iter()
            .find(|m| m.label == label)
    }

    /// The verdict of `target`, or None when its subject or every peer is missing.
    pub fn verdict(&self, target: &Target) -> Option<Verdict> {
        let subject = &self.find(&target.subject)?.stats;
        let (best_peer, peer) = target
            .peers
            .iter()
            .filter_map(|p| self.find(p).map(|m| (p.clone(), m.stats.clone())))
            .min_by(|a, b| a.1.median.total_cmp(&b.1.median))?;
        let (ratio, ratio_q3, holds): (f64, f64, &dyn Fn(f64) -> bool) = match target.goal {
            Goal::AtMost(limit) => (
                subject.median / peer.median,
                subject.q3 / peer.q3,
                &move |r| r <= limit,
            ),
            Goal::AtLeastThroughput(limit) => (
                peer.median / subject.median,
                peer.q3 / subject.q3,
                &move |r| r >= limit,
            ),
        };
        let mut pass = holds(ratio);
        let at_q3 = holds(ratio_q3);
        let two_thread_calls = target.min_two_thread_calls.map(|min| {
            let fraction = self
                .find(&target.subject)
                .and_then(|m| m.spread)
                .map_or(0.0, |(two, all)| two as f64 / all.max(1) as f64);
            pass &= fraction >= min;
            fraction
        });
        let outcome = match (pass, at_q3) {
            (true, true) => Outcome::Pass,
            (true, false) => Outcome::Tie,
            (false, _) => Outcome::Fail,
        };
        Some(Verdict {
            ratio,
            ratio_q3,
            best_peer,
            two_thread_calls,
            outcome,
        })
    }

    fn condition(&self) -> String {
        let cond = match self.cond {
            Cond::BackToBack => "back to back".to_string(),
            Cond::AfterIdle(d) => format!("after {} ms idle", d.as_millis()),
        };
        let caller = match self.caller {
            Caller::Main => "main thread",
            Caller::Second => "second thread",
        };
        format!("{cond}, {caller}")
    }
}

/// Seconds as "0.214 us", "3.10 ms".
pub fn fmt_time(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.3} us", s * 1e6)
    } else {
        format!("{:.3} ms", s * 1e3)
    }
}

fn goal_text(goal: &Goal) -> String {
    match goal {
        Goal::AtMost(l) => format!("time ratio <= {l}"),
        Goal::AtLeastThroughput(l) => format!("throughput fraction >= {l}"),
    }
}

/// The full table: for each row every implementation's median, quartiles, GB/s, its
/// time relative to the row's target subject, and the target's verdict.
pub fn table(results: &[RowResult]) -> String {
    let mut s = String::new();
    let mut section = None;
    for r in results {
        if section != Some(r.section) {
            section = Some(r.section);
            let _ = writeln!(s, "\n######## {} ########", r.section.title());
        }
        let _ = writeln!(
            s,
            "\n== {}: {} [{}; {:.1} s]",
            r.group,
            r.workload,
            r.condition(),
            r.seconds
        );
        let measured = match &r.outcome {
            Ok(m) => m,
            Err(errors) => {
                for e in errors {
                    let _ = writeln!(s, "   ERROR {e}");
                }
                continue;
            }
        };
        let reference = r
            .targets
            .first()
            .and_then(|t| measured.iter().find(|m| m.label == t.subject));
        // Wide enough for the longest label ("parfor-clang-reduce_with").
        let w = measured
            .iter()
            .map(|m| m.label.len())
            .max()
            .unwrap_or(0)
            .max(20);
        let _ = writeln!(
            s,
            "   {:<w$} {:>12} {:>25} {:>9} {:>11} {:>10}",
            "implementation",
            "median",
            "q1 .. q3",
            "GB/s",
            format!("{}/this", reference.map_or("-", |m| m.label.as_str()))
                .chars()
                .take(11)
                .collect::<String>(),
            "2 threads"
        );
        for m in measured {
            let gbs = if r.bytes > 0.0 {
                format!("{:.2}", r.bytes / m.stats.median / 1e9)
            } else {
                String::new()
            };
            let rel = reference.map_or(String::new(), |f| {
                format!("{:.2}", f.stats.median / m.stats.median)
            });
            let spread = m.spread.map_or(String::new(), |(two, all)| {
                format!("{:.0}%", 100.0 * two as f64 / all.max(1) as f64)
            });
            let _ = writeln!(
                s,
                "   {:<w$} {:>12} {:>25} {:>9} {:>11} {:>10}",
                m.label,
                fmt_time(m.stats.median),
                format!("{} .. {}", fmt_time(m.stats.q1), fmt_time(m.stats.q3)),
                gbs,
                rel,
                spread
            );
        }
        for t in &r.targets {
            let line = match r.verdict(t) {
                Some(v) => format!(
                    "{} vs {}: {:.2} at the median, {:.2} at the upper quartile ({}){}  {}",
                    t.subject,
                    v.best_peer,
                    v.ratio,
                    v.ratio_q3,
                    goal_text(&t.goal),
                    match (v.two_thread_calls, t.min_two_thread_calls) {
                        (Some(f), Some(min)) => format!(
                            ", two threads in {:.0}% of calls (needs >= {:.0}%)",
                            100.0 * f,
                            100.0 * min
                        ),
                        _ => String::new(),
                    },
                    v.outcome.text()
                ),
                None => "not measured".to_string(),
            };
            let _ = writeln!(s, "   target {}: {line}", t.text);
        }
    }
    s
}

/// One line per target, as a Markdown table (for the README and the issue).
pub fn summary(results: &[RowResult]) -> String {
    let mut s = String::from(
        "| section | workload | target | parfor side | best peer | ratio (median) | ratio (q3) | result |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in results {
        // The fork-join rows' workloads are their conditions; the others name their size.
        let what = if r.group.starts_with("fork-join") {
            format!("fork-join of 2, {}", r.workload)
        } else {
            r.workload.clone()
        };
        for t in &r.targets {
            let (subject, peer, ratio, ratio_q3, result) = match (&r.outcome, r.verdict(t)) {
                (Err(e), _) => (
                    "-".to_string(),
                    "-".to_string(),
                    "-".to_string(),
                    "-".to_string(),
                    format!("ERROR: {}", e.join("; ")),
                ),
                (Ok(_), None) => (
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "not measured".to_string(),
                ),
                (Ok(_), Some(v)) => {
                    let sub = r.find(&t.subject).map_or(0.0, |m| m.stats.median);
                    let peer = r.find(&v.best_peer).map_or(0.0, |m| m.stats.median);
                    let two = v.two_thread_calls.map_or(String::new(), |f| {
                        format!(" ({:.0}% on 2 threads)", 100.0 * f)
                    });
                    (
                        format!("{} {}{two}", t.subject, fmt_time(sub)),
                        format!("{} {}", v.best_peer, fmt_time(peer)),
                        format!("{:.2}", v.ratio),
                        format!("{:.2}", v.ratio_q3),
                        v.outcome.text().to_string(),
                    )
                }
            };
            let _ = writeln!(
                s,
                "| {} | {what} | {} | {subject} | {peer} | {ratio} | {ratio_q3} | {result} |",
                r.section.short(),
                t.text
            );
        }
    }
    s
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// Every figure, one line per row and implementation; the target columns are
/// filled on the line of the target's subject.
pub fn write_csv(path: &Path, results: &[RowResult]) -> std::io::Result<()> {
    let mut s = String::from(
        "section,group,workload,size,condition,implementation,median_s,q1_s,q3_s,rounds,\
         gb_per_s,two_thread_fraction,target,best_peer,ratio,ratio_q3,result,error\n",
    );
    for r in results {
        let prefix = [
            csv_field(r.section.short()),
            csv_field(&r.group),
            csv_field(&r.workload),
            r.size.to_string(),
            csv_field(&r.condition()),
        ]
        .join(",");
        match &r.outcome {
            Err(errors) => {
                let _ = writeln!(s, "{prefix},,,,,,,,,,,,,{}", csv_field(&errors.join("; ")));
            }
            Ok(measured) => {
                for m in measured {
                    let gbs = if r.bytes > 0.0 {
                        format!("{:.4}", r.bytes / m.stats.median / 1e9)
                    } else {
                        String::new()
                    };
                    let spread = m.spread.map_or(String::new(), |(two, all)| {
                        format!("{:.4}", two as f64 / all.max(1) as f64)
                    });
                    let target = r.targets.iter().find(|t| t.subject == m.label);
                    let verdict = target.and_then(|t| r.verdict(t).map(|v| (t, v)));
                    let tcols = match verdict {
                        Some((t, v)) => format!(
                            "{},{},{:.4},{:.4},{}",
                            csv_field(&t.text),
                            csv_field(&v.best_peer),
                            v.ratio,
                            v.ratio_q3,
                            v.outcome.text()
                        ),
                        None => ",,,,".to_string(),
                    };
                    let _ = writeln!(
                        s,
                        "{prefix},{},{:.6e},{:.6e},{:.6e},{},{gbs},{spread},{tcols},",
                        csv_field(&m.label),
                        m.stats.median,
                        m.stats.q1,
                        m.stats.q3,
                        m.stats.rounds
                    );
                }
            }
        }
    }
    std::fs::write(path, s)
}

/// What the plot's header states about the run.
pub struct PlotInfo {
    /// CPU model name, family and model, kernel ISA level.
    pub machine: String,
    pub threads: usize,
    pub commit: String,
    pub date: String,
    /// "full" or "quick".
    pub mode: String,
}

impl PlotInfo {
    pub fn header(&self) -> String {
        format!(
            "{}; {} threads; commit {}; {}; {} run",
            self.machine, self.threads, self.commit, self.date, self.mode
        )
    }
}

/// A log axis tick: plain digits from 0.01 to 99999, else scientific notation.
fn axis_number(v: f64) -> String {
    if (1.0..1e5).contains(&v) {
        format!("{v:.0}")
    } else if (0.01..1.0).contains(&v) {
        format!("{v:.2}")
    } else if v == 0.0 {
        "0".to_string()
    } else {
        format!("{v:.0e}")
    }
}

/// The short name of a row inside its family's panel.
fn short_workload(r: &RowResult) -> String {
    let w = r.workload.replace(", own process", "");
    let w = w.strip_prefix(&format!("{}, ", r.group)).unwrap_or(&w);
    w.chars().take(26).collect()
}

/// Panel columns of the plot.
const COLUMNS: usize = 3;
const PANEL: (u32, u32) = (620, 430);
const HEADER_PX: u32 = 70;

/// Every workload family (each section's groups) as a small multiple: median time
/// per call (us) of each implementation across the family's rows, log scale where
/// every figure is positive. Each implementation keeps its colour and marker in
/// every panel; the header states CPU, threads, commit and date.
pub fn write_svg(path: &Path, results: &[RowResult], info: &PlotInfo) -> Result<(), String> {
    // Families in order of first appearance.
    let mut families: Vec<(Section, String)> = Vec::new();
    for r in results.iter().filter(|r| r.outcome.is_ok()) {
        let key = (r.section, r.group.clone());
        if !families.contains(&key) {
            families.push(key);
        }
    }
    if families.is_empty() {
        return Err("no row was measured".to_string());
    }
    let mut labels: Vec<String> = Vec::new();
    for r in results {
        if let Ok(m) = &r.outcome {
            for m in m {
                if !labels.contains(&m.label) {
                    labels.push(m.label.clone());
                }
            }
        }
    }
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let rows_of_panels = families.len().div_ceil(COLUMNS);
    let size = (
        PANEL.0 * COLUMNS as u32,
        HEADER_PX + PANEL.1 * rows_of_panels as u32,
    );
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (header, body) = root.split_vertically(HEADER_PX);
    header
        .draw_text(
            "parfor-compare: median time per call (us) per workload family",
            &("sans-serif", 22).into_text_style(&header),
            (15, 8),
        )
        .map_err(|e| err(&e))?;
    header
        .draw_text(
            &info.header(),
            &("sans-serif", 15).into_text_style(&header),
            (15, 40),
        )
        .map_err(|e| err(&e))?;
    let panels = body.split_evenly((rows_of_panels, COLUMNS));
    for ((section, group), area) in families.iter().zip(panels.iter()) {
        let rows: Vec<&RowResult> = results
            .iter()
            .filter(|r| r.section == *section && &r.group == group && r.outcome.is_ok())
            .collect();
        let names: Vec<String> = rows.iter().map(|r| short_workload(r)).collect();
        let values: Vec<f64> = rows
            .iter()
            .flat_map(|r| r.outcome.as_ref().expect("filtered on Ok"))
            .map(|m| m.stats.median * 1e6)
            .collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let k = rows.len() as f64;
        let caption = format!("{} [{}]", group, section.short());
        let mut chart = ChartBuilder::on(area);
        chart
            .caption(caption, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60);
        let names_x = names.clone();
        let x_fmt = move |v: &f64| -> String {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names_x.len() {
                names_x[i as usize].clone()
            } else {
                String::new()
            }
        };
        // One macro body for both axis kinds: the chart types differ.
        macro_rules! draw_panel {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_labels(rows.len().max(2))
                    .x_label_formatter(&x_fmt)
                    .y_label_formatter(&|v| axis_number(*v))
                    .y_desc("us per call")
                    .label_style(("sans-serif", 11))
                    .draw()
                    .map_err(|e| err(&e))?;
                for (li, label) in labels.iter().enumerate() {
                    let xy: Vec<(f64, f64)> = rows
                        .iter()
                        .enumerate()
                        .filter_map(|(i, r)| {
                            r.find(label).map(|m| (i as f64, m.stats.median * 1e6))
                        })
                        .collect();
                    if xy.is_empty() {
                        continue;
                    }
                    let color = Palette99::pick(li).to_rgba();
                    let width = if label == "parfor" { 3 } else { 1 };
                    chart
                        .draw_series(LineSeries::new(xy.clone(), color.stroke_width(width)))
                        .map_err(|e| err(&e))?;
                    let series = match li % 6 {
                        0 => {
                            chart.draw_series(xy.iter().map(|&p| Circle::new(p, 4, color.filled())))
                        }
                        1 => chart.draw_series(
                            xy.iter()
                                .map(|&p| TriangleMarker::new(p, 5, color.filled())),
                        ),
                        2 => chart.draw_series(
                            xy.iter().map(|&p| Cross::new(p, 4, color.stroke_width(2))),
                        ),
                        3 => chart.draw_series(xy.iter().map(|&p| {
                            (EmptyElement::at(p)
                                + Rectangle::new([(-4, -4), (4, 4)], color.filled()))
                        })),
                        4 => chart.draw_series(
                            xy.iter().map(|&p| Circle::new(p, 4, color.stroke_width(2))),
                        ),
                        _ => chart.draw_series(
                            xy.iter()
                                .map(|&p| TriangleMarker::new(p, 5, color.stroke_width(2))),
                        ),
                    }
                    .map_err(|e| err(&e))?;
                    let shape = li % 6;
                    series.label(label.as_str()).legend(move |(x, y)| {
                        let line = PathElement::new(vec![(x - 8, y), (x + 8, y)], color);
                        let mark = match shape {
                            0 => Circle::new((x, y), 4, color.filled()).into_dyn(),
                            1 => TriangleMarker::new((x, y), 5, color.filled()).into_dyn(),
                            2 => Cross::new((x, y), 4, color.stroke_width(2)).into_dyn(),
                            3 => Rectangle::new([(x - 4, y - 4), (x + 4, y + 4)], color.filled())
                                .into_dyn(),
                            4 => Circle::new((x, y), 4, color.stroke_width(2)).into_dyn(),
                            _ => TriangleMarker::new((x, y), 5, color.stroke_width(2)).into_dyn(),
                        };
                        EmptyElement::at((0, 0)) + line + mark
                    });
                }
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .label_font(("sans-serif", 11))
                    .draw()
                    .map_err(|e| err(&e))?;
            }};
        }
        if lo > 0.0 && hi / lo > 20.0 {
            let built = chart
                .build_cartesian_2d(-0.5..k - 0.5, (lo / 1.5..hi * 1.5).log_scale())
                .map_err(|e| err(&e))?;
            draw_panel!(built);
        } else {
            let pad = 0.1 * (hi - lo).abs().max(1e-3);
            let y0 = if lo > 0.0 { 0.0 } else { lo - pad };
            let built = chart
                .build_cartesian_2d(-0.5..k - 0.5, y0..hi + pad)
                .map_err(|e| err(&e))?;
            draw_panel!(built);
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
