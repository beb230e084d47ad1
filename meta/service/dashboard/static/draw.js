// Pictures drawn as SVG: a graph in layers, left to right (a pipeline's tasks, or pipelines and their
// dependencies), and a Gantt chart of a run's task attempts. Layout: longest path from the sources gives the layer,
// two barycentre sweeps order each layer so that edges cross less.
import { esc, duration } from "./util.js";

const NODE_W = 176, GAP_X = 56, GAP_Y = 14, PAD = 8;

function layers(nodes, edges) {
  const preds = new Map(nodes.map((n) => [n.id, []]));
  for (const e of edges) if (preds.has(e.to) && preds.has(e.from)) preds.get(e.to).push(e.from);
  const layer = new Map();
  const visiting = new Set();
  const depth = (id) => {
    if (layer.has(id)) return layer.get(id);
    if (visiting.has(id)) return 0; // a cycle (validation refuses them; a drawing must not hang on one)
    visiting.add(id);
    const d = Math.max(-1, ...preds.get(id).map(depth)) + 1;
    visiting.delete(id);
    layer.set(id, d);
    return d;
  };
  nodes.forEach((n) => depth(n.id));
  const columns = [];
  for (const n of nodes) (columns[layer.get(n.id)] ??= []).push(n.id);
  const position = new Map();
  columns.forEach((column) => column.forEach((id, i) => position.set(id, i)));
  for (let sweep = 0; sweep < 2; sweep++) {
    for (const column of columns.slice(1)) {
      const weight = (id) => {
        const p = preds.get(id).map((q) => position.get(q));
        return p.length ? p.reduce((a, b) => a + b, 0) / p.length : position.get(id);
      };
      column.sort((a, b) => weight(a) - weight(b));
      column.forEach((id, i) => position.set(id, i));
    }
  }
  return { layer, position, columns };
}

