// Tickets: the Tickets page (a board by stage, or a list), one ticket with its history, and the
// tickets of a conversation in its sidebar with "Create ticket".

import { api } from "./api.js";
import { h, clear, $, option } from "./dom.js";
import { state, userName } from "./state.js";
import { PRIORITIES } from "./format.js";
import { t, formatDateTime, formatRelative } from "./i18n.js";
import { toast } from "./banner.js";

let pipeline = null; // [{key, name, closed}], read once per page load
let view = "board";
let ownerFilter = "";
let reloadTimer = null;
const sidebars = new Set(); // sidebar sections on the page, each {el, conversation}

async function stages() {
  if (!pipeline) pipeline = (await api("GET", "/ticket-pipeline")).stages;
  return pipeline;
}

function stageName(key) {
  const stage = (pipeline || []).find((s) => s.key === key);
  return stage ? stage.name : key;
}

function priorityName(p) {
  return t(`tickets.priority.${p}`);
}

function ownerName(id) {
  return id ? userName(id) : t("tickets.unowned");
}

function members(inboxId) {
  const inbox = state.inboxes.find((i) => i.id === inboxId);
  const ids = inbox ? inbox.member_ids : [];
  return [...state.users.values()].filter((u) => ids.includes(u.id) || u.role === "admin" || u.role === "super_admin");
}

async function patch(ticket, body) {
  try {
    return await api("PATCH", `/tickets/${ticket.id}`, body);
  } catch (err) {
    toast(err.message);
    return null;
  }
}

// -- the page ----------------------------------------------------------------------------------------

