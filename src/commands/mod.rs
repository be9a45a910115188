//! One module per command; each is a thin client of the engine API over the socket.

mod config;
mod crash;
mod edit;
mod events;
mod git;
mod logs;
mod ops;
mod status;
mod validate;

use std::process::ExitCode;

use gitvisor_engine::Paths;
use gitvisor_protocol::{Client, Restart, ServiceName, Start, Stop};

use crate::args::{Cli, Cmd};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let paths = Paths::from_env();
    match cli.command {
        Cmd::Daemon => daemon(paths).await,
        Cmd::Status { names, json } => status::run(&mut connect(&paths).await?, names, json).await,
        Cmd::Start { names } => {
            ops::run(&mut connect(&paths).await?, Start { names: ServiceName::list(&names) }).await
        }
        Cmd::Stop { names } => {
            ops::run(&mut connect(&paths).await?, Stop { names: ServiceName::list(&names) }).await
        }
        Cmd::Restart { names } => {
            ops::run(&mut connect(&paths).await?, Restart { names: ServiceName::list(&names) }).await
        }
        Cmd::Logs { name, lines, follow } => {
            logs::run(&mut connect(&paths).await?, name, lines, follow).await
        }
        Cmd::Events { json } => events::run(&mut connect(&paths).await?, json).await,
        Cmd::Sync => git::sync(&mut connect(&paths).await?).await,
        Cmd::History { count, json } => git::history(&mut connect(&paths).await?, count, json).await,
        Cmd::Rollback { commit } => git::rollback(&mut connect(&paths).await?, commit).await,
        Cmd::Diff { commit } => git::diff(&mut connect(&paths).await?, commit).await,
        Cmd::Edit { name } => edit::run(&paths, &name).await,
        Cmd::Crash { command } => crash::run(&mut connect(&paths).await?, command).await,
        Cmd::Capture { name } => crash::capture(&mut connect(&paths).await?, name).await,
        Cmd::Validate { path } => validate::run(&paths, path),
        Cmd::Config => config::run(&paths),
    }
}

pub(crate) async fn connect(paths: &Paths) -> Result<Client> {
    let home = paths.home.display().to_string();
    Ok(Client::connect(&paths.socket, &home, concat!("gitvisor-cli ", env!("CARGO_PKG_VERSION"))).await?)
}

async fn daemon(paths: Paths) -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GITVISOR_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let program = std::env::current_exe()?;
    gitvisor_engine::daemon::run(paths, program).await?;
    Ok(ExitCode::SUCCESS)
}
