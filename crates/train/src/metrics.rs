//! Per-step metrics: `<run>/metrics.jsonl` (one JSON object per optimizer step, always with a
//! `step` field) and PNG line plots of every numeric series in `<run>/plots/` (DESIGN.md "Files on
//! disk").
//!
//! On resume the log is cut back to the checkpoint's step, so the curves of a killed-and-restarted
//! run look like those of an uninterrupted one. Plots use `plotters` with an embedded subset of
//! DejaVu Sans (assets/README.md) so text renders on machines without system fonts.
use crate::{Error, Result};
use mathforge_io::jsonl::JsonlReader;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Appends one line per step to `metrics.jsonl`.
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Open `<run>/metrics.jsonl`. With `resume_step = Some(s)`, keep the lines with
    /// `step <= s` and drop the rest (they belong to steps that will be redone); with `None`,
    /// start empty.
    pub fn open(run_dir: &Path, resume_step: Option<u64>) -> Result<Self> {
        std::fs::create_dir_all(run_dir).map_err(|e| Error::io(run_dir, e))?;
        let path = run_dir.join("metrics.jsonl");
        let mut kept = Vec::new();
        if let (Some(s), true) = (resume_step, path.exists()) {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            for line in text.lines() {
                // A torn last line (killed mid-write) is not valid JSON: drop it.
                let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
                if v.get("step").and_then(Value::as_u64).is_some_and(|st| st <= s) {
                    kept.extend_from_slice(line.as_bytes());
                    kept.push(b'\n');
                }
            }
        }
        mathforge_io::atomic::write_atomic(&path, &kept)?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(MetricsLog { path, file })
    }

    /// Append a record; `step` is inserted first.
    pub fn log(&mut self, step: u64, record: &Map<String, Value>) -> Result<()> {
        let mut m = Map::new();
        m.insert("step".into(), Value::from(step));
        for (k, v) in record {
            if k != "step" {
                m.insert(k.clone(), v.clone());
            }
        }
        let mut line =
            serde_json::to_vec(&Value::Object(m)).map_err(|e| Error::Msg(e.to_string()))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(|e| Error::io(&self.path, e))?;
        self.file.flush().map_err(|e| Error::io(&self.path, e))
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Numeric series of a metrics file: key -> (step, value) points, skipping non-numeric values.
pub fn read_series(metrics: &Path) -> Result<BTreeMap<String, Vec<(f64, f64)>>> {
    let mut out: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for rec in JsonlReader::open(metrics)? {
        // A torn line (run killed mid-write) is skipped; the plot still shows the rest.
        let Ok(v) = rec.value else { continue };
        let Some(obj) = v.as_object() else { continue };
        let Some(step) = obj.get("step").and_then(Value::as_f64) else { continue };
        for (k, v) in obj {
            if k == "step" {
                continue;
            }
            if let Some(x) = v.as_f64().filter(|x| x.is_finite()) {
                out.entry(k.clone()).or_default().push((step, x));
            }
        }
    }
    Ok(out)
}

/// Plot every numeric series of `metrics` to `<plots_dir>/<key>.png`; returns the files written.
pub fn plot_metrics(metrics: &Path, plots_dir: &Path) -> Result<Vec<PathBuf>> {
    let series = read_series(metrics)?;
    let mut written = vec![];
    for (key, points) in series {
        if points.len() < 2 {
            continue;
        }
        let safe: String = key
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        let path = plots_dir.join(format!("{safe}.png"));
        plot_lines(&path, &key, "step", &[(key.clone(), points)])?;
        written.push(path);
    }
    Ok(written)
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans-ascii.ttf");
        // The bundled font is valid (checked by the plot test); nothing to report otherwise.
        let _ =
            plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes);
    });
}

