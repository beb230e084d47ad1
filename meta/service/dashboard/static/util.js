// Small helpers every page uses: escaping (every value from the API is text, never markup), times, state badges.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** A tagged template that escapes every interpolated value unless it is raw(...) markup built here. */
export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((value, i) => {
    out += (value && value.__raw !== undefined ? value.__raw : Array.isArray(value)
      ? value.map((v) => (v && v.__raw !== undefined ? v.__raw : esc(v))).join("") : esc(value)) + strings[i + 1];
  });
  return raw(out);
}

export function raw(markup) {
  return { __raw: markup, toString() { return markup; } };
}

export function badge(state, label) {
  const name = state || "none";
  return html`<span class="state s-${name.replace(/[^a-z_]/g, "")}">${label ?? name.replace(/_/g, " ")}</span>`;
}

export function ago(iso) {
  if (!iso) return "";
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  const future = seconds < 0;
  const s = Math.abs(seconds);
  const text = s < 60 ? `${Math.round(s)}s` : s < 3600 ? `${Math.round(s / 60)}m` : s < 86400
    ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86400)}d`;
  return future ? `in ${text}` : `${text} ago`;
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function duration(start, end) {
  if (!start) return "";
  const s = ((end ? Date.parse(end) : Date.now()) - Date.parse(start)) / 1000;
  return s < 60 ? `${s.toFixed(1)}s` : s < 3600 ? `${(s / 60).toFixed(1)}m` : `${(s / 3600).toFixed(1)}h`;
}

export function pipelineHref(id) {
  return `/pipelines/${encodeURIComponent(id)}`;
}

export function runHref(pipeline, backend, run) {
  return `${pipelineHref(pipeline)}/runs/${encodeURIComponent(backend)}/${encodeURIComponent(run)}`;
}