/** #/tickets (board or list) and #/tickets/<id> (one ticket). */
export async function render(main, hash) {
  const one = hash.match(/^#\/tickets\/(\d+)/);
  clear(main, h("section", { id: "tickets-page", class: "tickets-page" }, h("p", { class: "muted" }, t("tickets.loading"))));
  try {
    await stages();
    if (one) await renderTicket(Number(one[1]));
    else await renderAll();
  } catch (err) {
    clear($("#tickets-page"), h("p", { class: "form-error" }, err.message));
  }
}

async function renderAll() {
  const page = $("#tickets-page");
  if (!page) return;
  const query = ownerFilter ? `&owner_id=${ownerFilter}` : "";
  const tickets = (await api("GET", `/tickets?limit=200${query}`)).items;
  const toggle = (name) => h("button", {
    class: ["tab", view === name && "active"], "aria-pressed": String(view === name), data: { view: name },
    onclick: () => { view = name; renderAll(); },
  }, t(`tickets.view.${name}`));
  const owner = h("select", { id: "tickets-owner", "aria-label": t("tickets.owner"), onchange: (e) => { ownerFilter = e.target.value; renderAll(); } },
    option("", t("tickets.owner.any"), ownerFilter), option("me", t("tickets.owner.me"), ownerFilter), option("none", t("tickets.unowned"), ownerFilter));
  clear(page,
    h("header", { class: "tickets-header" }, h("h2", {}, t("tickets.title")), h("div", { class: "tickets-tools" }, owner, toggle("board"), toggle("list"))),
    tickets.length === 0 ? h("p", { class: "muted empty" }, t("tickets.none")) : view === "board" ? board(tickets) : table(tickets));
}

function board(tickets) {
  return h("div", { class: "ticket-board", id: "ticket-board" }, pipeline.map((stage) => {
    const inStage = tickets.filter((x) => x.stage === stage.key);
    return h("section", { class: "ticket-column", data: { stage: stage.key }, "aria-label": stage.name },
      h("h3", {}, stage.name, " ", h("span", { class: "count" }, String(inStage.length))),
      h("ul", { class: "plain" }, inStage.map((ticket) => h("li", { class: "ticket-card", data: { ticket: ticket.id } },
        h("a", { href: `#/tickets/${ticket.id}`, class: "ticket-title" }, ticket.title),
        h("div", { class: "muted small" }, `#${ticket.id} · ${priorityName(ticket.priority)} · ${ownerName(ticket.owner_id)}`),
        stageSelect(ticket, (moved) => { if (moved) renderAll(); })))));
  }));
}

function table(tickets) {
  return h("table", { class: "admin-table ticket-list", id: "ticket-list" },
    h("thead", {}, h("tr", {}, ["tickets.col.title", "tickets.col.stage", "tickets.col.priority", "tickets.owner", "tickets.col.updated"].map((k) => h("th", {}, t(k))))),
    h("tbody", {}, tickets.map((ticket) => h("tr", { data: { ticket: ticket.id } },
      h("td", {}, h("a", { href: `#/tickets/${ticket.id}` }, ticket.title)),
      h("td", {}, stageName(ticket.stage)),
      h("td", {}, priorityName(ticket.priority)),
      h("td", {}, ownerName(ticket.owner_id)),
      h("td", { class: "muted small" }, formatRelative(ticket.updated_at))))));
}

function stageSelect(ticket, done) {
  return h("select", { class: "ticket-stage", "aria-label": t("tickets.move", { title: ticket.title }), onchange: async (e) => done(await patch(ticket, { stage: e.target.value })) },
    pipeline.map((s) => option(s.key, s.name, ticket.stage)));
}

async function renderTicket(id) {
  const page = $("#tickets-page");
  const [ticket, changes] = await Promise.all([api("GET", `/tickets/${id}`), api("GET", `/tickets/${id}/history`)]);
  const again = (changed) => { if (changed) renderTicket(id); };
  const owner = h("select", { id: "ticket-owner", onchange: async (e) => again(await patch(ticket, { owner_id: e.target.value ? Number(e.target.value) : null })) },
    option("", t("tickets.unowned"), ticket.owner_id ?? ""), members(ticket.inbox_id).map((u) => option(u.id, u.name, ticket.owner_id ?? "")));
  const priority = h("select", { id: "ticket-priority", onchange: async (e) => again(await patch(ticket, { priority: e.target.value })) },
    PRIORITIES.map((p) => option(p, priorityName(p), ticket.priority)));
  const stage = stageSelect(ticket, again);
  stage.id = "ticket-stage";
  clear(page,
    h("p", {}, h("a", { href: "#/tickets" }, t("tickets.back"))),
    h("h2", { id: "ticket-title" }, ticket.title, " ", h("span", { class: "muted" }, `#${ticket.id}`)),
    ticket.description ? h("p", { class: "ticket-description" }, ticket.description) : null,
    h("div", { class: "admin-form ticket-fields" },
      h("label", {}, t("tickets.col.stage"), stage),
      h("label", {}, t("tickets.owner"), owner),
      h("label", {}, t("tickets.col.priority"), priority)),
    h("h3", {}, t("tickets.conversations")),
    h("ul", { class: "plain" }, ticket.conversation_ids.map((c) => h("li", {}, h("a", { href: `#/conversations/${c}` }, t("tickets.conversation", { id: String(c) }))))),
    h("h3", {}, t("tickets.history")),
    h("ol", { class: "plain ticket-history", id: "ticket-history" }, changes.items.map((c) => h("li", { class: "small" },
      `${formatDateTime(c.created_at)} · ${c.actor_id ? userName(c.actor_id) : t("tickets.system")} · ${changeText(c)}`))));
}

function changeText(c) {
  const value = (field, v) => {
    if (v === null || v === undefined) return "—";
    if (field === "stage" || field === "created") return stageName(v);
    if (field === "owner_id") return ownerName(v);
    if (field === "priority") return priorityName(v);
    return Array.isArray(v) ? v.join(", ") : String(v);
  };
  if (c.field === "created") return t("tickets.change.created", { stage: value("stage", c.new) });
  return t("tickets.change", { field: t(`tickets.field.${c.field}`), old: value(c.field, c.old), new: value(c.field, c.new) });
}

// -- the conversation's sidebar ----------------------------------------------------------------------

/** The "Tickets" section of a conversation's sidebar; it fills itself in. */
export function sidebar(conversation) {
  const el = h("section", { class: "contact-section ticket-section", id: "conversation-tickets" }, h("h3", {}, t("tickets.title")));
  const entry = { el, conversation };
  for (const old of sidebars) if (!old.el.isConnected) sidebars.delete(old);
  sidebars.add(entry);
  fillSidebar(entry);
  return el;
}

async function fillSidebar({ el, conversation }) {
  try {
    await stages();
    const tickets = (await api("GET", `/tickets?conversation_id=${conversation.id}`)).items;
    clear(el,
      h("h3", {}, t("tickets.title")),
      h("ul", { class: "plain" }, tickets.map((x) => h("li", { data: { ticket: x.id } },
        h("a", { href: `#/tickets/${x.id}` }, x.title), " ", h("span", { class: "status-pill" }, stageName(x.stage))))),
      h("button", { class: "small-button", id: "create-ticket", onclick: () => createForm(el, conversation) }, t("tickets.create")));
  } catch (err) {
    clear(el, h("h3", {}, t("tickets.title")), h("p", { class: "muted small" }, err.message));
  }
}

function createForm(el, conversation) {
  const title = h("input", { id: "new-ticket-title", required: true });
  const description = h("textarea", { id: "new-ticket-description", rows: 3 });
  const stage = h("select", { id: "new-ticket-stage" }, pipeline.map((s) => option(s.key, s.name, pipeline[0].key)));
  const owner = h("select", { id: "new-ticket-owner" }, option("", t("tickets.unowned"), ""), members(conversation.inbox_id).map((u) => option(u.id, u.name, "")));
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { class: "admin-form ticket-form", onsubmit: async (e) => {
    e.preventDefault();
    const body = { title: title.value, description: description.value, stage: stage.value, conversation_ids: [conversation.id] };
    if (owner.value) body.owner_id = Number(owner.value);
    try {
      await api("POST", "/tickets", body);
      fillSidebar({ el, conversation });
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  } },
  h("label", {}, t("tickets.col.title"), title),
  h("label", {}, t("tickets.description"), description),
  h("label", {}, t("tickets.col.stage"), stage),
  h("label", {}, t("tickets.owner"), owner),
  error,
  h("button", { class: "primary", type: "submit" }, t("tickets.create")));
  const button = $("#create-ticket", el);
  if (button) button.replaceWith(form);
  title.focus();
}

// -- live --------------------------------------------------------------------------------------------

/** ticket.created / ticket.updated from the stream: refresh what shows tickets. */
export function onEvent(event) {
  const ticket = (event.data || {}).ticket;
  if (!ticket) return;
  for (const entry of sidebars) {
    if (!entry.el.isConnected) sidebars.delete(entry);
    else if (ticket.conversation_ids.includes(entry.conversation.id) || $(`[data-ticket="${ticket.id}"]`, entry.el)) fillSidebar(entry);
  }
  if (document.body.dataset.page !== "tickets") return;
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => {
    const one = (location.hash || "").match(/^#\/tickets\/(\d+)/);
    if (!one) renderAll();
    else if (Number(one[1]) === ticket.id && !document.activeElement?.closest("select")) renderTicket(ticket.id);
  }, 150);
}