/// Draw one or more named series as lines into a PNG at `path` (written atomically).
pub fn plot_lines(
    path: &Path,
    title: &str,
    x_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<()> {
    use plotters::prelude::*;
    register_font();
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in pts {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if x0 > x1 {
        return Err(Error::Msg(format!("plot {}: no points", path.display())));
    }
    if x1 == x0 {
        x1 = x0 + 1.0;
    }
    let pad = if y1 > y0 { (y1 - y0) * 0.05 } else { y0.abs().max(1.0) * 0.05 };
    let (y0, y1) = (y0 - pad, y1 + pad);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}.png", std::process::id()));
    let perr = |e: &dyn std::fmt::Display| Error::Msg(format!("plot {}: {e}", path.display()));
    {
        let root = BitMapBackend::new(&tmp, (800, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| perr(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| perr(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| perr(&e))?;
        for (i, (label, points)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(|e| perr(&e))?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(|e| perr(&e))?;
        }
        root.present().map_err(|e| perr(&e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(())
}

/// Draw a histogram as bars into a PNG at `path` (written atomically): `bins` are
/// `(low, high, count)` with equal widths, e.g. the classifier score histogram of a corpus
/// mining round (`mathforge corpus mine`).
pub fn plot_bars(path: &Path, title: &str, x_label: &str, bins: &[(f64, f64, u64)]) -> Result<()> {
    use plotters::prelude::*;
    register_font();
    if bins.is_empty() {
        return Err(Error::Msg(format!("plot {}: no bins", path.display())));
    }
    let x0 = bins.iter().map(|b| b.0).fold(f64::MAX, f64::min);
    let x1 = bins.iter().map(|b| b.1).fold(f64::MIN, f64::max);
    let top = bins.iter().map(|b| b.2).max().unwrap_or(0).max(1) as f64 * 1.05;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}.png", std::process::id()));
    let perr = |e: &dyn std::fmt::Display| Error::Msg(format!("plot {}: {e}", path.display()));
    {
        let root = BitMapBackend::new(&tmp, (800, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| perr(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1.max(x0 + 1e-9), 0f64..top)
            .map_err(|e| perr(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("count")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| perr(&e))?;
        let fill = Palette99::pick(0).to_rgba().filled();
        chart
            .draw_series(
                bins.iter().map(|&(lo, hi, n)| Rectangle::new([(lo, 0.0), (hi, n as f64)], fill)),
            )
            .map_err(|e| perr(&e))?;
        root.present().map_err(|e| perr(&e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_resume_truncates_and_plots_render_text() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = MetricsLog::open(dir.path(), None).unwrap();
        for s in 1..=5u64 {
            let mut m = Map::new();
            m.insert("loss".into(), Value::from(1.0 / s as f64));
            m.insert("note".into(), Value::from("x"));
            log.log(s, &m).unwrap();
        }
        drop(log);
        // Resume from step 3: steps 4 and 5 are dropped, then 4 is redone.
        let mut log = MetricsLog::open(dir.path(), Some(3)).unwrap();
        let mut m = Map::new();
        m.insert("loss".into(), Value::from(0.2));
        log.log(4, &m).unwrap();
        let series = read_series(log.path()).unwrap();
        let loss = &series["loss"];
        assert_eq!(loss.iter().map(|p| p.0 as u64).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(loss[3].1, 0.2);
        assert!(!series.contains_key("note"));

        let files = plot_metrics(log.path(), &dir.path().join("plots")).unwrap();
        assert_eq!(files.len(), 1);
        let bytes = std::fs::read(&files[0]).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        // Text drawn with the embedded font: a plot with a caption differs from one without.
        let a = dir.path().join("a.png");
        let b = dir.path().join("b.png");
        plot_lines(&a, "loss", "step", &[("x".into(), vec![(0.0, 1.0), (1.0, 0.5)])]).unwrap();
        plot_lines(&b, "", "", &[("x".into(), vec![(0.0, 1.0), (1.0, 0.5)])]).unwrap();
        assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

        // Bars: different counts draw different images; no bins is an error, not a panic.
        let h1 = dir.path().join("h1.png");
        let h2 = dir.path().join("h2.png");
        plot_bars(&h1, "scores", "p(math)", &[(0.0, 0.5, 10), (0.5, 1.0, 3)]).unwrap();
        plot_bars(&h2, "scores", "p(math)", &[(0.0, 0.5, 3), (0.5, 1.0, 10)]).unwrap();
        assert_eq!(&std::fs::read(&h1).unwrap()[1..4], b"PNG");
        assert_ne!(std::fs::read(&h1).unwrap(), std::fs::read(&h2).unwrap());
        assert!(plot_bars(&h1, "x", "x", &[]).is_err());
    }
}
