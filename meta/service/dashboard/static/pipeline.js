// A pipeline's page (its DAG coloured by the newest run's task states, runs per backend side by side, SLA history,
// dependencies in and out) and a run's page (its DAG and a Gantt chart of every task attempt, retries included).
import { get } from "./api.js";
import { graphSvg, ganttSvg } from "./draw.js";
import { ago, badge, duration, html, pipelineHref, raw, runHref, when } from "./util.js";

// A mapped task's node shows what its instances add up to, most telling first (meta.spec.results.mapped_state).
const SUMMARY_ORDER = ["failed", "upstream_failed", "running", "up_for_retry", "queued", "scheduled", "success", "skipped"];

function taskStates(attempts) {
  // Newest attempt of each task instance (task id, map index), then one state per task.
  const latest = new Map();
  for (const a of attempts) {
    const key = `${a.task_id}\u0000${a.map_index ?? -1}`;
    const seen = latest.get(key);
    if (!seen || a.try_number >= seen.try_number) latest.set(key, a);
  }
  const byTask = new Map();
  for (const a of latest.values()) {
    if (!byTask.has(a.task_id)) byTask.set(a.task_id, []);
    byTask.get(a.task_id).push(a.state);
  }
  const states = new Map();
  for (const [task, list] of byTask) {
    const state = SUMMARY_ORDER.find((s) => list.includes(s)) ?? list[0];
    states.set(task, { state, instances: list.length });
  }
  return states;
}

function dagMarkup(page, attempts, label) {
  const states = taskStates(attempts);
  const nodes = page.tasks.map((t) => {
    const a = states.get(t.id);
    const tries = attempts.filter((x) => x.task_id === t.id).length;
    const mapped = a && a.instances > 1 ? ` over ${a.instances} mapped instances` : "";
    return { id: t.id, state: a?.state ?? "none",
      title: `${t.id}: ${a?.state ?? "no attempt"}${mapped}${tries > 1 && !mapped ? ` after ${tries} tries` : ""}${t.trigger_rule ? ` (trigger rule ${t.trigger_rule})` : ""}` };
  });
  const edges = page.tasks.flatMap((t) => t.upstream.map((u) => ({ from: u, to: t.id })));
  if (!page.tasks.length) return html`<p class="muted">No task has been seen in a run yet.</p>`;
  const note = page.structure === "observed"
    ? html`<p class="muted">Not built by meta: tasks as observed in runs; their dependencies are not known here.</p>` : "";
  return html`${note}<div class="scroll">${raw(graphSvg(nodes, edges, { label }))}</div>`;
}

function uiLink(run) {
  const url = run?.extra?.url;
  return typeof url === "string" && /^https?:\/\//.test(url) ? html` <a href="${url}" target="_blank" rel="noopener" title="open in the backend's own UI">UI ↗</a>` : "";
}

function runsTable(pipeline, backend, runs) {
  if (!runs.length) return html`<p class="muted">No run yet.</p>`;
  return html`<table class="runs"><thead><tr><th>run</th><th>state</th><th>started</th><th>took</th><th></th></tr></thead><tbody>
    ${runs.map((r) => raw(html`<tr data-run="${r.run_id}"><td><a href="${runHref(pipeline, backend, r.run_id)}">${r.run_id}</a></td>
      <td>${badge(r.state)}</td><td title="${when(r.started_at)}">${ago(r.started_at)}</td>
      <td>${duration(r.started_at, r.ended_at)}</td><td>${uiLink(r)}</td></tr>`))}</tbody></table>`;
}

const HISTORY_ROWS = 12; // verdicts listed before "every verdict"

