// The Broadcasts page: #/broadcasts (the list with progress bars), #/broadcasts/new (filters with the live
// count and the refusal preview, exclusions by hand, compose, allow replies, send) and #/broadcasts/{id}
// (progress and every recipient's outcome). The server decides everything: the page only asks.
// Also the "Replies" section of a conversation's info panel (repliesSection).

import { api } from "./api.js";
import { h, clear, $, option } from "./dom.js";
import { state, isAdmin } from "./state.js";
import { toast } from "./banner.js";
import { t, textOr, formatNumber, formatDateTime } from "./i18n.js";

const KINDS = ["attribute", "tags_any", "tags_all", "tags_none", "has_channel", "last_inbound"];
const OPS = ["eq", "ne", "in", "contains", "gt", "gte", "lt", "lte", "between", "is_set", "not_set"];
const TYPES = ["", "text", "number", "boolean", "list"];
const PROGRESS = ["queued", "sent", "delivered", "read", "replied", "failed", "canceled", "pending"];

// The New broadcast form, kept while the page is open.
const draft = { match: "all", rows: [], excluded: new Map(), channelId: "", title: "", text: "", allowReplies: true };
let previewTimer = null;
let previewToken = 0;
let refreshTimer = null;

/** #/broadcasts, #/broadcasts/new, #/broadcasts/{id} */
export function render(main, hash) {
  const one = hash.match(/^#\/broadcasts\/(\d+)/);
  if (hash.startsWith("#/broadcasts/new")) renderNew(main);
  else if (one) renderOne(main, Number(one[1]));
  else renderList(main);
}

/** Live progress: the runner's broadcast.updated, and message statuses while a broadcast is open. */
export function onEvent(event) {
  if (document.body.dataset.page !== "broadcasts") return;
  const b = (event.data || {}).broadcast;
  if (event.type === "broadcast.updated" && b) {
    const row = $(`#broadcast-list tr[data-id="${b.id}"]`);
    if (row) row.replaceWith(listRow({ ...b, queued: b.accepted, failed: b.refused }));
  }
  const open = $("#broadcast-detail");
  if (open && (!b || Number(open.dataset.id) === b.id)) {
    clearTimeout(refreshTimer); // one refresh for a burst of events
    refreshTimer = setTimeout(() => fillDetail(Number(open.dataset.id)), 500);
  }
}

// -- the list ------------------------------------------------------------------------------------------

async function renderList(main) {
  clear(main, h("section", { id: "broadcasts-page", class: "broadcasts-page" },
    h("header", { class: "broadcasts-header" }, h("h2", {}, t("broadcasts.title")),
      isAdmin() ? h("a", { href: "#/broadcasts/new", class: "primary button-link", id: "new-broadcast" }, t("broadcasts.new")) : null),
    h("div", { id: "broadcasts-body" }, h("p", { class: "muted" }, t("broadcasts.loading")))));
  let page;
  try {
    page = await api("GET", "/broadcasts?limit=200");
  } catch (err) {
    clear($("#broadcasts-body"), h("p", { class: "form-error", role: "alert" }, err.message));
    return;
  }
  const items = page.items.slice().reverse(); // newest first
  clear($("#broadcasts-body"), items.length === 0 ? h("p", { class: "muted", id: "broadcasts-empty" }, t("broadcasts.empty"))
    : h("table", { class: "admin-table", id: "broadcast-list" },
      h("thead", {}, h("tr", {}, ["title", "channel", "status", "progress", "created"].map((c) => h("th", { scope: "col" }, t(`broadcasts.col.${c}`))))),
      h("tbody", {}, items.map(listRow))));
}

function channelName(id) {
  const c = state.channels.get(id);
  return c ? c.name : t("broadcasts.channel_n", { id: String(id) });
}

function bar(done, total, label) {
  const percent = total ? Math.round((done * 100) / total) : 0;
  return h("div", { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": total, "aria-valuenow": done, "aria-label": label },
    h("div", { class: "progress-fill", style: `width: ${percent}%` }));
}

function listRow(b) {
  const handled = b.queued + b.failed + (b.canceled || 0);
  return h("tr", { data: { id: b.id, status: b.status } },
    h("td", {}, h("a", { href: `#/broadcasts/${b.id}` }, b.title)),
    h("td", {}, channelName(b.channel_id)),
    h("td", {}, h("span", { class: ["status-pill", `broadcast-${b.status}`] }, t(`broadcasts.status.${b.status}`))),
    h("td", {}, bar(handled, b.total, t("broadcasts.progress_label")),
      h("span", { class: "muted small" }, t("broadcasts.handled", { done: formatNumber(handled), total: formatNumber(b.total) }))),
    h("td", {}, b.created_at ? formatDateTime(b.created_at) : ""));
}

// -- one broadcast -------------------------------------------------------------------------------------

function renderOne(main, id) {
  clear(main, h("section", { id: "broadcast-detail", class: "broadcasts-page", data: { id } },
    h("a", { href: "#/broadcasts", class: "muted small" }, t("broadcasts.back")),
    h("div", { id: "broadcast-body" }, h("p", { class: "muted" }, t("broadcasts.loading")))));
  fillDetail(id);
}

async function fillDetail(id) {
  let b;
  let recipients;
  try {
    [b, recipients] = await Promise.all([api("GET", `/broadcasts/${id}`), api("GET", `/broadcasts/${id}/recipients?limit=200`)]);
  } catch (err) {
    const body = $("#broadcast-body");
    if (body) clear(body, h("p", { class: "form-error", role: "alert" }, err.message));
    return;
  }
  const body = $("#broadcast-body");
  if (!body) return;
  const p = b.progress;
  const active = ["expanding", "sending"].includes(b.status);
  clear(body,
    h("header", { class: "broadcasts-header" },
      h("h2", { id: "broadcast-title" }, b.title),
      h("span", { class: ["status-pill", `broadcast-${b.status}`], id: "broadcast-status", data: { status: b.status } }, t(`broadcasts.status.${b.status}`))),
    h("p", { class: "muted small" }, channelName(b.channel_id), " · ", formatDateTime(b.created_at)),
    b.text ? h("blockquote", { class: "broadcast-text" }, b.text) : null,
    bar(b.total - p.pending, b.total, t("broadcasts.progress_label")),
    h("dl", { class: "broadcast-progress", id: "broadcast-progress" },
      h("div", { data: { metric: "total" } }, h("dt", {}, t("broadcasts.metric.total")), h("dd", {}, formatNumber(b.total))),
      PROGRESS.map((m) => h("div", { data: { metric: m } }, h("dt", {}, t(`broadcasts.metric.${m}`)), h("dd", {}, formatNumber(p[m]))))),
    Object.keys(p.failed_by_reason).length ? h("ul", { class: "plain", id: "broadcast-failures" },
      Object.entries(p.failed_by_reason).map(([reason, n]) => h("li", { data: { reason } }, t("broadcasts.failed_reason", { reason: reasonName(reason), count: n })))) : null,
    p.failed_by_reason.quota_exhausted ? h("p", { class: "form-error", id: "broadcast-quota" }, t("broadcasts.quota_stopped")) : null,
    h("div", { class: "broadcast-actions" },
      h("label", {}, h("input", { type: "checkbox", id: "broadcast-allow-replies", checked: b.allow_replies, onchange: async (e) => {
        try { await api("PATCH", `/broadcasts/${id}`, { allow_replies: e.target.checked }); fillDetail(id); } catch (err) { toast(err.message); }
      } }), t("broadcasts.allow_replies")),
      active ? h("button", { class: "danger", id: "broadcast-cancel", onclick: async () => {
        try { await api("PATCH", `/broadcasts/${id}`, { status: "canceled" }); fillDetail(id); } catch (err) { toast(err.message); }
      } }, t("broadcasts.cancel")) : null),
    h("h3", {}, t("broadcasts.recipients")),
    h("table", { class: "admin-table", id: "broadcast-recipients" },
      h("thead", {}, h("tr", {}, ["contact", "address", "outcome", "reason"].map((c) => h("th", { scope: "col" }, t(`broadcasts.col.${c}`))))),
      h("tbody", {}, recipients.items.map((r) => h("tr", { data: { contact: r.contact_id, outcome: r.outcome } },
        h("td", {}, r.conversation_id ? h("a", { href: `#/conversations/${r.conversation_id}` }, r.name || r.address) : (r.name || r.address)),
        h("td", { class: "mono" }, r.address),
        h("td", {}, t(`broadcasts.outcome.${r.outcome === "queued" && r.message_status ? r.message_status : r.outcome}`)),
        h("td", {}, r.reason ? reasonName(r.reason) : ""))))),
    recipients.next_after ? h("p", { class: "muted small" }, t("broadcasts.first_recipients", { count: recipients.items.length })) : null);
}

function reasonName(code) {
  return textOr(`broadcasts.reason.${code}`, code);
}

// -- a new broadcast -----------------------------------------------------------------------------------

function renderNew(main) {
  if (!isAdmin()) { location.hash = "#/broadcasts"; return; }
  if (!draft.channelId && state.channels.size) draft.channelId = String([...state.channels.keys()][0]);
  const channels = [...state.channels.values()];
  const form = h("form", { id: "broadcast-form", class: "broadcast-form", onsubmit: (e) => { e.preventDefault(); send(); } },
    h("h2", {}, t("broadcasts.new")),
    h("fieldset", {}, h("legend", {}, t("broadcasts.audience")),
      h("label", {}, t("broadcasts.match"), h("select", { id: "broadcast-match", onchange: (e) => { draft.match = e.target.value; schedulePreview(); } },
        ["all", "any"].map((m) => option(m, t(`broadcasts.match.${m}`), draft.match)))),
      h("div", { id: "broadcast-conditions" }),
      h("button", { type: "button", class: "small-button", id: "broadcast-add-condition", onclick: () => { draft.rows.push({ kind: "attribute", key: "", op: "eq", type: "", value: "" }); drawConditions(); } }, t("broadcasts.add_condition"))),
    h("section", { id: "broadcast-preview", class: "broadcast-preview", "aria-live": "polite" }),
    h("fieldset", {}, h("legend", {}, t("broadcasts.message")),
      h("label", {}, t("broadcasts.channel"), h("select", { id: "broadcast-channel", onchange: (e) => { draft.channelId = e.target.value; schedulePreview(); } },
        channels.map((c) => option(String(c.id), c.name, draft.channelId)))),
      h("label", {}, t("broadcasts.col.title"), h("input", { type: "text", id: "broadcast-title-input", maxLength: 200, value: draft.title, oninput: (e) => { draft.title = e.target.value; } })),
      h("label", {}, t("broadcasts.text"), h("textarea", { id: "broadcast-text", rows: 5, value: draft.text, placeholder: t("broadcasts.text_hint"), oninput: (e) => { draft.text = e.target.value; } })),
      h("label", {}, h("input", { type: "checkbox", id: "broadcast-allow", checked: draft.allowReplies, onchange: (e) => { draft.allowReplies = e.target.checked; } }), t("broadcasts.allow_replies"))),
    h("p", { class: "form-error", id: "broadcast-error", role: "alert", hidden: true }),
    h("button", { type: "submit", class: "primary", id: "broadcast-send" }, t("broadcasts.send")));
  clear(main, h("section", { class: "broadcasts-page" }, h("a", { href: "#/broadcasts", class: "muted small" }, t("broadcasts.back")), form));
  drawConditions();
}

function drawConditions() {
  const box = $("#broadcast-conditions");
  if (!box) return;
  clear(box, draft.rows.map((row, i) => conditionRow(row, i)));
  schedulePreview();
}

function conditionRow(row, i) {
  const change = (field) => (e) => { row[field] = e.target.value; if (field === "kind") drawConditions(); else schedulePreview(); };
  const needsKey = row.kind === "attribute";
  return h("div", { class: "condition", data: { index: i } },
    h("select", { class: "condition-kind", "aria-label": t("broadcasts.condition"), onchange: change("kind") },
      KINDS.map((k) => option(k, t(`broadcasts.kind.${k}`), row.kind))),
    needsKey ? h("input", { type: "text", class: "condition-key", "aria-label": t("broadcasts.attribute"), placeholder: t("broadcasts.attribute"), value: row.key, oninput: change("key") }) : null,
    needsKey ? h("select", { class: "condition-op", "aria-label": t("broadcasts.operator"), onchange: change("op") }, OPS.map((o) => option(o, t(`broadcasts.op.${o}`), row.op))) : null,
    needsKey ? h("select", { class: "condition-type", "aria-label": t("broadcasts.type"), onchange: change("type") }, TYPES.map((x) => option(x, t(`broadcasts.type.${x || "auto"}`), row.type))) : null,
    needsKey && ["is_set", "not_set"].includes(row.op) ? null
      : h("input", { type: "text", class: "condition-value", "aria-label": t("broadcasts.value"), placeholder: t(`broadcasts.value_hint.${row.kind}`), value: row.value, oninput: change("value") }),
    h("button", { type: "button", class: "link-button condition-remove", "aria-label": t("broadcasts.remove_condition"), onclick: () => { draft.rows.splice(i, 1); drawConditions(); } }, "×"));
}

/** One typed value: text stays text for text and list attributes; else true/false and numbers are typed. */
function scalar(s, type) {
  if (type === "text" || type === "list") return s;
  if (s === "true" || s === "false") return s === "true";
  if (s !== "" && !Number.isNaN(Number(s))) return Number(s);
  return s;
}

/** "3" → 3; "1, 5" → [1, 5] for between and in. */
function typedValue(row) {
  const raw = row.value.trim();
  if (row.op === "between" || row.op === "in") return raw.split(",").map((s) => scalar(s.trim(), row.type)).filter((v) => v !== "");
  return scalar(raw, row.type);
}

function conditions() {
  const out = [];
  const list = (value) => value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const row of draft.rows) {
    if (row.kind === "attribute" && row.key.trim()) {
      const c = { attribute: row.key.trim(), op: row.op };
      if (row.type) c.type = row.type;
      if (!["is_set", "not_set"].includes(row.op)) c.value = typedValue(row);
      out.push(c);
    } else if (row.kind.startsWith("tags_") && list(row.value).length) {
      out.push({ tags: { [row.kind.slice(5)]: list(row.value) } });
    } else if (row.kind === "has_channel" && row.value.trim()) {
      out.push({ has_channel: row.value.trim() });
    } else if (row.kind === "last_inbound" && Number(row.value) > 0) {
      out.push({ last_inbound_within_days: Number(row.value) });
    }
  }
  return out;
}

function audience() {
  return { match: draft.match, conditions: conditions(), exclude_contact_ids: [...draft.excluded.keys()] };
}

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(drawPreview, 250);
}

