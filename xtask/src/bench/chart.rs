//! The latency chart: one cumulative distribution per tool (the share of spawns that had
//! finished within a time), on a log time axis, as a PNG drawn with plotters' bitmap
//! backend. Text is rendered with ab_glyph from Debian's DejaVu Sans (installed by the
//! benchmark), so it depends on no system font lookup.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::report::ToolResult;

/// Draws the chart of `tools` into `path`, with `font` (a TTF file) for the text.
pub fn draw(path: &Path, font: &Path, title: &str, tools: &[ToolResult]) -> Result<()> {
    let bytes = std::fs::read(font).with_context(|| format!("read the font {}", font.display()))?;
    register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(bytes.into_boxed_slice()),
    )
    .map_err(|_| anyhow!("{} is not a font ab_glyph can read", font.display()))?;

    let all = tools.iter().flat_map(|t| t.latencies.iter().copied());
    let (lo, hi) = all.fold((u64::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi == 0 {
        return Err(anyhow!("no samples to draw"));
    }
    let (lo, hi) = (lo as f64 / 1000.0 * 0.8, hi as f64 / 1000.0 * 1.25);

    let root = BitMapBackend::new(path, (1200, 700)).into_drawing_area();
    let draw_err = |e: DrawingAreaErrorKind<_>| anyhow!("draw {}: {e:?}", path.display());
    root.fill(&WHITE).map_err(draw_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..1.0)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("time to spawn /bin/true and reap it (µs, log scale)")
        .y_desc("share of spawns finished")
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 15))
        .x_label_formatter(&|us| {
            if *us >= 1000.0 {
                format!("{} ms", us / 1000.0)
            } else {
                format!("{us} µs")
            }
        })
        .draw()
        .map_err(draw_err)?;
    for (i, t) in tools.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mut v: Vec<f64> = t.latencies.iter().map(|&ns| ns as f64 / 1000.0).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len() as f64;
        let points: Vec<(f64, f64)> = v
            .iter()
            .enumerate()
            .map(|(k, &x)| (x, (k + 1) as f64 / n))
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(3)))
            .map_err(draw_err)?
            .label(format!(
                "{}{}",
                t.key,
                if t.limited { "" } else { " (no cgroup limits)" }
            ))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(draw_err)?;
    root.present().map_err(draw_err)?;
    Ok(())
}
