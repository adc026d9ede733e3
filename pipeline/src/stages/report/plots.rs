//! The report's figures, drawn from `report.json`'s numbers with `plotters`, each as PNG and
//! SVG: accuracy per benchmark for every training set (bars with their bootstrap intervals),
//! and data diversity against average accuracy (one point per strategy). The font is DejaVu
//! Sans, embedded, so a headless node without system fonts draws the same picture.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use serde_json::Value;

const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (960, 540);

fn register_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "the embedded DejaVu Sans font did not load".to_owned())
    })
    .clone()
}

/// One bar: a training set's accuracy (%) with its interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// The figures' inputs for one student, read from the report's JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct StudentFigures {
    pub student: String,
    /// Benchmarks then `average`.
    pub groups: Vec<String>,
    /// Per training set (`baseline`, strategies): one bar per group.
    pub series: Vec<(String, Vec<Bar>)>,
    /// Per strategy: (diversity, its axis name) when the run measured one.
    pub diversity: Vec<(String, f64)>,
    pub diversity_axis: String,
}

fn bar_of(v: &Value) -> Option<Bar> {
    Some(Bar {
        value: 100.0 * v["accuracy"].as_f64()?,
        low: 100.0 * v["ci"][0].as_f64()?,
        high: 100.0 * v["ci"][1].as_f64()?,
    })
}

/// What the figures need from `report.json`, per student. The diversity axis is the
/// semantic score when every strategy has one, else 100 - pairwise ROUGE-L (both: higher is
/// more diverse).
pub fn figures(report: &Value, benchmarks: &[&str]) -> Vec<StudentFigures> {
    let data = report["data"].as_object();
    // Diversity of all generated items, as the paper measures it.
    let semantic = data.is_some_and(|d| {
        !d.is_empty() && d.values().all(|v| v["diversity"]["all"]["semantic"]["value"].is_f64())
    });
    let (axis, diversity_of): (&str, fn(&Value) -> Option<f64>) = if semantic {
        ("semantic diversity of all generated items", |v| v["diversity"]["all"]["semantic"]["value"].as_f64())
    } else {
        ("lexical diversity: 100 - pairwise ROUGE-L (%)", |v| {
            v["diversity"]["all"]["rouge_l"]["value"].as_f64().map(|r| 100.0 - r)
        })
    };
    let mut out = Vec::new();
    for (student, rows) in report["students"].as_object().into_iter().flatten() {
        let mut groups: Vec<String> = benchmarks.iter().map(|b| (*b).to_owned()).collect();
        groups.push("average".into());
        let rows: Vec<&Value> = rows.as_array().into_iter().flatten().collect();
        let series = rows
            .iter()
            .filter_map(|row| {
                let mut bars: Vec<Bar> =
                    benchmarks.iter().map(|b| bar_of(&row["benchmarks"][*b])).collect::<Option<_>>()?;
                bars.push(bar_of(&row["average"])?);
                Some((row["data"].as_str()?.to_owned(), bars))
            })
            .collect();
        // One point per arm, at its strategy's diversity.
        let diversity = rows
            .iter()
            .filter_map(|row| {
                let strategy = row["strategy"].as_str()?;
                let d = diversity_of(data?.get(strategy)?)?;
                Some((row["data"].as_str()?.to_owned(), d))
            })
            .collect();
        out.push(StudentFigures {
            student: student.clone(),
            groups,
            series,
            diversity,
            diversity_axis: axis.to_owned(),
        });
    }
    out
}

fn palette(i: usize) -> RGBColor {
    // Okabe-Ito: tells apart for colour-blind readers too.
    const COLORS: [RGBColor; 8] = [
        RGBColor(0, 0, 0),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(0, 158, 115),
        RGBColor(240, 228, 66),
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(204, 121, 167),
    ];
    COLORS[i % COLORS.len()]
}

type DrawResult = Result<(), String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn legend_and_present<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    area: &DrawingArea<DB, Shift>,
    position: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()
        .map_err(err)?;
    area.present().map_err(err)
}

