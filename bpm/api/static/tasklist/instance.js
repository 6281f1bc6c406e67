/* The tasklist: an instance: diagram, tasks, incidents, variables, history (see core.js for the whole). */
"use strict";

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
