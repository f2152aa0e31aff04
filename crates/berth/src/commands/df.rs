//! `system df`.

use std::collections::HashMap;

use anyhow::Result;
use berth_engine::images::{dir_size, Images};
use serde_json::json;

use crate::cli::DfArgs;
use crate::format::{human_size, table};
use crate::template::Format;

/// `system df`: images (layers shared between images counted once), containers, volumes and
/// build cache (volumes and build cache do not exist yet: zero).
pub fn df(images: &Images, args: &DfArgs) -> Result<()> {
    let all = images.records.list()?;
    let mut layer_sizes: HashMap<String, u64> = HashMap::new();
    for image in &all {
        for layer in &image.layers {
            if !layer_sizes.contains_key(&layer.chain_id) {
                let dir = images.layers.diff_dir(&layer.chain_id)?;
                let size = dir_size(&dir).unwrap_or(0);
                layer_sizes.insert(layer.chain_id.clone(), size);
            }
        }
    }
    let total: u64 = layer_sizes.values().sum();
    let mut active = 0;
    let mut in_use = 0;
    for image in &all {
        if images.container_using(image)?.is_some() {
            active += 1;
            in_use += image.size;
        }
    }
    let reclaimable = total.saturating_sub(in_use);
    let containers = images.containers.list()?;
    let mut container_size = 0;
    for container in &containers {
        let upper = images.containers.upper_dir(&container.id)?;
        container_size += dir_size(&upper).unwrap_or(0);
    }
    let percent = |part: u64, whole: u64| (part * 100).checked_div(whole).unwrap_or(0);
    let rows = [
        ("Images", all.len(), active, total, reclaimable),
        // Without `berth run` yet, no container is running: all are reclaimable.
        (
            "Containers",
            containers.len(),
            0,
            container_size,
            container_size,
        ),
        ("Local Volumes", 0, 0, 0, 0),
        ("Build Cache", 0, 0, 0, 0),
    ];
    if Format::parse(args.format.as_deref()) == Format::Json {
        for (kind, count, active, size, reclaim) in rows {
            let line = json!({
                "Active": active.to_string(),
                "Reclaimable": format!("{} ({}%)", human_size(reclaim, 4), percent(reclaim, size)),
                "Size": human_size(size, 4),
                "TotalCount": count.to_string(),
                "Type": kind,
            });
            println!("{line}");
        }
        return Ok(());
    }
    let mut cells = vec![["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        .map(str::to_owned)
        .to_vec()];
    for (kind, count, active, size, reclaim) in rows {
        let reclaim_text = if kind == "Build Cache" {
            human_size(reclaim, 4)
        } else {
            format!("{} ({}%)", human_size(reclaim, 4), percent(reclaim, size))
        };
        cells.push(vec![
            kind.into(),
            count.to_string(),
            active.to_string(),
            human_size(size, 4),
            reclaim_text,
        ]);
    }
    print!("{}", table(&cells));
    if args.verbose {
        println!();
        println!("Images space usage:");
        println!();
        super::images::list(
            images,
            &crate::cli::ImagesArgs {
                all: false,
                quiet: false,
                digests: false,
                no_trunc: false,
                format: None,
                reference: None,
            },
        )?;
    }
    Ok(())
}
