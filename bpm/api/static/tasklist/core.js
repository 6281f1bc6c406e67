/* The tasklist: plain JavaScript on the public REST API (API.md), no framework, no build step.
 *
 * Every text from the server is put in the page with textContent (never innerHTML);
 * the diagram SVG is parsed as XML and imported without its <style> (the page's CSS
 * styles it). Views: #/tasks (my to-do list and the queues of my groups and roles),
 * #/processes (start one with its start form), #/instance/<id>.
 *
 * Classic scripts, loaded in order with defer by index.html (they share one global scope):
 * core.js (state, DOM helpers, the REST API, who am I), tasks.js, forms.js, processes.js,
 * instance.js, main.js (routing and polling; starts the page).
 */
"use strict";

const BASE = "/BPMREST/service/runtime";
const POLL_MS = 5000;
const PAGE_SIZES = [10, 20, 50];

const state = {
  user: "",
  token: "",
  identity: { groups: [], roles: [] },
  queue: { kind: "user", name: "" }, // the list shown: my to-do list, or a group's or role's queue
  sort: "priority",
  order: "desc",
  size: 20,
  start: 0,
  processKey: "",
  processes: [],
  autoRefresh: true,
  lastTasks: "",
  lastInstance: "",
  view: "",
};

/* -- DOM helpers --------------------------------------------------------------------------- */

/** An element with attributes and children; strings become text nodes (never markup). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    } else if (name === "text") {
      node.textContent = String(value);
    } else if (value === true) {
      node.setAttribute(name, "");
    } else {
      node.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace a node's children (null, undefined and false are left out, strings become text). */
function fill(node, ...children) {
  clear(node);
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

let uid = 0;
function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

function when(ms) {
  if (ms === null || ms === undefined) return "";
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toLocaleString();
}

/** An error line in place: role=alert so screen readers announce it. */
function showError(box, error) {
  clear(box);
  if (!error) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const parts = [error.message || String(error)];
  if (error.code) parts.push(`(${error.code}${error.status ? `, HTTP ${error.status}` : ""})`);
  if (error.requestId && error.status >= 500) parts.push(`request id ${error.requestId}`);
  box.append(el("strong", { text: "Error: " }), parts.join(" "));
  if (error.data && typeof error.data === "object" && !Array.isArray(error.data)) {
    const list = el("ul");
    for (const [field, messages] of Object.entries(error.data)) {
      list.append(el("li", { text: `${field}: ${[].concat(messages).join(" ")}` }));
    }
    if (list.childElementCount) box.append(list);
  }
}

function errorBox() {
  return el("div", { class: "error", role: "alert", hidden: true });
}

/* -- the REST API ---------------------------------------------------------------------------- */

class ApiError extends Error {
  constructor(status, code, message, data, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.data = data;
    this.requestId = requestId;
  }
}

function requestUrl(path, query) {
  const url = new URL(BASE + path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    for (const item of [].concat(value)) {
      if (item !== undefined && item !== null && item !== "") url.searchParams.append(name, String(item));
    }
  }
  return url;
}

function authHeaders() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

async function failure(response) {
  let envelope = null;
  try {
    envelope = await response.json();
  } catch (ignored) {
    envelope = null;
  }
  const requestId = response.headers.get("X-Request-Id");
  if (envelope && typeof envelope === "object" && envelope.error) {
    return new ApiError(response.status, envelope.error, envelope.message, envelope.data, requestId);
  }
  return new ApiError(response.status, `HTTP_${response.status}`, `The service answered ${response.status}.`, null, requestId);
}

/** One call; resolves to the envelope, rejects with an ApiError carrying the API's error and message. */
async function api(method, path, { query, body } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(requestUrl(path, query), init);
  } catch (error) {
    throw new ApiError(0, "NETWORK_ERROR", "The service cannot be reached.", null, null);
  }
  if (!response.ok) throw await failure(response);
  let envelope;
  try {
    envelope = await response.json();
  } catch (error) {
    throw new ApiError(response.status, "BAD_RESPONSE", "The service's answer is not JSON.", null, null);
  }
  if (!envelope || envelope.code !== 0) {
    throw new ApiError(response.status, envelope && envelope.error, envelope && envelope.message, envelope && envelope.data);
  }
  return envelope;
}

/** The acting user as a query parameter (omitted when a token says who we are and no name was given). */
function asUser() {
  return state.user ? { user: state.user } : {};
}

/* -- who am I ------------------------------------------------------------------------------- */

function tokenClaims(token) {
  try {
    const payload = token.split(".")[1];
    const text = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const claims = JSON.parse(text);
    return claims && typeof claims === "object" ? claims : {};
  } catch (error) {
    return {};
  }
}

function names(value) {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === "string") return value.split(/[\s,]+/).filter(Boolean);
  return [];
}

async function becomeUser(user, token) {
  state.user = (user || "").trim();
  state.token = (token || "").trim();
  sessionStorage.setItem("bpm.user", state.user);
  sessionStorage.setItem("bpm.token", state.token);
  const info = document.getElementById("who-info");
  state.identity = { groups: [], roles: [] };
  if (state.token && !state.user) {
    const claims = tokenClaims(state.token);
    state.user = typeof claims.sub === "string" ? claims.sub : "";
    document.getElementById("who-user").value = state.user;
  }
  if (state.token) {
    const claims = tokenClaims(state.token);
    state.identity = { groups: names(claims.groups), roles: names(claims.roles) };
  }
  if (state.user) {
    try {
      const envelope = await api("GET", `/identity/${encodeURIComponent(state.user)}`);
      const data = envelope.data || {};
      if (!state.token || (!state.identity.groups.length && !state.identity.roles.length)) {
        state.identity = { groups: names(data.groups), roles: names(data.roles) };
      }
    } catch (error) {
      clear(info).append(el("span", { class: "error-inline", text: `Cannot read ${state.user}'s groups: ${error.message}` }));
    }
  }
  renderWho();
  state.queue = { kind: "user", name: state.user };
  state.start = 0;
  state.lastTasks = "";
  route();
}

function renderWho() {
  const info = clear(document.getElementById("who-info"));
  if (!state.user && !state.token) {
    info.append("Pick a user to see their tasks.");
    return;
  }
  info.append(
    el("span", {}, "Signed in as ", el("strong", { text: state.user || "(token user)" })),
    " · groups: ",
    state.identity.groups.length ? state.identity.groups.join(", ") : "none",
    " · roles: ",
    state.identity.roles.length ? state.identity.roles.join(", ") : "none"
  );
}
