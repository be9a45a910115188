//! `gitvisor-keeper`: the log keeper's own executable, so the process that lives as long as any
//! service does maps the keeper's code only (the engine starts it; see gitvisor_keeper).

fn main() {
    gitvisor_keeper::run_if_requested();
    eprintln!("gitvisor-keeper is started by the gitvisor engine, not by hand");
    std::process::exit(2);
}
