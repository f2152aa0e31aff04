//! `berth`: parse the command line, run the command, print errors once.

mod cli;
mod commands;
mod format;
mod template;

use anyhow::Result;
use berth_engine::images::Images;
use clap::Parser;

use cli::{Cli, Command, ImageCommand, SystemCommand};
use commands::{archive, df, images, login, registry};

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("Error: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// The error and its causes on one line. Engine errors already show their source in their
/// message, so a cause whose text is already there is not repeated; control characters (a
/// tar header quoted by the tar reader, say) are escaped.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

fn open_images(cli: &Cli) -> Result<Images> {
    let root = cli
        .root
        .clone()
        .unwrap_or_else(berth_engine::paths::default_data_root);
    Ok(Images::open(&berth_engine::paths::storage_root(&root))?)
}

fn run(cli: Cli) -> Result<()> {
    // Credentials need no storage.
    match &cli.command {
        Command::Login(a) => return login::login(a),
        Command::Logout(a) => return login::logout(a),
        _ => {}
    }
    let store = open_images(&cli)?;
    match &cli.command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => registry::pull(&store, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => registry::push(&store, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::list(&store, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => images::remove(&store, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images::tag(&store, a),
        Command::Image(ImageCommand::Inspect(a)) => images::inspect(&store, a),
        Command::Image(ImageCommand::Prune(a)) => images::prune(&store, a),
        Command::System(SystemCommand::Df(a)) => df::df(&store, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => archive::import(&store, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => archive::save(&store, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => archive::load(&store, a),
        Command::Login(_) | Command::Logout(_) => Ok(()),
    }
}
