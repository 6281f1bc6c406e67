/* The tasklist: plain JavaScript on the public REST API (API.md), no framework, no build step.
 *
 * Every text from the server is put in the page with textContent (never innerHTML);
 * the diagram SVG is parsed as XML and imported without its <style> (the page's CSS
 * styles it). Views: #/tasks (my to-do list and the queues of my groups and roles),
 * #/processes (start one with its start form), #/instance/<id>.
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

/* -- task lists ----------------------------------------------------------------------------- */

function queues() {
  const list = [{ kind: "user", name: state.user, label: "My tasks" }];
  for (const group of state.identity.groups) list.push({ kind: "group", name: group, label: `Group ${group}` });
  for (const role of state.identity.roles) list.push({ kind: "role", name: role, label: `Role ${role}` });
  return list;
}

function queueQuery(queue) {
  if (queue.kind === "user") return queue.name ? { user: queue.name } : {};
  return { [queue.kind]: queue.name };
}

async function renderTasksView(main) {
  const view = el("section", { class: "view", "aria-labelledby": "tasks-title" });
  const controls = el("div", { class: "controls" });
  const sortId = nextId("sort");
  const orderId = nextId("order");
  const processId = nextId("process");
  const sizeId = nextId("size");
  const sort = el(
    "select",
    { id: sortId, on: { change: () => { state.sort = sort.value; state.start = 0; refreshTasks(true); } } },
    ["priority", "dueDate", "createTime"].map((value) =>
      el("option", { value, selected: state.sort === value }, { priority: "Priority", dueDate: "Due date", createTime: "Created" }[value])
    )
  );
  const order = el(
    "select",
    { id: orderId, on: { change: () => { state.order = order.value; state.start = 0; refreshTasks(true); } } },
    el("option", { value: "desc", selected: state.order === "desc" }, "Descending"),
    el("option", { value: "asc", selected: state.order === "asc" }, "Ascending")
  );
  const process = el("select", {
    id: processId,
    "data-role": "process-filter",
    on: { change: () => { state.processKey = process.value; state.start = 0; refreshTasks(true); } },
  });
  const size = el(
    "select",
    { id: sizeId, on: { change: () => { state.size = Number(size.value); state.start = 0; refreshTasks(true); } } },
    PAGE_SIZES.map((value) => el("option", { value, selected: state.size === value }, String(value)))
  );
  const auto = el("input", {
    type: "checkbox",
    id: nextId("auto"),
    checked: state.autoRefresh,
    on: { change: () => { state.autoRefresh = auto.checked; } },
  });
  controls.append(
    el("div", { class: "field" }, el("label", { for: sortId, text: "Sort by" }), sort),
    el("div", { class: "field" }, el("label", { for: orderId, text: "Order" }), order),
    el("div", { class: "field" }, el("label", { for: processId, text: "Process" }), process),
    el("div", { class: "field" }, el("label", { for: sizeId, text: "Per page" }), size),
    el("div", { class: "field check" }, auto, el("label", { for: auto.id, text: "Refresh by itself" })),
    el("button", { type: "button", "data-action": "refresh", on: { click: () => refreshTasks(true) } }, "Refresh now")
  );
  view.append(
    el("h2", { id: "tasks-title", text: "Tasks" }),
    el("nav", { "aria-label": "Task lists" }, el("ul", { class: "queues", id: "queues" })),
    controls,
    el("p", { id: "tasks-status", class: "status", "aria-live": "polite", tabindex: "-1" }),
    el("div", { id: "tasks-error", class: "error", role: "alert", hidden: true }),
    el("ul", { id: "task-list", class: "cards", "aria-labelledby": "tasks-title" }),
    el(
      "div",
      { class: "pager" },
      el("button", { type: "button", id: "page-prev", on: { click: () => page(-1) } }, "Previous page"),
      el("span", { id: "page-info", "aria-live": "polite" }),
      el("button", { type: "button", id: "page-next", on: { click: () => page(1) } }, "Next page")
    )
  );
  main.append(view);
  fillProcessFilter(process);
  await refreshTasks(true);
}

async function loadProcesses() {
  try {
    state.processes = (await api("GET", "/processes")).data || [];
  } catch (error) {
    state.processes = [];
  }
  return state.processes;
}

