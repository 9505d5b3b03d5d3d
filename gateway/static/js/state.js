// What the page knows; modules read it and call render functions after changing it.

import { t } from "./i18n.js";

export const state = {
  me: null,
  users: new Map(),
  teams: [],
  inboxes: [],
  channels: new Map(),
  view: "all", // all | mine | unassigned
  inboxId: null,
  teamId: null,
  filters: { status: "open", channel: "", label: "", priority: "", q: "" },
  conversations: new Map(),
  nextCursor: null,
  selectedId: null,
  counts: null,
  quota: null,
  canned: [],
  streamState: "connecting",
};

export function isAdmin() {
  return state.me && ["super_admin", "admin"].includes(state.me.role);
}

export function isBilling() {
  return state.me && ["super_admin", "billing_admin"].includes(state.me.role);
}

export function userName(id) {
  if (id === null || id === undefined) return null;
  const user = state.users.get(id);
  return user ? user.name : t("state.user_n", { id: String(id) });
}

/** Would this conversation appear in the list under the current view and filters? */
export function matchesFilters(c) {
  const f = state.filters;
  if (state.inboxId !== null && c.inbox_id !== state.inboxId) return false;
  if (state.teamId !== null && c.team_id !== state.teamId) return false;
  if (state.view === "mine" && c.assignee_id !== state.me.id) return false;
  if (state.view === "unassigned" && c.assignee_id !== null) return false;
  if (f.status && c.status !== f.status) return false;
  if (f.channel && c.channel_kind !== f.channel) return false;
  if (f.priority && c.priority !== f.priority) return false;
  if (f.label && !(c.labels || []).includes(f.label.toLowerCase())) return false;
  if (f.q) return state.conversations.has(c.id); // the server decides search matches
  return true;
}

export function listQuery(cursor) {
  const params = new URLSearchParams({ limit: "50" });
  const f = state.filters;
  if (state.inboxId !== null) params.set("inbox_id", state.inboxId);
  if (state.teamId !== null) params.set("team_id", state.teamId);
  if (state.view === "mine") params.set("assignee_id", "me");
  if (state.view === "unassigned") params.set("assignee_id", "none");
  for (const [key, name] of [["status", "status"], ["channel", "channel_kind"], ["label", "label"], ["priority", "priority"], ["q", "q"]]) {
    if (f[key]) params.set(name, f[key]);
  }
  if (cursor) params.set("cursor", cursor);
  return `/conversations?${params}`;
}