async function drawPreview() {
  const box = $("#broadcast-preview");
  if (!box) return;
  const mine = ++previewToken;
  let p;
  try {
    p = await api("POST", "/audiences/preview", { filter: audience(), channel_id: draft.channelId ? Number(draft.channelId) : null, limit: 20 });
  } catch (err) {
    if (mine === previewToken) clear(box, h("p", { class: "form-error", id: "broadcast-filter-error", role: "alert" }, err.message));
    return;
  }
  if (mine !== previewToken) return; // an older answer after a newer question
  const refused = Object.entries(p.refused || {});
  clear(box,
    h("p", { id: "broadcast-count", data: { count: p.count } }, t("broadcasts.count", { count: p.count })),
    p.sendable !== null ? h("p", { id: "broadcast-sendable", data: { count: p.sendable } }, t("broadcasts.sendable", { count: p.sendable })) : null,
    refused.length ? h("ul", { class: "plain", id: "broadcast-refusals" }, refused.map(([reason, n]) =>
      h("li", { data: { reason } }, t("broadcasts.would_fail", { reason: reasonName(reason), count: n })))) : null,
    draft.excluded.size ? h("p", { id: "broadcast-excluded" }, t("broadcasts.excluded", { count: draft.excluded.size }), " ",
      h("button", { type: "button", class: "link-button", onclick: () => { draft.excluded.clear(); schedulePreview(); } }, t("broadcasts.include_all"))) : null,
    h("ul", { class: "plain broadcast-sample", id: "broadcast-sample" }, p.contacts.map((c) =>
      h("li", { data: { contact: c.id } }, c.name || c.email || c.phone || `#${c.id}`, " ",
        h("button", { type: "button", class: "link-button exclude", onclick: () => { draft.excluded.set(c.id, c.name); schedulePreview(); } }, t("broadcasts.exclude"))))));
}