async function fillProcessFilter(select) {
  const processes = state.processes.length ? state.processes : await loadProcesses();
  clear(select).append(el("option", { value: "" }, "All processes"));
  for (const definition of processes) {
    select.append(el("option", { value: definition.key, selected: state.processKey === definition.key }, definition.name || definition.key));
  }
}

function page(direction) {
  state.start = Math.max(0, state.start + direction * state.size);
  refreshTasks(true);
}

async function refreshQueueCounts() {
  const list = document.getElementById("queues");
  if (!list) return;
  const entries = queues();
  const counts = await Promise.all(
    entries.map(async (queue) => {
      if (queue.kind === "user" && !queue.name && !state.token) return null;
      try {
        const query = { ...queueQuery(queue), size: 1, processKey: state.processKey || undefined };
        return (await api("GET", "/tasks", { query })).totalRecordCount;
      } catch (error) {
        return null;
      }
    })
  );
  // keyed update: buttons stay (focus, references), their counts and pressed state change
  const existing = new Map([...list.querySelectorAll("button[data-queue]")].map((b) => [b.dataset.queue, b.parentNode]));
  const keys = new Set();
  let previous = null;
  entries.forEach((queue, index) => {
    const key = `${queue.kind}:${queue.name}`;
    keys.add(key);
    const current = state.queue.kind === queue.kind && state.queue.name === queue.name;
    const count = counts[index] === null ? "–" : String(counts[index]);
    let item = existing.get(key);
    if (!item) {
      const button = el(
        "button",
        { type: "button", "data-queue": key, on: { click: () => { state.queue = queue; state.start = 0; refreshTasks(true); } } },
        queue.label,
        " ",
        el("span", { class: "count" })
      );
      item = el("li", {}, button);
    }
    const button = item.firstChild;
    button.setAttribute("aria-pressed", current ? "true" : "false");
    const badge = button.querySelector(".count");
    badge.textContent = count;
    badge.setAttribute("aria-label", `${count} tasks`);
    const position = previous ? previous.nextSibling : list.firstChild;
    if (position !== item) list.insertBefore(item, position);
    previous = item;
  });
  for (const [key, item] of existing) if (!keys.has(key)) item.remove();
}

async function refreshTasks(force) {
  const listNode = document.getElementById("task-list");
  if (!listNode) return;
  const status = document.getElementById("tasks-status");
  const errorNode = document.getElementById("tasks-error");
  refreshQueueCounts();
  if (!state.user && !state.token) {
    status.textContent = "Pick a user first.";
    return;
  }
  const query = {
    ...queueQuery(state.queue),
    sort: state.sort,
    order: state.order,
    start: state.start,
    size: state.size,
    processKey: state.processKey || undefined,
  };
  let envelope;
  try {
    envelope = await api("GET", "/tasks", { query });
  } catch (error) {
    showError(errorNode, error);
    return;
  }
  showError(errorNode, null);
  const all = envelope.data || [];
  // a service without the processKey query filter: filter the page here, and say so
  const tasks = state.processKey ? all.filter((t) => String(t.definitionId).split(":")[0] === state.processKey) : all;
  const filteredHere = tasks.length !== all.length;
  const total = envelope.totalRecordCount;
  const signature = JSON.stringify([tasks, total, state.start]);
  if (!force && signature === state.lastTasks) return; // nothing changed: leave the page as it is
  state.lastTasks = signature;
  const label = queues().find((q) => q.kind === state.queue.kind && q.name === state.queue.name);
  status.textContent = `${label ? label.label : "Tasks"}: ${total} task${total === 1 ? "" : "s"}.`
    + (filteredHere ? ` ${tasks.length} of this page's ${all.length} belong to the chosen process.` : "");
  document.getElementById("page-info").textContent = total
    ? `${state.start + 1}–${Math.min(state.start + state.size, total)} of ${total}`
    : "no tasks";
  document.getElementById("page-prev").disabled = state.start === 0;
  document.getElementById("page-next").disabled = state.start + state.size >= total;
  updateTaskCards(listNode, tasks);
}

