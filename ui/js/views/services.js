// Services: one table row per service, updated in place on every snapshot (rows are keyed by
// name and only changed text is written) so focus and hover survive the ~2 s refreshes.

import { drawGraph } from '../graph.js';
import { DAY_MS, createTimeline, drawTimeline } from '../timeline.js';
import { byId, el, setAttr, setText } from '../dom.js';
import { createSparkline, drawSparkline } from '../sparkline.js';
import {
  DASH, describeExit, formatDateTime, formatDuration, formatKiB, formatPercent,
} from '../format.js';

// A process exists or is about to (Start makes no sense).
const ACTIVE = new Set(['starting', 'running', 'stopping', 'backoff', 'active']);
// A process exists: uptime, CPU and memory mean something.
const HAS_PROCESS = new Set(['starting', 'running', 'stopping']);
// An exit shown in these states is the current story; in others it is history (dimmed).
const EXIT_MATTERS = new Set(['failed', 'exited', 'backoff']);
const PILL = {
  running: 'ok', active: 'ok', starting: 'warn', stopping: 'warn', backoff: 'warn',
  failed: 'bad', stopped: 'neutral', exited: 'neutral',
};
const ACTIONS = [
  ['start', 'Start'],
  ['stop', 'Stop'],
  ['restart', 'Restart'],
  ['logs', 'Logs'],
  ['capture', 'Capture'],
];

