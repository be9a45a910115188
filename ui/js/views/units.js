// Units: the unit files, and an editor for one. What is typed is checked by the engine's own
// validator (unit_validate, debounced) and kept as a draft in the home (unit_draft), so an edit
// survives closing the window and restarting the app; Review shows it against the committed
// file; Commit goes through the engine (unit_commit: the operation `gitvisor edit` makes) and
// is refused while the text has errors. A new service starts from a short form that writes the
// unit's text.

import { byId, el, setText } from '../dom.js';
import { renderDiff } from './history.js';

const CHECK_MS = 250;
const DRAFT_MS = 800;

/** A unified-style diff of two texts by lines (longest common subsequence; unit files are short). */
export function lineDiff(before, after) {
  const a = before === '' ? [] : before.replace(/\n$/, '').split('\n');
  const b = after === '' ? [] : after.replace(/\n$/, '').split('\n');
  const n = a.length;
  const m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      out.push(` ${a[i]}`);
      i++;
      j++;
    } else if (j < m && (i >= n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      out.push(`+${b[j++]}`);
    } else {
      out.push(`-${a[i++]}`);
    }
  }
  return out.some((l) => l[0] !== ' ') ? out.join('\n') : '';
}

/** One word of a command line, quoted as systemd reads it when it needs quotes. */
function quoteWord(w) {
  return /^[^\s"'\\;]+$/.test(w) ? w : `"${w.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The unit text the new-service form describes. */
export function unitFromForm(f) {
  const lines = ['[Unit]', `Description=${f.name || 'New service'}`, '', '[Service]', `ExecStart=${f.command}`];
  if (f.dir) lines.push(`WorkingDirectory=${f.dir}`);
  for (const line of f.env.split('\n').map((l) => l.trim()).filter(Boolean)) {
    lines.push(`Environment=${quoteWord(line)}`);
  }
  lines.push(`Restart=${f.restart}`);
  if (f.enabled) lines.push('', '[Install]', 'WantedBy=default.target');
  return `${lines.join('\n')}\n`;
}

export function createUnitsView(ctx) {
  const list = byId('units-list');
  const editor = byId('unit-editor');
  const fileTitle = byId('unit-file');
  const badges = byId('unit-badges');
  const pendingNote = byId('unit-pending');
  const form = byId('unit-form');
  const modeButton = byId('unit-mode');
  const textArea = byId('unit-text');
  const gutter = byId('unit-gutter');
  const checkLine = byId('unit-check');
  const diagList = byId('unit-diagnostics');
  const review = byId('unit-review');
  const diffPre = byId('unit-diff');
  const message = byId('unit-message');
  const commitButton = byId('unit-commit');
  const forgetButton = byId('unit-forget');
  const deleteButton = byId('unit-delete');
  const result = byId('unit-result');
  const deleteDialog = byId('unit-delete-dialog');
  const deleteExplain = byId('unit-delete-explain');
  const formFields = {
    name: byId('unit-form-name'),
    command: byId('unit-form-command'),
    dir: byId('unit-form-dir'),
    env: byId('unit-form-env'),
    restart: byId('unit-form-restart'),
    enabled: byId('unit-form-enabled'),
  };

  let active = false;
  let unit = null; // the unit.get answer of the file shown
  let name = null; // what the file is called in requests (null: a new one from the form)
  let checkTimer = 0;
  let draftTimer = 0;
  let generation = 0;
  let errors = 0;
  let listKey = '';
  let busy = false;
  let flash = null; // what the next unit shown says (a commit's outcome survives the navigation)
  let timerFiles = []; // the timer units (`timers`), asked when the view opens

  textArea.addEventListener('input', () => onEdit());
  textArea.addEventListener('scroll', () => {
    gutter.scrollTop = textArea.scrollTop;
  });
  for (const f of Object.values(formFields)) f.addEventListener('input', () => onForm());
  formFields.restart.addEventListener('change', () => onForm());
  formFields.enabled.addEventListener('change', () => onForm());
  modeButton.addEventListener('click', () => {
    form.hidden = true;
    modeButton.hidden = true;
    textArea.focus();
  });
  byId('unit-new').addEventListener('click', () => ctx.navigate('units'));
  review.addEventListener('toggle', () => renderReview());
  commitButton.addEventListener('click', () => commit(textArea.value));
  forgetButton.addEventListener('click', () => forgetDraft());
  deleteButton.addEventListener('click', () => remove());
  byId('unit-pending-commit').addEventListener('click', () => unit && unit.pending != null && commit(unit.pending));
  byId('unit-pending-discard').addEventListener('click', () => discardPending());
  byId('unit-delete-cancel').addEventListener('click', () => deleteDialog.close());
  byId('unit-delete-ok').addEventListener('click', () => {
    deleteDialog.close();
    confirmedRemove();
  });
  diagList.addEventListener('click', (e) => {
    const li = e.target.closest('li[data-line]');
    if (li) goToLine(Number(li.dataset.line));
  });

  // ---- the list ----

  function syncList() {
    const status = ctx.status();
    const names = new Set();
    for (const s of (status && status.services) || []) names.add(`${s.name}.service`);
    for (const t of timerFiles) names.add(t);
    for (const p of (status && status.pending) || []) names.add(p.file);
    for (const i of (status && status.invalid) || []) {
      const file = String(i).split(':')[0];
      if (/\.(service|timer)$/.test(file)) names.add(file);
    }
    const files = [...names].sort();
    const pendingFiles = new Set(((status && status.pending) || []).map((p) => p.file));
    const key = files.map((f) => `${f}${pendingFiles.has(f) ? '*' : ''}`).join('\n') + `|${name}`;
    if (key === listKey) return;
    listKey = key;
    list.replaceChildren(
      ...files.map((f) =>
        el('li', {}, [
          el('a', {
            href: `#units/${encodeURIComponent(f)}`,
            class: f === currentFile() ? 'unit-link current' : 'unit-link',
            text: f,
            dataset: { file: f },
          }),
          pendingFiles.has(f) ? el('span', { class: 'tag tag-warn', text: 'uncommitted', title: 'Edited in the repository, not committed' }) : null,
        ]),
      ),
    );
  }

  function currentFile() {
    return unit ? unit.file : null;
  }

  // ---- loading a unit ----

  async function open(target) {
    const mine = ++generation;
    clearTimeout(checkTimer);
    clearTimeout(draftTimer);
    setText(result, flash || '');
    flash = null;
    editor.hidden = false;
    review.open = false;
    if (!target) {
      // A new service: the form writes its text.
      name = null;
      unit = null;
      setText(fileTitle, 'New service');
      badges.replaceChildren();
      pendingNote.hidden = true;
      form.hidden = false;
      modeButton.hidden = false;
      deleteButton.hidden = true;
      forgetButton.hidden = true;
      for (const f of [formFields.name, formFields.command, formFields.dir, formFields.env]) f.value = '';
      formFields.restart.value = 'on-failure';
      formFields.enabled.checked = true;
      onForm();
      syncList();
      return;
    }
    form.hidden = true;
    modeButton.hidden = true;
    try {
      const got = await ctx.call('unit_get', { name: target });
      if (mine !== generation) return;
      show(target, got);
    } catch (err) {
      if (mine !== generation) return;
      editor.hidden = true;
      ctx.showError(`Could not open ${target}: ${ctx.errorMessage(err)}`);
    }
  }

  function show(target, got) {
    name = target;
    unit = got;
    setText(fileTitle, got.file);
    const tags = [];
    if (got.committed == null) tags.push(el('span', { class: 'tag', text: 'not committed yet' }));
    if (got.draft != null) tags.push(el('span', { class: 'tag', text: 'draft', title: 'Your edit, kept in the home until you commit or discard it' }));
    badges.replaceChildren(...tags);
    pendingNote.hidden = got.pending == null;
    deleteButton.hidden = got.committed == null;
    forgetButton.hidden = got.draft == null;
    setTextArea(got.text);
    message.value = `${got.committed == null ? 'Add' : 'Edit'} ${got.file}`;
    syncList();
    check();
  }

  function setTextArea(text) {
    textArea.value = text;
    renderGutter([]);
  }

  // ---- editing ----

  function onForm() {
    if (form.hidden) return;
    const f = {
      name: formFields.name.value.trim(),
      command: formFields.command.value.trim(),
      dir: formFields.dir.value.trim(),
      env: formFields.env.value,
      restart: formFields.restart.value,
      enabled: formFields.enabled.checked,
    };
    setTextArea(unitFromForm(f));
    setText(fileTitle, f.name ? `${f.name}.service (new)` : 'New service');
    message.value = f.name ? `Add ${f.name}.service` : '';
    scheduleCheck();
  }

  function onEdit() {
    renderGutter(lastDiagnostics);
    scheduleCheck();
    // A new service's draft is kept once it has a name.
    const target = editingName();
    if (!target) return;
    clearTimeout(draftTimer);
    draftTimer = setTimeout(() => saveDraft(target, textArea.value), DRAFT_MS);
  }

  /** The unit the text is for: the file shown, or the form's name for a new one. */
  function editingName() {
    if (name) return name;
    const n = formFields.name.value.trim();
    return n || null;
  }

  async function saveDraft(target, text) {
    if (unit && text === unit.text && unit.draft == null) return;
    try {
      const got = await ctx.call('unit_draft', { name: target, text });
      if (name === target && unit) {
        unit.draft = got.draft;
        forgetButton.hidden = got.draft == null;
        if (!badges.textContent.includes('draft')) badges.append(el('span', { class: 'tag', text: 'draft' }));
      }
    } catch (err) {
      ctx.showError(`Could not keep the draft of ${target}: ${ctx.errorMessage(err)}`);
    }
  }

  function scheduleCheck() {
    clearTimeout(checkTimer);
    setText(checkLine, 'Checking…');
    checkTimer = setTimeout(() => check(), CHECK_MS);
  }

  let lastDiagnostics = [];

  async function check() {
    const target = editingName() || 'new';
    const text = textArea.value;
    const mine = generation;
    try {
      const found = await ctx.call('unit_validate', { name: target, text });
      if (mine !== generation || text !== textArea.value) return;
      lastDiagnostics = found.diagnostics || [];
      errors = found.errors || 0;
      renderDiagnostics();
    } catch (err) {
      if (mine !== generation) return;
      // A bad name (the form's) is an error of the text too.
      lastDiagnostics = [{ line: 0, severity: 'error', message: ctx.errorMessage(err), text: ctx.errorMessage(err) }];
      errors = 1;
      renderDiagnostics();
    }
  }

  function renderDiagnostics() {
    const warnings = lastDiagnostics.length - errors;
    if (errors) setText(checkLine, `${errors} error${errors === 1 ? '' : 's'}${warnings ? `, ${warnings} warning${warnings === 1 ? '' : 's'}` : ''}: fix to commit`);
    else if (warnings) setText(checkLine, `valid, ${warnings} warning${warnings === 1 ? '' : 's'}`);
    else setText(checkLine, 'valid');
    diagList.replaceChildren(
      ...lastDiagnostics.map((d) =>
        el('li', { class: `diag diag-${d.severity}`, dataset: { line: d.line, severity: d.severity }, title: d.line ? `Line ${d.line}` : null }, [
          el('span', { class: 'diag-line mono', text: d.line ? `line ${d.line}` : 'file' }),
          ' ',
          el('span', { class: 'diag-text', text: d.text }),
        ]),
      ),
    );
    renderGutter(lastDiagnostics);
    updateButtons();
    if (review.open) renderReview();
  }

  /** Line numbers, each marked with the worst diagnostic on its line. */
  function renderGutter(diags) {
    const worst = new Map();
    for (const d of diags) {
      if (!d.line) continue;
      if (d.severity === 'error' || !worst.has(d.line)) worst.set(d.line, d);
    }
    const count = Math.max(1, textArea.value.split('\n').length);
    const spans = [];
    for (let i = 1; i <= count; i++) {
      const d = worst.get(i);
      spans.push(el('span', { class: d ? `gutter-line gutter-${d.severity}` : 'gutter-line', text: `${i}\n`, title: d ? d.message : null, dataset: { line: i } }));
    }
    gutter.replaceChildren(...spans);
    gutter.scrollTop = textArea.scrollTop;
  }

  function goToLine(line) {
    if (!line) return;
    const lines = textArea.value.split('\n');
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    textArea.focus();
    textArea.setSelectionRange(start, start + (lines[line - 1] || '').length);
  }

  function updateButtons() {
    const target = editingName();
    commitButton.disabled = busy || errors > 0 || !target;
    commitButton.title = errors > 0 ? 'The text has errors: fix them to commit' : !target ? 'Name the service first' : '';
    deleteButton.disabled = busy;
  }

  function renderReview() {
    if (!review.open) return;
    const before = (unit && unit.committed) || '';
    renderDiff(diffPre, lineDiff(before, textArea.value));
  }

  // ---- committing ----

  async function commit(text) {
    const target = editingName();
    if (!target || busy) return;
    busy = true;
    updateButtons();
    setText(result, 'Committing…');
    clearTimeout(draftTimer);
    try {
      const reply = await ctx.call('unit_commit', { name: target, text, message: message.value });
      const what = reply.commit ? `Committed ${reply.commit.slice(0, 10)} (${reply.message})` : `${reply.file}: no changes to commit`;
      const sync = reply.sync && reply.sync.actions && reply.sync.actions.length ? `; ${reply.sync.actions.join(', ')}` : '';
      ctx.clearError();
      const file = reply.file;
      busy = false;
      flash = `${what}${sync}`;
      if (location.hash !== `#units/${encodeURIComponent(file)}`) ctx.navigate(`units/${encodeURIComponent(file)}`);
      else await open(file);
    } catch (err) {
      busy = false;
      setText(result, '');
      ctx.showError(`Not committed: ${ctx.errorMessage(err)}`);
    } finally {
      busy = false;
      updateButtons();
    }
  }

  async function forgetDraft() {
    const target = editingName();
    if (!target) return;
    clearTimeout(draftTimer);
    try {
      const got = await ctx.call('unit_draft', { name: target, text: null });
      show(target, got);
      setText(result, 'Draft discarded');
    } catch (err) {
      ctx.showError(`Could not discard the draft of ${target}: ${ctx.errorMessage(err)}`);
    }
  }

  async function discardPending() {
    if (!name) return;
    try {
      const got = await ctx.call('unit_discard', { name });
      show(name, got);
      setText(result, 'Uncommitted edits discarded');
    } catch (err) {
      ctx.showError(`Could not discard the edits of ${name}: ${ctx.errorMessage(err)}`);
    }
  }

  /** Asks first, naming what stops (the service) and what it leaves without a requirement
   * (units that require it keep running, but cannot start again without it). */
  async function remove() {
    if (!unit || !name || busy) return;
    const service = unit.file.replace(/\.service$/, '');
    const services = (ctx.status() && ctx.status().services) || [];
    const s = services.find((x) => x.name === service);
    let stops = s && s.pid != null ? ` ${service} stops (it is ${s.state}, pid ${s.pid}).` : '';
    try {
      const graph = await ctx.call('graph');
      const needing = (graph.units || []).filter((u) => (u.requires || []).includes(service)).map((u) => u.name);
      if (needing.length) {
        const one = needing.length === 1;
        stops += ` ${needing.join(', ')} require${one ? 's' : ''} it: ${one ? 'it keeps' : 'they keep'} running, but cannot start again without it.`;
      }
    } catch {
      // Without the graph the dialog still names the service itself.
    }
    setText(deleteExplain, `${unit.file} is removed in a commit, applied at once.${stops} The history keeps it: a rollback brings it back.`);
    if (typeof deleteDialog.showModal === 'function') deleteDialog.showModal();
    else deleteDialog.setAttribute('open', '');
  }

  async function confirmedRemove() {
    if (!unit || !name || busy) return;
    busy = true;
    updateButtons();
    try {
      const reply = await ctx.call('unit_delete', { name, message: `Remove ${unit.file}` });
      busy = false;
      flash = `Removed in ${reply.commit ? reply.commit.slice(0, 10) : '?'} (${reply.message})`;
      ctx.navigate('units');
    } catch (err) {
      ctx.showError(`Not deleted: ${ctx.errorMessage(err)}`);
    } finally {
      busy = false;
      updateButtons();
    }
  }

  return {
    show(param) {
      active = true;
      syncList();
      open(param);
      ctx.call('timers').then((reply) => {
        timerFiles = ((reply && reply.timers) || []).map((t) => `${t.name}.timer`);
        listKey = '';
        syncList();
      }).catch(() => {});
    },
    hide() {
      active = false;
      // A pending draft is written now rather than lost with the view.
      const target = editingName();
      if (draftTimer && target) {
        clearTimeout(draftTimer);
        draftTimer = 0;
        saveDraft(target, textArea.value);
      }
    },
    status() {
      if (active) syncList();
    },
    event() {},
  };
}
