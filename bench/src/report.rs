//! Result rows, medians across repeated runs, and their rendering as a table or JSON.
//!
//! A row is one measured configuration (scenario, server, parameters) with named numeric
//! metrics; repeats of the same configuration collapse into one row of per-metric medians.

use std::fmt::Write as _;
use std::path::Path;

use crate::server::Cpus;

use crate::stats::median;

/// One measured configuration.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Scenario name (`latency`, `idle`, …).
    pub(crate) scenario: String,
    /// `cometail` or `frontail`.
    pub(crate) server: String,
    /// Human-readable parameters (`sse n=1000 rate=100/s`).
    pub(crate) params: String,
    /// Named figures, in display order.
    pub(crate) metrics: Vec<(String, f64)>,
    /// Free-text remarks (capped client counts, errors seen).
    pub(crate) note: String,
    /// How many runs this row is the median of.
    pub(crate) runs: usize,
    /// Per metric (same order as `metrics`), the lowest and highest value across the runs.
    pub(crate) spread: Vec<(f64, f64)>,
}

impl Row {
    /// A row with no metrics yet.
    pub(crate) fn new(scenario: &str, server: &str, params: String) -> Self {
        Self {
            scenario: scenario.into(),
            server: server.into(),
            params,
            metrics: Vec::new(),
            note: String::new(),
            runs: 1,
            spread: Vec::new(),
        }
    }

    /// Adds a metric.
    pub(crate) fn m(mut self, name: &str, v: f64) -> Self {
        self.metrics.push((name.into(), v));
        self
    }