/** One strip per backend: a square per judged slot, by deadline (oldest left), coloured by its verdict. */
function slaStrips(history) {
  const byBackend = new Map();
  const byDeadline = [...history].sort((a, b) => Date.parse(a.deadline ?? 0) - Date.parse(b.deadline ?? 0));
  for (const slot of byDeadline) (byBackend.get(slot.backend) ?? byBackend.set(slot.backend, []).get(slot.backend)).push(slot);
  return [...byBackend].map(([backend, slots]) => raw(html`<div class="strip" data-backend="${backend}"><span class="strip-name">${backend}</span>
    ${slots.map((s) => raw(html`<i class="sq s-${s.state}" title="${s.kind} ${s.state}: ${s.detail} (deadline ${when(s.deadline)})"></i>`))}</div>`));
}

function slaMarkup(page) {
  if (!page.sla.length && !page.sla_history.length) return html`<p class="muted">No SLA on this pipeline.</p>`;
  const cells = page.sla.map((c) => raw(html`<span>${c.backend}: ${badge(c.state)}
    ${c.next_deadline ? `next deadline ${ago(c.next_deadline)}` : ""}</span> `));
  const row = (s) => raw(html`<tr><td>${s.backend}</td><td>${s.kind}</td><td>${badge(s.state)}</td>
    <td title="${when(s.deadline)}">${when(s.deadline)}</td><td>${s.detail}</td></tr>`);
  const head = raw(`<thead><tr><th>backend</th><th>kind</th><th>state</th><th>deadline</th><th>detail</th></tr></thead>`);
  const first = page.sla_history.slice(0, HISTORY_ROWS).map(row);
  const rest = page.sla_history.slice(HISTORY_ROWS).map(row);
  return html`<div class="legend">${cells}</div>
    <div class="strips">${slaStrips(page.sla_history)}</div>
    <table class="runs">${head}<tbody>${first}</tbody></table>
    ${rest.length ? raw(html`<details><summary>every verdict (${page.sla_history.length})</summary>
      <table class="runs">${head}<tbody>${rest}</tbody></table></details>`) : ""}`;
}

function edgeText(e, other) {
  return html`<li><a href="${pipelineHref(other)}">${other}</a>${e.task ? ` (task ${e.task})` : ""}
    ${e.upstream_backend ? ` on ${e.upstream_backend}` : ""} · align ${e.align}${e.within ? ` within ${e.within}` : ""}
    · timeout ${e.timeout}</li>`;
}

function dependencyMarkup(deps) {
  const ups = deps.upstreams.map((e) => raw(edgeText(e, e.upstream)));
  const downs = deps.downstreams.map((e) => raw(edgeText(e, e.pipeline)));
  const waits = deps.waits.slice(0, 10).map((w) => raw(html`<tr><td>${w.backend}</td><td>${w.slot}</td><td>${badge(w.state)}</td>
    <td>${w.run_id ? raw(html`<a href="${runHref(w.pipeline, w.backend, w.run_id)}">${w.run_id}</a>`) : ""}</td>
    <td>${w.upstream_runs.map((u) => `${u.pipeline ?? ""} ${u.run_id ?? u.run ?? ""}`).join(", ")}</td></tr>`));
  return html`<div class="grid2"><div><b>waits for</b><ul>${ups.length ? ups : raw("<li class=muted>nothing</li>")}</ul></div>
    <div><b>starts</b><ul>${downs.length ? downs : raw("<li class=muted>nothing</li>")}</ul></div></div>
    ${waits.length ? raw(html`<table class="runs"><thead><tr><th>backend</th><th>slot</th><th>state</th><th>run started</th>
      <th>because of</th></tr></thead><tbody>${waits}</tbody></table>`) : ""}`;
}

