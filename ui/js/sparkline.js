// Sparklines: a small SVG line of a service's recent samples (CPU %, memory), drawn from the
// engine's ring (`metrics`), oldest on the left.

const SVG = 'http://www.w3.org/2000/svg';
const W = 40;
const H = 14;

/** An empty sparkline element to update with `drawSparkline`. */
export function createSparkline(label) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('width', String(W));
  svg.setAttribute('height', String(H));
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', 'currentColor');
  line.setAttribute('stroke-width', '1.2');
  svg.append(line);
  return svg;
}

/** Draws `values` (numbers) scaled to `max` (at least the largest value); hidden when fewer
 * than two. The points are only rewritten when they changed. */
export function drawSparkline(svg, values, max) {
  svg.style.visibility = values.length < 2 ? 'hidden' : '';
  if (values.length < 2) return;
  const top = Math.max(max || 0, ...values) || 1;
  const step = W / (values.length - 1);
  const points = values
    .map((v, i) => `${(i * step).toFixed(1)},${(H - 1 - (v / top) * (H - 2)).toFixed(1)}`)
    .join(' ');
  const line = svg.firstChild;
  if (line.getAttribute('points') !== points) line.setAttribute('points', points);
  svg.dataset.samples = String(values.length);
}
