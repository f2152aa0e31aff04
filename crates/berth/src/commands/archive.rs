//! `import`, `save`, `load`: images to and from tarballs.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use berth_engine::images::{ArchiveFormat, Images, ImportOptions};

use crate::cli::{ImportArgs, LoadArgs, SaveArgs};

/// `import FILE|URL|- [REPOSITORY[:TAG]]`: prints the new image's ID. A URL is fetched with a
/// plain GET (no registry credentials), as docker's daemon does.
pub fn import(images: &Images, args: &ImportArgs) -> Result<()> {
    let options = ImportOptions {
        source_name: args.file.clone(),
        reference: args.reference.clone(),
        message: args.message.clone(),
        platform: args.platform.clone(),
    };
    let input: Box<dyn Read> = if args.file == "-" {
        Box::new(io::stdin().lock())
    } else if args.file.starts_with("http://") || args.file.starts_with("https://") {
        let response = ureq::get(&args.file)
            .call()
            .with_context(|| format!("import {}", args.file))?;
        Box::new(response.into_reader())
    } else {
        Box::new(File::open(&args.file).with_context(|| format!("open {}", args.file))?)
    };
    let image = images.import(input, &options)?;
    println!("{}", image.id);
    Ok(())
}

/// `save [-o FILE] [--format F] IMAGE...`: to FILE (written whole or not at all), else to
/// STDOUT unless that is a terminal.
pub fn save(images: &Images, args: &SaveArgs) -> Result<()> {
    let format: ArchiveFormat = args.format.parse()?;
    match &args.output {
        Some(path) => save_to_file(images, args, format, path),
        None => {
            let stdout = io::stdout();
            if stdout.is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let out = BufWriter::with_capacity(1 << 20, stdout.lock());
            Ok(images.save(&args.images, format, out)?)
        }
    }
}

/// Write into a temporary file next to `path` and rename it into place when complete.
fn save_to_file(
    images: &Images,
    args: &SaveArgs,
    format: ArchiveFormat,
    path: &Path,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".berth-save-")
        .tempfile_in(dir)
        .with_context(|| format!("create a file in {}", dir.display()))?;
    let out = BufWriter::with_capacity(1 << 20, tmp.as_file());
    images.save(&args.images, format, out)?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// `load [-i FILE] [-q]`: one line per name (`Loaded image: busybox:latest`), or the ID of an
/// image without one.
pub fn load(images: &Images, args: &LoadArgs) -> Result<()> {
    let input: Box<dyn Read> = match &args.input {
        Some(path) => {
            Box::new(File::open(path).with_context(|| format!("open {}", path.display()))?)
        }
        None => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(stdin.lock())
        }
    };
    let loaded = images.load(input)?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    if args.quiet {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    for image in &loaded.images {
        for (tag, old) in &image.moved {
            writeln!(
                out,
                "The image {} already exists, renaming the old one with ID {old} to empty string",
                super::images::familiar(tag)
            )?;
        }
        if image.tags.is_empty() {
            writeln!(out, "Loaded image ID: {}", image.id)?;
        }
        for tag in &image.tags {
            writeln!(out, "Loaded image: {}", super::images::familiar(tag))?;
        }
    }
    Ok(())
}
