/* The tasklist: task and start forms, the variables editor (see core.js for the whole). */
"use strict";

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
