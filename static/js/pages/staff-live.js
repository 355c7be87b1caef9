/**
 * The live-sessions page: refreshes the table from /staff/live.json every few seconds and asks before End.
 *
 * Everything from the server goes into the page with textContent: usernames are user-chosen.
 */

import { gettext, interpolate } from "../i18n.js";
import { rowCells } from "../staff/live-format.js";

const table = document.getElementById("live-table");
const body = table.tBodies[0];
const empty = document.getElementById("live-empty");
const status = document.getElementById("live-status");
const csrfToken = document.querySelector("main [name=csrfmiddlewaretoken]").value;
const refreshMs = Number(table.dataset.refreshMs) || 5000;
// The page's own meta refresh is inside <noscript>: with this script running, only the table changes.

/** One table row for `row`, built with textContent only. */
function buildRow(row) {
  const { conversationId, username, endUrl, cells } = rowCells(row);
  const tr = document.createElement("tr");
  tr.dataset.conversationId = conversationId;
  cells.forEach((text, index) => {
    const td = document.createElement("td");
    if (index === 5) {
      const code = document.createElement("code");
      code.textContent = text;
      td.append(code);
    } else {
      td.textContent = text;
    }
    tr.append(td);
  });
  const form = document.createElement("form");
  form.method = "post";
  form.action = endUrl;
  form.className = "live-end";
  form.dataset.username = username;
  const csrf = document.createElement("input");
  csrf.type = "hidden";
  csrf.name = "csrfmiddlewaretoken";
  csrf.value = csrfToken;
  const button = document.createElement("button");
  button.type = "submit";
  button.className = "button";
  button.textContent = gettext("End");
  form.append(csrf, button);
  const actions = document.createElement("td");
  actions.append(form);
  tr.append(actions);
  return tr;
}

function render(rows) {
  body.replaceChildren(...rows.map(buildRow));
  table.hidden = rows.length === 0;
  empty.hidden = rows.length > 0;
}

async function refresh() {
  try {
    const response = await fetch(table.dataset.jsonUrl, {
      headers: { Accept: "application/json" }, cache: "no-store", redirect: "manual",
    });
    if (!response.ok) throw new Error(`HTTP ${response.status || "redirect"}`);
    const data = await response.json();
    render(data.rows);
    status.textContent = "";
  } catch {
    status.textContent = gettext("Could not refresh the list; trying again.");
  }
}

// Ask before ending; the confirmed form skips the server's own confirmation page (the no-script path).
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form.live-end");
  if (!form) return;
  const user = form.dataset.username || form.closest("tr")?.cells[0]?.textContent || "";
  const question = interpolate(gettext("End the conversation of %(user)s? They will be told an administrator ended it."), { user });
  if (!window.confirm(question)) {
    event.preventDefault();
    return;
  }
  const confirmed = document.createElement("input");
  confirmed.type = "hidden";
  confirmed.name = "confirmed";
  confirmed.value = "1";
  form.append(confirmed);
});

setInterval(refresh, refreshMs);
