// Logs: the tail of one service's log (or of all of them), then its new lines as `gv:log`
// batches while the view is shown. At most MAX_LINES lines are kept, and only the rows in view
// exist in the page (a virtual list over lines of one height: they do not wrap), so a service
// printing thousands of lines a second costs the page what fits on the screen.

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
  let shown = []; // [{line, text, runs, hit, focus, node?}] in page order (at most MAX_LINES)
  let visible = []; // the entries of `shown` the search lets through
  let rowPx = 0; // one line's height (lines do not wrap), measured once drawn
  let drawn = ''; // the range last drawn, to skip redrawing the same rows
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
    shown = [];
    buffer = [];
    refilter();
    updateInfo();
  });
  // Only the lines in view exist in the page (a virtual list): a scroll draws the rows now in
  // view, once per frame.
  const spacer = el('div', { class: 'log-spacer' });
  const rows = el('div', { class: 'log-rows' });
  box.replaceChildren(spacer, rows);
  let scrollFrame = 0;
  box.addEventListener('scroll', () => {
    if (scrollFrame) return;
    scrollFrame = requestAnimationFrame(() => {
      scrollFrame = 0;
      draw();
    });
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

  /** An entry: the line with its plain text and colour runs; its node is built when drawn. */
  function makeEntry(line) {
    // Terminal colours render; the plain text is what search sees and a copy takes.
    const { plain, runs } = parseAnsi(line.text == null ? '' : String(line.text));
    const entry = { line, text: plain, runs, hit: true, focus: false, node: null, painted: null };
    entry.hit = matches(entry);
    return entry;
  }

  function matches(entry) {
    if (!matcher) return true;
    matcher.lastIndex = 0;
    return matcher.test(entry.text);
  }

  /** The entry's row, built on first draw and repainted when the search changed. */
  function nodeOf(entry) {
    if (!entry.node) buildNode(entry);
    if (entry.painted !== query) {
      entry.painted = query;
      entry.textSpan.replaceChildren();
      appendAnsi(entry.textSpan, entry.runs, matcher);
    }
    entry.node.classList.toggle('log-focus', entry.focus);
    return entry.node;
  }

  function buildNode(entry) {
    const line = entry.line;
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
    entry.node = node;
    entry.textSpan = textSpan;
  }

  function refilter() {
    visible = matcher ? shown.filter((e) => e.hit) : shown;
    drawn = '';
  }

  function applySearch(value) {
    if (value === query) return;
    query = value;
    matcher = literalRegExp(value);
    for (const entry of shown) entry.hit = matches(entry);
    refilter();
    updateInfo();
    if (follow.checked) scrollToEnd();
    else draw();
  }

  function trim() {
    let over = shown.length + buffer.length - MAX_LINES;
    if (over <= 0) return;
    const drop = Math.min(over, shown.length);
    shown = shown.slice(drop);
    over -= drop;
    if (over > 0) buffer = buffer.slice(over);
  }

  function appendLines(lines) {
    if (!lines.length) return;
    // Only the newest MAX_LINES can survive: do not parse the rest.
    const keep = lines.length > MAX_LINES ? lines.slice(lines.length - MAX_LINES) : lines;
    for (const line of keep) shown.push(makeEntry(line));
    trim();
    refilter();
    schedule();
  }

  /** Draws the rows in view (and a few around): the spacer gives the box the whole list's
   * height, the rows sit at their place in it. */
  function draw() {
    if (!rowPx) {
      // One line's height, from a row drawn for the purpose (lines never wrap).
      const probe = el('div', { class: 'log-line', text: 'x' });
      rows.append(probe);
      rowPx = probe.getBoundingClientRect().height || 17;
      probe.remove();
    }
    spacer.style.height = `${visible.length * rowPx}px`;
    const first = Math.max(0, Math.floor(box.scrollTop / rowPx) - 10);
    const count = Math.ceil((box.clientHeight || 600) / rowPx) + 20;
    const last = Math.min(visible.length, first + count);
    const key = `${first}:${last}:${visible.length}:${visible[first] ? visible[first].line.at_us : ''}:${query}`;
    if (key === drawn) return;
    drawn = key;
    rows.style.transform = `translateY(${first * rowPx}px)`;
    rows.replaceChildren(...visible.slice(first, last).map(nodeOf));
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
      else draw();
    });
  }

  function scrollToEnd() {
    draw();
    box.scrollTop = visible.length * rowPx;
    draw();
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
    if (matcher) parts.push(`${visible.length} of ${plural(shown.length, 'line')} match`);
    else parts.push(plural(shown.length, 'line'));
    if (paused) parts.push(`paused, ${buffer.length} new buffered`);
    setText(info, parts.join(' · '));
  }

  function resetLines() {
    shown = [];
    visible = [];
    drawn = '';
    rows.replaceChildren();
    spacer.style.height = '0px';
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
    for (const e of shown) e.focus = false;
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
    for (const e of around) e.focus = true;
    follow.checked = false;
    // The last of them in the middle of the view.
    draw();
    const index = visible.indexOf(around[around.length - 1]);
    box.scrollTop = Math.max(0, index * rowPx - box.clientHeight / 2);
    drawn = '';
    draw();
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
