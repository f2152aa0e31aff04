//! `pull` and `push`.

use anyhow::Result;
use berth_engine::images::{Images, PullOptions};
use berth_image::{ClientOptions, Credentials, Platform};

use super::images::familiar;
use crate::cli::{PullArgs, PushArgs, RegistryArgs};

/// The client options for a command: `--tls-verify`, `--creds`, else the stored login.
pub fn client_options(args: &RegistryArgs, registry: &str) -> Result<ClientOptions> {
    let credentials = match &args.creds {
        Some(creds) => {
            let (user, password) = creds.split_once(':').unwrap_or((creds, ""));
            Some(Credentials::new(user, password))
        }
        None => super::login::stored_credentials(registry)?,
    };
    Ok(ClientOptions {
        credentials,
        insecure: !args.tls_verify,
        ..ClientOptions::default()
    })
}

/// `pull`.
pub fn pull(images: &Images, args: &PullArgs) -> Result<()> {
    let reference = super::images::check_reference(&args.name)?;
    let platform = match &args.platform {
        Some(p) => Some(p.parse::<Platform>().map_err(anyhow::Error::msg)?),
        None => None,
    };
    let options = PullOptions {
        platform,
        client: client_options(&args.registry, reference.registry())?,
    };
    if !args.quiet {
        let last = args.name.rsplit('/').next().unwrap_or_default();
        if !last.contains(':') && !last.contains('@') {
            println!("Using default tag: latest");
        }
        let what = reference
            .tag()
            .map(str::to_owned)
            .or_else(|| reference.digest().map(ToString::to_string))
            .unwrap_or_default();
        println!("{what}: Pulling from {}", reference.repository());
    }
    let before = images.resolve(&reference.to_string()).ok();
    let progress = (!args.quiet).then(|| super::progress::for_output(false));
    let image = images.pull(&args.name, &options, progress.as_deref())?;
    if !args.quiet {
        if let Some(digest) = image.repo_digests.iter().find_map(|d| d.rsplit_once('@')) {
            println!("Digest: {}", digest.1);
        }
        let status = if before.is_some_and(|b| b.id == image.id) {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        println!("Status: {status} {}", familiar(&reference.to_string()));
    }
    println!("{reference}");
    Ok(())
}

/// `push`.
pub fn push(images: &Images, args: &PushArgs) -> Result<()> {
    let reference = super::images::check_reference(&args.name)?;
    let options = client_options(&args.registry, reference.registry())?;
    if !args.quiet {
        println!(
            "The push refers to repository [{}/{}]",
            reference.registry(),
            reference.repository()
        );
    }
    let progress = (!args.quiet).then(|| super::progress::for_output(true));
    let report = images.push(&args.name, &options, progress.as_deref())?;
    if !args.quiet {
        if let Some(top) = report.manifests.last() {
            let size = images.blobs.size(top).unwrap_or(0);
            let tag = reference.tag().unwrap_or("latest");
            println!("{tag}: digest: {top} size: {size}");
        }
    }
    Ok(())
}

/// `run`'s pull of a missing image: docker's status lines on stderr. A registry on a loopback
/// address is spoken to over plain HTTP, as docker treats 127.0.0.0/8 as insecure.
pub fn pull_quietly(images: &Images, name: &str, platform: Option<&str>) -> Result<()> {
    let reference = super::images::check_reference(name)?;
    let registry = reference.registry();
    let loopback = registry.starts_with("localhost") || registry.starts_with("127.");
    let args = RegistryArgs {
        tls_verify: !loopback,
        creds: None,
    };
    let platform = match platform {
        Some(p) => Some(p.parse::<Platform>().map_err(anyhow::Error::msg)?),
        None => None,
    };
    let options = PullOptions {
        platform,
        client: client_options(&args, registry)?,
    };
    let image = images.pull(name, &options, None)?;
    eprintln!("Unable to find image '{name}' locally");
    if let Some(digest) = image.repo_digests.iter().find_map(|d| d.rsplit_once('@')) {
        eprintln!("Digest: {}", digest.1);
    }
    eprintln!(
        "Status: Downloaded newer image for {}",
        familiar(&reference.to_string())
    );
    Ok(())
}
