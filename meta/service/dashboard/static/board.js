// The SLA board: team -> pipeline -> one cell per backend, counts at the top, filters; live from the change stream.
import { get } from "./api.js";
import { ago, badge, esc, html, pipelineHref, raw, runHref } from "./util.js";

const FIRST_ROWS = 80; // rows drawn with the page (more than a laptop screen holds)
const SLICE_ROWS = 250; // rows added per slice after that
const STATES = ["missed", "at_risk", "unknown", "met", "pending", "none"];
const LABELS = { missed: "missed", at_risk: "at risk", unknown: "unknown", met: "met", pending: "no verdict yet", none: "no SLA" };

export async function boardPage(main, live) {
  const filters = { text: "", team: "", backend: "", state: "" };
  let board = await get("/dashboard/board");
  main.innerHTML = html`
    <h1>SLA board</h1>
    <div class="counts" id="counts"></div>
    <div class="filters">
      <input type="search" id="f-text" placeholder="filter pipelines…" aria-label="filter pipelines">
      <select id="f-team" aria-label="team"></select>
      <select id="f-backend" aria-label="backend"></select>
      <select id="f-state" aria-label="SLA state"></select>
      <span class="muted" id="as-of"></span>
    </div>
    <table class="board" id="board"></table>`;
  const $ = (id) => main.querySelector(`#${id}`);
  const options = (select, all, values, label = (v) => v) => {
    select.innerHTML = html`<option value="">${all}</option>${values.map((v) => raw(html`<option value="${v}">${label(v)}</option>`))}`;
  };
  const fillSelects = () => {
    options($("f-team"), "every team", board.teams.map((t) => t.team ?? ""), (t) => t || "(no team)");
    options($("f-backend"), "every backend", board.backends);
    options($("f-state"), "every state", STATES, (s) => LABELS[s]);
    $("f-team").value = filters.team; $("f-backend").value = filters.backend; $("f-state").value = filters.state;
  };
  let generation = 0;
  const render = () => {
    renderCounts($("counts"), board, filters, render);
    $("f-state").value = filters.state;
    // The first screenful at once, the rest in slices between frames: a board of 3,000 cells paints its top
    // within the first frame and stays scrollable and filterable while the rest arrives.
    const { head, rows } = tableMarkup(board, filters);
    const mine = ++generation;
    $("board").innerHTML = `${head}<tbody>${rows.slice(0, FIRST_ROWS).join("")}</tbody>`;
    const tbody = $("board").querySelector("tbody");
    const more = (from) => {
      if (mine !== generation || from >= rows.length) {
        if (mine === generation) main.dataset.rows = "all";
        return;
      }
      tbody.insertAdjacentHTML("beforeend", rows.slice(from, from + SLICE_ROWS).join(""));
      setTimeout(() => more(from + SLICE_ROWS), 0);
    };
    main.dataset.rows = "partial";
    more(FIRST_ROWS);
    $("as-of").textContent = `as of ${new Date(board.as_of).toLocaleTimeString()}`;
    main.dataset.asOf = board.as_of;
  };
  fillSelects();
  render();
  requestAnimationFrame(() => performance.mark("meta:board-rendered")); // the benchmark reads it: first paint
  $("f-text").addEventListener("input", (e) => { filters.text = e.target.value.trim().toLowerCase(); render(); });
  for (const key of ["team", "backend", "state"]) {
    $(`f-${key}`).addEventListener("change", (e) => { filters[key] = e.target.value; render(); });
  }
  live.onChange(async () => {
    board = await get("/dashboard/board");
    fillSelects();
    render();
    main.dataset.updates = String(Number(main.dataset.updates || 0) + 1);
  });
}

function renderCounts(container, board, filters, render) {
  container.innerHTML = STATES.filter((s) => board.counts[s] || s === "missed" || s === "at_risk" || s === "met")
    .map((s) => html`<button class="count ${filters.state === s ? "active" : ""}" data-state="${s}">
      <b class="n-${s}">${board.counts[s] ?? 0}</b>${LABELS[s]}</button>`).join("");
  container.querySelectorAll("button").forEach((button) => button.addEventListener("click", () => {
    filters.state = filters.state === button.dataset.state ? "" : button.dataset.state;
    render();
  }));
}

function visible(pipeline, team, filters) {
  if (filters.team !== "" && (team ?? "") !== filters.team) return null;
  if (filters.text && !pipeline.id.toLowerCase().includes(filters.text)) return null;
  const cells = pipeline.cells.filter((c) => !filters.backend || c.backend === filters.backend);
  if (!cells.length) return null;
  if (filters.state && !cells.some((c) => c.sla === filters.state)) return null;
  return cells;
}

function tableMarkup(board, filters) {
  const backends = filters.backend ? [filters.backend] : board.backends;
  const head = html`<thead><tr><th>pipeline</th>${backends.map((b) => raw(html`<th>${b}</th>`))}</tr></thead>`;
  const body = [];
  let shown = 0;
  for (const team of board.teams) {
    const rows = [];
    for (const pipeline of team.pipelines) {
      const cells = visible(pipeline, team.team, filters);
      if (!cells) continue;
      shown++;
      const byBackend = new Map(cells.map((c) => [c.backend, c]));
      rows.push(`<tr data-pipeline="${esc(pipeline.id)}"><td><a href="${esc(pipelineHref(pipeline.id))}">${esc(pipeline.id)}</a></td>`
        + backends.map((b) => cellMarkup(pipeline.id, byBackend.get(b))).join("") + "</tr>");
    }
    if (rows.length) {
      body.push(html`<tr class="team"><th colspan="${backends.length + 1}">${team.team ?? "(no team)"} · ${rows.length} pipelines</th></tr>`.toString());
      body.push(...rows);
    }
  }
  if (!shown) body.push(html`<tr><td colspan="${backends.length + 1}" class="muted">No pipeline matches.</td></tr>`.toString());
  return { head: head.toString(), rows: body };
}

function cellMarkup(pipeline, cell) {
  if (!cell) return `<td class="cell muted">–</td>`;
  const run = cell.last_run;
  const runPart = run
    ? html`<div class="sub">last run <a href="${runHref(pipeline, cell.backend, run.run_id)}">${badge(run.state)}</a>
        ${ago(run.ended_at || run.started_at)}</div>`
    : html`<div class="sub">no run yet</div>`;
  const next = cell.next_deadline ? html`<div class="sub">next deadline ${ago(cell.next_deadline)}</div>` : "";
  return html`<td class="cell" data-backend="${cell.backend}" data-sla="${cell.sla}" title="${cell.detail}">
    ${badge(cell.sla, LABELS[cell.sla] ?? cell.sla)}${cell.missed_in_window > 1 ? ` ×${cell.missed_in_window}` : ""}
    ${runPart}${next}</td>`.toString();
}