/** Keyed update: cards of tasks still listed are kept (open forms, focus), their text refreshed. */
function updateTaskCards(listNode, tasks) {
  const existing = new Map([...listNode.children].map((li) => [li.dataset.taskId, li]));
  const wanted = new Set(tasks.map((t) => t.id));
  for (const [id, li] of existing) {
    if (!wanted.has(id) && !li.querySelector("form[data-open]")) li.remove();
  }
  let previous = null;
  for (const task of tasks) {
    let li = existing.get(task.id);
    if (!li) li = el("li", { class: "card", "data-task-id": task.id });
    const json = JSON.stringify(task);
    if (li.dataset.json !== json) {
      li.dataset.json = json;
      renderTaskCard(li, task);
    }
    const position = previous ? previous.nextSibling : listNode.firstChild;
    if (position !== li) listNode.insertBefore(li, position);
    previous = li;
  }
  if (!tasks.length && !listNode.childElementCount) {
    listNode.append(el("li", { class: "empty", text: "No tasks here." }));
  } else {
    for (const empty of listNode.querySelectorAll("li.empty")) if (tasks.length) empty.remove();
  }
}

function renderTaskCard(li, task) {
  const focusedAction = li.contains(document.activeElement) && document.activeElement.dataset
    ? document.activeElement.dataset.action
    : null;
  const titleId = `task-${task.id}-title`;
  li.setAttribute("aria-labelledby", titleId);
  let summary = li.querySelector(".summary");
  let actions = li.querySelector(".actions");
  let errorNode = li.querySelector(".error");
  if (!summary) {
    summary = el("div", { class: "summary" });
    actions = el("div", { class: "actions" });
    errorNode = errorBox();
    li.append(summary, actions, errorNode, el("div", { class: "form-slot" }));
  }
  fill(
    summary,
    el("h3", { id: titleId, class: "task-name", text: task.name }),
    el("p", { class: "task-process" }, task.processName, " · ", el("a", { href: `#/instance/${encodeURIComponent(task.instanceId)}` }, "open the instance")),
    task.description ? el("p", { class: "task-description", text: task.description }) : null,
    el(
      "dl",
      { class: "facts" },
      el("dt", { text: "Priority" }), el("dd", { text: task.priority }),
      el("dt", { text: "Due" }), el("dd", { text: task.dueDate ? when(task.dueDate) : "—" }),
      el("dt", { text: "Created" }), el("dd", { text: when(task.createTime) }),
      el("dt", { text: "Assignee" }), el("dd", { class: "assignee", text: task.assignee || "nobody (open)" }),
      el("dt", { text: "Candidates" }),
      el("dd", { text: [...(task.candidateUsers || []), ...(task.candidateGroups || []).map((g) => `group ${g}`), ...(task.candidateRoles || []).map((r) => `role ${r}`)].join(", ") || "—" })
    )
  );
  clear(actions);
  const mine = task.assignee && task.assignee === state.user;
  if (!task.assignee) {
    actions.append(actionButton("claim", `Claim ${task.name}`, "Claim", () => taskAction(li, task, "claim")));
  }
  if (mine) {
    actions.append(actionButton("unclaim", `Unclaim ${task.name}`, "Unclaim", () => taskAction(li, task, "unclaim")));
  }
  if (mine || !task.assignee) {
    actions.append(actionButton("complete", `Complete ${task.name}`, "Complete…", () => openCompleteForm(li, task)));
  }
  if (focusedAction) {
    const again = actions.querySelector(`[data-action="${focusedAction}"]`);
    (again || li.querySelector("h3")).focus?.();
  }
}

function actionButton(action, label, text, handler) {
  return el("button", { type: "button", "data-action": action, "aria-label": label, on: { click: handler } }, text);
}

