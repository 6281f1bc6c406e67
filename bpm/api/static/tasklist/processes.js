/* The tasklist: the processes view, start a process (see core.js for the whole). */
"use strict";

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
