// DOM helpers. Every piece of text goes in through text nodes or attributes set with the DOM API,
// never through innerHTML, so driver IDs, URLs and error messages from the network are inert.

/** The element with this data-testid (the page's stable hooks, also used by the browser test). */
export function $(testid, root = document) {
  return root.querySelector(`[data-testid="${testid}"]`);
}

/**
 * Creates an element: h('td', {class: 'num', dataset: {metric: 'sent'}}, '3,000').
 * Children may be nodes, strings, numbers, arrays, or null/false (skipped).
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'style') Object.assign(el.style, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  appendAll(el, children);
  return el;
}

function appendAll(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  appendAll(el, children);
  return el;
}

/** Sets text only when it changed (keeps selections and avoids layout work). */
export function setText(el, text) {
  const s = String(text);
  if (el.textContent !== s) el.textContent = s;
}

export function show(el, visible) {
  el.hidden = !visible;
}