export async function pipelinePage(main, live, pipelineId) {
  let chosen = null;
  const render = async () => {
    const page = await get(`/dashboard/pipelines/${encodeURIComponent(pipelineId)}`);
    const deps = page.dependencies;
    const withRuns = page.backends.filter((b) => b.runs.length);
    chosen ??= (withRuns[0] ?? page.backends[0])?.backend ?? null;
    const shown = page.backends.find((b) => b.backend === chosen);
    const picker = page.backends.length > 1 ? html`<select id="dag-backend" aria-label="colour by backend">
      ${page.backends.map((b) => raw(html`<option value="${b.backend}" ${b.backend === chosen ? "selected" : ""}>${b.backend}</option>`))}</select>` : "";
    const latest = shown?.runs[0];
    main.innerHTML = html`
      <h1>${page.id} <span class="muted">${page.team ? `· team ${page.team}` : ""}</span></h1>
      <section class="panel"><h2>Tasks ${latest ? raw(html`<span class="muted">· newest run on ${chosen}: ${badge(latest.state)}</span>`) : ""} ${picker}</h2>
        ${dagMarkup(page, shown?.attempts ?? [], `${page.id} tasks`)}</section>
      <h2>Runs per backend</h2>
      <div class="grid2">${page.backends.map((b) => raw(html`<section class="panel" data-backend="${b.backend}">
        <h2><span class="backend-tag k-${b.kind}">${b.kind}</span> ${b.backend}${b.external ? " · external" : ""}</h2>
        ${runsTable(page.id, b.backend, b.runs)}</section>`))}</div>
      ${page.backends.length ? "" : raw(html`<p class="muted">Not seen on any backend yet.</p>`)}
      <section class="panel"><h2>SLA</h2>${slaMarkup(page)}</section>
      <section class="panel"><h2>Dependencies</h2>${dependencyMarkup(deps)}</section>`;
    main.querySelector("#dag-backend")?.addEventListener("change", (e) => { chosen = e.target.value; render(); });
    main.dataset.updates = String(Number(main.dataset.updates || 0) + 1);
  };
  await render();
  live.onChange((batch) => {
    if (batch.some(({ data }) => data.pipeline_id === pipelineId || data.pipeline === pipelineId)) return render();
  });
}

export async function runPage(main, live, pipelineId, backend, runId) {
  const render = async () => {
    const path = `/runs/${encodeURIComponent(backend)}/${encodeURIComponent(pipelineId)}/${encodeURIComponent(runId)}`;
    const [detail, page] = await Promise.all([get(path), get(`/dashboard/pipelines/${encodeURIComponent(pipelineId)}`)]);
    const run = detail.run;
    const retried = detail.attempts.filter((a) => a.try_number > 1).length;
    main.innerHTML = html`
      <p><a href="${pipelineHref(pipelineId)}">← ${pipelineId}</a></p>
      <h1>Run ${run.run_id} <span class="muted">on ${backend}</span> ${badge(run.state)}</h1>
      <p class="muted">started ${when(run.started_at)} · took ${duration(run.started_at, run.ended_at)}
        ${run.logical_date ? `· logical date ${when(run.logical_date)}` : ""} · seen by ${run.source}${uiLink(run)}</p>
      <section class="panel"><h2>Tasks</h2>${dagMarkup(page, detail.attempts, `${pipelineId} run ${run.run_id}`)}</section>
      <section class="panel"><h2>Task attempts over time ${retried ? raw(html`<span class="muted">· ${retried} retries</span>`) : ""}</h2>
        <div class="scroll">${raw(ganttSvg(detail.attempts))}</div></section>
      <section class="panel"><h2>Attempts</h2><table class="runs"><thead><tr><th>task</th><th>try</th><th>state</th>
        <th>started</th><th>took</th><th></th></tr></thead><tbody>
        ${detail.attempts.map((a) => raw(html`<tr><td>${a.task_id}${a.map_index >= 0 ? `[${a.map_index}]` : ""}</td>
          <td>${a.try_number}</td><td>${badge(a.state)}</td><td>${when(a.started_at)}</td>
          <td>${duration(a.started_at, a.ended_at)}</td><td>${uiLink(a)}</td></tr>`))}</tbody></table></section>`;
    main.dataset.runState = run.state;
    main.dataset.updates = String(Number(main.dataset.updates || 0) + 1);
  };
  await render();
  live.onChange((batch) => {
    if (batch.some(({ data }) => data.pipeline_id === pipelineId && data.run_id === runId)) return render();
  });
}
