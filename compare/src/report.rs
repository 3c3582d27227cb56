//! The comparison's outputs: the printed table with each row's target and verdict, a
//! summary of the targets, results/compare.csv and results/compare.svg.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::measure::{Cond, Measured};
use crate::suite::{Caller, Goal, Target};

/// A row after it ran: what was measured, or why it could not be.
pub struct RowResult {
    pub group: &'static str,
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
    /// The subject's figure against the best peer's: time ratio for `AtMost`,
    /// throughput fraction for `AtLeastThroughput`.
    pub ratio: f64,
    pub best_peer: String,
    /// Fraction of the subject's calls that used two threads, when the target asks.
    pub two_thread_calls: Option<f64>,
    pub pass: bool,
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
        let subject = self.find(&target.subject)?.stats.median;
        let (best_peer, peer) = target
            .peers
            .iter()
            .filter_map(|p| self.find(p).map(|m| (p.clone(), m.stats.median)))
            .min_by(|a, b| a.1.total_cmp(&b.1))?;
        let (ratio, mut pass) = match target.goal {
            Goal::AtMost(limit) => (subject / peer, subject / peer <= limit),
            Goal::AtLeastThroughput(limit) => (peer / subject, peer / subject >= limit),
        };
        let two_thread_calls = target.min_two_thread_calls.map(|min| {
            let fraction = self
                .find(&target.subject)
                .and_then(|m| m.spread)
                .map_or(0.0, |(two, all)| two as f64 / all.max(1) as f64);
            pass &= fraction >= min;
            fraction
        });
        Some(Verdict {
            ratio,
            best_peer,
            two_thread_calls,
            pass,
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
    for r in results {
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
                    "{} vs {}: {:.2} ({}){}  {}",
                    t.subject,
                    v.best_peer,
                    v.ratio,
                    goal_text(&t.goal),
                    match (v.two_thread_calls, t.min_two_thread_calls) {
                        (Some(f), Some(min)) => format!(
                            ", two threads in {:.0}% of calls (needs >= {:.0}%)",
                            100.0 * f,
                            100.0 * min
                        ),
                        _ => String::new(),
                    },
                    if v.pass { "PASS" } else { "FAIL" }
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
        "| workload | target | parfor side | best peer | ratio | result |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in results {
        // The fork-join rows' workloads are their conditions; the others name their size.
        let what = if r.group.starts_with("fork-join") {
            format!("fork-join of 2, {}", r.workload)
        } else {
            r.workload.clone()
        };
        for t in &r.targets {
            let (subject, peer, ratio, result) = match (&r.outcome, r.verdict(t)) {
                (Err(e), _) => (
                    "-".to_string(),
                    "-".to_string(),
                    "-".to_string(),
                    format!("ERROR: {}", e.join("; ")),
                ),
                (Ok(_), None) => (
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
                        if v.pass { "PASS" } else { "FAIL" }.to_string(),
                    )
                }
            };
            let _ = writeln!(
                s,
                "| {what} | {} | {subject} | {peer} | {ratio} | {result} |",
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
        "group,workload,size,condition,implementation,median_s,q1_s,q3_s,rounds,gb_per_s,\
         two_thread_fraction,target,best_peer,ratio,pass,error\n",
    );
    for r in results {
        let prefix = [
            csv_field(r.group),
            csv_field(&r.workload),
            r.size.to_string(),
            csv_field(&r.condition()),
        ]
        .join(",");
        match &r.outcome {
            Err(errors) => {
                let _ = writeln!(s, "{prefix},,,,,,,,,,,,{}", csv_field(&errors.join("; ")));
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
                            "{},{},{:.4},{}",
                            csv_field(&t.text),
                            csv_field(&v.best_peer),
                            v.ratio,
                            if v.pass { "PASS" } else { "FAIL" }
                        ),
                        None => ",,,".to_string(),
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

/// One implementation's figure at one size, for the plot.
struct Point {
    n: f64,
    seconds: f64,
    gbs: f64,
}

/// What the plot's two panels show.
#[derive(Clone, Copy, PartialEq)]
enum Panel {
    Time,
    Throughput,
}

impl Panel {
    fn value(self, p: &Point) -> f64 {
        match self {
            Panel::Time => p.seconds * 1e6,
            Panel::Throughput => p.gbs,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Panel::Time => "time per call (us)",
            Panel::Throughput => "throughput (GB/s)",
        }
    }
}

/// A log axis tick: plain digits from 0.01 to 99999, else scientific notation.
fn axis_number(v: f64) -> String {
    if (1.0..1e5).contains(&v) {
        format!("{v:.0}")
    } else if (0.01..1.0).contains(&v) {
        format!("{v:.2}")
    } else {
        format!("{v:.0e}")
    }
}

/// Smallest and largest of `f` over `points`, widened by half on a log scale.
fn log_bounds(points: &[&Point], f: impl Fn(&Point) -> f64) -> (f64, f64) {
    let lo = points.iter().map(|p| f(p)).fold(f64::INFINITY, f64::min);
    let hi = points
        .iter()
        .map(|p| f(p))
        .fold(f64::NEG_INFINITY, f64::max);
    (lo / 1.5, hi * 1.5)
}

/// The SUM f64 rows as a plot: time per call and GB/s against the number of
/// elements, log axes, one line per implementation.
pub fn write_svg(path: &Path, results: &[RowResult]) -> Result<(), String> {
    let rows: Vec<&RowResult> = results
        .iter()
        .filter(|r| r.group == "SUM f64" && r.outcome.is_ok())
        .collect();
    let mut labels: Vec<String> = Vec::new();
    for r in &rows {
        for m in r.outcome.as_ref().expect("filtered on Ok") {
            if !labels.contains(&m.label) {
                labels.push(m.label.clone());
            }
        }
    }
    let series: Vec<(String, Vec<Point>)> = labels
        .iter()
        .map(|l| {
            let points = rows
                .iter()
                .filter_map(|r| {
                    r.find(l).map(|m| Point {
                        n: r.size as f64,
                        seconds: m.stats.median,
                        gbs: r.bytes / m.stats.median / 1e9,
                    })
                })
                .collect();
            (l.clone(), points)
        })
        .collect();
    let all: Vec<&Point> = series.iter().flat_map(|(_, p)| p).collect();
    if all.is_empty() {
        return Err("no SUM f64 row was measured".to_string());
    }
    let (x_lo, x_hi) = log_bounds(&all, |p| p.n);

    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = SVGBackend::new(path, (1400, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (left, right) = root.split_horizontally(700);
    for (area, panel) in [(&left, Panel::Time), (&right, Panel::Throughput)] {
        let (y_lo, y_hi) = log_bounds(&all, |p| panel.value(p));
        let mut chart = ChartBuilder::on(area)
            .caption(format!("SUM f64: {}", panel.title()), ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale())
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("elements")
            .y_desc(panel.title())
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .y_label_formatter(&|v| axis_number(*v))
            .draw()
            .map_err(|e| err(&e))?;
        for (i, (label, points)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            // parfor drawn thicker: it is the line the reader looks for.
            let width = if label == "parfor" { 4 } else { 2 };
            let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.n, panel.value(p))).collect();
            chart
                .draw_series(LineSeries::new(xy.clone(), color.stroke_width(width)))
                .map_err(|e| err(&e))?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
                });
            chart
                .draw_series(xy.into_iter().map(|p| Circle::new(p, 3, color.filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(match panel {
                Panel::Time => SeriesLabelPosition::UpperLeft,
                Panel::Throughput => SeriesLabelPosition::LowerRight,
            })
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
