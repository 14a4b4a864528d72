//! The overview's small chart: orders executed and errored per minute over the last hour, as
//! inline SVG (no charting library, no script).

use std::fmt::Write;

/// Bars for 60 minutes, oldest first: (succeeded, failed) per minute.
pub fn minutes_svg(per_minute: &[(u64, u64)]) -> String {
    const WIDTH: usize = 180;
    const HEIGHT: u64 = 36;
    let peak = per_minute
        .iter()
        .map(|(ok, bad)| ok + bad)
        .max()
        .unwrap_or(0)
        .max(1);
    let bar = WIDTH as f64 / per_minute.len().max(1) as f64;
    let mut svg = format!(
        "<svg class=\"chart\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"orders per minute, last hour\">"
    );
    for (i, (ok, bad)) in per_minute.iter().enumerate() {
        let x = i as f64 * bar;
        let ok_h = (*ok * HEIGHT) as f64 / peak as f64;
        let bad_h = (*bad * HEIGHT) as f64 / peak as f64;
        let base = HEIGHT as f64;
        if *ok > 0 {
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{ok_h:.1}\" fill=\"#067647\"><title>{ok} executed</title></rect>",
                base - ok_h,
                bar.max(1.0) - 0.5
            );
        }
        if *bad > 0 {
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bad_h:.1}\" fill=\"#b42318\"><title>{bad} errored</title></rect>",
                base - ok_h - bad_h,
                bar.max(1.0) - 0.5
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::minutes_svg;

    #[test]
    fn bars_scale_to_the_busiest_minute() {
        let mut minutes = vec![(0, 0); 60];
        minutes[59] = (10, 0);
        minutes[58] = (5, 5);
        let svg = minutes_svg(&minutes);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(
            svg.contains("height=\"36.0\""),
            "the busiest minute fills the chart: {svg}"
        );
        assert!(svg.contains("<title>5 errored</title>"));
        assert_eq!(minutes_svg(&[(0, 0); 60]).matches("<rect").count(), 0);
    }
}