export function createServicesView(ctx) {
  const body = byId('services-body');
  const wrap = byId('services-table-wrap');
  const empty = byId('services-empty');
  const notes = {
    pending: byId('services-pending'),
    invalid: byId('services-invalid'),
    problems: byId('services-problems'),
    repo: byId('services-repo-problem'),
  };
  const rows = new Map(); // name -> row parts
  const inFlight = new Set(); // names with an action this window started and not yet answered
  let visible = false;
  let timer = 0;
  let notesKey = '';
  const timersSection = byId('services-timers');
  const graphSection = byId('services-graph');
  const graphHost = byId('services-graph-svg');
  const graphChain = byId('services-graph-chain');
  const timersBody = byId('timers-body');
  let timers = [];
  let timersAsked = 0;
  const history = new Map(); // name -> recent samples, from the engine's `metrics`
  let metricsAsked = 0;

  body.addEventListener('click', (e) => {
    const port = e.target.closest('a.port-link');
    if (port) {
      e.preventDefault();
      ctx.call('open_port', { port: Number(port.dataset.port) }).catch((err) => {
        ctx.showError(`Could not open port ${port.dataset.port}: ${ctx.errorMessage(err)}`);
      });
      return;
    }
    const button = e.target.closest('button[data-action]');
    if (!button || button.disabled) return;
    const tr = button.closest('tr[data-service]');
    if (tr) act(button.dataset.action, tr.dataset.service);
  });

  function buildRow(name) {
    const r = { name };
    r.tr = el('tr', { dataset: { service: name } });
    // The name opens the unit in the editor (Units).
    // An instance's unit is its template's.
    const file = name.includes('@') ? `${name.slice(0, name.indexOf('@'))}@.service` : `${name}.service`;
    r.nameText = el('a', { class: 'svc-name', text: name, href: `#units/${encodeURIComponent(file)}` });
    r.tags = el('span', { class: 'svc-tags' });
    r.desc = el('div', { class: 'svc-desc' });
    r.pill = el('span', { class: 'pill' });
    r.state = el('td', { class: 'cell-state' }, [r.pill]);
    r.health = el('td', { class: 'cell-health' });
    r.pid = el('td', { class: 'cell-pid num' });
    r.uptime = el('td', { class: 'cell-uptime num' });
    r.restarts = el('td', { class: 'cell-restarts num' });
    r.cpuText = el('span');
    r.memText = el('span');
    r.cpuSpark = createSparkline(`CPU of ${name} over the last minutes`);
    r.memSpark = createSparkline(`Memory of ${name} over the last minutes`);
    r.cpu = el('td', { class: 'cell-cpu num' }, [r.cpuSpark, r.cpuText]);
    r.mem = el('td', { class: 'cell-mem num' }, [r.memSpark, r.memText]);
    r.ports = el('div', { class: 'svc-ports', hidden: true });
    r.timeline = createTimeline();
    r.error = el('td', { class: 'cell-error' });
    r.buttons = {};
    const actions = el('td', { class: 'cell-actions' });
    const group = el('div', { class: 'row-actions' });
    for (const [action, label] of ACTIONS) {
      const b = el('button', {
        type: 'button', class: 'btn-small', text: label,
        dataset: { action }, 'aria-label': `${label} ${name}`,
      });
      r.buttons[action] = b;
      group.append(b);
    }
    r.busy = el('span', { class: 'row-busy', text: '…', hidden: true });
    group.append(r.busy);
    actions.append(group);
    r.tr.append(
      el('td', { class: 'cell-name' }, [el('div', { class: 'svc-line' }, [r.nameText, r.tags]), r.desc, r.ports, r.timeline]),
      r.state, r.health, r.pid, r.uptime, r.restarts, r.cpu, r.mem, r.error, actions,
    );
    return r;
  }

  function uptimeText(s, now) {
    if (!HAS_PROCESS.has(s.state) || s.started_ms == null) return DASH;
    return formatDuration(now - s.started_ms);
  }

  /** Where a fleet singleton runs ("here", "on node-b") or why it does not, as a short tag
   * with the engine's whole sentence as its title. */
  function fleetTag(fleet) {
    if (!fleet) return null;
    const title = `Fleet singleton: ${fleet}`;
    if (fleet === 'here') return { text: 'singleton: here', title: 'Fleet singleton: runs on this node, which holds its lease' };
    if (fleet.startsWith('on ')) return { text: fleet, title: `Fleet singleton: runs ${fleet}, which holds its lease` };
    if (fleet.startsWith('not run')) return { text: 'not run here', title };
    return { text: fleet, title };
  }

  /** "src/app.ts", or "src/app.ts and 3 more files" (as the engine words it). */
  function describeChange(c) {
    if (!c.more) return c.path;
    return `${c.path} and ${c.more} more file${c.more === 1 ? '' : 's'}`;
  }

  /** A watched service ([Watch]): what restarted it last, how its files are watched, or why
   * they are not. */
  function watchTag(w) {
    if (!w) return null;
    const lines = [];
    if (w.mode === 'inotify') lines.push(`Restarts when its files change (${w.directories} directories watched)`);
    else if (w.mode === 'polling') lines.push(`Restarts when its files change, polling ${w.directories} directories: ${w.note}`);
    else if (w.mode === 'off') lines.push(`Files not watched: ${w.note || 'the service is stopped'}`);
    else lines.push('Setting up the watch of its files');
    if (w.last_change) {
      lines.push(`Restarted ${formatDateTime(w.last_change.at_ms)} after a change to ${describeChange(w.last_change)}`);
    }
    let text = w.mode === 'polling' ? 'watching (polling)' : 'watching';
    if (w.last_change) text = `changed: ${w.last_change.path}`;
    // Polling, or a watch that failed, is worth a look.
    const warn = w.mode === 'polling' || (w.mode === 'off' && Boolean(w.note) && !w.note.startsWith('not watched'));
    return { text, title: lines.join('\n'), warn, cls: 'tag-watch' };
  }

  /** The health cell's title: the probes' last verdict and when, or why there is none. */
  function healthTitle(s) {
    const when = s.health_checked_ms != null ? ` (last probe ${formatDateTime(s.health_checked_ms)})` : '';
    if (s.health_error) return `${s.health_error}${when}`;
    if (s.health === 'unknown') return 'No health check result';
    return `${s.health}${when}`;
  }

  /** `ports 8080, 5353/udp`: each listening port once, whatever addresses it is bound on; a
   * TCP port is a link that opens http://localhost:PORT in the browser (the app's open_port,
   * which opens only ports its services listen on). Under the name rather than a column of its
   * own, which would push the actions out of a narrow window. */
  function renderPorts(r, s) {
    const ports = s.ports || [];
    const label = (p) => (p.proto === 'tcp' ? String(p.port) : `${p.port}/${p.proto}`);
    const labels = [...new Set(ports.map(label))];
    const key = labels.join(',');
    r.ports.hidden = labels.length === 0;
    if (r.ports.dataset.key === key) return;
    r.ports.dataset.key = key;
    const parts = ['ports '];
    labels.forEach((l, i) => {
      if (i) parts.push(', ');
      const p = ports.find((x) => label(x) === l);
      const where = ports.filter((x) => label(x) === l).map((x) => x.address).join(', ');
      if (p.proto === 'tcp') {
        parts.push(el('a', {
          href: '#', class: 'port-link', text: l, dataset: { port: p.port },
          title: `Listening on ${where}: open http://localhost:${p.port} in the browser`,
        }));
      } else {
        parts.push(el('span', { text: l, title: `Bound on ${where}` }));
      }
    });
    r.ports.replaceChildren(...parts);
  }

  function lastErrorOf(s) {
    // A watched service that crashed after a change: the change is the likely cause.
    const crashed = s.watch && s.watch.crashed_after_change;
    if (crashed) {
      const exit = s.error || (s.last_exit ? describeExit(s.last_exit) : '');
      return { text: crashed, dim: false, title: exit ? `${crashed}: ${exit}` : crashed };
    }
    if (s.error) return { text: s.error, dim: false, title: s.error };
    const exit = s.last_exit;
    // A stop the engine performed and a clean end are not errors (the supervisor's judgement).
    const notAnError = s.last_exit_class === 'stopped' || s.last_exit_class === 'clean';
    if (!exit || exit.code === 0 || notAnError) {
      // What the service says of itself (STATUS= over $NOTIFY_SOCKET), when nothing is wrong.
      const said = s.status_text || '';
      return { text: said, dim: true, title: said ? `The service says: ${said}` : null };
    }
    const text = describeExit(exit);
    return { text, dim: !EXIT_MATTERS.has(s.state), title: `Last exit at ${formatDateTime(exit.at_ms)}: ${text}` };
  }

  function updateRow(r, s, now) {
    r.service = s;
    const description = s.description || '';
    setText(r.desc, description);
    r.desc.hidden = !description;
    setAttr(r.nameText, 'title', description ? `${description} (edit the unit)` : 'Edit the unit');
    const tags = [];
    if (!s.enabled) tags.push({ text: 'disabled', title: 'Not started automatically' });
    if (s.adopted) tags.push({ text: 'adopted', title: 'Process adopted from an earlier engine' });
    const fleet = fleetTag(s.fleet);
    if (fleet) tags.push(fleet);
    const watch = watchTag(s.watch);
    if (watch) tags.push(watch);
    // What the unit asks for and does not get, said plainly: the tag names the keys, its
    // title has the engine's sentences.
    if (s.unenforced && s.unenforced.length) {
      tags.push({ text: 'not enforced', title: s.unenforced.join('\n'), warn: true });
    }
    const tagsKey = tags.map((t) => `${t.text}|${t.title}`).join(',');
    if (r.tags.dataset.key !== tagsKey) {
      r.tags.dataset.key = tagsKey;
      const cls = (t) => ['tag', t.warn ? 'tag-warn' : '', t.cls || ''].filter(Boolean).join(' ');
      r.tags.replaceChildren(...tags.map((t) => el('span', { class: cls(t), text: t.text, title: t.title })));
    }

    const pillClass = `pill pill-${PILL[s.state] || 'neutral'}`;
    if (r.pill.className !== pillClass) r.pill.className = pillClass;
    // systemd's words for a oneshot that remains active.
    setText(r.pill, s.state === 'active' ? 'active (exited)' : s.state);

    const health = s.health && s.health !== 'unknown' ? s.health : DASH;
    setText(r.health, health);
    const healthClass = `cell-health health-${s.health || 'unknown'}`;
    if (r.health.className !== healthClass) r.health.className = healthClass;
    setAttr(r.health, 'title', healthTitle(s));

    setText(r.pid, s.pid != null ? String(s.pid) : DASH);
    setText(r.uptime, uptimeText(s, now));
    setAttr(r.uptime, 'title', s.started_ms != null && HAS_PROCESS.has(s.state) ? `Started ${formatDateTime(s.started_ms)}` : null);
    setText(r.restarts, String(s.restarts ?? 0));
    const up = HAS_PROCESS.has(s.state);
    setText(r.cpuText, up ? formatPercent(s.cpu_percent) : DASH);
    setText(r.memText, up && s.memory_kb != null ? formatKiB(s.memory_kb) : DASH);
    const samples = up ? history.get(s.name) || [] : [];
    // CPU on a 100 % scale unless it used more (several cores); memory on its own peak.
    drawSparkline(r.cpuSpark, samples.map((x) => x.cpu_percent), 100);
    drawSparkline(r.memSpark, samples.map((x) => x.memory_kb), 0);

    renderPorts(r, s);

    const err = lastErrorOf(s);
    setText(r.error, err.text);
    setAttr(r.error, 'title', err.title);
    r.error.classList.toggle('dim', err.dim);

    const running = inFlight.has(s.name);
    const locked = running || Boolean(s.busy);
    const active = ACTIVE.has(s.state);
    r.buttons.start.disabled = locked || active;
    r.buttons.stop.disabled = locked || !active || s.state === 'stopping';
    r.buttons.restart.disabled = locked || !active || s.state === 'stopping';
    // A service without a capture (no WorkingDirectory=): the engine says why.
    r.buttons.capture.disabled = running || Boolean(s.capture_off);
    setAttr(r.buttons.capture, 'title', s.capture_off ? `No capture: ${s.capture_off}` : null);
    r.busy.hidden = !locked;
    setAttr(r.busy, 'title', s.busy ? `${s.busy} in progress` : running ? 'Working…' : null);
    r.tr.classList.toggle('is-busy', locked);
  }

  function renderNotes(status) {
    const data = {
      pending: status.pending || [],
      invalid: status.invalid || [],
      problems: status.problems || [],
      repo: status.repo_problem || '',
    };
    const key = JSON.stringify(data);
    if (key === notesKey) return;
    notesKey = key;

    notes.pending.hidden = data.pending.length === 0;
    notes.pending.querySelector('ul').replaceChildren(...data.pending.map((p) => el('li', {}, [
      el('span', { class: `tag change-${p.change}`, text: p.change }),
      ' ',
      el('span', { class: 'mono', text: p.file }),
    ])));
    notes.invalid.hidden = data.invalid.length === 0;
    notes.invalid.querySelector('ul').replaceChildren(...data.invalid.map((t) => el('li', { class: 'mono', text: t })));
    notes.problems.hidden = data.problems.length === 0;
    notes.problems.querySelector('ul').replaceChildren(...data.problems.map((t) => el('li', { text: t })));
    notes.repo.hidden = !data.repo;
    setText(byId('services-repo-problem-text'), data.repo);
  }

  function render() {
    const status = ctx.status();
    if (!status) {
      // The header and #engine-unreachable say why; a stale table would mislead.
      wrap.hidden = true;
      empty.hidden = true;
      for (const n of Object.values(notes)) n.hidden = true;
      notesKey = '';
      return;
    }
    const services = status.services || [];
    empty.hidden = services.length > 0;
    wrap.hidden = services.length === 0;
    setText(byId('services-empty-home'), `${ctx.home() || 'HOME'}/services`);

    const now = Date.now();
    const names = new Set();
    services.forEach((s, i) => {
      names.add(s.name);
      let r = rows.get(s.name);
      if (!r) {
        r = buildRow(s.name);
        rows.set(s.name, r);
      }
      updateRow(r, s, now);
      // Move only rows that are out of place: moving a row would blur a focused button.
      if (body.children[i] !== r.tr) body.insertBefore(r.tr, body.children[i] || null);
    });
    for (const [name, r] of rows) {
      if (!names.has(name)) {
        r.tr.remove();
        rows.delete(name);
      }
    }
    renderNotes(status);
    refreshTimers();
    refreshGraph();
    refreshMetrics();
    refreshTimelines();
  }

  // The last day of each service: asked every 5 s while the table is shown (a status burst
  // asks once), drawn on each row.
  let timelinesAsked = 0;
  async function refreshTimelines() {
    if (!visible || Date.now() - timelinesAsked < 5000) return;
    timelinesAsked = Date.now();
    const now = Date.now();
    try {
      const reply = await ctx.call('timeline', { names: [], sinceMs: now - DAY_MS });
      for (const t of reply.services || []) {
        const r = rows.get(t.name);
        if (r) drawTimeline(r.timeline, t.entries, reply.syncs, now);
      }
    } catch {
      timelinesAsked = 0;
    }
  }

  // The engine samples while someone asks: the table asks every 2 s while it is shown.
  async function refreshMetrics() {
    if (!visible || Date.now() - metricsAsked < 2000) return;
    metricsAsked = Date.now();
    try {
      const reply = await ctx.call('metrics', { names: [] });
      history.clear();
      for (const m of reply.services || []) history.set(m.name, m.samples || []);
    } catch {
      history.clear();
    }
    for (const r of rows.values()) if (r.service) updateRow(r, r.service, Date.now());
  }

  // The dependency graph: asked when the states changed (at most once a second), shown when
  // some unit depends on another.
  let graphAsked = 0;
  let graphKey = '';
  let graphTimer = 0;
  async function refreshGraph() {
    if (!visible) return;
    const status = ctx.status();
    const key = ((status && status.services) || []).map((s) => `${s.name}:${s.state}:${s.started_ms}`).join(',');
    if (key === graphKey) return;
    const wait = 1000 - (Date.now() - graphAsked);
    if (wait > 0) {
      clearTimeout(graphTimer);
      graphTimer = setTimeout(refreshGraph, wait);
      return;
    }
    graphKey = key;
    graphAsked = Date.now();
    try {
      const graph = await ctx.call('graph');
      const linked = (graph.units || []).some((u) => (u.starts_after || []).length);
      graphSection.hidden = !linked;
      if (linked) {
        drawGraph(graphHost, graph);
        const chain = graph.critical_chain || [];
        setText(
          graphChain,
          chain.length > 1
            ? `Critical chain of the last start: ${chain.map((l) => `${l.name} +${l.since_first_ms} ms`).join(' → ')}`
            : '',
        );
      }
    } catch {
      graphKey = '';
    }
  }

  // Timers come from their own command; asked at most every 2 s (a status burst asks once).
  async function refreshTimers() {
    if (!visible || Date.now() - timersAsked < 2000) return;
    timersAsked = Date.now();
    try {
      timers = (await ctx.call('timers')).timers || [];
    } catch {
      timers = [];
    }
    renderTimers(Date.now());
  }

  function renderTimers(now) {
    timersSection.hidden = timers.length === 0;
    const sorted = [...timers].sort((a, b) => (a.next_ms ?? Infinity) - (b.next_ms ?? Infinity));
    timersBody.replaceChildren(...sorted.map((t) => {
      const note = t.error || (t.enabled ? '' : 'Not enabled: add [Install] WantedBy=timers.target');
      return el('tr', { dataset: { timer: t.name } }, [
        el('td', { class: 'mono', text: `${t.name}.timer` }),
        el('td', { class: 'mono', text: `${t.unit}.service` }),
        el('td', { text: t.next_ms != null ? formatDateTime(t.next_ms) : DASH }),
        el('td', { class: 'num', text: t.next_ms != null ? formatDuration(Math.max(0, t.next_ms - now)) : DASH }),
        el('td', { text: t.last_ms != null ? formatDateTime(t.last_ms) : DASH }),
        el('td', { class: 'mono small', text: (t.triggers || []).join(', ') }),
        el('td', { class: t.error ? 'cell-error' : 'muted', text: note }),
      ]);
    }));
  }

  // Uptime is derived from started_ms, so a local tick keeps it current without asking anyone.
  function tick() {
    const now = Date.now();
    for (const r of rows.values()) if (r.service) setText(r.uptime, uptimeText(r.service, now));
    if (timers.length) renderTimers(now);
  }

  async function act(action, name) {
    if (action === 'logs') {
      ctx.navigate(`logs/${encodeURIComponent(name)}`);
      return;
    }
    if (inFlight.has(name)) return;
    inFlight.add(name);
    refreshRow(name);
    try {
      if (action === 'capture') {
        const reply = await ctx.call('capture', { name });
        ctx.showNotice(`Captured the working directory of ${name} as report ${reply.id}.`, {
          href: `#crashes/${encodeURIComponent(reply.id)}`,
          text: 'Open the report',
        });
      } else {
        await ctx.call(action, { name });
      }
    } catch (err) {
      // Busy is not a failure: another operation on it runs; its row shows which.
      if (ctx.isBusy(err)) ctx.showNotice(`${name} is busy (${ctx.errorMessage(err)}); try again when it finishes.`);
      else ctx.showError(`Could not ${action} ${name}: ${ctx.errorMessage(err)}`);
    } finally {
      inFlight.delete(name);
      refreshRow(name);
    }
  }

  function refreshRow(name) {
    const r = rows.get(name);
    if (r && r.service) updateRow(r, r.service, Date.now());
  }

  return {
    show() {
      visible = true;
      render();
      if (!timer) timer = setInterval(tick, 1000);
    },
    hide() {
      visible = false;
      clearInterval(timer);
      timer = 0;
    },
    // Rendered even while hidden, so switching back is instant and the DOM is always current.
    status() {
      render();
    },
    event() {},
    get visible() {
      return visible;
    },
  };
}
