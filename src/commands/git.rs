//! `sync`, `history`, `rollback`, `diff`: the services repository.

use std::process::ExitCode;

use gitvisor_protocol::{Client, Diff, EnableReply, History, Method, Rollback, SyncNow, SyncReport};

use super::Result;
use crate::output::table;

fn short(id: &str) -> &str {
    &id[..id.len().min(10)]
}

/// Prints a sync report; false when it could not be applied.
pub fn print_report(r: &SyncReport) -> bool {
    if let Some(p) = &r.problem {
        eprintln!("gitvisor: not applied: {p}");
        return false;
    }
    let old = r.old.as_deref().map(short).unwrap_or("(none)");
    let new = r.new.as_deref().map(short).unwrap_or("(none)");
    if r.old == r.new {
        println!("up to date at {new}");
    } else if r.applied {
        println!("applied {new} (was {old})");
    } else {
        println!("partly applied {new} (was {old}); the rest is retried at the next sync");
    }
    for a in &r.actions {
        println!("  {a}");
    }
    for e in &r.errors {
        println!("  error: {e}");
    }
    true
}

pub async fn sync(client: &mut Client) -> Result<ExitCode> {
    let r = client.call(SyncNow {}).await?;
    Ok(if print_report(&r) && r.applied { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The units a commit touched, for a table cell: a commit of a whole tree (a first commit, an
/// import) names the first few and counts the rest, so one row does not fill the screen;
/// `--json` has them all.
fn units_cell(units: &[String]) -> String {
    const SHOWN: usize = 3;
    match units.len() {
        0 => "-".into(),
        n if n <= SHOWN + 1 => units.join(" "),
        n => format!("{} (+{} more)", units[..SHOWN].join(" "), n - SHOWN),
    }
}

pub async fn history(client: &mut Client, count: usize, json: bool) -> Result<ExitCode> {
    let reply = client.call(History { limit: count }).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&reply)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = reply
        .commits
        .iter()
        .map(|c| {
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(c.time.max(0) as u64);
            let when = humantime_seconds(when);
            vec![
                short(&c.id).to_string(),
                when,
                c.author.clone(),
                c.standing().to_string(),
                units_cell(&c.units),
                c.summary.clone(),
            ]
        })
        .collect();
    println!("{}", table(&["COMMIT", "DATE (UTC)", "AUTHOR", "STATUS", "UNITS", "SUMMARY"], &rows));
    if !reply.syncs.is_empty() {
        println!("\nlatest syncs:");
        for s in &reply.syncs {
            let when = humantime_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(s.at_ms));
            let what = match (&s.problem, s.applied) {
                (Some(p), _) => format!("not applied: {p}"),
                (None, true) if s.old == s.new => "up to date".to_string(),
                (None, true) => "applied".to_string(),
                (None, false) => "partly applied".to_string(),
            };
            let commits = format!(
                "{} -> {}",
                s.old.as_deref().map(short).unwrap_or("(none)"),
                s.new.as_deref().map(short).unwrap_or("(none)")
            );
            println!("  {when}  {commits}  {what}");
            for a in &s.actions {
                println!("    {a}");
            }
            for e in &s.errors {
                println!("    error: {e}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn humantime_seconds(t: std::time::SystemTime) -> String {
    let s = gitvisor_engine::time::format_us(
        t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros() as u64,
    );
    s[..16].replace('T', " ")
}

/// `enable` or `disable`: the commit made (if any) and the sync that applied it.
pub async fn enable<M: Method<Reply = EnableReply>>(client: &mut Client, op: M) -> Result<ExitCode> {
    let verb = if M::NAME == gitvisor_protocol::Enable::NAME { "enabled" } else { "disabled" };
    let reply = client.call(op).await?;
    for n in &reply.unchanged {
        println!("{n}: already {verb}");
    }
    let Some(commit) = &reply.commit else { return Ok(ExitCode::SUCCESS) };
    println!("committed {} ({verb} {})", short(commit), reply.changed.join(", "));
    let applied = reply.sync.as_ref().is_none_or(|s| print_report(s) && s.applied);
    Ok(if applied { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub async fn rollback(client: &mut Client, commit: String) -> Result<ExitCode> {
    let reply = client.call(Rollback { commit: commit.clone() }).await?;
    println!("new commit {} has the units of {commit}", short(&reply.commit));
    Ok(if print_report(&reply.sync) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub async fn diff(client: &mut Client, commit: String) -> Result<ExitCode> {
    let d = client.call(Diff { commit: commit.clone() }).await?;
    if d.is_empty() {
        println!("no unit differs between HEAD and {commit}");
    } else {
        print!("{d}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::units_cell;

    #[test]
    fn a_commit_of_many_units_names_three_and_counts_the_rest() {
        let names = |n: usize| (1..=n).map(|i| format!("u{i}.service")).collect::<Vec<_>>();
        assert_eq!(units_cell(&[]), "-");
        assert_eq!(units_cell(&names(1)), "u1.service");
        // Four fit: "(+1 more)" would be no shorter than the name it hides.
        assert_eq!(units_cell(&names(4)), "u1.service u2.service u3.service u4.service");
        assert_eq!(units_cell(&names(101)), "u1.service u2.service u3.service (+98 more)");
    }
}
