//! `wasipod get`: list pods as `kubectl get pods` does, or print one as
//! YAML/JSON.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use wasipod::table::PodRow;
use wasipod::{PodPhase, store};

use super::{print_summary, render};
use crate::{Format, GetFormat};

pub(crate) fn get(
    state_dir: &Path,
    namespace: &str,
    pod: Option<&str>,
    output: Option<GetFormat>,
) -> Result<ExitCode> {
    let records = match pod {
        Some(name) => {
            let record = store::find(state_dir, namespace, name)?;
            let mut object = record.object.clone();
            // Recorded while running, but its process is gone: Unknown.
            object.status.phase = record.phase();
            match output {
                Some(GetFormat::Yaml) => println!("{}", render(&object, Format::Yaml)?),
                Some(GetFormat::Json) => println!("{}", render(&object, Format::Json)?),
                None => print_summary(&object),
                Some(GetFormat::Wide) => {}
            }
            if !matches!(output, Some(GetFormat::Wide)) {
                return Ok(ExitCode::SUCCESS);
            }
            vec![record]
        }
        None => store::list(state_dir),
    };
    let wide = matches!(output, Some(GetFormat::Wide));
    let now = chrono::Utc::now();
    let mut table = vec![vec![
        "NAMESPACE".to_string(),
        "NAME".into(),
        "READY".into(),
        "STATUS".into(),
        "RESTARTS".into(),
        "AGE".into(),
    ]];
    if wide {
        table[0].extend(["IP".into(), "QOS".into()]);
    }
    for r in &records {
        let o = &r.object;
        let mut row = PodRow::of(&o.metadata, &o.spec, &o.status, now);
        if r.phase() == PodPhase::Unknown {
            // Its `wasipod run` is gone: nothing runs it any more.
            row.status = "Unknown".into();
        }
        let mut cells = vec![
            r.namespace().to_string(),
            r.name().to_string(),
            row.ready,
            row.status,
            row.restarts,
            row.age,
        ];
        if wide {
            cells.extend([row.ip, row.qos]);
        }
        table.push(cells);
    }
    print!("{}", columns(&table));
    Ok(ExitCode::SUCCESS)
}

/// Left-aligned columns three spaces apart, as kubectl prints tables.
fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
