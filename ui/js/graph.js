// The dependency graph as an SVG drawn here (no library): units in columns by how deep they
// sit in the start order (what a unit starts after is to its left), an arrow from each
// dependency to its dependent (solid for Requires=, dashed for ordering only), each node
// coloured by its state, and the critical chain of the last start outlined with each unit's
// time since the chain's first unit became active.

const SVG = 'http://www.w3.org/2000/svg';
const NODE_W = 150;
const NODE_H = 34;
const COL_GAP = 70;
const ROW_GAP = 14;
const PAD = 12;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, String(v));
  if (text != null) node.textContent = text;
  return node;
}

/** Each unit's column: 0 for a unit that starts after nothing, else one more than its deepest
 * dependency's (units on a cycle are placed by what the walk saw first). */
export function columns(units) {
  const byName = new Map(units.map((u) => [u.name, u]));
  const col = new Map();
  const visiting = new Set();
  function depth(name) {
    if (col.has(name)) return col.get(name);
    if (visiting.has(name)) return 0; // a cycle
    visiting.add(name);
    const u = byName.get(name);
    let d = 0;
    for (const dep of (u && u.starts_after) || []) if (byName.has(dep)) d = Math.max(d, depth(dep) + 1);
    visiting.delete(name);
    col.set(name, d);
    return d;
  }
  for (const u of units) depth(u.name);
  return col;
}

const STATE_CLASS = {
  running: 'good', active: 'good', starting: 'warn', stopping: 'warn', backoff: 'warn',
  failed: 'bad', stopped: 'neutral', exited: 'neutral',
};

/** Draws `graph` (the engine's `graph` answer) into `host`, replacing what was there. */
export function drawGraph(host, graph) {
  const units = [...(graph.units || [])].sort((a, b) => a.name.localeCompare(b.name));
  const col = columns(units);
  const rows = new Map();
  const pos = new Map();
  for (const u of units) {
    const c = col.get(u.name) || 0;
    const r = rows.get(c) || 0;
    rows.set(c, r + 1);
    pos.set(u.name, { x: PAD + c * (NODE_W + COL_GAP), y: PAD + r * (NODE_H + ROW_GAP) });
  }
  const width = PAD * 2 + (Math.max(0, ...col.values()) + 1) * (NODE_W + COL_GAP) - COL_GAP;
  const height = PAD * 2 + Math.max(1, ...rows.values()) * (NODE_H + ROW_GAP) - ROW_GAP;
  const chain = new Map((graph.critical_chain || []).map((l) => [l.name, l]));
  const root = svg('svg', {
    class: 'dep-graph',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': `Dependency graph of ${units.length} units`,
  });
  const defs = svg('defs');
  const marker = svg('marker', { id: 'dep-arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
  marker.append(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'dep-arrow-head' }));
  defs.append(marker);
  root.append(defs);
  for (const u of units) {
    const to = pos.get(u.name);
    for (const dep of u.starts_after || []) {
      const from = pos.get(dep);
      if (!from) continue;
      const x1 = from.x + NODE_W;
      const y1 = from.y + NODE_H / 2;
      const x2 = to.x;
      const y2 = to.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      const onChain = chain.has(dep) && chain.has(u.name);
      const cls = ['dep-edge', (u.requires || []).includes(dep) ? 'dep-requires' : 'dep-order', onChain ? 'dep-chain' : '']
        .filter(Boolean)
        .join(' ');
      root.append(svg('path', { d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`, class: cls, 'marker-end': 'url(#dep-arrow)', 'data-from': dep, 'data-to': u.name }));
    }
  }
  for (const u of units) {
    const { x, y } = pos.get(u.name);
    const link = chain.get(u.name);
    const g = svg('g', { class: `dep-node dep-${STATE_CLASS[u.state] || 'neutral'}${link ? ' dep-on-chain' : ''}`, 'data-unit': u.name, 'data-state': u.state, transform: `translate(${x} ${y})` });
    const title = svg('title', {}, `${u.name}: ${u.state}${link ? `, active at +${link.since_first_ms} ms on the critical chain` : ''}`);
    g.append(title, svg('rect', { width: NODE_W, height: NODE_H, rx: 6 }));
    g.append(svg('text', { x: 8, y: 14, class: 'dep-name' }, u.name.length > 20 ? `${u.name.slice(0, 19)}…` : u.name));
    const sub = link ? `${u.state} · +${link.since_first_ms} ms` : u.state;
    g.append(svg('text', { x: 8, y: 27, class: 'dep-sub' }, sub));
    root.append(g);
  }
  host.replaceChildren(root);
}