async function send() {
  const error = $("#broadcast-error");
  error.hidden = true;
  try {
    const b = await api("POST", "/broadcasts", {
      channel_id: Number(draft.channelId),
      title: draft.title.trim() || null,
      audience: audience(),
      text: draft.text,
      allow_replies: draft.allowReplies,
    });
    Object.assign(draft, { rows: [], title: "", text: "", allowReplies: true });
    draft.excluded.clear();
    location.hash = `#/broadcasts/${b.id}`;
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  }
}

// -- a conversation's info panel -----------------------------------------------------------------------

/** "Replies": whether the contact's answers get the channel's auto-answer, with the switch. */
export function repliesSection(conversation, reload) {
  const disabled = Boolean(conversation.replies_disabled);
  return h("section", { class: "contact-section", id: "replies-section", data: { disabled: String(disabled) } },
    h("h3", {}, t("broadcasts.replies")),
    h("p", { class: "muted small" }, t(disabled ? "broadcasts.replies_off" : "broadcasts.replies_on")),
    h("button", { class: "small-button", id: "replies-toggle", onclick: async () => {
      try {
        await api("PATCH", `/conversations/${conversation.id}`, { replies_disabled: !disabled });
        reload();
      } catch (err) {
        toast(err.message);
      }
    } }, t(disabled ? "broadcasts.allow_replies_here" : "broadcasts.disable_replies")));
}
