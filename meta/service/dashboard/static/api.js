// The API with the signed-in cookie; a browser that is not signed in goes to /login and comes back.

export class NotFound extends Error {}

export async function get(path) {
  const response = await fetch(`/api/v1${path}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) {
    const next = location.pathname + location.search;
    location.assign(`/login?next=${encodeURIComponent(next)}`);
    throw new Error("not signed in");
  }
  if (response.status === 404) throw new NotFound(await problem(response));
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await problem(response)}`);
  return response.json();
}

async function problem(response) {
  try {
    const body = await response.json();
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    return response.statusText;
  }
}

export async function signIn(token) {
  const response = await fetch("/api/v1/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }),
  });
  if (!response.ok) throw new Error(await problem(response));
  return response.json();
}

export async function signOut() {
  await fetch("/api/v1/session", { method: "DELETE", credentials: "same-origin" });
}

/** Calls onChange(kind, data) for each change the stream sends; reconnects by itself (EventSource). */
export function subscribe(onChange, onStatus) {
  const source = new EventSource("/api/v1/stream", { withCredentials: true });
  for (const kind of ["run", "task_attempt", "sla_slot", "dependency_wait"]) {
    source.addEventListener(kind, (event) => onChange(kind, JSON.parse(event.data)));
  }
  source.onopen = () => onStatus(true);
  source.onerror = () => onStatus(false);
  return source;
}