async function taskAction(li, task, action) {
  const errorNode = li.querySelector(".error");
  const buttons = li.querySelectorAll(".actions button");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await api("POST", `/tasks/${encodeURIComponent(task.id)}/${action}`, { query: asUser() });
    showError(errorNode, null);
    announce(`${action === "claim" ? "Claimed" : "Unclaimed"} ${task.name}.`);
    state.lastTasks = "";
    await refreshTasks(true);
  } catch (error) {
    showError(errorNode, error);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

function announce(text) {
  const status = document.getElementById("tasks-status") || document.getElementById("view-status");
  if (status) status.textContent = text;
}

/* -- forms ---------------------------------------------------------------------------------- */

/** The form of a task or a start event (API.md "Forms and queries"); null where there is none. */
async function loadForm(path) {
  try {
    const form = (await api("GET", path)).data;
    return form && Array.isArray(form.fields) && form.fields.length ? form : null;
  } catch (error) {
    if (error.status === 404 || error.status === 405) return null;
    throw error;
  }
}

function fieldInput(field, id) {
  const type = String(field.type || "string").toLowerCase();
  const value = field.defaultValue;
  if (type === "boolean") {
    return el("input", { type: "checkbox", id, name: field.id, checked: value === true || value === "true" });
  }
  if (type === "enum") {
    return el(
      "select",
      { id, name: field.id, required: Boolean(field.required) },
      field.required ? null : el("option", { value: "" }, "—"),
      (field.values || []).map((option) => el("option", { value: option.id, selected: String(value) === String(option.id) }, option.name || option.id))
    );
  }
  const attrs = { id, name: field.id, required: Boolean(field.required), value: value === null || value === undefined ? "" : String(value) };
  if (type === "long" || type === "integer" || type === "number" || type === "double") {
    return el("input", { ...attrs, type: "number", step: type === "double" || type === "number" ? "any" : "1" });
  }
  if (type === "date") return el("input", { ...attrs, type: "text", placeholder: "yyyy-mm-dd", inputmode: "numeric" });
  return el("input", { ...attrs, type: "text" });
}

/** A form from form fields: returns {node, read()} where read() returns variables or throws per field. */
function fieldsForm(fields) {
  const rows = fields.map((field) => {
    const id = nextId("field");
    const input = fieldInput(field, id);
    const message = el("span", { class: "field-error", id: `${id}-error`, hidden: true });
    input.setAttribute("aria-describedby", message.id);
    const label = el("label", { for: id }, field.label || field.id, field.required ? el("span", { class: "required", "aria-hidden": "true" }, " *") : null);
    const wrapper = el("div", { class: `field${input.type === "checkbox" ? " check" : ""}`, "data-field": field.id }, input.type === "checkbox" ? [input, label] : [label, input], message);
    return { field, input, message, wrapper };
  });
  return {
    node: el("div", { class: "form-fields" }, rows.map((r) => r.wrapper)),
    read() {
      const values = {};
      let bad = 0;
      for (const { field, input, message } of rows) {
        const type = String(field.type || "string").toLowerCase();
        let problem = "";
        let value;
        if (type === "boolean") value = input.checked;
        else if (input.value === "") {
          if (field.required) problem = "Required.";
          value = undefined;
        } else if (["long", "integer"].includes(type)) {
          value = Number(input.value);
          if (!Number.isInteger(value)) problem = "A whole number is needed.";
        } else if (["double", "number"].includes(type)) {
          value = Number(input.value);
          if (!Number.isFinite(value)) problem = "A number is needed.";
        } else value = input.value;
        fieldMessage(input, message, problem);
        if (problem) bad += 1;
        if (value !== undefined) values[field.id] = value;
      }
      if (bad) throw new ApiError(400, "FORM_INVALID", `${bad} field${bad === 1 ? " needs" : "s need"} attention.`);
      return values;
    },
    showServerErrors(data) {
      for (const { field, input, message } of rows) {
        const messages = data && data[field.id];
        if (messages) fieldMessage(input, message, [].concat(messages).join(" "));
      }
    },
  };
}

/** A field's message; it goes away as soon as the user changes the field. */
function fieldMessage(input, message, problem) {
  if (problem && !input.dataset.watched) {
    input.dataset.watched = "true";
    const reset = () => fieldMessage(input, message, "");
    input.addEventListener("input", reset);
    input.addEventListener("change", reset);
  }
  message.hidden = !problem;
  message.textContent = problem || "";
  if (problem) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

/** The variable editor: one row per variable (name, JSON value), rows can be added. */
function variablesEditor(variables, legend) {
  const rows = [];
  const body = el("div", { class: "vars" });
  const helpId = nextId("vars-help");
  const fieldset = el(
    "fieldset",
    { class: "vars-editor" },
    el("legend", { text: legend }),
    el("p", { class: "help", id: helpId, text: 'Values are JSON: true, 20, "text" or {"room": "Everest"}.' }),
    body
  );
  function addRow(name, value, fixed) {
    const nameId = nextId("var-name");
    const valueId = nextId("var-value");
    const nameInput = el("input", { id: nameId, type: "text", value: name, readonly: fixed, spellcheck: "false", "data-role": "var-name" });
    const text = value === undefined ? "" : JSON.stringify(value, null, 2);
    const valueInput = el("textarea", { id: valueId, rows: Math.min(6, Math.max(1, text.split("\n").length)), spellcheck: "false", "data-role": "var-value" });
    valueInput.value = text;
    const message = el("span", { class: "field-error", id: `${valueId}-error`, hidden: true });
    valueInput.setAttribute("aria-describedby", `${helpId} ${message.id}`);
    const row = el(
      "div",
      { class: "var-row" },
      el("div", { class: "field" }, el("label", { for: nameId, text: "Name" }), nameInput),
      el("div", { class: "field grow" }, el("label", { for: valueId, text: "Value (JSON)" }), valueInput, message)
    );
    rows.push({ nameInput, valueInput, message, original: text });
    body.append(row);
    return nameInput;
  }
  for (const [name, value] of Object.entries(variables || {})) addRow(name, value, true);
  if (!rows.length) addRow("", undefined, false);
  fieldset.append(el("button", { type: "button", "data-action": "add-variable", on: { click: () => addRow("", undefined, false).focus() } }, "Add a variable"));
  return {
    node: fieldset,
    read() {
      const values = {};
      let bad = 0;
      for (const { nameInput, valueInput, message, original } of rows) {
        const name = nameInput.value.trim();
        const text = valueInput.value.trim();
        let problem = "";
        if (!name && !text) continue;
        if (!name) problem = "A value needs a name.";
        else if (text === original.trim() && nameInput.readOnly) continue; // unchanged
        else if (!text) problem = "Give a JSON value (or leave both empty).";
        else {
          try {
            values[name] = JSON.parse(text);
          } catch (error) {
            problem = "Not valid JSON: put text in double quotes.";
          }
        }
        fieldMessage(valueInput, message, problem);
        if (problem) bad += 1;
      }
      if (bad) throw new ApiError(400, "VALIDATION_ERROR", `${bad} value${bad === 1 ? " is" : "s are"} not valid.`);
      return values;
    },
    showServerErrors() {},
  };
}

async function openCompleteForm(li, task) {
  const slot = li.querySelector(".form-slot");
  const errorNode = li.querySelector(".error");
  if (slot.firstChild) {
    slot.querySelector("input, select, textarea, button")?.focus();
    return;
  }
  let editor;
  try {
    const form = await loadForm(`/tasks/${encodeURIComponent(task.id)}/form`);
    if (form) editor = fieldsForm(form.fields);
    else {
      const variables = (await api("POST", `/tasks/${encodeURIComponent(task.id)}/variables`, { body: {} })).data;
      editor = variablesEditor(variables, "Variables this task sees (change or add; unchanged ones are not sent)");
    }
  } catch (error) {
    showError(errorNode, error);
    return;
  }
  showError(errorNode, null);
  const formError = errorBox();
  const form = el(
    "form",
    { class: "complete-form", "data-open": "true", novalidate: true, "aria-label": `Complete ${task.name}` },
    editor.node,
    formError,
    el("div", { class: "actions" },
      el("button", { type: "submit", "data-action": "submit-complete" }, "Complete the task"),
      el("button", { type: "button", "data-action": "cancel", on: { click: () => { clear(slot); li.querySelector('[data-action="complete"]')?.focus(); } } }, "Cancel"))
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let variables;
    try {
      variables = editor.read();
    } catch (error) {
      showError(formError, error);
      form.querySelector('[aria-invalid="true"]')?.focus();
      return;
    }
    const submit = form.querySelector('[type="submit"]');
    submit.disabled = true;
    try {
      await api("POST", `/tasks/${encodeURIComponent(task.id)}/complete`, { query: asUser(), body: variables });
      clear(slot);
      announce(`Completed ${task.name}.`);
      state.lastTasks = "";
      await refreshTasks(true);
      document.getElementById("tasks-status")?.focus?.();
    } catch (error) {
      showError(formError, error);
      editor.showServerErrors(error.data);
    } finally {
      submit.disabled = false;
    }
  });
  slot.append(form);
  form.querySelector("input:not([readonly]), select, textarea, button")?.focus();
}

/* -- processes ------------------------------------------------------------------------------ */

async function renderProcessesView(main) {
  const list = el("ul", { class: "cards", id: "process-list" });
  const errorNode = errorBox();
  main.append(
    el("section", { class: "view", "aria-labelledby": "processes-title" },
      el("h2", { id: "processes-title", text: "Start a process" }),
      el("p", { id: "view-status", class: "status", "aria-live": "polite" }),
      errorNode,
      list)
  );
  let processes;
  try {
    processes = (await api("GET", "/processes")).data || [];
    state.processes = processes;
  } catch (error) {
    showError(errorNode, error);
    return;
  }
  if (!processes.length) list.append(el("li", { class: "empty", text: "No process is deployed." }));
  for (const definition of processes) {
    const titleId = nextId("process");
    const slot = el("div", { class: "form-slot" });
    const picture = el("div", { class: "diagram", hidden: true, role: "group", "aria-label": `Diagram of ${definition.name || definition.key}` });
    const cardError = errorBox();
    const li = el(
      "li",
      { class: "card", "aria-labelledby": titleId, "data-process-key": definition.key },
      el("h3", { id: titleId, text: definition.name || definition.key }),
      el("p", { class: "task-process", text: `${definition.key} · version ${definition.version}` }),
      el("div", { class: "actions" },
        el("button", { type: "button", "data-action": "start", "aria-label": `Start ${definition.name || definition.key}`, on: { click: () => openStartForm(definition, slot, cardError) } }, "Start…"),
        el("button", { type: "button", "data-action": "diagram", "aria-expanded": "false", on: { click: (event) => toggleDiagram(event.currentTarget, picture, definition) } }, "Diagram")),
      cardError,
      picture,
      slot
    );
    list.append(li);
  }
}

async function toggleDiagram(button, picture, definition) {
  const open = button.getAttribute("aria-expanded") !== "true";
  button.setAttribute("aria-expanded", open ? "true" : "false");
  picture.hidden = !open;
  if (open && !picture.firstChild) {
    await loadDiagram(picture, `/processes/${encodeURIComponent(definition.key)}/diagram.svg?version=${definition.version}`);
  }
}

async function openStartForm(definition, slot, cardError) {
  if (slot.firstChild) {
    slot.querySelector("input, select, textarea, button")?.focus();
    return;
  }
  let editor;
  try {
    const form = await loadForm(`/processes/${encodeURIComponent(definition.key)}/form`);
    editor = form ? fieldsForm(form.fields) : variablesEditor({}, "Start variables (the business object)");
  } catch (error) {
    showError(cardError, error);
    return;
  }
  const keyId = nextId("business-key");
  const businessKey = el("input", { id: keyId, type: "text", maxlength: 200 });
  const formError = errorBox();
  const result = el("p", { class: "status", "aria-live": "polite" });
  const form = el(
    "form",
    { class: "start-form", "data-open": "true", novalidate: true, "aria-label": `Start ${definition.name || definition.key}` },
    editor.node,
    el("div", { class: "field" }, el("label", { for: keyId, text: "Business key (optional)" }), businessKey),
    formError,
    el("div", { class: "actions" },
      el("button", { type: "submit", "data-action": "submit-start" }, "Start the process"),
      el("button", { type: "button", on: { click: () => clear(slot) } }, "Cancel")),
    result
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let variables;
    try {
      variables = editor.read();
    } catch (error) {
      showError(formError, error);
      return;
    }
    const body = { uniqueId: definition.key, object: variables };
    if (businessKey.value.trim()) body.businessKey = businessKey.value.trim();
    try {
      const envelope = await api("POST", "/process/start", { query: asUser(), body });
      showError(formError, null);
      clear(result).append("Started: ", el("a", { href: `#/instance/${encodeURIComponent(envelope.data)}`, "data-role": "started-instance" }, `instance ${envelope.data}`));
      result.querySelector("a").focus();
    } catch (error) {
      showError(formError, error);
      editor.showServerErrors(error.data);
    }
  });
  slot.append(form);
  form.querySelector("input:not([readonly]), select, textarea")?.focus();
}

