// Tiny DOM builders. Engine data only ever goes in through textContent or attributes, never
// parsed as markup, so nothing a service prints can inject elements.

/**
 * el('td', {class: 'x', text: 'y', dataset: {a: 'b'}, title: 't', disabled: true}, [children])
 * Boolean values toggle the attribute; `on*` keys add listeners; null/undefined are skipped.
 */
export function el(tag, opts = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(opts)) {
    if (value == null) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'dataset') for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (typeof value === 'boolean') node.toggleAttribute(key, value);
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

/** Appends children: nodes as they are, anything else as text. */
export function append(node, children) {
  for (const child of [].concat(children)) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Sets text only when it changed: avoids needless layout and screen reader chatter. */
export function setText(node, text) {
  const value = text == null ? '' : String(text);
  if (node.textContent !== value) node.textContent = value;
}

/** Sets or removes an attribute only when it changed. */
export function setAttr(node, name, value) {
  if (value == null || value === false) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else {
    const v = value === true ? '' : String(value);
    if (node.getAttribute(name) !== v) node.setAttribute(name, v);
  }
}

export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing element #${id}`);
  return node;
}

/** Appends `text` to `parent`, wrapping each case-insensitive match of `re` in <mark>. */
export function appendHighlighted(parent, text, re) {
  if (!re) {
    parent.append(text);
    return;
  }
  re.lastIndex = 0;
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    if (m[0] === '') {
      re.lastIndex++;
      continue;
    }
    if (m.index > last) parent.append(text.slice(last, m.index));
    parent.append(el('mark', { text: m[0] }));
    last = m.index + m[0].length;
  }
  if (last < text.length) parent.append(text.slice(last));
}

/** A global, case-insensitive regular expression matching `query` literally (null if empty). */
export function literalRegExp(query) {
  if (!query) return null;
  return new RegExp(query.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'), 'gi');
}
