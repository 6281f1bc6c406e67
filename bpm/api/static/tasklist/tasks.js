/* The tasklist: task lists, the queues and the task cards (see core.js for the whole). */
"use strict";

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
