// The shell of the window: routing, the header (engine line, sync, start at login), the error
// and notice banners, and the fan-out of the app's events to the views. State arrives only as
// events after the first `snapshot`; nothing here polls.

import { call, on, errorMessage, isBusy } from './transport.js';
import { byId, el, setText } from './dom.js';
import { shortId, summarizeStates } from './format.js';
import { createServicesView } from './views/services.js';
import { createLogsView } from './views/logs.js';
import { createCrashesView } from './views/crashes.js';
import { createHistoryView } from './views/history.js';
import { createUnitsView } from './views/units.js';
import { createImportForm } from './views/import.js';

const ROUTES = ['services', 'units', 'logs', 'crashes', 'history'];
const TITLES = { services: 'Services', units: 'Units', logs: 'Logs', crashes: 'Crash reports', history: 'History' };
const NOTICE_MS = 10000;

const state = {
  snapshot: null,
  appInfo: null,
  current: null, // the active route name
  ready: false,
  engineKey: '',
  noticeTimer: 0,
};

const ctx = {
  call,
  errorMessage,
  isBusy,
  showError,
  clearError,
  showNotice,
  navigate,
  snapshot: () => state.snapshot,
  status: () => (state.snapshot ? state.snapshot.status : null),
  appInfo: () => state.appInfo,
  home: () => (state.snapshot && state.snapshot.home) || (state.appInfo && state.appInfo.home) || '',
};

const views = {
  services: createServicesView(ctx),
  logs: createLogsView(ctx),
  crashes: createCrashesView(ctx),
  history: createHistoryView(ctx),
  units: createUnitsView(ctx),
};

createImportForm(ctx, () => views.history.refresh());

// ---- banners ----

function showError(message) {
  setText(byId('error-text'), message);
  byId('error-banner').hidden = false;
}

function clearError() {
  const banner = byId('error-banner');
  const hadFocus = banner.contains(document.activeElement);
  banner.hidden = true;
  setText(byId('error-text'), '');
  // The dismiss button just vanished: keep keyboard users somewhere sensible.
  if (hadFocus && state.current) byId(`nav-${state.current}`).focus();
}

/** A transient, non-error message, optionally with a link (e.g. to a new crash report). */
function showNotice(message, link) {
  const text = byId('notice-text');
  text.replaceChildren(message);
  if (link) text.append(' ', el('a', { href: link.href, text: link.text }));
  byId('notice').hidden = false;
  clearTimeout(state.noticeTimer);
  state.noticeTimer = setTimeout(() => {
    if (!byId('notice').contains(document.activeElement)) byId('notice').hidden = true;
  }, NOTICE_MS);
}

function clearNotice() {
  clearTimeout(state.noticeTimer);
  const notice = byId('notice');
  const hadFocus = notice.contains(document.activeElement);
  notice.hidden = true;
  if (hadFocus && state.current) byId(`nav-${state.current}`).focus();
}

// ---- routing ----

function decodeParam(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // a raw name from the tray that happens to contain '%'
  }
}

