// The notification bell: unread count, the latest notices, your notification settings; a browser
// notification when a notice arrives while the tab is hidden. Notices come on the stream as
// {"type": "notification"} frames (js/stream.js dispatches them as "sb:notification").

import { api } from "./api.js";
import { h, clear, $ } from "./dom.js";
import { t, formatRelative } from "./i18n.js";
import { toast } from "./banner.js";

const KINDS = ["assigned", "new_message", "mention", "handoff", "ticket_assigned", "new_conversation", "quota_tier"];
let unread = 0;

/** The bell for the top bar; loads the count itself. */
export function button() {
  const wrap = h("div", { class: "bell", id: "bell" },
    h("button", { class: "icon-button bell-button", id: "bell-button", "aria-label": t("bell.open"), "aria-expanded": "false", onclick: toggle },
      "🔔", h("span", { class: "count bell-count", id: "bell-count", hidden: true })),
    h("div", { class: "bell-panel", id: "bell-panel", hidden: true, role: "dialog", "aria-label": t("bell.title") }));
  refresh();
  return wrap;
}

function showCount() {
  const el = $("#bell-count");
  if (!el) return;
  el.textContent = String(unread);
  el.hidden = unread === 0;
  el.setAttribute("aria-label", t("bell.unread", { count: unread }));
}

export async function refresh() {
  try {
    const list = await api("GET", "/notifications?limit=20");
    unread = list.unread_count;
    showCount();
    return list;
  } catch (_) {
    return null;
  }
}

function link(n) {
  if (n.ticket_id) return `#/tickets/${n.ticket_id}`;
  if (n.conversation_id) return `#/conversations/${n.conversation_id}`;
  return "#/";
}

async function toggle() {
  const panel = $("#bell-panel");
  const open = panel.hidden;
  panel.hidden = !open;
  $("#bell-button").setAttribute("aria-expanded", String(open));
  if (!open) return;
  // Asked on a click, as browsers require: so notices can show while the tab is hidden.
  if (window.Notification && Notification.permission === "default") Notification.requestPermission().catch(() => {});
  const list = await refresh();
  if (!list) return;
  clear(panel,
    h("div", { class: "bell-head" }, h("strong", {}, t("bell.title")),
      h("button", { class: "link-button", id: "bell-read-all", onclick: readAll }, t("bell.read_all")),
      h("button", { class: "link-button", id: "bell-settings", onclick: () => settings(panel) }, t("bell.settings"))),
    list.items.length === 0 ? h("p", { class: "muted small" }, t("bell.none")) : null,
    h("ul", { class: "plain bell-list" }, list.items.map((n) => h("li", { class: ["bell-item", !n.read && "unread"], data: { notification: n.id } },
      h("a", { href: link(n), onclick: () => { close(); markRead([n.id]); } }, n.title),
      n.body ? h("div", { class: "muted small bell-body" }, n.body) : null,
      h("div", { class: "muted small" }, formatRelative(n.created_at))))));
}

function close() {
  $("#bell-panel").hidden = true;
  $("#bell-button").setAttribute("aria-expanded", "false");
}

async function markRead(ids) {
  try {
    unread = (await api("POST", "/notifications/read", { ids })).unread_count;
    showCount();
  } catch (_) { /* the next refresh shows the truth */ }
}

async function readAll() {
  try {
    unread = (await api("POST", "/notifications/read", { all: true })).unread_count;
    showCount();
    for (const item of document.querySelectorAll(".bell-item.unread")) item.classList.remove("unread");
  } catch (err) {
    toast(err.message);
  }
}

async function settings(panel) {
  const prefs = (await api("GET", "/users/me/notification-preferences")).preferences;
  const box = (kind, channel) => h("input", { type: "checkbox", checked: prefs[kind][channel], "aria-label": `${t(`bell.kind.${kind}`)}: ${t(`bell.channel.${channel}`)}`,
    onchange: async (e) => {
      try {
        await api("PUT", "/users/me/notification-preferences", { preferences: { [kind]: { [channel]: e.target.checked } } });
      } catch (err) {
        e.target.checked = !e.target.checked;
        toast(err.message);
      }
    } });
  clear(panel,
    h("div", { class: "bell-head" }, h("strong", {}, t("bell.settings")), h("button", { class: "link-button", onclick: () => { panel.hidden = true; toggle(); } }, t("bell.back"))),
    h("table", { class: "bell-settings", id: "notification-settings" },
      h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, t("bell.channel.in_app")), h("th", {}, t("bell.channel.email")))),
      h("tbody", {}, KINDS.map((kind) => h("tr", {}, h("td", {}, t(`bell.kind.${kind}`)), h("td", {}, box(kind, "in_app")), h("td", {}, box(kind, "email")))))),
    h("p", { class: "muted small" }, t("bell.email_batched")));
}

window.addEventListener("sb:notification", (e) => {
  const n = e.detail;
  unread += 1;
  showCount();
  const panel = $("#bell-panel");
  if (panel && !panel.hidden && $(".bell-list", panel)) {
    panel.hidden = true;
    toggle(); // re-render the open list with the new notice on top
  }
  if (document.hidden && window.Notification && Notification.permission === "granted") {
    const shown = new Notification(n.title, { body: n.body || "", tag: `switchboard-${n.id}` });
    shown.onclick = () => { window.focus(); location.hash = link(n); };
  }
});
