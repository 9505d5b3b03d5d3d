// Charts the page draws itself as SVG (no library, nothing to build): columns over time, bars per name.
// Every mark carries its value (data-value) and a <title>, so the numbers are readable without the picture.

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A round top for the axis (1, 2 or 5 times a power of ten) at or above `max`. */
export function niceMax(max) {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

/**
 * Columns, one per point {label, value (a number or null: no data), text (the value as shown)}.
 * `format` writes the axis values; `label` names the chart for screen readers.
 */
export function columnChart(points, { label, format, id }) {
  const width = 720, height = 220, left = 56, right = 8, top = 10, bottom = 26;
  const plotW = width - left - right, plotH = height - top - bottom;
  const scale = niceMax(Math.max(0, ...points.map((p) => p.value ?? 0)));
  const step = plotW / Math.max(points.length, 1);
  const barW = Math.max(1, Math.min(36, step * 0.7));
  const every = Math.ceil(points.length / 10); // at most ~10 labels under the axis
  const y = (v) => top + plotH - (v / scale) * plotH;
  const grid = [0, scale / 2, scale].map((v) => s("g", { class: "chart-grid" },
    s("line", { x1: left, x2: width - right, y1: y(v), y2: y(v) }),
    s("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, format(v))));
  const marks = points.map((p, i) => {
    const x = left + i * step + (step - barW) / 2;
    const value = p.value ?? 0;
    return s("g", { class: "chart-column", "data-label": p.label, "data-value": p.value ?? "" },
      s("rect", { x, y: y(value), width: barW, height: Math.max(0, top + plotH - y(value)) }, s("title", {}, `${p.label}: ${p.text}`)),
      i % every === 0 ? s("text", { class: "chart-axis", x: x + barW / 2, y: height - 8, "text-anchor": "middle" }, p.label) : null);
  });
  return s("svg", { id, class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label }, grid, marks);
}

/** Horizontal bars, one per row {label, value (number or null), text}, largest scale first as given. */
export function barChart(rows, { label, id }) {
  const width = 720, left = 160, right = 90, rowH = 26, top = 4;
  const height = top * 2 + rowH * Math.max(rows.length, 1);
  const scale = niceMax(Math.max(0, ...rows.map((r) => r.value ?? 0)));
  const plotW = width - left - right;
  const marks = rows.map((r, i) => {
    const y = top + i * rowH;
    const w = ((r.value ?? 0) / scale) * plotW;
    return s("g", { class: "chart-bar", "data-label": r.label, "data-value": r.value ?? "" },
      s("text", { class: "chart-name", x: left - 8, y: y + rowH / 2 + 4, "text-anchor": "end" }, r.label),
      s("rect", { x: left, y: y + 4, width: Math.max(w, r.value ? 1 : 0), height: rowH - 8 }, s("title", {}, `${r.label}: ${r.text}`)),
      s("text", { class: "chart-value", x: left + w + 6, y: y + rowH / 2 + 4 }, r.text));
  });
  return s("svg", { id, class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label }, marks);
}
