// Logs: the tail of one service's log, then its new lines as `gv:log` events while the view is
// shown. At most MAX_LINES lines live in the page (shown plus paused) so a chatty service cannot
// grow the window without bound.

import { appendAnsi, parseAnsi } from '../ansi.js';
import { byId, el, literalRegExp, setText } from '../dom.js';
import { formatLogTime, plural } from '../format.js';

const MAX_LINES = 5000;
const TAIL_LINES = 500;
// Opened at a moment (a crash report's exit): more of the past, and the lines around it marked.
const FOCUS_LINES = 5000;
const FOCUS_BEFORE_MS = 10_000;
const FOCUS_AFTER_MS = 2_000;
const STREAM_LABEL = { out: 'out', err: 'err', gitvisor: 'gv' };
// Every service at once, each line named (no unit can be called so).
const ALL = '*';

export function createLogsView(ctx) {
  const select = byId('logs-service');
  const follow = byId('logs-follow');
  const pauseButton = byId('logs-pause');
  const search = byId('logs-search');
  const clearButton = byId('logs-clear');
  const box = byId('logs-lines');
  const empty = byId('logs-empty');
  const info = byId('logs-status');

  let active = false;
  let name = null; // the service followed (or being followed)
  let loading = false; // follow_logs not answered yet
  let generation = 0; // bumps on each follow/unfollow so late answers are dropped
  let early = []; // lines that arrived while follow_logs was in flight
  let shown = []; // [{line, node, text}] in page order
  let buffer = []; // lines received while paused
  let paused = false;
  let query = '';
  let matcher = null;
  let optionsKey = '';
  let frame = 0;
  let focusAt = null; // Unix ms to show the lines around, once they are loaded
  let pending = []; // lines received since the last frame, appended together

  select.addEventListener('change', () => {
    if (select.value) ctx.navigate(`logs/${encodeURIComponent(select.value)}`);
  });
  follow.addEventListener('change', () => {
    if (follow.checked) scrollToEnd();
  });
  pauseButton.addEventListener('click', () => setPaused(!paused));
  clearButton.addEventListener('click', () => {
    for (const entry of shown) entry.node.remove();
    shown = [];
    buffer = [];
    updateInfo();
  });
  // Filtering is synchronous: at most MAX_LINES short regex tests, and the result is then
  // exact as soon as the input event has been handled.
  search.addEventListener('input', () => applySearch(search.value));

  function serviceNames() {
    const status = ctx.status();
    return status ? (status.services || []).map((s) => s.name) : [];
  }

  function syncOptions() {
    const names = serviceNames();
    // Keep a followed service that disappeared selectable rather than silently switching.
    if (name && name !== ALL && !names.includes(name)) names.push(name);
    const key = names.join('\n');
    if (key !== optionsKey) {
      optionsKey = key;
      const options = names.map((n) => el('option', { value: n, text: n }));
      if (names.length > 1) options.unshift(el('option', { value: ALL, text: 'All services' }));
      select.replaceChildren(...options);
    }
    if (name && select.value !== name) select.value = name;
    const none = names.length === 0;
    const status = ctx.status();
    empty.hidden = !(none && status);
    box.hidden = none;
    for (const control of [select, follow, pauseButton, search, clearButton]) control.disabled = none;
  }

  function makeNode(line) {
    const stream = line.stream || 'out';
    const textSpan = el('span', { class: 'log-text' });
    // Real spaces between the parts, so a copied line reads "12:00:01.123 err text".
    const node = el('div', { class: `log-line stream-${stream}` }, [
      el('span', { class: 'log-time', text: formatLogTime(line.at_us) }),
      ' ',
      // Following every service: each line says whose it is.
      name === ALL ? el('span', { class: 'log-svc', text: line.name || '' }) : null,
      name === ALL ? ' ' : null,
      el('span', { class: 'log-stream', text: (STREAM_LABEL[stream] || stream).padEnd(3), title: stream }),
      ' ',
      textSpan,
    ]);
    // Terminal colours render; the plain text is what search sees and a copy takes.
    const { plain, runs } = parseAnsi(line.text == null ? '' : String(line.text));
    const entry = { line, node, textSpan, text: plain, runs };
    paint(entry);
    return entry;
  }

  // Filter and highlight one line for the current query (text nodes and <mark> only).
  function paint(entry) {
    let hit = true;
    if (matcher) {
      matcher.lastIndex = 0;
      hit = matcher.test(entry.text);
    }
    entry.node.hidden = !hit;
    entry.textSpan.replaceChildren();
    appendAnsi(entry.textSpan, entry.runs, hit ? matcher : null);
  }

  function applySearch(value) {
    if (value === query) return;
    query = value;
    matcher = literalRegExp(value);
    for (const entry of shown) paint(entry);
    updateInfo();
    if (follow.checked) scrollToEnd();
  }

  function trim() {
    let over = shown.length + buffer.length - MAX_LINES;
    if (over <= 0) return;
    const drop = Math.min(over, shown.length);
    for (let i = 0; i < drop; i++) shown[i].node.remove();
    shown = shown.slice(drop);
    over -= drop;
    if (over > 0) buffer = buffer.slice(over);
  }

  function appendLines(lines) {
    if (!lines.length) return;
    // Only the newest MAX_LINES can survive: do not build nodes for the rest.
    const keep = lines.length > MAX_LINES ? lines.slice(lines.length - MAX_LINES) : lines;
    const frag = document.createDocumentFragment();
    for (const line of keep) {
      const entry = makeNode(line);
      shown.push(entry);
      frag.append(entry.node);
    }
    box.append(frag);
    trim();
    schedule();
  }

  // A busy service sends many lines per frame: they are built, counted and scrolled to once
  // per frame, not per line.
  function schedule() {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (pending.length) {
        const lines = pending;
        pending = [];
        appendLines(lines);
        return;
      }
      updateInfo();
      if (follow.checked) scrollToEnd();
    });
  }

  function scrollToEnd() {
    box.scrollTop = box.scrollHeight;
  }

  function setPaused(value) {
    paused = value;
    setText(pauseButton, paused ? 'Resume' : 'Pause');
    pauseButton.setAttribute('aria-pressed', String(paused));
    if (!paused && buffer.length) {
      const lines = buffer;
      buffer = [];
      appendLines(lines);
    }
    updateInfo();
  }

  function updateInfo() {
    if (!name) {
      setText(info, '');
      return;
    }
    if (loading) {
      setText(info, `Loading the log of ${name}…`);
      return;
    }
    const parts = [];
    if (matcher) parts.push(`${shown.filter((e) => !e.node.hidden).length} of ${plural(shown.length, 'line')} match`);
    else parts.push(plural(shown.length, 'line'));
    if (paused) parts.push(`paused, ${buffer.length} new buffered`);
    setText(info, parts.join(' · '));
  }

  function resetLines() {
    for (const entry of shown) entry.node.remove();
    shown = [];
    buffer = [];
    early = [];
    pending = [];
  }

  async function followService(target) {
    const mine = ++generation;
    name = target;
    loading = true;
    resetLines();
    if (paused) setPaused(false);
    syncOptions();
    updateInfo();
    try {
      const tail = await ctx.call('follow_logs', { name: target, lines: focusAt ? FOCUS_LINES : TAIL_LINES });
      if (mine !== generation) return;
      loading = false;
      // Each line carries its service's name (`{name, at_us, stream, text}`).
      const lines = Array.isArray(tail) ? tail : [];
      // Lines may have been pushed before the tail came back; skip any the tail already has.
      const seen = new Set(lines.slice(-50).map(lineKey));
      const extra = early.filter((l) => !seen.has(lineKey(l)));
      early = [];
      appendLines(lines.concat(extra));
      updateInfo();
      if (focusAt) focusOn(focusAt);
    } catch (err) {
      if (mine !== generation) return;
      loading = false;
      early = [];
      updateInfo();
      ctx.showError(`Could not follow the log of ${target}: ${ctx.errorMessage(err)}`);
    }
  }

  /** Marks the lines from shortly before `atMs` to shortly after it and scrolls them into
   * view (Follow off, so new lines do not carry the view away). */
  function focusOn(atMs) {
    focusAt = null;
    // What was filtered before must not hide the lines asked for.
    if (matcher) {
      search.value = '';
      applySearch('');
    }
    for (const e of shown) e.node.classList.remove('log-focus');
    const from = (atMs - FOCUS_BEFORE_MS) * 1000;
    const to = (atMs + FOCUS_AFTER_MS) * 1000;
    const around = shown.filter((e) => e.line.at_us >= from && e.line.at_us <= to);
    const when = formatLogTime(atMs * 1000);
    if (!around.length) {
      const oldest = shown.length ? shown[0].line.at_us : null;
      const why = oldest != null && oldest > to ? `older than the ${plural(shown.length, 'line')} kept` : 'not in the log';
      ctx.showNotice(`The exit at ${when} is ${why}; the crash report holds the log's tail as it was (logs/tail.log).`);
      return;
    }
    for (const e of around) e.node.classList.add('log-focus');
    follow.checked = false;
    around[around.length - 1].node.scrollIntoView({ block: 'center' });
    setText(info, `${plural(around.length, 'line')} around the exit at ${when} · ${plural(shown.length, 'line')}`);
  }

  function lineKey(l) {
    return `${l.name}\u0000${l.at_us}\u0000${l.stream}\u0000${l.text}`;
  }

  function unfollow() {
    generation++;
    loading = false;
    early = [];
    ctx.call('unfollow_logs').catch(() => {
      // The window is leaving the view; a failed unfollow only means the stream already ended.
    });
  }

  function chooseDefault() {
    if (name) return name;
    if (select.value) return select.value;
    return serviceNames()[0] || null;
  }

  return {
    show(param) {
      const entering = !active;
      active = true;
      syncOptions();
      // `NAME?at=MS`: the lines around that moment (from a crash report).
      const [bare, query] = String(param || '').split('?');
      const at = /^at=(\d+)$/.exec(query || '');
      focusAt = at ? Number(at[1]) : null;
      param = bare || null;
      const target = param || chooseDefault();
      if (!target) {
        name = null;
        updateInfo();
        return;
      }
      // Make the address say which service is shown, without a second navigation.
      if (!param) history.replaceState(null, '', `#logs/${encodeURIComponent(target)}`);
      if (entering || target !== name || (focusAt && loading)) followService(target);
      else if (focusAt) focusOn(focusAt);
    },
    hide() {
      if (!active) return;
      active = false;
      unfollow();
    },
    status() {
      syncOptions();
      // The view was opened before any service existed: start on the first one that appears.
      if (active && !name) {
        const first = serviceNames()[0];
        if (first) ctx.navigate(`logs/${encodeURIComponent(first)}`);
      }
    },
    event(ev) {
      // A new engine has no follow for this window: ask again.
      if (ev.kind === 'engine_started' && active && name) followService(name);
    },
    /** New lines: an array of `{name, at_us, stream, text}` (one engine batch). */
    log(batch) {
      for (const payload of Array.isArray(batch) ? batch : [batch]) take(payload);
    },
  };

  /** One new line: buffered while loading or paused, else built at the next frame. */
  function take(payload) {
    if (!active || !payload || (name !== ALL && payload.name !== name)) return;
    if (loading) {
      early.push(payload);
      return;
    }
    if (paused) {
      buffer.push(payload);
      trim();
      schedule();
      return;
    }
    pending.push(payload);
    // Bounded between frames too: only the newest MAX_LINES can ever be shown.
    if (pending.length > MAX_LINES) pending = pending.slice(pending.length - MAX_LINES);
    schedule();
  }
}
