// Keyboard shortcuts for the thread; ignored while typing in a field.

import { api } from "./api.js";
import { h, $ } from "./dom.js";
import { state } from "./state.js";
import * as list from "./list.js";
import * as thread from "./thread.js";
import { toast } from "./banner.js";
import { t } from "./i18n.js";

// The keys, and what each does (the catalog's shortcuts.<name>).
const HELP = [
  ["j / k", "next_previous"],
  ["r", "reply"],
  ["n", "note"],
  ["a", "assign"],
  ["e", "resolve"],
  ["o", "reopen"],
  ["p", "pending"],
  ["/", "search"],
  ["Ctrl+Enter", "send"],
  ["Esc", "leave"],
];

async function patch(body) {
  const current = thread.selected();
  if (!current) return;
  try {
    await api("PATCH", `/conversations/${current.conversation.id}`, body);
  } catch (err) {
    toast(err.message);
  }
}

function help() {
  const old = $("#shortcut-help");
  if (old) { old.remove(); return; }
  const box = h("div", { id: "shortcut-help", class: "dialog", role: "dialog", "aria-label": t("shortcuts.title") },
    h("h2", {}, t("shortcuts.title")),
    h("dl", { class: "shortcuts" }, HELP.map(([k, v]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, t(`shortcuts.${v}`))])),
    h("button", { onclick: () => box.remove() }, t("templates.close")));
  document.body.append(box);
}

export function installShortcuts() {
  if (window.sbShortcuts) return;
  window.sbShortcuts = true;
  document.addEventListener("keydown", (e) => {
    const target = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
    if (!state.me || document.body.dataset.page === "admin") return;
    const key = e.key;
    const go = (step) => { const id = list.neighbour(step); if (id) location.hash = `#/conversations/${id}`; };
    const actions = {
      j: () => go(1),
      k: () => go(-1),
      r: () => thread.focusComposer("reply"),
      n: () => thread.focusComposer("note"),
      a: () => patch({ assignee_id: state.me.id }),
      e: () => patch({ status: "resolved" }),
      o: () => patch({ status: "open" }),
      p: () => patch({ status: "pending" }),
      "/": () => { const s = $("#search"); if (s) s.focus(); },
      "?": help,
    };
    if (actions[key]) {
      e.preventDefault();
      actions[key]();
    }
  });
}
