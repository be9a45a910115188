//! The table (markdown, for people) and the JSON (for scripts) of one run.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::figures::Many;
use crate::restarts::RestartLoop;
use crate::{Column, Options};

const ANCHORS: [&str; 5] = ["floor", "supervisord", "PM2", "runit", "s6"];

#[derive(Serialize)]
pub struct Row {
    pub figure: &'static str,
    pub unit: &'static str,
    /// Value per column name; absent when not measured.
    pub values: BTreeMap<String, f64>,
    /// What the table shows per column (value and details).
    pub cells: BTreeMap<String, String>,
    pub target: &'static str,
    pub target_met: Option<bool>,
    /// gitvisor's value divided by each other column's.
    pub ratios: BTreeMap<String, f64>,
}

#[derive(Serialize)]
pub struct Report {
    pub generated_unix: u64,
    pub machine: BTreeMap<&'static str, String>,
    pub quick: bool,
    pub idle_seconds: u64,
    pub rows: Vec<Row>,
    pub columns: Vec<Column>,
}

/// /proc/loadavg's three averages: how busy the machine was (it may be shared).
pub fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn machine() -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1));
    m.insert("cpu", model.unwrap_or("unknown").trim().to_string());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    m.insert("cores", cores.to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    m.insert("kernel", kernel.trim().to_string());
    m.insert("loadavg_after", loadavg());
    m
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A 100-services figure per supervisor group: (total, cell text).
fn many_cell(
    m: &Many,
    per_group: impl Fn(&crate::figures::GroupCost) -> f64,
    fmt: impl Fn(f64) -> String,
) -> (f64, String) {
    let total: f64 = m.groups.iter().map(&per_group).sum();
    if m.groups.len() == 1 {
        return (total, fmt(total));
    }
    let parts: Vec<String> = m.groups.iter().map(|g| format!("{} {}", g.role, fmt(per_group(g)))).collect();
    (total, format!("{} ({})", fmt(total), parts.join(" + ")))
}

impl Report {
    pub fn new(o: &Options, columns: Vec<Column>) -> Report {
        let mut rows = Vec::with_capacity(10);
        let row = |figure, unit, target| Row {
            figure,
            unit,
            values: BTreeMap::new(),
            cells: BTreeMap::new(),
            target,
            target_met: None,
            ratios: BTreeMap::new(),
        };
        let mut median = row("restart interval, median", "ms", "≤ 1.1 × floor");
        let mut p99 = row("restart interval, p99", "ms", "—");
        let mut cpu = row("supervisor CPU, 100 idle services, per 60 s", "s", "≤ 0.005 s");
        let mut mem = row("supervisor memory, 100 services", "MiB", "< 12 MiB RSS");
        let mut start = row("start 100 services", "s", "< 0.1 s");
        let mut graph = row("1000 services, dependency graph, start", "s", "< 0.5 s");
        let mut flat = row("1000 services, no dependencies, start", "s", "< 0.5 s");
        let mut thru =
            row("log throughput, one service writing as fast as it can (higher is better)", "MiB/s", "—");
        let mut thru_cpu = row("supervisor CPU per MiB logged", "ms", "—");
        let mut thru_rss = row("supervisor peak RSS during the flood", "MiB", "—");
        let mut commit = row("commit to running, median", "ms", "< 20 ms");
        let mut commit99 = row("commit to running, p99", "ms", "—");
        let mut crash = row("crash report, 50 MiB / 5,000-file tree", "s", "< 0.5 s and ≤ tar -czf");
        let mut crash_mem = row("crash report, daemon peak memory (VmHWM)", "MiB", "—");
        let mut probed = row("engine CPU, 100 services probed every 1 s, per 60 s", "s", "—");
        let mut failover2 = row("fleet failover, lease TTL 2 s, median", "s", "—");
        let mut failover10 = row("fleet failover, lease TTL 10 s, median", "s", "—");
        let mut trips = row("fleet Redis round trips, 2 nodes, 1 singleton, per minute", "", "—");
        for c in &columns {
            let name = c.name.clone();
            let put = |r: &mut Row, v: f64, cell: String| {
                r.values.insert(name.clone(), v);
                r.cells.insert(name.clone(), cell);
            };
            if let Some(r) = &c.restart {
                let note = if r.note.is_some() { " (partial)" } else { "" };
                put(&mut median, r.intervals.median_ms, format!("{:.2} ms{note}", r.intervals.median_ms));
                put(&mut p99, r.intervals.p99_ms, format!("{:.2} ms{note}", r.intervals.p99_ms));
            }
            if let Some(m) = &c.many {
                let scale = 60.0 / m.idle_window_s.max(1e-9);
                let (v, cell) = many_cell(m, |g| g.cpu_precise_s * scale, |v| format!("{v:.4} s"));
                put(&mut cpu, v, cell);
                let (v, mut cell) = many_cell(m, |g| mib(g.memory_kib()), |v| format!("{v:.1} MiB"));
                if let Some(g) = m.groups.iter().find(|g| g.processes > 1) {
                    cell.push_str(&format!(" {} ({} processes)", g.memory, g.processes));
                } else {
                    cell.push_str(" RSS");
                }
                put(&mut mem, v, cell);
                put(&mut start, m.start_s, format!("{:.3} s", m.start_s));
            }
            if let Some(g) = &c.graph {
                put(&mut graph, g.start_s, format!("{:.3} s", g.start_s));
            }
            if let Some(g) = &c.flat {
                put(&mut flat, g.start_s, format!("{:.3} s", g.start_s));
            }
            for f in &c.start_floor {
                let cell = format!("{:.3} s", f.start_s);
                match f.services {
                    100 => put(&mut start, f.start_s, cell),
                    1000 => {
                        put(&mut graph, f.start_s, cell.clone());
                        put(&mut flat, f.start_s, cell);
                    }
                    _ => {}
                }
            }
            if let Some(f) = &c.flood {
                put(&mut thru, f.mib_per_s, format!("{:.1} MiB/s", f.mib_per_s));
                let mib_logged = f.payload_bytes as f64 / (1024.0 * 1024.0);
                let cpu: f64 = f.groups.iter().map(|g| g.cpu_precise_s).sum();
                let parts: Vec<String> = f
                    .groups
                    .iter()
                    .map(|g| format!("{} {:.2}", g.role, g.cpu_precise_s * 1000.0 / mib_logged))
                    .collect();
                put(
                    &mut thru_cpu,
                    cpu * 1000.0 / mib_logged,
                    format!("{:.2} ms ({})", cpu * 1000.0 / mib_logged, parts.join(" + ")),
                );
                put(&mut thru_rss, mib(f.peak_rss_kib), format!("{:.1} MiB", mib(f.peak_rss_kib)));
            }
            if let Some(m) = &c.commit {
                put(&mut commit, m.latency.median_ms, format!("{:.1} ms", m.latency.median_ms));
                put(&mut commit99, m.latency.p99_ms, format!("{:.1} ms", m.latency.p99_ms));
            }
            if let Some(r) = &c.crash {
                put(&mut crash, r.report_s, format!("{:.3} s (tar -czf {:.3} s)", r.report_s, r.tar_s));
                if r.tar_s > 0.0 {
                    crash.ratios.insert("tar -czf".into(), r.report_s / r.tar_s);
                }
                let hwm = mib(r.daemon_hwm_after_kib);
                let cell = format!(
                    "{hwm:.1} MiB (RSS {:.1} MiB before the crash, {:.1} MiB after)",
                    mib(r.daemon_rss_before_kib),
                    mib(r.daemon_rss_after_kib)
                );
                put(&mut crash_mem, hwm, cell);
            }
            if let Some(m) = &c.probed {
                let scale = 60.0 / m.idle_window_s.max(1e-9);
                let (v, mut cell) = many_cell(m, |g| g.cpu_precise_s * scale, |v| format!("{v:.4} s"));
                if let Some(n) = c.probes_answered {
                    cell.push_str(&format!(
                        ", {:.0} probes/s answered",
                        n as f64 / m.idle_window_s.max(1e-9)
                    ));
                }
                put(&mut probed, v, cell);
            }
            for f in &c.failover {
                let cell = format!("{:.2} s (max {:.2} s, {} trials)", f.median_s, f.max_s, f.trials);
                match f.lease_ttl_s as u64 {
                    2 => put(&mut failover2, f.median_s, cell),
                    10 => put(&mut failover10, f.median_s, cell),
                    _ => {}
                }
            }
            if let Some(t) = &c.fleet_round_trips {
                put(
                    &mut trips,
                    t.total_per_minute,
                    format!("{:.0} (lease TTL {:.0} s)", t.total_per_minute, t.lease_ttl_s),
                );
            }
        }
        let floor = median.values.get("floor").copied();
        let gv = |r: &Row| r.values.get("gitvisor").copied();
        median.target_met = gv(&median).zip(floor).map(|(g, f)| g <= 1.1 * f);
        cpu.target_met = gv(&cpu).map(|g| g <= 0.005);
        mem.target_met = gv(&mem).map(|g| g < 12.0);
        start.target_met = gv(&start).map(|g| g < 0.1);
        graph.target_met = gv(&graph).map(|g| g < 0.5);
        flat.target_met = gv(&flat).map(|g| g < 0.5);
        commit.target_met = gv(&commit).map(|g| g < 20.0);
        let tar = columns.iter().find_map(|c| c.crash.as_ref()).map(|r| r.tar_s);
        crash.target_met = gv(&crash).zip(tar).map(|(g, t)| g < 0.5 && g <= t);
        rows.extend([median, p99]);
        if let Some(c) = columns.iter().find(|c| c.name == "gitvisor") {
            let floor_cpu = columns
                .iter()
                .find(|c| c.name == "floor")
                .and_then(|c| c.restart.as_ref())
                .and_then(|r| r.cpu_ms_per_spawn);
            rows.extend(loop_rows(&c.restart_loops, floor_cpu));
        }
        rows.extend([
            cpu, mem, start, graph, flat, thru, thru_cpu, thru_rss, commit, commit99, crash, crash_mem,
        ]);
        rows.extend([probed, failover2, failover10, trips]);
        if let Some(t) = columns.iter().find(|c| c.name == "gitvisor").and_then(|c| c.tray.as_ref()) {
            rows.extend(tray_rows(t));
        }
        for r in &mut rows {
            if let Some(g) = r.values.get("gitvisor").copied() {
                for a in ANCHORS {
                    if let Some(v) = r.values.get(a).filter(|v| **v > 0.0) {
                        r.ratios.insert(a.to_string(), g / v);
                    }
                }
            }
        }
        let generated_unix = crate::stamps::now_ns() / 1_000_000_000;
        Report {
            generated_unix,
            machine: machine(),
            quick: o.quick,
            idle_seconds: o.idle_seconds,
            rows,
            columns,
        }
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let names = ["gitvisor", "floor", "supervisord", "PM2", "runit", "s6"];
        out.push_str(
            "| figure | gitvisor | floor | supervisord | PM2 | runit | s6 | target | gitvisor ÷ other |\n",
        );
        out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for r in &self.rows {
            let mut line = format!("| {} |", r.figure);
            for n in names {
                let cell = r.cells.get(n).cloned().unwrap_or_else(|| self.absent(n));
                line.push_str(&format!(" {cell} |"));
            }
            let met = match r.target_met {
                Some(true) => " (met)",
                Some(false) => " (missed)",
                None => "",
            };
            let others = r.ratios.keys().filter(|k| !ANCHORS.contains(&k.as_str())).map(String::as_str);
            let ratios: Vec<String> = ANCHORS
                .iter()
                .copied()
                .chain(others)
                .filter_map(|a| r.ratios.get(a).map(|v| format!("{a} {}", ratio(*v))))
                .collect();
            let ratios = if ratios.is_empty() { "—".to_string() } else { ratios.join(", ") };
            line.push_str(&format!(" {}{met} | {ratios} |\n", r.target));
            out.push_str(&line);
        }
        out.push('\n');
        out.push_str(&format!(
            "{} cores, {}; load average {} before, {} after; idle window {} s{}.\n",
            self.machine.get("cores").map_or("?", |s| s.as_str()),
            self.machine.get("cpu").map_or("?", |s| s.as_str()),
            self.machine.get("loadavg_before").map_or("?", |s| s.as_str()),
            self.machine.get("loadavg_after").map_or("?", |s| s.as_str()),
            self.idle_seconds,
            if self.quick { ", quick run" } else { "" }
        ));
        for c in &self.columns {
            let version = c.version.as_deref().unwrap_or("");
            out.push_str(&format!("- {}: {} {}\n", c.name, c.status, version));
            if let Some(m) = &c.many {
                for g in &m.groups {
                    out.push_str(&format!(
                        "  - {} ({} process{}): CPU {:.4} s (schedstat) / {:.2} s (utime+stime) over {:.0} s; RSS {:.1} MiB, PSS {:.1} MiB\n",
                        g.role,
                        g.processes,
                        if g.processes == 1 { "" } else { "es" },
                        g.cpu_precise_s,
                        g.cpu_s,
                        m.idle_window_s,
                        mib(g.rss_kib),
                        mib(g.pss_kib)
                    ));
                }
                if m.restarts_in_window > 0 {
                    out.push_str(&format!(
                        "  - {} service restart(s) during the idle window\n",
                        m.restarts_in_window
                    ));
                }
            }
            if let Some(r) = &c.restart {
                out.push_str(&format!(
                    "  - restart: {} intervals, min {:.2} ms, max {:.2} ms{}{}\n",
                    r.intervals.samples,
                    r.intervals.min_ms,
                    r.intervals.max_ms,
                    r.cpu_ms_per_spawn
                        .map(|c| format!("; its own CPU per spawn {c:.3} ms"))
                        .unwrap_or_default(),
                    r.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
                ));
            }
            for l in &c.restart_loops {
                out.push_str(&format!(
                    "  - restart loop, exit {} beside {} services: {} restarts, median {:.2} ms, p99 {:.2} ms; CPU per restart: daemon {:.3} ms, log keeper {:.3} ms; daemon RSS {:.1} MiB; {} crash report file(s) at the end\n",
                    l.exit_code,
                    l.others,
                    l.restarts,
                    l.intervals.median_ms,
                    l.intervals.p99_ms,
                    l.daemon_cpu_ms_per_restart,
                    l.keeper_cpu_ms_per_restart,
                    mib(l.daemon_rss_kib),
                    l.reports_on_disk
                ));
            }
            for g in c.graph.iter().chain(&c.flat) {
                let layers: Vec<String> = g.layer_last_s.iter().map(|t| format!("{t:.2}")).collect();
                out.push_str(&format!(
                    "  - {} units {}: first started {:.3} s, median {:.3} s, last {:.3} s; daemon RSS {:.1} MiB, \
                     log keeper RSS {:.1} MiB with all running; SIGTERM stop took {:.2} s\n",
                    g.services,
                    if g.dependencies { "in a layered graph" } else { "without dependencies" },
                    g.first_s,
                    g.median_s,
                    g.start_s,
                    mib(g.daemon_rss_kib),
                    mib(g.keeper_rss_kib),
                    g.stop_s
                ));
                if g.dependencies {
                    out.push_str(&format!("    - last start per layer (s): {}\n", layers.join(", ")));
                }
            }
            if let Some(f) = &c.flood {
                out.push_str(&format!(
                    "  - log flood: {:.0} MiB in {:.2} s from the writer's start to its last line in the log file; log files {:.0} MiB at the end; peak RSS {:.1} MiB\n",
                    f.payload_bytes as f64 / 1048576.0,
                    f.seconds,
                    f.log_bytes as f64 / 1048576.0,
                    mib(f.peak_rss_kib)
                ));
            }
            for f in &c.start_floor {
                out.push_str(&format!(
                    "  - spawning {} idle processes from one loop (no supervisor): first started {:.3} s, median {:.3} s, last {:.3} s\n",
                    f.services, f.first_s, f.median_s, f.start_s
                ));
            }
            if let Some(p) = &c.plan {
                out.push_str(&format!(
                    "  - planning the start order of {} units (dense graph, in process): median {:.2} ms, max {:.2} ms over {} runs\n",
                    p.units, p.median_ms, p.max_ms, p.runs
                ));
            }
            if let Some(m) = &c.commit {
                out.push_str(&format!(
                    "  - commit to running: {} commits, min {:.1} ms, max {:.1} ms; `git commit` itself took {:.1} ms (median, not counted); {} syncs recorded in sync-history.jsonl\n",
                    m.latency.samples,
                    m.latency.min_ms,
                    m.latency.max_ms,
                    m.git_commit_median_ms,
                    m.syncs_recorded
                ));
            }
            if let Some(r) = &c.crash {
                let files = r.report_workdir_files.map_or("?".into(), |n| n.to_string());
                let skipped = r.report_workdir_skipped.map_or("?".into(), |n| n.to_string());
                out.push_str(&format!(
                    "  - crash report: {} files, {:.1} MiB ({:.1} MiB text, the rest random); temporary file seen {} after the exit; report {:.1} MiB, {files} files in its workdir, {skipped} skipped{}; tar -czf {:.3} s, {:.1} MiB; baseline noted {:.2} s after launch; daemon RSS {:.1} MiB before, {:.1} MiB after, VmHWM {:.1} MiB before the crash, {:.1} MiB after\n",
                    r.tree_files,
                    mib(r.tree_bytes / 1024),
                    mib(r.tree_text_bytes / 1024),
                    r.tmp_seen_s.map_or("never".into(), |t| format!("{t:.3} s")),
                    mib(r.report_bytes / 1024),
                    r.report_workdir_note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default(),
                    r.tar_s,
                    mib(r.tar_bytes / 1024),
                    r.baseline_s,
                    mib(r.daemon_rss_before_kib),
                    mib(r.daemon_rss_after_kib),
                    mib(r.daemon_hwm_before_kib),
                    mib(r.daemon_hwm_after_kib)
                ));
            }
            for f in &c.failover {
                let samples: Vec<String> = f.samples_s.iter().map(|s| format!("{s:.2}")).collect();
                out.push_str(&format!(
                    "  - fleet failover, lease TTL {:.0} s: from the SIGKILL of the holder's engine to the other node's copy started, {} s\n",
                    f.lease_ttl_s,
                    samples.join(", ")
                ));
            }
            if let Some(t) = &c.fleet_round_trips {
                let by: Vec<String> = t.per_minute.iter().map(|(k, v)| format!("{k} {v:.1}")).collect();
                out.push_str(&format!(
                    "  - fleet steady state over {:.0} s, {} nodes, {} singleton, lease TTL {:.0} s: Redis commands per minute by command: {}\n",
                    t.window_s,
                    t.nodes,
                    t.singletons,
                    t.lease_ttl_s,
                    by.join(", ")
                ));
            }
            if let Some(t) = &c.tray {
                for p in &t.phases {
                    let each: Vec<String> = p
                        .processes
                        .iter()
                        .map(|q| format!("{} {:.1}/{:.1}", q.role, mib(q.rss_kib), mib(q.pss_kib)))
                        .collect();
                    out.push_str(&format!(
                        "  - tray app, {} services, {}: RSS/PSS MiB per process: {}\n",
                        t.services,
                        p.name,
                        each.join(", ")
                    ));
                }
            }
            for e in &c.errors {
                out.push_str(&format!("  - error: {}\n", e.replace('\n', "\n    ")));
            }
        }
        out
    }

    fn absent(&self, name: &str) -> String {
        match self.columns.iter().find(|c| c.name == name) {
            Some(c) if c.status != "ok" => c.status.clone(),
            Some(c) if !c.errors.is_empty() => "error".into(),
            _ => "—".into(),
        }
    }
}

/// The tray rows: each phase's RSS and PSS summed over the app's own processes (the daemon's
/// for the last), in the gitvisor column.
fn tray_rows(t: &crate::tray::TrayMemory) -> Vec<Row> {
    t.phases
        .iter()
        .map(|p| {
            let figure = match p.name.as_str() {
                "hidden" => "tray app (release, 10 services), hidden: RSS (PSS) of its processes",
                "window open" => "… with its window open",
                "hidden after closing" => "… hidden again after closing the window",
                _ => "gitvisor daemon + log keeper alone, same 10 services: RSS (PSS)",
            };
            let v = mib(p.rss_kib);
            let cell = format!("{v:.1} MiB ({:.1} MiB)", mib(p.pss_kib));
            Row {
                figure,
                unit: "MiB",
                values: BTreeMap::from([("gitvisor".to_string(), v)]),
                cells: BTreeMap::from([("gitvisor".to_string(), cell)]),
                target: "—",
                target_met: None,
                ratios: BTreeMap::new(),
            }
        })
        .collect()
}

/// The restart-loop rows: per number of other services, the interval (clean and crashing side by
/// side) and the engine's CPU per restart, beside the floor loop's own CPU per spawn (`floor_cpu`,
/// ms) when it was measured: how fast this machine forks today.
fn loop_rows(loops: &[RestartLoop], floor_cpu: Option<f64>) -> Vec<Row> {
    let find = |code: i32, others: usize| loops.iter().find(|l| l.exit_code == code && l.others == others);
    let base = |code| find(code, 0).map(|l| l.intervals.median_ms);
    let mut rows = Vec::new();
    for others in [0, 100, 300] {
        let (Some(clean), Some(crash)) = (find(0, others), find(1, others)) else { continue };
        let (interval, cpu): (&'static str, &'static str) = match others {
            0 => (
                "restart loop, median interval: clean exit · crash",
                "restart loop, engine CPU per restart (daemon + keeper)",
            ),
            100 => ("… beside 100 services", "… beside 100 services"),
            _ => ("… beside 300 services", "… beside 300 services"),
        };
        let mut r = Row {
            figure: interval,
            unit: "ms",
            values: BTreeMap::new(),
            cells: BTreeMap::new(),
            target: "crash ≤ 1.1 × clean; ≤ 1.1 × beside 0",
            target_met: None,
            ratios: BTreeMap::new(),
        };
        let (a, b) = (clean.intervals.median_ms, crash.intervals.median_ms);
        r.values.insert("gitvisor".into(), b);
        r.cells.insert(
            "gitvisor".into(),
            format!("{a:.2} · {b:.2} ms (p99 {:.2} · {:.2})", clean.intervals.p99_ms, crash.intervals.p99_ms),
        );
        let flat = |code, v: f64| base(code).is_none_or(|z| v <= 1.1 * z);
        r.target_met = Some(b <= 1.1 * a && flat(0, a) && flat(1, b));
        r.ratios.insert("clean".into(), b / a.max(1e-9));
        let mut c = Row {
            figure: cpu,
            unit: "ms",
            values: BTreeMap::new(),
            cells: BTreeMap::new(),
            target: "≤ 0.3 ms either way",
            target_met: None,
            ratios: BTreeMap::new(),
        };
        let total = |l: &RestartLoop| l.daemon_cpu_ms_per_restart + l.keeper_cpu_ms_per_restart;
        // The larger of the two: the target holds either way.
        c.values.insert("gitvisor".into(), total(clean).max(total(crash)));
        if let Some(f) = floor_cpu {
            c.values.insert("floor".into(), f);
            c.cells.insert("floor".into(), format!("{f:.3} ms (its own fork + wait)"));
        }
        c.cells.insert(
            "gitvisor".into(),
            format!(
                "{:.2} · {:.2} ms (daemon {:.2} · {:.2})",
                total(clean),
                total(crash),
                clean.daemon_cpu_ms_per_restart,
                crash.daemon_cpu_ms_per_restart
            ),
        );
        c.target_met = Some(total(clean) <= 0.3 && total(crash) <= 0.3);
        rows.push(r);
        rows.push(c);
    }
    rows
}

fn ratio(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}×")
    } else if v >= 0.1 {
        format!("{v:.2}×")
    } else {
        format!("{v:.4}×")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stamps::Intervals;

    fn looped(exit_code: i32, others: usize, median_ms: f64, daemon: f64, keeper: f64) -> RestartLoop {
        RestartLoop {
            exit_code,
            others,
            intervals: Intervals {
                samples: 400,
                median_ms,
                p99_ms: median_ms * 2.0,
                min_ms: 0.5,
                max_ms: 3.0,
            },
            restarts: 400,
            daemon_cpu_ms_per_restart: daemon,
            keeper_cpu_ms_per_restart: keeper,
            daemon_rss_kib: 8000,
            reports_on_disk: 0,
        }
    }

    #[test]
    fn the_loop_cpu_row_holds_the_larger_of_clean_and_crash_beside_the_floors_own_cpu() {
        let loops = [looped(0, 0, 1.0, 0.20, 0.05), looped(1, 0, 1.05, 0.24, 0.08)];
        let rows = loop_rows(&loops, Some(0.08));
        let [interval, cpu] = &rows[..] else { panic!("two rows, got {}", rows.len()) };
        assert_eq!(interval.target_met, Some(true), "crash 1.05 ≤ 1.1 × clean 1.0");
        let v = cpu.values["gitvisor"];
        assert!((v - 0.32).abs() < 1e-9, "the crash loop's 0.24 + 0.08, got {v}");
        assert_eq!(cpu.target_met, Some(false), "0.32 ms is over 0.3");
        assert_eq!(cpu.values["floor"], 0.08);
        assert!(cpu.cells["floor"].starts_with("0.080 ms"), "{}", cpu.cells["floor"]);

        let rows = loop_rows(&loops, None);
        assert!(!rows[1].values.contains_key("floor"), "no floor figure, no floor cell");
    }

    #[test]
    fn a_loop_slower_beside_300_services_than_beside_none_misses_the_flat_target() {
        let loops = [
            looped(0, 0, 1.0, 0.1, 0.1),
            looped(1, 0, 1.0, 0.1, 0.1),
            looped(0, 300, 1.2, 0.1, 0.1),
            looped(1, 300, 1.2, 0.1, 0.1),
        ];
        let rows = loop_rows(&loops, None);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].target_met, Some(true));
        assert_eq!(rows[2].target_met, Some(false), "1.2 ms is over 1.1 × 1.0 beside none");
        assert_eq!(rows[3].target_met, Some(true), "0.2 ms either way");
    }
}
