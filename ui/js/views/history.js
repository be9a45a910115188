// History: the commits of the services repository, what each changed, rolling back to one
// (after showing what it would change), and the latest syncs.

import { append, byId, el, setText } from '../dom.js';
import { DASH, formatDateTime, plural, shortId } from '../format.js';

const LIMIT = 100;
const COLUMNS = 7;

/** Fills a <pre> with one span per diff line, classed by its first character. */
export function renderDiff(pre, text) {
  pre.replaceChildren();
  const body = String(text || '');
  if (!body.trim()) {
    pre.append(el('span', { class: 'diff-line diff-none', text: '(no changes to unit files)' }));
    return;
  }
  const lines = body.replace(/\n$/, '').split('\n');
  for (const line of lines) {
    let cls = 'diff-line';
    if (line.startsWith('+')) cls += ' diff-add';
    else if (line.startsWith('-')) cls += ' diff-del';
    else if (line.startsWith('@@')) cls += ' diff-hunk';
    if (line.startsWith('+++') || line.startsWith('---') || line.startsWith('diff ') || line.startsWith('index ')) cls += ' diff-file';
    // Block spans give full-width backgrounds; the kept newline makes the text copy (and read)
    // as the diff it is, and adds no empty line at the end of a block.
    pre.append(el('span', { class: cls, text: `${line}\n` }));
  }
}

