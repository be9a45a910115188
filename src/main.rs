//! `gitvisor`: the command line. `gitvisor daemon` runs the engine headless; every other command
//! is a client of the engine that owns the home (over its socket), except `validate` and
//! `config`, which work offline.

mod args;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // This binary also hosts the log keeper (see gitvisor_keeper).
    gitvisor_keeper::run_if_requested();
    let cli = args::Cli::parse();
    if !matches!(cli.command, args::Cmd::Daemon) {
        // A client's output piped into `head` or a pager that quits: end quietly, as `ls` and
        // `git` do, instead of panicking in `println!` on EPIPE (Rust ignores SIGPIPE by
        // default). The daemon keeps ignoring it: a peer that went away is an error there.
        // SAFETY: single-threaded so far; SIG_DFL is a valid disposition for SIGPIPE.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gitvisor: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gitvisor: {e}");
            ExitCode::from(1)
        }
    }
}