fn draw_accuracy<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, f: &StudentFigures) -> DrawResult {
    area.fill(&WHITE).map_err(err)?;
    let top = f.series.iter().flat_map(|(_, bars)| bars.iter().map(|b| b.high)).fold(10.0, f64::max);
    let y_max = (top * 1.15).clamp(5.0, 100.0);
    let groups = f.groups.len();
    let mut chart = ChartBuilder::on(area)
        .caption(format!("Accuracy by training data: {}", f.student), (FONT, 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..groups as f64, 0.0..y_max)
        .map_err(err)?;
    let names = f.groups.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 1e-6 {
                names.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("accuracy (%), bars: 95% bootstrap interval")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    let n = f.series.len().max(1);
    let width = 0.8 / n as f64;
    for (s, (label, bars)) in f.series.iter().enumerate() {
        let color = palette(s);
        let rects = bars.iter().enumerate().map(|(g, b)| {
            let x0 = g as f64 + 0.1 + s as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width * 0.9, b.value)], color.mix(0.8).filled())
        });
        chart
            .draw_series(rects)
            .map_err(err)?
            .label(label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        let whiskers = bars.iter().enumerate().map(|(g, b)| {
            let x = g as f64 + 0.1 + s as f64 * width + width * 0.45;
            PathElement::new(vec![(x, b.low), (x, b.high)], BLACK.stroke_width(1))
        });
        chart.draw_series(whiskers).map_err(err)?;
    }
    legend_and_present(&mut chart, area, SeriesLabelPosition::UpperRight)
}

fn draw_diversity<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, f: &StudentFigures) -> DrawResult {
    area.fill(&WHITE).map_err(err)?;
    let average =
        |label: &str| f.series.iter().find(|(l, _)| l == label).and_then(|(_, bars)| bars.last().cloned());
    let points: Vec<(String, f64, Bar)> =
        f.diversity.iter().filter_map(|(label, d)| average(label).map(|b| (label.clone(), *d, b))).collect();
    let xs = points.iter().map(|p| p.1);
    let (x_lo, x_hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (x_lo, x_hi) = if x_lo.is_finite() { (x_lo, x_hi) } else { (0.0, 1.0) };
    let pad = ((x_hi - x_lo) * 0.15).max(1.0);
    let baseline = average("baseline");
    let y_top = points.iter().map(|p| p.2.high).chain(baseline.iter().map(|b| b.value)).fold(10.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("Diversity of the data vs accuracy after training: {}", f.student), (FONT, 22))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d((x_lo - pad)..(x_hi + pad), 0.0..(y_top * 1.15).clamp(5.0, 100.0))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(f.diversity_axis.as_str())
        .y_desc("average accuracy (%), bars: 95% interval")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    if let Some(b) = baseline {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x_lo - pad, b.value), (x_hi + pad, b.value)],
                RGBColor(120, 120, 120).stroke_width(1),
            )))
            .map_err(err)?
            .label(format!("baseline {:.1}%", b.value))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], RGBColor(120, 120, 120)));
    }
    for (i, (label, x, b)) in points.iter().enumerate() {
        let color = palette(i + 1);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(*x, b.low), (*x, b.high)],
                color.stroke_width(2),
            )))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Circle::new((*x, b.value), 6, color.filled())))
            .map_err(err)?
            .label(label.clone())
            .legend(move |(x, y)| Circle::new((x + 6, y), 5, color.filled()));
        chart
            .draw_series(std::iter::once(Text::new(label.clone(), (*x, b.value), (FONT, 14).into_font())))
            .map_err(err)?;
    }
    legend_and_present(&mut chart, area, SeriesLabelPosition::UpperLeft)
}

#[derive(Clone, Copy)]
enum Figure {
    Accuracy,
    Diversity,
}

fn draw<DB: DrawingBackend>(area: DrawingArea<DB, Shift>, figure: Figure, f: &StudentFigures) -> DrawResult {
    match figure {
        Figure::Accuracy => draw_accuracy(&area, f),
        Figure::Diversity => draw_diversity(&area, f),
    }
}

/// Draws every figure into `dir` (PNG and SVG of each); returns the files written.
pub fn draw_all(report: &Value, benchmarks: &[&str], dir: &Path) -> Result<Vec<PathBuf>, String> {
    register_font()?;
    let mut written = Vec::new();
    for f in figures(report, benchmarks) {
        let mut wanted = vec![("accuracy", Figure::Accuracy)];
        if !f.diversity.is_empty() {
            wanted.push(("diversity_vs_accuracy", Figure::Diversity));
        }
        for (name, figure) in wanted {
            let stem = format!("{name}_{}", f.student);
            let svg = dir.join(format!("{stem}.svg"));
            draw(SVGBackend::new(&svg, SIZE).into_drawing_area(), figure, &f)
                .map_err(|e| format!("{}: {e}", svg.display()))?;
            let png = dir.join(format!("{stem}.png"));
            draw(BitMapBackend::new(&png, SIZE).into_drawing_area(), figure, &f)
                .map_err(|e| format!("{}: {e}", png.display()))?;
            written.extend([svg, png]);
        }
    }
    Ok(written)
}
