//! Prometheus text exposition (format 0.0.4): metric families with their
//! `# HELP` and `# TYPE` lines, samples with escaped label values.

use std::fmt::Write as _;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// An exposition being written, family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: every sample until the next call belongs to it.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) -> &mut Self {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    /// One sample: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.text, "{k}=\"{v}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", number(value));
        self
    }

    /// A histogram's samples from per-bucket counts (not cumulative) with
    /// upper bounds in seconds, the count of the last (+Inf) bucket at the
    /// end of `counts`, and the sum of the observations.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds_s: &[f64],
        counts: &[u64],
        sum: f64,
    ) -> &mut Self {
        let mut cumulative = 0;
        for (i, n) in counts.iter().enumerate() {
            cumulative += n;
            let le = bounds_s.get(i).map_or("+Inf".to_string(), |b| number(*b));
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&format!("{name}_bucket"), &with_le, cumulative as f64);
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, cumulative as f64)
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// A sample value as Prometheus reads it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escaping() {
        let mut e = Exposition::new();
        e.family("atoll_x", "Things.", Kind::Gauge)
            .sample("atoll_x", &[("app", "a\"b\\c\nd")], 1.5)
            .sample("atoll_x", &[], 2.0);
        assert_eq!(
            e.finish(),
            "# HELP atoll_x Things.\n# TYPE atoll_x gauge\natoll_x{app=\"a\\\"b\\\\c\\nd\"} 1.5\natoll_x 2\n"
        );
    }

    #[test]
    fn histograms_are_cumulative_and_end_with_inf() {
        let mut e = Exposition::new();
        e.family("h", "H.", Kind::Histogram).histogram(
            "h",
            &[("s", "x")],
            &[0.001, 0.01],
            &[1, 2, 3],
            0.5,
        );
        let text = e.finish();
        assert!(
            text.contains("h_bucket{s=\"x\",le=\"0.001\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("h_bucket{s=\"x\",le=\"0.01\"} 3\n"), "{text}");
        assert!(text.contains("h_bucket{s=\"x\",le=\"+Inf\"} 6\n"), "{text}");
        assert!(text.contains("h_count{s=\"x\"} 6\n"), "{text}");
    }
}
