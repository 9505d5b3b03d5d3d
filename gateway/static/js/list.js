// The middle pane: conversations, newest activity first, kept live from the stream.

import { api } from "./api.js";
import { h, clear, $ } from "./dom.js";
import { state, matchesFilters, listQuery, userName } from "./state.js";
import { ago, channelIcon, channelName, initials, priorityName, statusName } from "./format.js";
import * as thread from "./thread.js";
import { t } from "./i18n.js";

let pane = null;
let loadToken = 0;
const pending = new Map(); // conversation id -> timer (coalesces bursts of events)

export function mount(el) {
  pane = el;
  clear(pane,
    h("div", { class: "list-header" },
      h("h1", { id: "list-title" }, t("list.conversations")),
      h("span", { id: "list-summary", class: "muted small" })),
    h("ul", { id: "conversation-list", class: "conversation-list", role: "list" }),
    h("div", { class: "list-footer" }, h("button", { id: "load-more", class: "link-button", hidden: true, onclick: loadMore }, t("list.load_more"))),
  );
  // Waiting times and "ago" labels age on screen; no request is made.
  setInterval(() => renderAll(), 60000);
}

function title() {
  if (state.inboxId !== null) return (state.inboxes.find((i) => i.id === state.inboxId) || {}).name || t("list.inbox");
  if (state.teamId !== null) return (state.teams.find((team) => team.id === state.teamId) || {}).name || t("list.team");
  return { mine: t("nav.mine"), unassigned: t("nav.unassigned"), all: t("list.all_conversations") }[state.view];
}

export async function reload() {
  if (!pane) return;
  const token = ++loadToken;
  $("#list-title").textContent = title();
  try {
    const page = await api("GET", listQuery());
    if (token !== loadToken) return;
    state.conversations = new Map(page.items.map((c) => [c.id, c]));
    state.nextCursor = page.next_cursor;
    renderAll();
  } catch (err) {
    clear($("#conversation-list"), h("li", { class: "empty" }, t("list.load_failed", { error: err.message })));
  }
}

async function loadMore() {
  if (!state.nextCursor) return;
  const page = await api("GET", listQuery(state.nextCursor));
  for (const c of page.items) state.conversations.set(c.id, c);
  state.nextCursor = page.next_cursor;
  renderAll();
}

/** A conversation changed (from the stream): fetch its list form once and place it. */
export function touch(id) {
  if (!id || !pane) return;
  clearTimeout(pending.get(id));
  pending.set(id, setTimeout(async () => {
    pending.delete(id);
    try {
      const c = await api("GET", `/conversations/${id}`);
      upsert(c);
    } catch (err) {
      if (err.status === 404) remove(id);
    }
  }, 60));
}

export function upsert(c) {
  if (matchesFilters(c) || (state.filters.q && state.conversations.has(c.id))) state.conversations.set(c.id, c);
  else state.conversations.delete(c.id);
  if (c.id === state.selectedId) {
    thread.onListItem(c);
  }
  renderAll();
}

function remove(id) {
  state.conversations.delete(id);
  renderAll();
}

export function sorted() {
  return [...state.conversations.values()].sort((a, b) => (b.last_activity_at.localeCompare(a.last_activity_at)) || b.id - a.id);
}

export function renderAll() {
  const ul = $("#conversation-list");
  if (!ul) return;
  const items = sorted();
  if (!items.length) {
    clear(ul, h("li", { class: "empty" }, state.filters.q ? t("list.no_match") : t("list.empty")));
  } else {
    clear(ul, items.map(row));
  }
  $("#list-summary").textContent = items.length ? `${items.length}${state.nextCursor ? "+" : ""}` : "";
  $("#load-more").hidden = !state.nextCursor;
}

function row(c) {
  const name = c.contact_name || c.contact_address || t("list.contact", { id: String(c.contact_id) });
  const last = c.last_message;
  const preview = last ? [last.kind === "outgoing" ? t("list.you") + " " : last.kind === "note" ? t("list.note") + " " : "", last.text || ""].join("") : "";
  const selected = c.id === state.selectedId;
  return h("li", { class: ["conversation", selected && "selected", c.unread_count && "unread"], data: { id: c.id, status: c.status } },
    h("a", { href: `#/conversations/${c.id}`, "aria-current": selected ? "true" : null },
      h("span", { class: "avatar", "aria-hidden": "true" }, initials(name)),
      h("span", { class: "conversation-body" },
        h("span", { class: "line1" },
          h("span", { class: "channel-icon", data: { kind: c.channel_kind }, title: channelName(c.channel_kind) }, channelIcon(c.channel_kind)),
          h("span", { class: "contact-name" }, name),
          h("span", { class: "time", title: c.last_activity_at }, ago(c.last_activity_at))),
        h("span", { class: "line2" },
          h("span", { class: "preview" }, preview),
          c.unread_count ? h("span", { class: "count unread-badge", "aria-label": t("nav.unread", { count: c.unread_count }) }, String(c.unread_count)) : null),
        h("span", { class: "line3" },
          h("span", { class: "assignee" }, c.assignee_id ? `→ ${userName(c.assignee_id)}` : t("nav.unassigned")),
          c.priority && c.priority !== "none" ? h("span", { class: ["priority", `priority-${c.priority}`] }, priorityName(c.priority)) : null,
          c.status !== "open" ? h("span", { class: ["status-pill", `status-${c.status}`] }, statusName(c.status)) : null,
          c.waiting_since ? h("span", { class: "waiting", title: t("list.waiting_title") }, t("list.waiting", { ago: ago(c.waiting_since) })) : null),
      ),
    ),
  );
}

export function neighbour(step) {
  const items = sorted();
  const index = items.findIndex((c) => c.id === state.selectedId);
  const next = items[index === -1 ? 0 : Math.max(0, Math.min(items.length - 1, index + step))];
  return next ? next.id : null;
}
