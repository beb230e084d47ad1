// The dashboard's entry: sign-in, the page for location.pathname, and one change stream shared by the pages.
import { get, signIn, signOut, subscribe, NotFound } from "./api.js";
import { boardPage } from "./board.js";
import { backendsPage, graphPage } from "./graph.js";
import { pipelinePage, runPage } from "./pipeline.js";
import { html } from "./util.js";

const main = document.getElementById("main");
const DEBOUNCE_MS = 400; // a burst of changes (a run and its tasks) redraws a page once

/** What a page may listen to: batches of changes from the stream (debounced), and leaving the page. */
function liveHub() {
  const listeners = [], leaving = [];
  let timer = null, pending = [];
  return {
    onChange(fn) { listeners.push(fn); },
    onLeave(fn) { leaving.push(fn); },
    emit(kind, data) {
      pending.push({ kind, data });
      clearTimeout(timer);
      timer = setTimeout(() => {
        const batch = pending;
        pending = [];
        for (const fn of listeners) Promise.resolve(fn(batch)).catch(showError);
      }, DEBOUNCE_MS);
    },
  };
}

function showError(error) {
  if (error instanceof NotFound) {
    main.innerHTML = html`<h1>Not found</h1><p class="muted">${error.message}. It may belong to another team.</p>`;
  } else if (error.message !== "not signed in") {
    main.innerHTML = html`<h1>Something went wrong</h1><p class="error">${error.message}</p>`;
  }
}

async function loginPage() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  const safeNext = next.startsWith("/") && !next.startsWith("//") ? next : "/";
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromLink) {
    history.replaceState(null, "", location.pathname + location.search); // the token leaves the address bar
    try {
      await signIn(fromLink);
      location.assign(safeNext);
      return;
    } catch (error) {
      main.innerHTML = html`<p class="error">${error.message}</p>`;
    }
  }
  main.insertAdjacentHTML("beforeend", html`<form class="login panel" id="login">
      <h1>Sign in</h1>
      <p class="muted">Paste an API token (<code>meta token create --role viewer --team TEAM</code>). It is kept in an
        HttpOnly cookie for 12 hours; you see what its team may see.</p>
      <input type="password" id="token" autocomplete="off" placeholder="meta_…" aria-label="API token" required>
      <button class="primary" type="submit">Sign in</button> <span class="error" id="login-error"></span>
    </form>`.toString());
  document.getElementById("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await signIn(document.getElementById("token").value.trim());
      location.assign(safeNext);
    } catch (error) {
      document.getElementById("login-error").textContent = error.message;
    }
  });
}

async function start() {
  const path = location.pathname;
  document.querySelectorAll("[data-nav]").forEach((a) => {
    const page = a.dataset.nav;
    a.classList.toggle("current", (page === "board" && path === "/") || path.startsWith(`/${page}`));
  });
  if (path === "/login") {
    main.innerHTML = "";
    return loginPage();
  }
  const me = await get("/session");
  const who = document.getElementById("who");
  who.innerHTML = html`${me.name} · ${me.role}${me.team ? ` of ${me.team}` : " (every team)"} · <a href="#" id="sign-out">sign out</a>`.toString();
  document.getElementById("sign-out").addEventListener("click", async (e) => {
    e.preventDefault();
    await signOut();
    location.assign("/login");
  });
  const live = liveHub();
  const indicator = document.getElementById("live");
  subscribe((kind, data) => live.emit(kind, data), (on) => {
    indicator.textContent = on ? "● live" : "○ reconnecting";
    indicator.classList.toggle("on", on);
    document.body.dataset.live = on ? "on" : "off";
  });
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return boardPage(main, live);
  if (parts[0] === "graph") return graphPage(main, live);
  if (parts[0] === "backends") return backendsPage(main, live);
  if (parts[0] === "pipelines" && parts.length === 2) return pipelinePage(main, live, parts[1]);
  if (parts[0] === "pipelines" && parts.length === 5 && parts[2] === "runs") return runPage(main, live, parts[1], parts[3], parts[4]);
  main.innerHTML = html`<h1>No such page</h1><p><a href="/">the SLA board</a></p>`.toString();
}

start().catch(showError).finally(() => { document.body.dataset.ready = "yes"; });
