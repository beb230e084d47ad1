// The cross-orchestrator dependency graph (pipelines as nodes, coloured by backend and by their newest run) and
// the backends' health.
import { get } from "./api.js";
import { graphSvg } from "./draw.js";
import { ago, badge, html, pipelineHref, raw } from "./util.js";

export async function graphPage(main, live) {
  const render = async () => {
    const [graph, board, backends] = await Promise.all([get("/dependencies"), get("/dashboard/board"), get("/backends")]);
    const kinds = new Map(backends.map((b) => [b.name, b.kind]));
    const cells = new Map();
    for (const team of board.teams) for (const p of team.pipelines) cells.set(p.id, p.cells);
    const ids = new Set(graph.edges.flatMap((e) => [e.upstream, e.pipeline]));
    const nodes = [...ids].sort().map((id) => {
      const mine = cells.get(id) ?? [];
      const newest = mine.filter((c) => c.last_run).sort((a, b) =>
        Date.parse(b.last_run.started_at ?? 0) - Date.parse(a.last_run.started_at ?? 0))[0];
      const where = [...new Set(mine.map((c) => c.backend))];
      return { id, label: id, sub: where.join(" · ") || "not seen on a backend yet", state: newest?.last_run.state ?? "none",
        kind: kinds.get(where[0]) ?? "", href: pipelineHref(id),
        title: `${id} on ${where.join(", ") || "no backend yet"}: newest run ${newest?.last_run.state ?? "none"}` };
    });
    const edges = graph.edges.map((e) => ({ from: e.upstream, to: e.pipeline,
      label: `${e.pipeline} waits for ${e.upstream}${e.task ? ` task ${e.task}` : ""} (${e.align})` }));
    main.innerHTML = html`<h1>Dependencies across orchestrators</h1>
      <div class="legend"><span class="backend-tag k-airflow">airflow</span><span class="backend-tag k-prefect">prefect</span>
        <span class="backend-tag k-local">local</span> border: backend · fill: newest run
        ${badge("success")}${badge("running")}${badge("failed")}${badge("none", "no run")}</div>
      <section class="panel scroll">${graph.edges.length ? raw(graphSvg(nodes, edges, { label: "dependency graph" }))
        : raw(html`<p class="muted">No pipeline has depends_on yet.</p>`)}</section>`;
    main.dataset.updates = String(Number(main.dataset.updates || 0) + 1);
  };
  await render();
  live.onChange(() => render());
}

export async function backendsPage(main, live) {
  const render = async () => {
    const backends = await get("/backends");
    main.innerHTML = html`<h1>Backends</h1><table><thead><tr><th>backend</th><th>kind</th><th>health</th><th>url</th>
      <th>last success</th><th>lag</th><th>events</th><th>last error</th></tr></thead><tbody>
      ${backends.map((b) => raw(html`<tr data-backend="${b.name}"><td>${b.name}</td>
        <td><span class="backend-tag k-${b.kind}">${b.kind}</span></td>
        <td>${badge({ ok: "met", degraded: "at_risk", unreachable: "missed" }[b.health] ?? "unknown", b.health)}</td>
        <td>${b.url}</td><td>${ago(b.last_success_at)}</td>
        <td>${b.lag_seconds == null ? "" : `${b.lag_seconds.toFixed(1)}s`}</td><td>${b.events_total}</td>
        <td class="muted">${b.last_error ?? ""}</td></tr>`))}</tbody></table>`;
  };
  await render();
  const timer = setInterval(render, 10000); // health is not on the change stream: it is read again every 10 s
  live.onLeave(() => clearInterval(timer));
}

