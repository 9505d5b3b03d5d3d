// The left pane: views, inboxes and teams with unread counts, filters, search, who is online.

import { api } from "./api.js";
import { h, clear, $, option } from "./dom.js";
import { state } from "./state.js";
import { availabilityName, channelName, PRIORITIES, priorityName, STATUSES, statusName } from "./format.js";
import * as list from "./list.js";
import { t } from "./i18n.js";

let countsTimer = null;

export function refreshCounts() {
  clearTimeout(countsTimer);
  countsTimer = setTimeout(async () => {
    try {
      state.counts = await api("GET", "/unread-counts");
      render();
    } catch (_) { /* the next event retries */ }
  }, 400);
}

function badge(n) {
  return n ? h("span", { class: "count", "aria-label": t("nav.unread", { count: n }) }, String(n)) : null;
}

function choose(update) {
  return (event) => {
    event.preventDefault();
    update();
    if (!location.hash.startsWith("#/conversations") && location.hash !== "#/" && location.hash !== "") location.hash = "#/";
    list.reload();
    render();
  };
}

export function render() {
  const nav = $("#nav");
  if (!nav) return;
  const counts = state.counts || { inboxes: {}, teams: {}, mine: 0, unassigned: 0, all: 0 };
  const active = (view, inbox, team) => state.view === view && state.inboxId === inbox && state.teamId === team;
  const viewItem = (view, label, n) => h("li", {},
    h("a", { href: "#/", class: ["nav-item", active(view, null, null) && "active"], data: { view }, onclick: choose(() => { state.view = view; state.inboxId = null; state.teamId = null; }) },
      h("span", {}, label), badge(n)));
  const f = state.filters;
  const search = h("input", { type: "search", id: "search", placeholder: t("nav.search_placeholder"), value: f.q, "aria-label": t("nav.search") });
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { f.q = search.value.trim(); list.reload(); }
    if (e.key === "Escape") { search.value = ""; f.q = ""; list.reload(); search.blur(); }
  });
  search.addEventListener("search", () => { f.q = search.value.trim(); list.reload(); });
  const filter = (key, label, values, name) => h("label", { class: "filter" }, label,
    h("select", { id: `filter-${key}`, onchange: (e) => { f[key] = e.target.value; list.reload(); } },
      option("", key === "status" ? t("nav.any_status") : t("nav.any"), f[key]),
      values.map((v) => option(v, name(v), f[key]))));
  const kinds = [...new Set([...state.channels.values()].map((c) => c.kind))];
  const labelInput = h("input", { id: "filter-label", type: "text", placeholder: t("nav.label_placeholder"), value: f.label, "aria-label": t("nav.label") });
  labelInput.addEventListener("change", () => { f.label = labelInput.value.trim().toLowerCase(); list.reload(); });

  clear(nav,
    h("div", { class: "nav-section" }, search),
    h("ul", { class: "nav-list" },
      viewItem("mine", t("nav.mine"), counts.mine),
      viewItem("unassigned", t("nav.unassigned"), counts.unassigned),
      viewItem("all", t("nav.all"), counts.all)),
    h("h2", { class: "nav-heading" }, t("nav.inboxes")),
    h("ul", { class: "nav-list" }, state.inboxes.map((inbox) => h("li", {},
      h("a", { href: "#/", class: ["nav-item", active("all", inbox.id, null) && "active"], data: { inbox: inbox.id }, onclick: choose(() => { state.view = "all"; state.inboxId = inbox.id; state.teamId = null; }) },
        h("span", {}, inbox.name), badge(counts.inboxes[inbox.id]))))),
    state.teams.length ? h("h2", { class: "nav-heading" }, t("nav.teams")) : null,
    h("ul", { class: "nav-list" }, state.teams.map((team) => h("li", {},
      h("a", { href: "#/", class: ["nav-item", active("all", null, team.id) && "active"], data: { team: team.id }, onclick: choose(() => { state.view = "all"; state.teamId = team.id; state.inboxId = null; }) },
        h("span", {}, team.name), badge(counts.teams[team.id]))))),
    h("h2", { class: "nav-heading" }, t("nav.filters")),
    h("div", { class: "filters" },
      filter("status", t("nav.status"), STATUSES, statusName),
      filter("channel", t("nav.channel"), kinds, channelName),
      filter("priority", t("nav.priority"), PRIORITIES.filter((p) => p !== "none"), priorityName),
      h("label", { class: "filter" }, t("nav.label"), labelInput)),
    h("h2", { class: "nav-heading" }, t("nav.team_status")),
    h("ul", { id: "presence-list", class: "presence-list" }),
  );
  renderPresence();
}

export function renderPresence() {
  const el = $("#presence-list");
  if (!el) return;
  const order = { online: 0, away: 1, offline: 2 };
  const users = [...state.users.values()].sort((a, b) => (order[a.availability] ?? 3) - (order[b.availability] ?? 3) || a.name.localeCompare(b.name));
  clear(el, users.map((u) => h("li", { data: { user: u.id, availability: u.availability } },
    h("span", { class: ["presence-dot", `presence-${u.availability}`], title: availabilityName(u.availability) }),
    h("span", {}, u.name), h("span", { class: "muted small" }, availabilityName(u.availability)))));
}