function parseRoute(hash) {
  const h = String(hash || '').replace(/^#/, '');
  const slash = h.indexOf('/');
  const name = slash < 0 ? h : h.slice(0, slash);
  const param = slash < 0 ? '' : decodeParam(h.slice(slash + 1));
  if (!ROUTES.includes(name)) return { name: 'services', param: null };
  return { name, param: param || null };
}

function applyRoute() {
  const { name, param } = parseRoute(location.hash);
  if (state.current && state.current !== name) views[state.current].hide();
  for (const r of ROUTES) {
    byId(`view-${r}`).hidden = r !== name;
    const tab = byId(`nav-${r}`);
    if (r === name) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
  }
  state.current = name;
  document.title = `${TITLES[name]} — gitvisor`;
  views[name].show(param);
}

/** Goes to a route ("logs/web", "#crashes"...); also what `gv:navigate` carries. */
function navigate(route) {
  const hash = `#${String(route || 'services').replace(/^#/, '')}`;
  if (location.hash === hash) {
    if (state.ready) applyRoute();
  } else {
    location.hash = hash; // hashchange applies it (once ready)
  }
}

/** The tray asks for a route (the window may already show it). */
function onNavigate(route) {
  const hash = `#${String(route || 'services').replace(/^#/, '')}`;
  const same = location.hash === hash;
  navigate(route);
  // Asked again for the view already shown: bring it up to date as if it had just been opened.
  if (same && state.ready && typeof views[state.current].refresh === 'function') views[state.current].refresh();
}

// ---- snapshots ----

function onSnapshot(snap) {
  if (!snap || typeof snap !== 'object') return;
  // The reply to `snapshot` may cross a newer `gv:status` event: keep the newest.
  if (state.snapshot && (snap.at_ms || 0) < (state.snapshot.at_ms || 0)) return;
  state.snapshot = snap;
  renderEngineLine(snap);
  renderUnreachable(snap);
  renderBadge(snap.new_crashes || 0);
  for (const view of Object.values(views)) view.status(snap);
}

function renderEngineLine(snap) {
  const parts = [];
  const st = snap.status;
  if (!st) {
    parts.push({ cls: 'engine-down', text: 'engine not reachable' });
  } else {
    parts.push({ cls: 'engine-counts', text: summarizeStates(st.services) });
    if (st.branch || st.commit) {
      const where = `${st.branch || 'detached'} @ ${st.commit ? shortId(st.commit) : 'no commit'}`;
      parts.push({ cls: 'engine-commit mono', text: where, title: st.commit || '' });
    }
  }
  if (snap.attached) parts.push({ cls: 'tag', text: 'attached to a daemon', title: 'A headless gitvisor daemon runs the engine; this app is its client.' });
  if (snap.home) parts.push({ cls: 'engine-home mono', text: snap.home, title: `gitvisor home: ${snap.home}` });

  const key = JSON.stringify(parts);
  if (key === state.engineKey) return;
  state.engineKey = key;
  const line = byId('engine-line');
  line.replaceChildren();
  parts.forEach((p, i) => {
    if (i > 0) line.append(el('span', { class: 'sep', 'aria-hidden': 'true', text: '·' }));
    line.append(el('span', { class: p.cls, text: p.text, title: p.title || null }));
  });
}

function renderUnreachable(snap) {
  const box = byId('engine-unreachable');
  if (snap.status) {
    box.hidden = true;
    return;
  }
  setText(byId('engine-unreachable-text'), snap.error || 'No engine answers.');
  // An app attached to a daemon that is gone can run the engine itself.
  byId('take-over').hidden = !snap.attached;
  box.hidden = false;
}

async function takeOver() {
  const button = byId('take-over');
  button.disabled = true;
  try {
    await call('take_over');
    showNotice('The engine now runs in this app; it adopted the services the daemon left running.');
  } catch (err) {
    showError(`Could not start the engine here: ${errorMessage(err)}`);
  } finally {
    button.disabled = false;
  }
}

function renderBadge(n) {
  const badge = byId('crash-badge');
  const tab = byId('nav-crashes');
  if (n > 0) {
    setText(badge, String(n));
    badge.hidden = false;
    tab.setAttribute('aria-label', `Crash reports, ${n} new`);
  } else {
    badge.hidden = true;
    setText(badge, '');
    tab.removeAttribute('aria-label');
  }
}

// ---- header actions ----

async function syncNow() {
  const button = byId('sync-now');
  button.disabled = true;
  setText(button, 'Syncing…');
  try {
    const report = await call('sync');
    if (report.problem) showError(`Sync: ${report.problem}`);
    else if (report.errors && report.errors.length) showError(`Sync: ${report.errors.join('; ')}`);
    const actions = report.actions || [];
    if (!report.problem) {
      if (actions.length) showNotice(`Synced ${shortId(report.new)}: ${actions.join(', ')}.`);
      else if (report.old === report.new) showNotice('Already up to date: nothing to change.');
      else showNotice(`Synced to ${shortId(report.new)}: nothing to restart.`);
    }
    if (state.current === 'history') views.history.refresh();
  } catch (err) {
    showError(`Sync failed: ${errorMessage(err)}`);
  } finally {
    button.disabled = false;
    setText(button, 'Sync now');
  }
}

async function toggleAutostart() {
  const box = byId('autostart');
  const wanted = box.checked;
  box.disabled = true;
  try {
    const now = await call('set_autostart', { enabled: wanted });
    box.checked = Boolean(now);
    if (Boolean(now) !== wanted) showError(`Start at login could not be turned ${wanted ? 'on' : 'off'}.`);
  } catch (err) {
    box.checked = !wanted;
    showError(`Could not change start at login: ${errorMessage(err)}`);
  } finally {
    box.disabled = false;
  }
}

function applyAppInfo(info) {
  state.appInfo = info;
  const box = byId('autostart');
  box.checked = Boolean(info.autostart);
  box.disabled = false;
  setText(byId('app-version'), info.version ? `v${info.version}` : '');
}

// ---- events ----

function onEvent(ev) {
  if (!ev || typeof ev !== 'object') return;
  for (const view of Object.values(views)) view.event(ev);
}

// ---- start ----

async function main() {
  byId('error-dismiss').addEventListener('click', clearError);
  byId('notice-dismiss').addEventListener('click', clearNotice);
  byId('take-over').addEventListener('click', takeOver);
  byId('sync-now').addEventListener('click', syncNow);
  byId('autostart').addEventListener('change', toggleAutostart);

  // Listen before asking for the snapshot so no change falls between the two.
  try {
    await Promise.all([
      on('gv:status', onSnapshot),
      on('gv:event', onEvent),
      // A batch of lines (an array), one event a frame at most.
      on('gv:log', (lines) => views.logs.log(lines)),
      on('gv:navigate', onNavigate),
    ]);
  } catch (err) {
    showError(errorMessage(err));
  }

  const [snap, info] = await Promise.allSettled([call('snapshot'), call('app_info')]);
  if (info.status === 'fulfilled' && info.value) applyAppInfo(info.value);
  else if (info.status === 'rejected') showError(`Could not read the app settings: ${errorMessage(info.reason)}`);
  if (snap.status === 'fulfilled') onSnapshot(snap.value);
  else showError(errorMessage(snap.reason));
  if (!state.snapshot) {
    onSnapshot({ status: null, error: snap.status === 'rejected' ? errorMessage(snap.reason) : null, new_crashes: 0, attached: false, home: '', at_ms: 0 });
  }

  window.addEventListener('hashchange', applyRoute);
  state.ready = true;
  applyRoute();
  document.body.setAttribute('data-ready', '1');
}

main().catch((err) => {
  showError(errorMessage(err));
  document.body.setAttribute('data-ready', '1');
});

