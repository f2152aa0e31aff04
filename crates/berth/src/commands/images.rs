//! `images`, `rmi`, `tag`, `image inspect`, `image prune`: listing and removing images.

use std::io::{BufRead, Write};

use anyhow::{bail, Result};
use berth_engine::images::{familiar_repository, short_id, Images, Removed};
use berth_image::Reference;
use berth_storage::Image;
use serde_json::{json, Map, Value};

use crate::cli::{ImagesArgs, InspectArgs, PruneArgs, RmiArgs, TagArgs};
use crate::format::{go_time, human_size, since};
use crate::template::{render, render_rows, Format};

/// One row of `images`: an image under one name.
struct Row<'a> {
    image: &'a Image,
    repository: String,
    tag: String,
    digest: String,
}

fn rows(image: &Image) -> Vec<Row<'_>> {
    let digest_for = |repo: &Reference| {
        image
            .repo_digests
            .iter()
            .filter_map(|d| d.parse::<Reference>().ok())
            .find(|d| d.registry() == repo.registry() && d.repository() == repo.repository())
            .and_then(|d| d.digest().map(ToString::to_string))
    };
    let mut rows = Vec::new();
    for tag in image
        .repo_tags
        .iter()
        .filter_map(|t| t.parse::<Reference>().ok())
    {
        rows.push(Row {
            image,
            repository: familiar_repository(&tag),
            tag: tag.tag().unwrap_or("<none>").to_owned(),
            digest: digest_for(&tag).unwrap_or_else(|| "<none>".into()),
        });
    }
    if rows.is_empty() {
        for named in image
            .repo_digests
            .iter()
            .filter_map(|d| d.parse::<Reference>().ok())
        {
            rows.push(Row {
                image,
                repository: familiar_repository(&named),
                tag: "<none>".into(),
                digest: named.digest().map(ToString::to_string).unwrap_or_default(),
            });
        }
    }
    if rows.is_empty() {
        rows.push(Row {
            image,
            repository: "<none>".into(),
            tag: "<none>".into(),
            digest: "<none>".into(),
        });
    }
    rows
}

