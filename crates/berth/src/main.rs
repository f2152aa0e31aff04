//! `berth`: parse the command line, run the command, print errors once.

mod cli;
mod cli_containers;
mod cli_networks;
mod commands;
mod format;
mod template;

use anyhow::Result;
use berth_engine::images::Images;
use clap::Parser;

use berth_engine::containers::Engine;
use cli::{Cli, Command, ContainerCommand, ImageCommand, SystemCommand};
use commands::{archive, containers, df, images, info, login, networks, ps, registry};

/// docker's exit status when the engine itself failed (`run`/`create`, or a bad flag).
const ENGINE_FAILED: i32 = 125;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line, as docker prints it, and docker's status for a bad command line.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("Error: {first} (see 'berth --help')");
            std::process::exit(ENGINE_FAILED);
        }
        Err(e) => e.exit(),
    };
    let engine_failure = matches!(
        cli.command,
        Command::Run(_)
            | Command::Create(_)
            | Command::Container(ContainerCommand::Run(_) | ContainerCommand::Create(_))
    );
    // Rootless: join the user's namespaces while this process is still single-threaded.
    let needs_namespaces = !matches!(
        cli.command,
        Command::Login(_) | Command::Logout(_) | Command::Version(_)
    );
    if needs_namespaces {
        if let Err(e) = berth_engine::rootless::enter() {
            eprintln!("Error: {e}");
            std::process::exit(if engine_failure { ENGINE_FAILED } else { 1 });
        }
    }
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("Error: {}", one_line(&e));
            std::process::exit(if engine_failure { ENGINE_FAILED } else { 1 });
        }
    }
}

/// The error and its causes on one line. Engine errors already show their source in their
/// message, so a cause whose text is already there is not repeated; control characters (a
/// tar header quoted by the tar reader, say) are escaped.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
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

fn open_engine(cli: &Cli) -> Result<Engine> {
    let root = cli
        .root
        .clone()
        .unwrap_or_else(berth_engine::paths::default_data_root);
    let run_root = match &cli.runroot {
        Some(r) => r.clone(),
        None => berth_engine::paths::default_run_root()?,
    };
    Ok(Engine::open(&root, &run_root)?)
}

fn run(cli: Cli) -> Result<i32> {
    // Credentials need no storage.
    match &cli.command {
        Command::Login(a) => return login::login(a).map(|()| 0),
        Command::Logout(a) => return login::logout(a).map(|()| 0),
        Command::Version(a) => return info::version(a),
        _ => {}
    }
    if let Some(result) = run_image_command(&cli) {
        return result.map(|()| 0);
    }
    let mut engine = open_engine(&cli)?;
    let e = &mut engine;
    use ContainerCommand as C;
    match &cli.command {
        Command::Run(a) | Command::Container(C::Run(a)) => containers::run(e, a),
        Command::Create(a) | Command::Container(C::Create(a)) => containers::create(e, a),
        Command::Start(a) | Command::Container(C::Start(a)) => containers::start(e, a),
        Command::Stop(a) | Command::Container(C::Stop(a)) => containers::stop(e, a),
        Command::Kill(a) | Command::Container(C::Kill(a)) => containers::kill(e, a),
        Command::Restart(a) | Command::Container(C::Restart(a)) => containers::restart(e, a),
        Command::Rm(a) | Command::Container(C::Rm(a)) => containers::rm(e, a),
        Command::Ps(a) | Command::Container(C::Ls(a)) => ps::ps(e, a),
        Command::Inspect(a) | Command::Container(C::Inspect(a)) => ps::inspect(e, a),
        Command::Logs(a) | Command::Container(C::Logs(a)) => commands::observe::logs(e, a),
        Command::Exec(a) | Command::Container(C::Exec(a)) => containers::exec(e, a),
        Command::Wait(a) | Command::Container(C::Wait(a)) => containers::wait(e, a),
        Command::Pause(a) | Command::Container(C::Pause(a)) => containers::pause(e, a),
        Command::Unpause(a) | Command::Container(C::Unpause(a)) => containers::unpause(e, a),
        Command::Update(a) | Command::Container(C::Update(a)) => containers::update(e, a),
        Command::Top(a) | Command::Container(C::Top(a)) => commands::observe::top(e, a),
        Command::Stats(a) | Command::Container(C::Stats(a)) => commands::observe::stats(e, a),
        Command::Port(a) | Command::Container(C::Port(a)) => containers::port(e, a),
        Command::Rename(a) | Command::Container(C::Rename(a)) => containers::rename(e, a),
        Command::Cp(a) | Command::Container(C::Cp(a)) => e
            .copy(&a.source, &a.destination, a.archive)
            .map(|()| 0)
            .map_err(Into::into),
        Command::Container(C::Prune(a)) => containers::prune(e, a),
        Command::Container(C::Cleanup(a)) => containers::cleanup(e, &a.container),
        Command::Info(a) => info::info(e, a),
        Command::Network(n) => networks::network(e, n),
        Command::System(SystemCommand::Prune(a)) => containers::system_prune(e, a),
        _ => Ok(0),
    }
}

/// The image commands, which need only the image stores.
fn run_image_command(cli: &Cli) -> Option<Result<()>> {
    let is_image_command = matches!(
        cli.command,
        Command::Pull(_)
            | Command::Push(_)
            | Command::Images(_)
            | Command::Rmi(_)
            | Command::Tag(_)
            | Command::Image(_)
            | Command::System(SystemCommand::Df(_))
            | Command::Import(_)
            | Command::Save(_)
            | Command::Load(_)
    );
    if !is_image_command {
        return None;
    }
    let store = match open_images(cli) {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    Some(match &cli.command {
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
        _ => Ok(()),
    })
}
