/* The tasklist: routing and polling; starts the page (see core.js for the whole). */
"use strict";

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
