//! One module per command; each is a thin client of the engine API over the socket.

mod config;
mod crash;
mod edit;
mod events;
mod fleet;
mod git;
mod import;
mod logs;
mod maintenance;
mod metrics;
mod ops;
mod status;
mod timers;
mod user_service;
mod validate;

use std::process::ExitCode;

use gitvisor_engine::Paths;
use gitvisor_protocol::{Client, Disable, Enable, Reload, Restart, ServiceName, Start, Stop};

use crate::args::{Cli, Cmd};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let home = cli.home.as_deref().map(|d| std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf()));
    let paths = match &home {
        Some(dir) => Paths::under(dir),
        None => Paths::from_env(),
    };
    match cli.command {
        Cmd::Daemon => daemon(paths).await,
        Cmd::Status { names, all: _, json, watch } => {
            let mut client = connect(&paths).await?;
            if watch {
                return status::watch(&mut client, names).await;
            }
            status::run(&mut client, names, json).await
        }
        Cmd::Start { names: n, wait } => {
            let mut c = connect(&paths).await?;
            let names = ops::names(&mut c, n).await?;
            ops::run(&mut c, Start { names, wait }).await
        }
        Cmd::Stop(n) => {
            let mut c = connect(&paths).await?;
            let names = ops::names(&mut c, n).await?;
            ops::run(&mut c, Stop { names }).await
        }
        Cmd::Reload(n) => {
            let mut c = connect(&paths).await?;
            let names = ops::names(&mut c, n).await?;
            ops::run(&mut c, Reload { names }).await
        }
        Cmd::Restart(n) => {
            let mut c = connect(&paths).await?;
            let names = ops::names(&mut c, n).await?;
            ops::run(&mut c, Restart { names }).await
        }
        Cmd::Enable { names } => {
            git::enable(&mut connect(&paths).await?, Enable { names: ServiceName::list(&names) }).await
        }
        Cmd::Disable { names } => {
            git::enable(&mut connect(&paths).await?, Disable { names: ServiceName::list(&names) }).await
        }
        Cmd::Logs { names, all: _, lines, follow } => {
            logs::run(&mut connect(&paths).await?, ServiceName::list(&names), lines, follow).await
        }
        Cmd::Events { json } => events::run(&mut connect(&paths).await?, json).await,
        Cmd::Metrics { names, json } => metrics::run(&mut connect(&paths).await?, names, json).await,
        Cmd::Timers { json } => timers::run(&mut connect(&paths).await?, json).await,
        Cmd::Sync => git::sync(&mut connect(&paths).await?).await,
        Cmd::History { count, json } => git::history(&mut connect(&paths).await?, count, json).await,
        Cmd::Rollback { commit } => git::rollback(&mut connect(&paths).await?, commit).await,
        Cmd::Diff { commit } => git::diff(&mut connect(&paths).await?, commit).await,
        Cmd::Edit { name } => edit::run(&paths, &name).await,
        Cmd::Crash { command } => crash::run(&mut connect(&paths).await?, command).await,
        Cmd::Capture { name } => crash::capture(&mut connect(&paths).await?, name).await,
        Cmd::Validate { path } => validate::run(&paths, path),
        Cmd::Import { paths: files, dry_run, prefix, json } => {
            let request = import::request(files, dry_run, prefix)?;
            import::run(&mut connect(&paths).await?, request, json).await
        }
        Cmd::Config => config::run(&paths),
        Cmd::Maintenance { command } => maintenance::run(&mut connect(&paths).await?, command).await,
        Cmd::Fleet { command } => fleet::run(&mut connect(&paths).await?, command).await,
        Cmd::InstallUserService { remove } => user_service::run(&paths, home.as_deref(), remove),
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
        // Colour only on a terminal: a redirected log stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let program = gitvisor_engine::logs::keeper_program(&std::env::current_exe()?);
    gitvisor_engine::daemon::run(paths, program).await?;
    Ok(ExitCode::SUCCESS)
}
