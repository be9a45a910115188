// A service's last 24 hours as a strip (SVG drawn here): a tick per start, exit and restart
// after a change, coloured by kind (a crash red, an OOM kill purple, a health or watchdog
// kill orange, a clean exit or stop grey, a start green), thin blue ticks for the syncs, and
// each crash that has a report a marker that opens it. A loop's many occurrences are one
// wider tick.

import { formatDateTime } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
export const DAY_MS = 24 * 60 * 60 * 1000;
const WIDTH = 180;
const HEIGHT = 14;

const LABEL = {
  start: 'started',
  exit: 'exited cleanly',
  stop: 'stopped',
  crash: 'crashed',
  oom: 'killed for memory (OOM)',
  'health-kill': 'killed: unhealthy',
  watchdog: 'killed by its watchdog',
  change: 'restarted after a change',
  sync: 'sync',
};

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, String(v));
  return node;
}

function describe(e) {
  const when = e.count > 1 ? `${formatDateTime(e.at_ms)} – ${formatDateTime(e.last_ms)}, ${e.count} times` : formatDateTime(e.at_ms);
  const what = LABEL[e.kind] || e.kind;
  return `${when}: ${what}${e.detail ? ` (${e.detail})` : ''}${e.report ? ' — click to open its crash report' : ''}`;
}

/** Creates the strip's element (empty until drawn). */
export function createTimeline() {
  return svg('svg', { class: 'timeline', width: WIDTH, height: HEIGHT, viewBox: `0 0 ${WIDTH} ${HEIGHT}`, 'aria-label': 'The last 24 hours' });
}

/** Draws `entries` (and `syncs`) of the 24 hours up to `now` into `strip`. */
export function drawTimeline(strip, entries, syncs, now) {
  const from = now - DAY_MS;
  const x = (t) => Math.max(0, Math.min(WIDTH - 2, ((t - from) / DAY_MS) * WIDTH));
  const parts = [svg('rect', { class: 'timeline-bg', x: 0, y: 0, width: WIDTH, height: HEIGHT, rx: 2 })];
  for (const s of syncs || []) {
    const tick = svg('rect', { class: 'tl-sync', x: x(s.at_ms), y: 0, width: 1, height: HEIGHT });
    tick.append(Object.assign(svg('title'), { textContent: describe(s) }));
    parts.push(tick);
  }
  for (const e of entries || []) {
    const left = x(e.at_ms);
    const width = Math.max(2, x(e.last_ms) - left + 2);
    const tick = svg('rect', { class: `tl-${e.kind}`, x: left, y: 2, width, height: HEIGHT - 4, 'data-kind': e.kind });
    tick.append(Object.assign(svg('title'), { textContent: describe(e) }));
    if (e.report) {
      const link = svg('a', { href: `#crashes/${encodeURIComponent(e.report)}`, class: 'tl-report', 'data-report': e.report });
      // A marker a pointer can hit: wider than the tick, over the strip's whole height.
      const hit = svg('rect', { class: 'tl-hit', x: Math.max(0, left - 4), y: 0, width: 10, height: HEIGHT });
      hit.append(Object.assign(svg('title'), { textContent: describe(e) }));
      link.append(tick, svg('circle', { cx: left + 1, cy: 3, r: 3, class: 'tl-marker' }), hit);
      parts.push(link);
    } else {
      parts.push(tick);
    }
  }
  strip.dataset.entries = String((entries || []).length);
  strip.replaceChildren(...parts);
}
