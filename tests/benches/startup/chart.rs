//! The chart: median time to ready against `RLIMIT_NOFILE`, one line per subject, drawn as SVG.

use plotters::prelude::*;

use crate::columns::Column;
use crate::stats::{Grid, Stats};
use crate::subjects::SUBJECTS;

const COLORS: [RGBColor; 6] = [
    RGBColor(120, 120, 120),
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// The SVG text of the chart, from the columns without an extra inherited fd.
pub(crate) fn svg(columns: &[Column], stats: &Grid<Stats>) -> Result<String, String> {
    let plain: Vec<usize> = (0..columns.len())
        .filter(|c| columns[*c].high_fd.is_none() && !columns[*c].notify)
        .collect();
    let limits: Vec<f64> = plain.iter().map(|c| columns[*c].nofile as f64).collect();
    let (x_min, x_max) = (limits[0] * 0.8, limits[limits.len() - 1] * 1.25);
    let y_max = plain
        .iter()
        .flat_map(|c| (0..SUBJECTS.len()).map(move |s| stats.get(*c, s).ready.median))
        .fold(0.0, f64::max)
        * 1.1;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (820, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Time to ready against RLIMIT_NOFILE (median, µs)",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((x_min..x_max).log_scale(), 0.0..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("RLIMIT_NOFILE of the subject (log scale)")
            .y_desc("µs from spawn to ready")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|e| e.to_string())?;
        for (s, subject) in SUBJECTS.iter().enumerate() {
            let color = COLORS[s % COLORS.len()];
            let points: Vec<(f64, f64)> = plain
                .iter()
                .map(|c| (columns[*c].nofile as f64, stats.get(*c, s).ready.median))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(subject.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(text)
}
