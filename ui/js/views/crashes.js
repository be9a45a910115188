// Crash reports: the list (newest first) and one report's details with an export form. The list
// is read when the view is shown and when a crash_report event says a new one exists. A report's
// changed text files show their diffs (report.json holds them, bounded; the archive's
// changes.patch has them whole), drawn as text, one classed line at a time, never as markup.

import { byId, el, setText } from '../dom.js';
import {
  DASH, describeExit, formatBytes, formatCpuTime, formatDateTime, formatDuration, formatKiB,
  parseTime, plural, shortId,
} from '../format.js';
import { renderDiff } from './history.js';

// Long lists are cut: the archive itself has everything.
const LIST_LIMIT = 50;
const FILES_LIMIT = 200;

export function createCrashesView(ctx) {
  const body = byId('crash-body');
  const listWrap = byId('crash-table-wrap');
  const empty = byId('crash-empty');
  const loadingNote = byId('crash-loading');
  const detail = byId('crash-detail');
  const exportForm = byId('crash-export-form');
  const exportPath = byId('crash-export-path');
  const exportButton = byId('crash-export');
  const exportResult = byId('crash-export-result');

  let active = false;
  let reports = [];
  const rowsById = new Map(); // report id -> {tr, key}
  let openId = null; // the report whose details are shown (or loading)
  let listGeneration = 0;
  let detailGeneration = 0;

  body.addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-crash-id]');
    if (tr) open(tr.dataset.crashId);
  });
  body.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' && e.key !== ' ') return;
    const tr = e.target.closest('tr[data-crash-id]');
    if (!tr) return;
    e.preventDefault();
    open(tr.dataset.crashId);
  });
  byId('crash-refresh').addEventListener('click', () => loadList());
  byId('crash-detail-close').addEventListener('click', () => {
    const id = openId;
    ctx.navigate('crashes');
    focusRow(id);
  });
  exportForm.addEventListener('submit', (e) => {
    e.preventDefault(); // the CSP forbids form submissions anyway; this is a JS action
    exportReport();
  });

  function open(id) {
    ctx.navigate(`crashes/${encodeURIComponent(id)}`);
  }

  function focusRow(id) {
    if (!id) return;
    const tr = [...body.rows].find((r) => r.dataset.crashId === id);
    if (tr) tr.focus();
  }

  async function loadList() {
    const mine = ++listGeneration;
    loadingNote.hidden = reports.length > 0;
    try {
      const reply = await ctx.call('crash_list');
      if (mine !== listGeneration) return;
      reports = (reply && reply.reports ? reply.reports : []).slice();
      reports.sort((a, b) => {
        const d = (parseTime(b.time) ?? 0) - (parseTime(a.time) ?? 0);
        return d !== 0 ? d : String(b.id).localeCompare(String(a.id));
      });
      renderList();
    } catch (err) {
      if (mine !== listGeneration) return;
      ctx.showError(`Could not list the crash reports: ${ctx.errorMessage(err)}`);
    } finally {
      if (mine === listGeneration) loadingNote.hidden = true;
    }
  }

  function markSeen() {
    ctx.call('crash_seen').catch((err) => {
      ctx.showError(`Could not mark the crash reports as seen: ${ctx.errorMessage(err)}`);
    });
  }

  // Rows are keyed by report id and reused, so a reload (a new crash arriving) neither moves
  // keyboard focus nor invalidates a row someone is about to click.
  function renderList() {
    const ids = new Set();
    reports.forEach((r, i) => {
      ids.add(r.id);
      let row = rowsById.get(r.id);
      if (!row) {
        row = {
          tr: el('tr', {
            class: 'clickable', role: 'row', tabindex: '0',
            dataset: { crashId: r.id }, title: `Open report ${r.id}`,
          }),
          key: '',
        };
        rowsById.set(r.id, row);
      }
      const key = JSON.stringify([r.time, r.service, r.kind, r.reason, r.size]);
      if (row.key !== key) {
        row.key = key;
        const t = parseTime(r.time);
        row.tr.replaceChildren(
          el('td', { role: 'cell', class: 'nowrap', text: t != null ? formatDateTime(t) : r.time, title: r.time }),
          el('td', { role: 'cell', class: 'cell-service', text: r.service }),
          el('td', { role: 'cell' }, [el('span', { class: `tag kind-${r.kind}`, text: r.kind })]),
          el('td', { role: 'cell', class: 'cell-reason', text: r.reason }),
          el('td', { role: 'cell', class: 'num', text: formatBytes(r.size) }),
        );
      }
      if (body.children[i] !== row.tr) body.insertBefore(row.tr, body.children[i] || null);
    });
    for (const [id, row] of rowsById) {
      if (!ids.has(id)) {
        row.tr.remove();
        rowsById.delete(id);
      }
    }
    empty.hidden = reports.length > 0;
    listWrap.hidden = reports.length === 0;
    markOpenRow();
  }

  function markOpenRow() {
    for (const tr of body.rows) {
      if (tr.dataset.crashId === openId) tr.setAttribute('aria-current', 'true');
      else tr.removeAttribute('aria-current');
    }
    listWrap.classList.toggle('compact', Boolean(openId));
  }

  // ---- details ----

  function closeDetail() {
    detailGeneration++;
    openId = null;
    detail.hidden = true;
    markOpenRow();
  }

  async function openDetail(id, reload) {
    if (!reload && id === openId && !detail.hidden) return;
    const mine = ++detailGeneration;
    openId = id;
    markOpenRow();
    detail.hidden = false;
    setText(byId('crash-detail-title'), `Report ${id}`);
    setText(byId('crash-detail-status'), 'Loading…');
    byId('crash-detail-body').hidden = true;
    setText(exportResult, '');
    exportResult.className = 'result-line';
    exportPath.value = defaultExportPath(id);
    try {
      const data = await ctx.call('crash_show', { id });
      if (mine !== detailGeneration) return;
      renderDetail(data);
      setText(byId('crash-detail-status'), '');
      byId('crash-detail-body').hidden = false;
    } catch (err) {
      if (mine !== detailGeneration) return;
      setText(byId('crash-detail-status'), `Could not read report ${id}: ${ctx.errorMessage(err)}`);
      ctx.showError(`Could not read crash report ${id}: ${ctx.errorMessage(err)}`);
    }
    if (mine === detailGeneration) detail.scrollIntoView({ block: 'nearest' });
  }

  function defaultExportPath(id) {
    const info = ctx.appInfo();
    const dir = (info && info.export_dir) || ctx.home() || '/tmp';
    return `${dir.replace(/\/+$/, '')}/${id}.tar.gz`;
  }

  function field(dl, label, value, opts = {}) {
    if (value == null || value === '') return;
    dl.append(el('dt', { text: label }), el('dd', { class: opts.class || null, title: opts.title || null, text: value }));
  }

  function renderDetail(data) {
    const r = data.report && typeof data.report === 'object' ? data.report : {};
    const kindLabel = r.kind === 'capture' ? 'Capture' : 'Crash report';
    setText(byId('crash-detail-title'), `${kindLabel} ${data.id}`);
    setText(byId('crash-detail-service'), r.service || DASH);
    setText(byId('crash-detail-reason'), r.reason || DASH);
    // The live log around the exit (the report holds its own tail too).
    const logs = byId('crash-detail-logs');
    const exitMs = parseTime(r.exited_at);
    logs.hidden = !(r.service && exitMs);
    if (!logs.hidden) logs.href = `#logs/${encodeURIComponent(r.service)}?at=${exitMs}`;

    const dl = byId('crash-detail-fields');
    dl.replaceChildren();
    const exit = r.exit ? describeExit(r.exit) : '';
    const oom = r.oom ? 'out of memory (killed by the OOM killer)' : '';
    field(dl, 'Exit', [exit, oom].filter(Boolean).join(', '));
    field(dl, 'PID', r.pid != null ? String(r.pid) : null);
    field(dl, 'Started', r.started_at ? formatDateTime(parseTime(r.started_at)) : null, { title: r.started_at });
    field(dl, 'Exited', r.exited_at ? formatDateTime(parseTime(r.exited_at)) : null, { title: r.exited_at });
    field(dl, 'Uptime', r.uptime_ms != null ? formatDuration(r.uptime_ms) : null);
    field(dl, 'Restarts', r.restarts != null ? String(r.restarts) : null);
    field(dl, 'Peak memory', r.peak_memory_kb != null ? formatKiB(r.peak_memory_kb) : null);
    field(dl, 'CPU time', r.cpu_time_ms != null ? formatCpuTime(r.cpu_time_ms) : null);
    field(dl, 'Commit', r.commit ? shortId(r.commit) : 'working tree (uncommitted)', { class: 'mono', title: r.commit || null });
    field(dl, 'Unit file', r.unit_file, { class: 'mono' });
    const wd = r.workdir || {};
    if (wd.root) {
      field(dl, 'Working directory', wd.root, { class: 'mono' });
      const captured = wd.included
        ? `${plural((wd.files || []).length, 'file')}, ${formatBytes(wd.total_bytes)} captured`
          + ((wd.skipped || []).length ? `, ${(wd.skipped || []).length} skipped` : '')
        : 'not captured';
      field(dl, 'Captured', captured + (wd.note ? ` — ${wd.note}` : ''));
    } else if (wd.note) {
      field(dl, 'Working directory', wd.note);
    }
    field(dl, 'Log lines', r.log_lines != null ? String(r.log_lines) : null);
    if (r.suppressed) field(dl, 'Suppressed', `${plural(r.suppressed, 'earlier crash', 'earlier crashes')} without a report`);
    field(dl, 'Host', r.host);
    field(dl, 'Engine', r.engine_version);

    renderChanges(r);
    renderSkipped(wd.skipped || []);
    renderFiles(data.files || []);
    setText(byId('crash-detail-json'), JSON.stringify(r, null, 2));
    byId('crash-detail-raw').open = false;
  }

  function shortList(title, items, describe) {
    const section = el('div', { class: 'change-list' }, [el('h4', { text: `${title} (${items.length})` })]);
    if (!items.length) {
      section.append(el('p', { class: 'muted', text: 'none' }));
      return section;
    }
    const ul = el('ul', { class: 'compact-list' });
    for (const item of items.slice(0, LIST_LIMIT)) ul.append(describe(item));
    if (items.length > LIST_LIMIT) ul.append(el('li', { class: 'muted', text: `… and ${items.length - LIST_LIMIT} more` }));
    section.append(ul);
    return section;
  }

  function pathItem(path, note) {
    return el('li', {}, [el('span', { class: 'mono', text: path }), el('span', { class: 'muted', text: ` ${note}` })]);
  }

  function renderChanges(r) {
    const box = byId('crash-detail-changes');
    box.replaceChildren();
    const heading = el('h4', {
      class: 'section-title',
      text: r.baseline_taken_at
        ? `Working directory changes since ${formatDateTime(parseTime(r.baseline_taken_at))}`
        : 'Working directory changes',
    });
    box.append(heading);
    const c = r.changes;
    if (!c) {
      box.append(el('p', { class: 'muted', text: 'No comparison: there was no earlier snapshot of the working directory to compare with.' }));
      return;
    }
    box.append(el('div', { class: 'change-columns' }, [
      shortList('Added', c.added || [], (f) => pathItem(f.path, formatBytes(f.size))),
      shortList('Removed', c.removed || [], (f) => pathItem(f.path, formatBytes(f.size))),
      shortList('Modified', c.modified || [], (f) => pathItem(
        f.path,
        `${formatBytes(f.old_size)} → ${formatBytes(f.new_size)}${f.diff_note && !f.diff ? ` · ${f.diff_note}` : ''}`,
      )),
    ]));
    const diffs = (c.modified || []).filter((f) => typeof f.diff === 'string' && f.diff);
    if (diffs.length) box.append(renderDiffs(diffs));
  }

  // Each changed text file's diff, open, under its path; a note (a diff cut short) after it.
  function renderDiffs(files) {
    const section = el('div', { class: 'change-diffs' }, [
      el('h4', { text: `What changed in the text (${plural(files.length, 'file')})` }),
    ]);
    for (const f of files.slice(0, LIST_LIMIT)) {
      const pre = el('pre', { class: 'code diff' });
      renderDiff(pre, f.diff);
      const item = el('details', { class: 'change-diff', open: true, dataset: { path: f.path } }, [
        el('summary', {}, [el('span', { class: 'mono', text: f.path })]),
        pre,
      ]);
      if (f.diff_note) item.append(el('p', { class: 'muted', text: f.diff_note }));
      section.append(item);
    }
    if (files.length > LIST_LIMIT) {
      section.append(el('p', { class: 'muted', text: `… and ${files.length - LIST_LIMIT} more in changes.patch (export the report)` }));
    }
    return section;
  }

  function renderSkipped(skipped) {
    const box = byId('crash-detail-skipped');
    box.hidden = skipped.length === 0;
    const ul = box.querySelector('ul');
    ul.replaceChildren(...skipped.slice(0, FILES_LIMIT).map((s) => pathItem(s.path, s.reason)));
    if (skipped.length > FILES_LIMIT) ul.append(el('li', { class: 'muted', text: `… and ${skipped.length - FILES_LIMIT} more` }));
    setText(box.querySelector('summary'), `Not captured (${skipped.length})`);
  }

  function renderFiles(files) {
    const box = byId('crash-detail-files');
    box.replaceChildren(el('h4', { class: 'section-title', text: `Archive contents (${plural(files.length, 'file')})` }));
    if (!files.length) return;
    const tbody = el('tbody');
    for (const f of files.slice(0, FILES_LIMIT)) {
      tbody.append(el('tr', {}, [el('td', { class: 'mono', text: f.path }), el('td', { class: 'num', text: formatBytes(f.size) })]));
    }
    if (files.length > FILES_LIMIT) {
      tbody.append(el('tr', {}, [el('td', { class: 'muted', colspan: '2', text: `… and ${files.length - FILES_LIMIT} more` })]));
    }
    box.append(el('table', { class: 'grid grid-compact' }, [
      el('thead', {}, [el('tr', {}, [el('th', { text: 'Path' }), el('th', { class: 'num', text: 'Size' })])]),
      tbody,
    ]));
  }

  async function exportReport() {
    const id = openId;
    const path = exportPath.value.trim();
    if (!id) return;
    exportButton.disabled = true;
    exportResult.className = 'result-line';
    setText(exportResult, 'Exporting…');
    try {
      const reply = await ctx.call('crash_export', { id, path });
      exportResult.className = 'result-line ok';
      setText(exportResult, `Exported to ${reply && reply.path ? reply.path : path}`);
    } catch (err) {
      exportResult.className = 'result-line bad';
      setText(exportResult, ctx.errorMessage(err));
    } finally {
      exportButton.disabled = false;
    }
  }

  return {
    show(param) {
      const entering = !active;
      active = true;
      if (entering) {
        // Opening the view is what "seen" means for the new-crash counter.
        markSeen();
        loadList();
      }
      if (param) openDetail(param, entering);
      else closeDetail();
    },
    hide() {
      active = false;
    },
    refresh() {
      if (!active) return;
      markSeen();
      loadList();
    },
    status() {},
    event(ev) {
      if (!active || ev.kind !== 'crash_report') return;
      loadList();
      markSeen(); // the user is looking at the list, so the new one counts as seen
    },
    log() {},
  };
}