export function createHistoryView(ctx) {
  const body = byId('history-body');
  const tableWrap = byId('history-table-wrap');
  const empty = byId('history-empty');
  const loadingNote = byId('history-loading');
  const syncsBody = byId('syncs-body');
  const syncsWrap = byId('syncs-table-wrap');
  const syncsEmpty = byId('syncs-empty');
  const result = byId('rollback-result');
  const dialog = byId('confirm-dialog');
  const confirmDiff = byId('confirm-diff');
  const confirmOk = byId('confirm-ok');
  const confirmCancel = byId('confirm-cancel');
  const confirmError = byId('confirm-error');

  let active = false;
  let loaded = false;
  let generation = 0;
  let commits = [];
  const diffs = new Map(); // commit id -> diff text (a commit's diff never changes)
  const expanded = new Set(); // commit ids whose diff is shown
  const commitRows = new Map(); // commit id -> {tr, key}
  const diffRows = new Map(); // commit id -> its diff <tr>
  let target = null; // the commit the dialog proposes to roll back to
  let returnFocus = null;
  let dialogGeneration = 0;
  let rollingBack = false;

  byId('history-refresh').addEventListener('click', () => load());
  body.addEventListener('click', (e) => {
    const button = e.target.closest('button[data-action]');
    if (!button || button.disabled) return;
    const tr = button.closest('tr[data-commit]');
    if (!tr) return;
    if (button.dataset.action === 'diff') toggleDiff(tr.dataset.commit, button);
    else if (button.dataset.action === 'rollback') openDialog(tr.dataset.commit, button);
  });
  confirmCancel.addEventListener('click', () => closeDialog());
  confirmOk.addEventListener('click', () => confirmRollback());
  dialog.addEventListener('close', onDialogClosed);
  // Without native <dialog> support, Escape still has to close it.
  dialog.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && typeof dialog.showModal !== 'function') {
      e.preventDefault();
      closeDialog();
    }
  });

  async function load() {
    const mine = ++generation;
    loadingNote.hidden = loaded;
    try {
      const reply = await ctx.call('history', { limit: LIMIT });
      if (mine !== generation) return;
      loaded = true;
      commits = reply && reply.commits ? reply.commits : [];
      renderCommits();
      renderSyncs(reply && reply.syncs ? reply.syncs : []);
    } catch (err) {
      if (mine !== generation) return;
      ctx.showError(`Could not read the history: ${ctx.errorMessage(err)}`);
    } finally {
      if (mine === generation) loadingNote.hidden = true;
    }
  }

  // The engine says which commit runs (the same answer `gitvisor history` prints).
  function runningId() {
    const running = commits.find((c) => c.runs);
    return running ? running.id : null;
  }

  // Rows are keyed by commit id and rebuilt only when what they show changed, so a reload
  // (after a sync) keeps open diffs, focus, and the elements a user or test holds.
  function renderCommits() {
    const running = runningId();
    let cursor = body.firstChild;
    const place = (node) => {
      if (node === cursor) cursor = cursor.nextSibling;
      else body.insertBefore(node, cursor);
    };
    const ids = new Set();
    commits.forEach((c, i) => {
      ids.add(c.id);
      const isHead = i === 0;
      let row = commitRows.get(c.id);
      if (!row) {
        row = { tr: el('tr', { dataset: { commit: c.id } }), key: '' };
        commitRows.set(c.id, row);
      }
      const key = JSON.stringify([c.summary, c.author, c.time, c.units, c.applied, c.id === running, isHead]);
      if (row.key !== key) {
        row.key = key;
        fillCommitRow(row.tr, c, isHead, c.id === running);
      }
      place(row.tr);
      if (expanded.has(c.id)) {
        let d = diffRows.get(c.id);
        if (!d) {
          d = diffRow(c.id);
          diffRows.set(c.id, d);
        }
        place(d);
      }
    });
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    for (const id of [...commitRows.keys()]) if (!ids.has(id)) commitRows.delete(id);
    for (const id of [...diffRows.keys()]) {
      if (!ids.has(id)) {
        diffRows.delete(id);
        expanded.delete(id);
      }
    }
    empty.hidden = commits.length > 0;
    tableWrap.hidden = commits.length === 0;
    setText(byId('history-empty-home'), `${ctx.home() || 'HOME'}/services`);
  }

  function fillCommitRow(tr, c, isHead, isRunning) {
    let marker;
    if (isRunning) marker = el('span', { class: 'pill pill-ok', text: 'running', title: 'The units of this commit are running' });
    else if (c.applied) marker = el('span', { class: 'muted', text: 'applied', title: 'Applied before the running commit' });
    else marker = el('span', { class: 'pill pill-neutral', text: 'not applied', title: 'Not applied (yet): see the syncs below' });

    const units = c.units || [];
    const actions = el('div', { class: 'row-actions' }, [el('button', {
      type: 'button', class: 'btn-small', text: 'Diff', dataset: { action: 'diff' },
      'aria-expanded': String(expanded.has(c.id)), 'aria-label': `Diff of ${shortId(c.id)}`,
    })]);
    // Rolling back to HEAD would change nothing.
    if (!isHead) {
      actions.append(el('button', {
        type: 'button', class: 'btn-small', text: 'Roll back…', dataset: { action: 'rollback' },
        'aria-label': `Roll back to ${shortId(c.id)}`,
      }));
    }
    tr.replaceChildren(
      el('td', { class: 'mono nowrap', text: shortId(c.id), title: c.id }),
      el('td', { class: 'cell-summary', text: c.summary }),
      el('td', { class: 'nowrap', text: c.author }),
      el('td', { class: 'nowrap', text: formatDateTime(c.time * 1000) }),
      el('td', { class: 'mono cell-units', text: units.length ? units.join(', ') : DASH }),
      el('td', {}, [marker]),
      el('td', { class: 'cell-actions' }, [actions]),
    );
  }

  function diffRow(id) {
    const pre = el('pre', { class: 'code diff' });
    if (diffs.has(id)) renderDiff(pre, diffs.get(id));
    else {
      pre.append('Loading…');
      fetchDiff(id, pre);
    }
    return el('tr', { class: 'diff-row', dataset: { diffOf: id } }, [el('td', { colspan: String(COLUMNS) }, [pre])]);
  }

  async function fetchDiff(id, pre) {
    try {
      const text = await ctx.call('commit_diff', { commit: id });
      diffs.set(id, text);
      renderDiff(pre, text);
    } catch (err) {
      pre.replaceChildren(`Could not read the diff: ${ctx.errorMessage(err)}`);
    }
  }

  function toggleDiff(id, button) {
    const tr = button.closest('tr[data-commit]');
    if (expanded.has(id)) {
      expanded.delete(id);
      const d = diffRows.get(id);
      if (d) d.remove();
      diffRows.delete(id);
      button.setAttribute('aria-expanded', 'false');
    } else {
      expanded.add(id);
      const d = diffRow(id);
      diffRows.set(id, d);
      tr.after(d);
      button.setAttribute('aria-expanded', 'true');
    }
  }

  function renderSyncs(syncs) {
    syncsBody.replaceChildren(...syncs.map((s) => {
      const outcome = s.problem
        ? el('span', { class: 'pill pill-bad', text: 'problem' })
        : s.applied ? el('span', { class: 'pill pill-ok', text: 'applied' }) : el('span', { class: 'muted', text: 'not applied' });
      const details = el('td', { class: 'cell-sync' });
      if (s.problem) details.append(el('div', { class: 'bad', text: s.problem }));
      append(details, [messageList(s.actions || [], ''), messageList(s.errors || [], 'bad')]);
      if (!s.problem && !(s.actions || []).length && !(s.errors || []).length) details.append(el('span', { class: 'muted', text: 'nothing to do' }));
      return el('tr', {}, [
        el('td', { class: 'nowrap', text: formatDateTime(s.at_ms) }),
        el('td', { class: 'mono nowrap', text: `${shortId(s.old)} → ${shortId(s.new)}`, title: `${s.old || 'none'} → ${s.new || 'none'}` }),
        el('td', {}, [outcome]),
        details,
      ]);
    }));
    syncsEmpty.hidden = syncs.length > 0;
    syncsWrap.hidden = syncs.length === 0;
  }

  function messageList(items, cls) {
    if (!items.length) return null;
    return el('ul', { class: `compact-list ${cls}` }, items.map((t) => el('li', { text: t })));
  }

  // ---- rollback ----

  async function openDialog(id, button) {
    const commit = commits.find((c) => c.id === id);
    target = id;
    returnFocus = button;
    const mine = ++dialogGeneration;
    const label = commit ? `${shortId(id)} (${commit.summary})` : shortId(id);
    setText(byId('confirm-title'), `Roll back to ${shortId(id)}?`);
    setText(byId('confirm-explain'), `This makes a new commit whose units are those of ${label} and applies it.`);
    confirmDiff.replaceChildren('Loading what would change…');
    confirmError.hidden = true;
    setText(confirmError, '');
    confirmOk.disabled = true;
    confirmCancel.disabled = false;
    setText(confirmOk, 'Confirm');
    if (typeof dialog.showModal === 'function') {
      if (!dialog.open) dialog.showModal();
    } else {
      dialog.setAttribute('open', '');
    }
    confirmCancel.focus();
    try {
      const text = await ctx.call('rollback_diff', { commit: id });
      if (mine !== dialogGeneration) return;
      renderDiff(confirmDiff, text);
      confirmOk.disabled = false;
    } catch (err) {
      if (mine !== dialogGeneration) return;
      // Without the diff the user cannot see what Confirm would do, so it stays disabled.
      confirmDiff.replaceChildren();
      confirmError.hidden = false;
      setText(confirmError, `Could not compute what the rollback would change: ${ctx.errorMessage(err)}`);
    }
  }

  function closeDialog() {
    if (typeof dialog.close === 'function') {
      if (dialog.open) dialog.close();
    } else if (dialog.hasAttribute('open')) {
      dialog.removeAttribute('open');
      onDialogClosed();
    }
  }

  function onDialogClosed() {
    dialogGeneration++;
    target = null;
    const back = returnFocus;
    returnFocus = null;
    if (back && back.isConnected) back.focus();
  }

  async function confirmRollback() {
    const id = target;
    if (!id || rollingBack) return;
    rollingBack = true;
    confirmOk.disabled = true;
    confirmCancel.disabled = true;
    setText(confirmOk, 'Rolling back…');
    try {
      const reply = await ctx.call('rollback', { commit: id });
      showResult(id, reply, null);
    } catch (err) {
      showResult(id, null, ctx.errorMessage(err));
    } finally {
      rollingBack = false;
      confirmCancel.disabled = false;
      setText(confirmOk, 'Confirm');
      returnFocus = null; // the table is re-rendered; focus goes to the result instead
      closeDialog();
      result.focus();
      load();
    }
  }

  function showResult(id, reply, error) {
    result.replaceChildren();
    result.hidden = false;
    if (error) {
      result.className = 'result-box bad-box';
      result.append(el('strong', { text: `Rollback to ${shortId(id)} failed: ` }), error);
      return;
    }
    const sync = (reply && reply.sync) || {};
    const failed = Boolean(sync.problem) || (sync.errors || []).length > 0;
    result.className = `result-box ${failed ? 'warn-box' : 'ok-box'}`;
    result.append(el('strong', {
      text: `Rolled back to ${shortId(id)} as new commit ${shortId(reply && reply.commit)}`
        + (sync.applied ? ', applied.' : ', not applied.'),
    }));
    if (sync.problem) result.append(el('div', { class: 'bad', text: sync.problem }));
    const actions = sync.actions || [];
    const errors = sync.errors || [];
    if (actions.length) result.append(el('div', { text: `${plural(actions.length, 'action')}:` }), messageList(actions, ''));
    else result.append(el('div', { class: 'muted', text: 'No service needed a change.' }));
    if (errors.length) result.append(el('div', { class: 'bad', text: `${plural(errors.length, 'error')}:` }), messageList(errors, 'bad'));
  }

  return {
    show() {
      const entering = !active;
      active = true;
      if (entering) load();
    },
    hide() {
      active = false;
    },
    refresh() {
      if (active) load();
    },
    status() {},
    event(ev) {
      if (active && ev.kind === 'sync_applied') load();
    },
    log() {},
  };
}