/* -- an instance ---------------------------------------------------------------------------- */

/** Fetch a diagram (with the token) and put it in ``container`` as inline SVG. */
async function loadDiagram(container, path) {
  const errorNode = container.querySelector(".error") || errorBox();
  let response;
  try {
    response = await fetch(requestUrl(path), {
      headers: { Accept: "image/svg+xml", ...authHeaders() },
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (error) {
    showError(errorNode, new ApiError(0, "NETWORK_ERROR", "The service cannot be reached."));
    return;
  }
  if (!response.ok) {
    showError(errorNode, await failure(response));
    container.append(errorNode);
    return;
  }
  // the SVG's own <style> is dropped before parsing (this page's CSP refuses inline styles; its CSS has the rules)
  const text = (await response.text()).replace(/<style>[^<]*<\/style>/g, "");
  const parsed = new DOMParser().parseFromString(text, "image/svg+xml");
  const svg = parsed.documentElement;
  if (!svg || svg.localName !== "svg" || parsed.getElementsByTagName("parsererror").length) {
    showError(errorNode, new ApiError(response.status, "BAD_DIAGRAM", "The diagram could not be read."));
    container.append(errorNode);
    return;
  }
  for (const node of [...svg.querySelectorAll("style, script, foreignObject")]) node.remove();
  const imported = document.importNode(svg, true);
  imported.setAttribute("focusable", "false");
  clear(container).append(imported);
}

function section(title, ...children) {
  const id = nextId("section");
  return el("section", { class: "panel", "aria-labelledby": id }, el("h3", { id, text: title }), ...children);
}

async function renderInstanceView(main, instanceId, quiet) {
  const path = `/instance/${encodeURIComponent(instanceId)}`;
  let instance;
  let tasks;
  let history;
  let externals = [];
  const errorNode = errorBox();
  try {
    [instance, tasks, history] = await Promise.all([
      api("GET", path).then((e) => e.data),
      api("GET", `${path}/tasks`).then((e) => e.data || []),
      api("GET", `${path}/history`).then((e) => e.data || []),
    ]);
    externals = await Promise.all(
      (instance.externalTasks || []).map((id) => api("GET", `/external-task/${encodeURIComponent(id)}`).then((e) => e.data).catch(() => ({ id })))
    );
  } catch (error) {
    if (quiet) return;
    clear(main).append(el("section", { class: "view" }, el("h2", { text: "Instance" }), errorNode));
    showError(errorNode, error);
    return;
  }
  const signature = JSON.stringify([instance, tasks, history, externals]);
  if (quiet && signature === state.lastInstance) return;
  state.lastInstance = signature;
  const scroll = window.scrollY;
  const diagram = el("div", { class: "diagram", id: "instance-diagram", role: "group", "aria-label": "Process diagram: green is where it waits, blue what ran, red incidents" });
  const ended = instance.ended;
  const view = el(
    "section",
    { class: "view instance", "aria-labelledby": "instance-title", "data-instance-id": instance.id },
    el("h2", { id: "instance-title" }, instance.processName || instance.definitionId),
    el("p", { class: "status", id: "view-status", "aria-live": "polite" },
      `Instance ${instance.id} · ${ended ? `ended ${when(instance.endTime)}` : "running"} · started by ${instance.createBy || "—"} on ${when(instance.createTime)}`,
      instance.businessKey ? ` · business key ${instance.businessKey}` : ""),
    el("div", { class: "actions" }, el("button", { type: "button", "data-action": "refresh-instance", on: { click: () => { state.lastInstance = ""; renderInstanceView(main, instanceId, true); } } }, "Refresh now")),
    errorNode,
    section("Diagram", el("p", { class: "legend" },
      el("span", { class: "key key-active" }, "waiting here"), " ",
      el("span", { class: "key key-done" }, "done"), " ",
      el("span", { class: "key key-incident" }, "incident")), diagram),
    section("Open tasks", tasks.length
      ? el("ul", { class: "plain", id: "instance-tasks" }, tasks.map((t) => el("li", { "data-task-id": t.id }, el("strong", { text: t.name }), ` · ${t.assignee ? `held by ${t.assignee}` : "open"} · priority ${t.priority}`)))
      : el("p", { text: "None." })),
    section("External tasks", externals.length
      ? el("ul", { class: "plain" }, externals.map((x) => el("li", {}, el("strong", { text: x.activityName || x.activityId || x.id }), ` · topic ${x.topicName || "?"} · ${x.status || ""} · retries ${x.retries ?? "?"}`, x.errorMessage ? ` · ${x.errorMessage}` : "")))
      : el("p", { text: "None." })),
    section("Incidents", incidentList(instance, main)),
    section("Variables", variablesList(instance.variables || {})),
    section("History", timeline(history))
  );
  clear(main).append(view);
  window.scrollTo(0, scroll);
  await loadDiagram(diagram, `/instance/${encodeURIComponent(instance.id)}/diagram.svg`);
}

function incidentList(instance, main) {
  const incidents = instance.incidents || [];
  if (!incidents.length) return el("p", { text: "None." });
  return el("ul", { class: "plain", id: "incidents" }, incidents.map((incident) => {
    const errorNode = errorBox();
    const retry = el("button", {
      type: "button",
      "data-action": "retry",
      "aria-label": `Retry the incident at ${incident.elementId} (administrators)`,
      on: {
        click: async () => {
          try {
            if (incident.type === "timer") {
              await api("POST", `/instance/${encodeURIComponent(instance.id)}/incidents/${encodeURIComponent(incident.id)}/retry`);
            } else {
              await api("PUT", `/external-task/${encodeURIComponent(incident.id)}/retries`, { body: { retries: 1 } });
            }
            state.lastInstance = "";
            await renderInstanceView(main, instance.id, true);
          } catch (error) {
            showError(errorNode, error);
          }
        },
      },
    }, "Retry (administrators)");
    return el("li", {}, el("strong", { text: incident.elementId }), ` · ${incident.type} · `, incident.errorMessage || "", " ", retry, errorNode);
  }));
}

function variablesList(variables) {
  const entries = Object.entries(variables);
  if (!entries.length) return el("p", { text: "None." });
  return el("dl", { class: "variables" }, entries.map(([name, value]) => [
    el("dt", { text: name }),
    el("dd", {}, el("pre", { text: JSON.stringify(value, null, 2) })),
  ]));
}

function timeline(history) {
  if (!history.length) return el("p", { text: "Nothing yet." });
  return el("ol", { class: "timeline" }, history.map((entry) => {
    const what = entry.taskName || entry.elementId || "";
    const who = entry.user || entry.actor;
    return el("li", {},
      el("time", { datetime: new Date(entry.time).toISOString(), text: when(entry.time) }), " ",
      el("span", { class: "event-type", text: entry.type }),
      what ? [" · ", el("span", { text: what })] : null,
      who ? ` · by ${who}` : "");
  }));
}

/* -- routing and polling --------------------------------------------------------------------- */

async function route() {
  const main = document.getElementById("main");
  const hash = window.location.hash || "#/tasks";
  const [, view, ...rest] = hash.split("/");
  const argument = decodeURIComponent(rest.join("/"));
  state.view = view;
  for (const link of document.querySelectorAll(".nav a")) {
    if (link.getAttribute("href") === `#/${view}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  clear(main);
  state.lastTasks = "";
  state.lastInstance = "";
  if (view === "instance" && argument) {
    document.title = "Instance · Tasklist";
    await renderInstanceView(main, argument, false);
  } else if (view === "processes") {
    document.title = "Start a process · Tasklist";
    await renderProcessesView(main);
  } else {
    document.title = "Tasks · Tasklist";
    await renderTasksView(main);
  }
}

function poll() {
  if (!state.autoRefresh || document.visibilityState !== "visible") return;
  if (state.view === "instance") {
    const view = document.querySelector(".view.instance");
    if (view) renderInstanceView(document.getElementById("main"), view.dataset.instanceId, true);
  } else if (document.getElementById("task-list")) {
    refreshTasks(false);
  }
}

function start() {
  const params = new URLSearchParams(window.location.search);
  const form = document.getElementById("who");
  const userInput = document.getElementById("who-user");
  const tokenInput = document.getElementById("who-token");
  userInput.value = params.get("user") || sessionStorage.getItem("bpm.user") || "";
  tokenInput.value = sessionStorage.getItem("bpm.token") || "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    becomeUser(userInput.value, tokenInput.value);
  });
  window.addEventListener("hashchange", route);
  setInterval(poll, POLL_MS);
  becomeUser(userInput.value, tokenInput.value);
}

document.addEventListener("DOMContentLoaded", start);