fn row_object(row: &Row<'_>, no_trunc: bool) -> Map<String, Value> {
    let id = if no_trunc {
        row.image.id.clone()
    } else {
        short_id(&row.image.id)
    };
    let created = row.image.created.as_deref();
    let object = json!({
        "Containers": "N/A",
        "CreatedAt": go_time(created),
        "CreatedSince": since(created),
        "Digest": row.digest,
        "ID": id,
        "Repository": row.repository,
        "SharedSize": "N/A",
        "Size": human_size(row.image.size, 3),
        "Tag": row.tag,
        "UniqueSize": "N/A",
        "VirtualSize": human_size(row.image.size, 3),
    });
    match object {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Does the image row match the `images REPO[:TAG]` argument?
fn matches(row: &Row<'_>, filter: &str) -> bool {
    let (repo, tag) = match filter.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
        Some((repo, tag)) => (repo, Some(tag)),
        None => (filter, None),
    };
    let wanted = repo
        .parse::<Reference>()
        .map(|r| familiar_repository(&r))
        .unwrap_or_else(|_| repo.to_owned());
    row.repository == wanted && tag.is_none_or(|t| t == row.tag)
}

/// `images` / `image ls`.
pub fn list(images: &Images, args: &ImagesArgs) -> Result<()> {
    let mut all = images.records.list()?;
    all.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    let rows: Vec<Row<'_>> = all
        .iter()
        .flat_map(rows)
        .filter(|r| args.reference.as_deref().is_none_or(|f| matches(r, f)))
        .collect();
    let mut out = String::new();
    if args.quiet {
        // One line per row, as docker prints them (an image with two tags twice).
        for row in &rows {
            let id = row_object(row, args.no_trunc)["ID"].clone();
            out.push_str(id.as_str().unwrap_or_default());
            out.push('\n');
        }
        return print(&out);
    }
    let objects: Vec<_> = rows.iter().map(|r| row_object(r, args.no_trunc)).collect();
    let mut columns = vec![("REPOSITORY", "Repository"), ("TAG", "Tag")];
    if args.digests {
        columns.push(("DIGEST", "Digest"));
    }
    columns.extend([
        ("IMAGE ID", "ID"),
        ("CREATED", "CreatedSince"),
        ("SIZE", "Size"),
    ]);
    let format = Format::parse(args.format.as_deref());
    out = render_rows(&format, &objects, &columns).map_err(anyhow::Error::msg)?;
    print(&out)
}

fn print(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// Print a removal the way docker does.
pub fn print_removed(removed: &Removed) -> Result<()> {
    let mut out = String::new();
    for name in &removed.untagged {
        out.push_str(&format!("Untagged: {}\n", familiar(name)));
    }
    for id in &removed.deleted {
        out.push_str(&format!("Deleted: {id}\n"));
    }
    print(&out)
}

/// `busybox:latest` for `docker.io/library/busybox:latest`.
pub fn familiar(name: &str) -> String {
    let Ok(reference) = name.parse::<Reference>() else {
        return name.to_owned();
    };
    let mut out = familiar_repository(&reference);
    if let Some(tag) = reference.tag() {
        out.push(':');
        out.push_str(tag);
    }
    if let Some(digest) = reference.digest() {
        out.push('@');
        out.push_str(&digest.to_string());
    }
    out
}

/// `rmi` / `image rm`: every image is tried; exit status 1 if any failed.
pub fn remove(images: &Images, args: &RmiArgs) -> Result<()> {
    let mut failed = 0;
    for name in &args.images {
        match images.remove(name, args.force) {
            Ok(removed) => print_removed(&removed)?,
            Err(e) => {
                eprintln!("Error: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// `tag`.
pub fn tag(images: &Images, args: &TagArgs) -> Result<()> {
    images.tag(&args.source, &args.target)?;
    Ok(())
}

/// `image prune`.
pub fn prune(images: &Images, args: &PruneArgs) -> Result<()> {
    if !args.force {
        let what = if args.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let removed = images.prune(args.all)?;
    let mut out = String::new();
    if !removed.deleted.is_empty() || !removed.untagged.is_empty() {
        out.push_str("Deleted Images:\n");
        for name in &removed.untagged {
            out.push_str(&format!("untagged: {}\n", familiar(name)));
        }
        for id in &removed.deleted {
            out.push_str(&format!("deleted: {id}\n"));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(removed.reclaimed, 3)
    ));
    print(&out)
}

/// `image inspect`: docker's JSON array, or a template per image.
pub fn inspect(images: &Images, args: &InspectArgs) -> Result<()> {
    let mut objects = Vec::new();
    let mut failed = false;
    for name in &args.images {
        match images.resolve(name) {
            Ok(image) => objects.push(inspect_object(images, &image)?),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    match Format::parse(args.format.as_deref()) {
        Format::Template { text, .. } => {
            let mut out = String::new();
            for object in &objects {
                if let Value::Object(map) = object {
                    out.push_str(&render(&text, map).map_err(anyhow::Error::msg)?);
                    out.push('\n');
                }
            }
            print(&out)?;
        }
        _ => print(&format!("{}\n", serde_json::to_string_pretty(&objects)?))?,
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

fn inspect_object(images: &Images, image: &Image) -> Result<Value> {
    let config = images.config(image)?;
    let lowers: Vec<String> = match image.top_layer() {
        Some(top) => images
            .layers
            .lower_dirs(top)?
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        None => Vec::new(),
    };
    let familiar_all = |names: &[String]| names.iter().map(|n| familiar(n)).collect::<Vec<_>>();
    Ok(json!({
        "Id": image.id,
        "RepoTags": familiar_all(&image.repo_tags),
        "RepoDigests": familiar_all(&image.repo_digests),
        "Parent": "",
        "Comment": config.comment.clone().unwrap_or_default(),
        "Created": image.created.clone().unwrap_or_default(),
        "DockerVersion": "",
        "Author": config.author.clone().unwrap_or_default(),
        "Config": config.config.clone().unwrap_or(Value::Null),
        "Architecture": config.architecture,
        "Variant": config.variant,
        "Os": config.os,
        "Size": image.size,
        "GraphDriver": {
            "Name": "overlay",
            "Data": { "LowerDir": lowers.join(":") },
        },
        "RootFS": {
            "Type": "layers",
            "Layers": config.rootfs.diff_ids,
        },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
    }))
}

/// Fail unless the image name parses, with docker's wording.
pub fn check_reference(name: &str) -> Result<Reference> {
    match name.parse::<Reference>() {
        Ok(r) => Ok(r),
        Err(e) => bail!("invalid reference format: {e}"),
    }
}

/// The inspect object of the image `name` names (for `berth inspect`).
pub fn inspect_value(images: &Images, name: &str) -> Result<Value> {
    let image = images.resolve(name)?;
    inspect_object(images, &image)
}
