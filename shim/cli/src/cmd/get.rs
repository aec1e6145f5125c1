//! `wasipod get`: list pods as `kubectl get pods` does, or print one as
//! YAML/JSON.

use std::process::ExitCode;

use anyhow::Result;
use wasipod::table::PodRow;
use wasipod::{PodObject, PodPhase};

use super::{Pods, print_summary, render};
use crate::{Format, GetFormat};

pub(crate) fn get(
    pods: &Pods,
    namespace: &str,
    pod: Option<&str>,
    output: Option<GetFormat>,
) -> Result<ExitCode> {
    let wide = matches!(output, Some(GetFormat::Wide));
    // (object, whether nothing runs it any more although it did not finish)
    let listed: Vec<(PodObject, bool)> = match pod {
        Some(name) => {
            let (mut object, lost) = match pods.daemon_pod(namespace, name)? {
                Some((_, object)) => (object, false),
                None => {
                    let record = pods.record(namespace, name)?;
                    (record.object.clone(), record.phase() == PodPhase::Unknown)
                }
            };
            if lost {
                // Recorded while running, but its process is gone: Unknown.
                object.status.phase = PodPhase::Unknown;
            }
            match output {
                Some(GetFormat::Yaml) => println!("{}", render(&object, Format::Yaml)?),
                Some(GetFormat::Json) => println!("{}", render(&object, Format::Json)?),
                None => print_summary(&object),
                Some(GetFormat::Wide) => {}
            }
            if !wide {
                return Ok(ExitCode::SUCCESS);
            }
            vec![(object, lost)]
        }
        None => {
            let mut all: Vec<(PodObject, bool)> = match &pods.daemon {
                Some(daemon) => daemon.pods()?.into_iter().map(|o| (o, false)).collect(),
                None => Vec::new(),
            };
            all.extend(
                pods.records()
                    .into_iter()
                    .map(|r| (r.object.clone(), r.phase() == PodPhase::Unknown)),
            );
            all
        }
    };
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
    for (o, lost) in &listed {
        let mut row = PodRow::of(&o.metadata, &o.spec, &o.status, now);
        if *lost {
            // Its `wasipod run` (or daemon) is gone: nothing runs it any more.
            row.status = "Unknown".into();
        }
        let mut cells = vec![
            o.metadata.namespace.clone().unwrap_or_default(),
            o.metadata.name.clone().unwrap_or_default(),
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
