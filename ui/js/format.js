// Pure formatting helpers (no DOM, no state), so they can be checked with plain node.

export const DASH = '—';

const pad = (n, width = 2) => String(n).padStart(width, '0');

/** 12s, 3m 12s, 2h 5m, 4d 3h. */
export function formatDuration(ms) {
  if (ms == null || !Number.isFinite(ms)) return DASH;
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  const d = Math.floor(h / 24);
  return `${d}d ${h % 24}h`;
}

/** CPU time: 840 ms, 12.3 s, then as a duration. */
export function formatCpuTime(ms) {
  if (ms == null || !Number.isFinite(ms)) return DASH;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return formatDuration(ms);
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 512 B, 1.5 KiB, 12 MiB (binary units, as the kernel reports memory). */
export function formatBytes(n) {
  if (n == null || !Number.isFinite(n)) return DASH;
  if (n < 1024) return `${Math.max(0, Math.round(n))} B`;
  let v = n;
  let i = 0;
  while (v >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  let text = v < 10 ? v.toFixed(1) : String(Math.round(v));
  // 1023.7 KiB would round to "1024 KiB": show it as the next unit instead.
  if (Number(text) >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024;
    i++;
    text = v.toFixed(1);
  }
  return `${text} ${BYTE_UNITS[i]}`;
}

export function formatKiB(kb) {
  return kb == null ? DASH : formatBytes(kb * 1024);
}

/** HH:MM:SS.mmm local, from unix microseconds (log lines). */
export function formatLogTime(atUs) {
  if (atUs == null || !Number.isFinite(atUs)) return '--:--:--.---';
  const d = new Date(Math.floor(atUs / 1000));
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** YYYY-MM-DD HH:MM:SS local, from unix milliseconds. */
export function formatDateTime(ms) {
  if (ms == null || !Number.isFinite(ms)) return DASH;
  const d = new Date(ms);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** Unix milliseconds from an RFC 3339 string, or null. Extra fraction digits are dropped
 * because not every engine's Date.parse accepts nanoseconds. */
export function parseTime(text) {
  if (!text) return null;
  const ms = Date.parse(String(text).replace(/(\.\d{3})\d+/, '$1'));
  return Number.isNaN(ms) ? null : ms;
}

const SIGNALS = {
  1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS',
  8: 'SIGFPE', 9: 'SIGKILL', 10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE',
  14: 'SIGALRM', 15: 'SIGTERM',
};

/** "exited with status 3", "killed by signal 9 (SIGKILL)", plus ", core dumped"; for a process
 * whose status the engine could not see (an adopted one), only what is known. */
export function describeExit(exit) {
  if (!exit) return '';
  let text;
  if (exit.code != null) text = `exited with status ${exit.code}`;
  else if (exit.signal != null) {
    const name = SIGNALS[exit.signal];
    text = `killed by signal ${exit.signal}${name ? ` (${name})` : ''}`;
  } else if (exit.sent_signal != null) {
    text = `stopped with ${SIGNALS[exit.sent_signal] || `signal ${exit.sent_signal}`}`;
  } else if (exit.unwatched) {
    text = 'ended while no engine was running; its exit status cannot be known';
  } else text = 'ended while adopted; its exit status cannot be known';
  if (exit.core_dumped) text += ', core dumped';
  return text;
}


export function formatPercent(p) {
  if (p == null || !Number.isFinite(p)) return DASH;
  return p < 10 ? `${p.toFixed(1)}%` : `${Math.round(p)}%`;
}

export function shortId(id, n = 10) {
  return id ? String(id).slice(0, n) : DASH;
}

export function plural(n, word, words = `${word}s`) {
  return `${n} ${n === 1 ? word : words}`;
}

const STATE_ORDER = ['running', 'active', 'starting', 'stopping', 'backoff', 'failed', 'exited', 'stopped'];

/** "3 running, 1 failed" (only the states present), or "no services". */
export function summarizeStates(services) {
  if (!services || services.length === 0) return 'no services';
  const counts = new Map();
  for (const s of services) counts.set(s.state, (counts.get(s.state) || 0) + 1);
  const known = STATE_ORDER.filter((st) => counts.has(st)).map((st) => `${counts.get(st)} ${st}`);
  const other = [...counts.keys()].filter((st) => !STATE_ORDER.includes(st)).map((st) => `${counts.get(st)} ${st}`);
  return known.concat(other).join(', ');
}