function fit(text, width, charWidth = 7) {
  const max = Math.floor(width / charWidth);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** nodes: [{id, label, sub, state, kind, href, title}], edges: [{from, to, label}] -> SVG markup. */
export function graphSvg(nodes, edges, { label = "graph" } = {}) {
  if (!nodes.length) return `<p class="muted">Nothing to draw.</p>`;
  const NODE_H = nodes.some((n) => n.sub) ? 42 : 34; // a second line (where the node runs) when there is one
  const { layer, position, columns } = layers(nodes, edges);
  const x = (id) => PAD + layer.get(id) * (NODE_W + GAP_X);
  const y = (id) => PAD + position.get(id) * (NODE_H + GAP_Y);
  const width = PAD * 2 + columns.length * (NODE_W + GAP_X) - GAP_X;
  const height = PAD * 2 + Math.max(...columns.map((c) => c.length)) * (NODE_H + GAP_Y) - GAP_Y;
  const ids = new Set(nodes.map((n) => n.id));
  const paths = edges.filter((e) => ids.has(e.from) && ids.has(e.to)).map((e) => {
    const x1 = x(e.from) + NODE_W, y1 = y(e.from) + NODE_H / 2, x2 = x(e.to), y2 = y(e.to) + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    const title = e.label ? `<title>${esc(e.label)}</title>` : "";
    return `<path class="edge" marker-end="url(#arrow)" d="M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 3},${y2}">${title}</path>`;
  });
  const boxes = nodes.map((n) => {
    const state = (n.state || "none").replace(/[^a-z_]/g, "");
    const kind = (n.kind || "").replace(/[^a-z_]/g, "");
    const body = `<rect width="${NODE_W}" height="${NODE_H}"></rect>`
      + `<text x="10" y="${n.sub ? 17 : NODE_H / 2 + 4}">${esc(fit(n.label ?? n.id, NODE_W - 16))}</text>`
      + (n.sub ? `<text class="sub" x="10" y="33">${esc(fit(n.sub, NODE_W - 10, 5.6))}</text>` : "")
      + `<title>${esc(n.title ?? `${n.id}: ${state}`)}</title>`;
    const inner = n.href ? `<a href="${esc(n.href)}">${body}</a>` : body;
    return `<g class="node f-${state} ${kind ? `b-${kind}` : ""}" data-node="${esc(n.id)}" data-state="${state}" `
      + `transform="translate(${x(n.id)},${y(n.id)})">${inner}</g>`;
  });
  return `<svg role="img" aria-label="${esc(label)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`
    + `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">`
    + `<path d="M0,0 L10,5 L0,10 z" fill="currentColor" class="muted"></path></marker></defs>`
    + paths.join("") + boxes.join("") + `</svg>`;
}

/** attempts: [{task_id, map_index, try_number, state, started_at, ended_at}] -> SVG Gantt markup. */
export function ganttSvg(attempts) {
  const timed = attempts.filter((a) => a.started_at);
  if (!timed.length) return `<p class="muted">No task attempt has started yet.</p>`;
  const now = Date.now();
  const start = Math.min(...timed.map((a) => Date.parse(a.started_at)));
  const end = Math.max(...timed.map((a) => (a.ended_at ? Date.parse(a.ended_at) : now)), start + 1000);
  const rows = [];
  const rowOf = new Map();
  for (const a of [...timed].sort((p, q) => Date.parse(p.started_at) - Date.parse(q.started_at))) {
    const key = a.map_index >= 0 ? `${a.task_id}[${a.map_index}]` : a.task_id;
    if (!rowOf.has(key)) { rowOf.set(key, rows.length); rows.push(key); }
  }
  const LABEL = 180, WIDTH = 900, ROW = 24, TOP = 22;
  const scale = (t) => LABEL + ((t - start) / (end - start)) * (WIDTH - LABEL - 10);
  const ticks = [];
  for (let i = 0; i <= 5; i++) {
    const t = start + ((end - start) * i) / 5;
    ticks.push(`<line class="axis" x1="${scale(t)}" x2="${scale(t)}" y1="${TOP - 6}" y2="${TOP + rows.length * ROW}"></line>`
      + `<text x="${scale(t)}" y="12" text-anchor="${i === 5 ? "end" : i === 0 ? "start" : "middle"}">`
      + `+${esc(duration(new Date(start).toISOString(), new Date(t).toISOString()))}</text>`);
  }
  const labels = rows.map((key, i) => `<text x="4" y="${TOP + i * ROW + 16}">${esc(key.length > 26 ? `${key.slice(0, 25)}…` : key)}</text>`);
  const bars = timed.map((a) => {
    const key = a.map_index >= 0 ? `${a.task_id}[${a.map_index}]` : a.task_id;
    const x1 = scale(Date.parse(a.started_at));
    const x2 = Math.max(x1 + 3, scale(a.ended_at ? Date.parse(a.ended_at) : now));
    const state = (a.state || "none").replace(/[^a-z_]/g, "");
    const tip = `${key} try ${a.try_number}: ${a.state}, ${duration(a.started_at, a.ended_at)}`;
    return `<rect class="bar f-${state}" data-task="${esc(a.task_id)}" data-try="${a.try_number}" x="${x1}" `
      + `y="${TOP + rowOf.get(key) * ROW + 4}" width="${x2 - x1}" height="${ROW - 8}" rx="3"><title>${esc(tip)}</title></rect>`
      + (x2 - x1 > 34 ? `<text x="${x1 + 4}" y="${TOP + rowOf.get(key) * ROW + 16}">#${a.try_number}</text>` : "");
  });
  const height = TOP + rows.length * ROW + 6;
  return `<svg role="img" aria-label="task attempts over time" width="${WIDTH}" height="${height}" `
    + `viewBox="0 0 ${WIDTH} ${height}">${ticks.join("")}${labels.join("")}${bars.join("")}</svg>`;
}
