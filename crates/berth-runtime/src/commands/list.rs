//! `list`: containers under `--root`, as a table or JSON.

use super::Error;
use crate::cli::TableFormat;
use crate::state::{OciState, Store};

/// List containers.
pub fn run(store: &Store, format: TableFormat, quiet: bool) -> Result<i32, Error> {
    let mut states: Vec<OciState> = Vec::new();
    for id in store.ids()? {
        match store.peek(&id) {
            Ok(c) => {
                let mut s = c.oci_state();
                s.annotations = None;
                states.push(s);
            }
            Err(crate::state::StateError::NotFound) => {
                store.reclaim_incomplete(&id);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    match format {
        TableFormat::Json => {
            let text = serde_json::to_string(&states).map_err(|e| Error::Invalid(e.to_string()))?;
            // runc prints `null` for no containers.
            println!(
                "{}",
                if states.is_empty() {
                    "null".into()
                } else {
                    text
                }
            );
        }
        TableFormat::Table => print!("{}", table(&states)),
    }
    Ok(0)
}

/// runc's tabwriter layout: columns padded to the widest cell plus one space, min width 12.
fn table(states: &[OciState]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .map(String::from)
        .to_vec()];
    for s in states {
        rows.push(vec![
            s.id.clone(),
            s.pid.to_string(),
            s.status.clone(),
            s.bundle.display().to_string(),
            s.created.clone(),
            s.owner.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                out.push_str(cell);
            } else {
                let width = (widths[i] + 1).max(12);
                out.push_str(&format!("{cell:<width$}"));
            }
        }
        out.push('\n');
    }
    out
}
