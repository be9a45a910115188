// Terminal colours in log lines: SGR escape sequences (ECMA-48 "ESC [ … m") become styled runs
// of plain text; every other escape sequence (cursor moves, window titles) is dropped, and a
// carriage return keeps what a terminal would show (the text after the last one). The plain
// text is what the page searches and what a copy takes.

import { appendHighlighted, el } from './dom.js';

// ESC [ params final (CSI), ESC ] … BEL or ESC \ (OSC), or ESC and one character.
const ESCAPE = /\x1b(?:\[([0-9;:?<=>]*)([\x20-\x2f]*)([\x40-\x7e])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[\x40-\x5f])/g;

/** The xterm colour `n` of the 256-colour palette above the 16 named ones. */
function palette256(n) {
  if (n < 16) return null;
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v},${v},${v})`;
  }
  const i = n - 16;
  const level = (x) => (x === 0 ? 0 : 55 + x * 40);
  return `rgb(${level(Math.floor(i / 36))},${level(Math.floor(i / 6) % 6)},${level(i % 6)})`;
}

/** Reads an extended colour (`38;5;n` or `38;2;r;g;b`) from `codes` at `i` (the 38/48). */
function extended(codes, i) {
  if (codes[i + 1] === 5 && codes[i + 2] != null) {
    const n = codes[i + 2];
    return { next: i + 3, named: n < 16 ? n : null, css: palette256(n) };
  }
  if (codes[i + 1] === 2 && codes[i + 4] != null) {
    const [r, g, b] = codes.slice(i + 2, i + 5).map((v) => Math.max(0, Math.min(255, v)));
    return { next: i + 5, named: null, css: `rgb(${r},${g},${b})` };
  }
  return { next: codes.length, named: null, css: null };
}

function applySgr(style, params) {
  const codes = params === '' ? [0] : params.split(/[;:]/).map((p) => (p === '' ? 0 : Number(p)));
  for (let i = 0; i < codes.length; ) {
    const c = codes[i];
    if (c === 0) Object.assign(style, { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false });
    else if (c === 1) style.bold = true;
    else if (c === 2) style.dim = true;
    else if (c === 3) style.italic = true;
    else if (c === 4) style.underline = true;
    else if (c === 22) style.bold = style.dim = false;
    else if (c === 23) style.italic = false;
    else if (c === 24) style.underline = false;
    else if (c >= 30 && c <= 37) style.fg = { named: c - 30 };
    else if (c >= 90 && c <= 97) style.fg = { named: c - 90 + 8 };
    else if (c === 39) style.fg = null;
    else if (c >= 40 && c <= 47) style.bg = { named: c - 40 };
    else if (c >= 100 && c <= 107) style.bg = { named: c - 100 + 8 };
    else if (c === 49) style.bg = null;
    else if (c === 38 || c === 48) {
      const x = extended(codes, i);
      const colour = x.named != null ? { named: x.named } : x.css ? { css: x.css } : null;
      if (c === 38) style.fg = colour;
      else style.bg = colour;
      i = x.next;
      continue;
    }
    i++;
  }
}

function styleKey(s) {
  return JSON.stringify(s);
}

/**
 * Parses a log line: `{ plain, runs }`, where `runs` cover `plain` in order, each with the
 * style in force (`null` for none).
 */
export function parseAnsi(text) {
  let line = text.endsWith('\r') ? text.slice(0, -1) : text;
  const cr = line.lastIndexOf('\r');
  if (cr >= 0) line = line.slice(cr + 1);
  if (!line.includes('\x1b')) return { plain: line, runs: line ? [{ text: line, style: null }] : [] };
  const style = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };
  const plainStyle = styleKey(style);
  const runs = [];
  let plain = '';
  let last = 0;
  const push = (s) => {
    if (!s) return;
    plain += s;
    const key = styleKey(style);
    const current = key === plainStyle ? null : { ...style };
    const prev = runs[runs.length - 1];
    if (prev && styleKey(prev.style) === styleKey(current)) prev.text += s;
    else runs.push({ text: s, style: current });
  };
  ESCAPE.lastIndex = 0;
  let m;
  while ((m = ESCAPE.exec(line)) !== null) {
    push(line.slice(last, m.index));
    last = ESCAPE.lastIndex;
    if (m[3] === 'm' && !m[2]) applySgr(style, m[1] || '');
  }
  push(line.slice(last));
  return { plain, runs };
}

function colourOf(c) {
  if (!c) return { cls: null, css: null };
  if (c.named != null) return { cls: c.named, css: null };
  return { cls: null, css: c.css };
}

/** Appends the runs to `parent` as spans, highlighting what `matcher` finds in each run. */
export function appendAnsi(parent, runs, matcher) {
  for (const run of runs) {
    if (!run.style) {
      appendHighlighted(parent, run.text, matcher);
      continue;
    }
    const s = run.style;
    const classes = [];
    const fg = colourOf(s.fg);
    const bg = colourOf(s.bg);
    if (fg.cls != null) classes.push(`ansi-fg-${fg.cls}`);
    if (bg.cls != null) classes.push(`ansi-bg-${bg.cls}`);
    if (s.bold) classes.push('ansi-bold');
    if (s.dim) classes.push('ansi-dim');
    if (s.italic) classes.push('ansi-italic');
    if (s.underline) classes.push('ansi-underline');
    const span = el('span', { class: classes.join(' ') || null });
    // Through the CSSOM, which the page's content security policy allows (a style attribute
    // would not be).
    if (fg.css) span.style.color = fg.css;
    if (bg.css) span.style.backgroundColor = bg.css;
    appendHighlighted(span, run.text, matcher);
    parent.append(span);
  }
}