    /// A metric's value.
    pub(crate) fn get(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// A metric's lowest and highest value across the runs, when there were several.
    pub(crate) fn range(&self, name: &str) -> Option<(f64, f64)> {
        let i = self.metrics.iter().position(|(n, _)| n == name)?;
        self.spread.get(i).copied().filter(|_| self.runs > 1)
    }
}

/// Collapses rows of the same configuration into per-metric medians, keeping first-seen order.
pub(crate) fn medians(rows: &[Row]) -> Vec<Row> {
    let mut keys: Vec<(String, String, String)> = Vec::new();
    for r in rows {
        let k = (r.scenario.clone(), r.server.clone(), r.params.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|(s, srv, p)| {
            let group: Vec<&Row> = rows
                .iter()
                .filter(|r| r.scenario == s && r.server == srv && r.params == p)
                .collect();
            let mut out = Row::new(&s, &srv, p);
            out.runs = group.len();
            if let Some(first) = group.first() {
                for (name, _) in &first.metrics {
                    let mut vals: Vec<f64> = group.iter().filter_map(|r| r.get(name)).collect();
                    out.metrics
                        .push((name.clone(), median(&mut vals).unwrap_or(f64::NAN)));
                    // `median` sorted `vals`.
                    let lo = vals.first().copied().unwrap_or(f64::NAN);
                    out.spread.push((lo, vals.last().copied().unwrap_or(lo)));
                }
            }
            let mut notes: Vec<&str> = group
                .iter()
                .map(|r| r.note.as_str())
                .filter(|n| !n.is_empty())
                .collect();
            notes.dedup();
            out.note = notes.join("; ");
            out
        })
        .collect()
}

fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v == v.trunc() && v.abs() < 1e15 {
        let s = format!("{}", v as i64);
        // Thousands separators for readability.
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Renders rows as one aligned table per scenario.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let mut scenarios: Vec<&str> = Vec::new();
    for r in rows {
        if !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
    }
    for s in scenarios {
        let group: Vec<&Row> = rows.iter().filter(|r| r.scenario == s).collect();
        let mut cols: Vec<String> = vec!["server".into(), "params".into()];
        for r in &group {
            for (n, _) in &r.metrics {
                if !cols.contains(n) {
                    cols.push(n.clone());
                }
            }
        }
        cols.push("runs".into());
        let cells: Vec<Vec<String>> = group
            .iter()
            .map(|r| {
                cols.iter()
                    .map(|c| match c.as_str() {
                        "server" => r.server.clone(),
                        "params" => r.params.clone(),
                        "runs" => r.runs.to_string(),
                        m => match (r.get(m), r.range(m)) {
                            (None, _) => "-".into(),
                            (Some(v), Some((lo, hi))) if lo != hi => {
                                format!("{} [{}..{}]", fmt_num(v), fmt_num(lo), fmt_num(hi))
                            }
                            (Some(v), _) => fmt_num(v),
                        },
                    })
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = (0..cols.len())
            .map(|i| {
                cells
                    .iter()
                    .map(|row| row[i].len())
                    .chain([cols[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let _ = writeln!(out, "\n== {s} ==");
        let line = |vals: &[String]| {
            vals.iter()
                .enumerate()
                .map(|(i, v)| format!("{v:>w$}", w = widths[i]))
                .collect::<Vec<_>>()
                .join("  ")
        };
        let _ = writeln!(out, "{}", line(&cols));
        for (row, r) in cells.iter().zip(&group) {
            let _ = writeln!(out, "{}", line(row));
            if !r.note.is_empty() {
                let _ = writeln!(out, "    note: {}", r.note);
            }
        }
    }
    out
}

/// The lines every report starts with: what was measured, where, and whether the server and
/// the load generator shared cores.
pub(crate) fn header(binary: &Path, cpus: &Cpus) -> String {
    let sharing = if cpus.shared() {
        "server and load generator SHARED these cores"
    } else {
        "server and load generator PINNED to separate cores"
    };
    format!(
        "cometail-bench: commit {} | binary {} | {} CPUs online | load generator on CPUs {}, \
         server on CPUs {}: {sharing}\ncells: median of the runs [lowest..highest] when runs > 1",
        commit(),
        binary.display(),
        cpus.online,
        cpus.generator,
        if cpus.server.is_empty() {
            "?"
        } else {
            cpus.server.as_str()
        },
    )
}

/// The checkout's commit (`git describe --always --dirty`), or `unknown` outside one.
fn commit() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=10"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Renders rows as a JSON array.
pub(crate) fn json(rows: &[Row]) -> serde_json::Value {
    serde_json::Value::Array(
        rows.iter()
            .map(|r| {
                let metrics: serde_json::Map<String, serde_json::Value> = r
                    .metrics
                    .iter()
                    .map(|(n, v)| (n.clone(), serde_json::json!(v)))
                    .collect();
                let order: Vec<&str> = r.metrics.iter().map(|(n, _)| n.as_str()).collect();
                let spread: serde_json::Map<String, serde_json::Value> = r
                    .metrics
                    .iter()
                    .filter_map(|(n, _)| Some((n.clone(), serde_json::json!(r.range(n)?))))
                    .collect();
                serde_json::json!({
                    "scenario": r.scenario, "server": r.server, "params": r.params,
                    "runs": r.runs, "metrics": metrics, "spread": spread,
                    "metric_order": order, "note": r.note,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_collapse_to_medians_and_render() {
        let rows = vec![
            Row::new("latency", "cometail", "n=1".into()).m("p99_ms", 1.0),
            Row::new("latency", "cometail", "n=1".into()).m("p99_ms", 3.0),
            Row::new("latency", "cometail", "n=1".into()).m("p99_ms", 2.0),
            Row::new("latency", "frontail", "n=1".into()).m("p99_ms", 12345.0),
        ];
        let m = medians(&rows);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].get("p99_ms"), Some(2.0));
        assert_eq!(m[0].runs, 3);
        assert_eq!(m[0].range("p99_ms"), Some((1.0, 3.0)));
        assert_eq!(m[1].range("p99_ms"), None, "one run has no spread");
        let t = table(&m);
        assert!(t.contains("== latency =="));
        assert!(t.contains("2 [1..3]"), "{t}");
        assert!(t.contains("12,345"), "{t}");
        assert_eq!(json(&m)[1]["metrics"]["p99_ms"], serde_json::json!(12345.0));
        assert_eq!(
            json(&m)[0]["spread"]["p99_ms"],
            serde_json::json!([1.0, 3.0])
        );
    }
}
