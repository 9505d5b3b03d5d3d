// The right pane: the thread with delivery states, the conversation actions and the composer.

import { api, optional, upload } from "./api.js";
import { t, formatDateTime } from "./i18n.js";
import { h, clear, $, option } from "./dom.js";
import { state, userName } from "./state.js";
import { delivery, reasonText, channelIcon, channelName, clock, PRIORITIES, priorityName, statusName } from "./format.js";
import * as list from "./list.js";
import * as contact from "./contact.js";
import { toast } from "./banner.js";

let current = null; // { conversation, messages: Map, contact }
let openToken = 0;
let readTimer = null;
let contactTimer = null;

const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];

export function selected() {
  return current;
}

export async function open(id) {
  const pane = $("#thread-pane");
  if (!pane) return;
  const token = ++openToken;
  state.selectedId = id;
  list.renderAll();
  if (id === null) {
    current = null;
    clear(pane, h("div", { class: "placeholder" },
      h("p", {}, t("thread.select")),
      h("p", { class: "muted small" }, t("thread.shortcuts_hint"))));
    contact.render(null);
    return;
  }
  clear(pane, h("div", { class: "placeholder" }, t("thread.loading")));
  try {
    const conversation = await api("GET", `/conversations/${id}`);
    const messages = [];
    let cursor = null;
    for (let i = 0; i < 10; i++) {
      const page = await api("GET", `/conversations/${id}/messages?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      messages.push(...page.items);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    if (token !== openToken) return;
    current = { conversation, messages: new Map(messages.map((m) => [m.id, m])), contact: null };
    renderThread(pane);
    markRead();
    contact.load(conversation);
  } catch (err) {
    if (token !== openToken) return;
    clear(pane, h("div", { class: "placeholder" }, err.status === 404 ? t("thread.not_found") : t("thread.load_failed", { error: err.message })));
  }
}

/** Fetch the open thread's messages again and merge them (nothing re-rendered, the draft kept). */
export async function refresh() {
  if (!current) return;
  const id = current.conversation.id;
  let cursor = null;
  for (let i = 0; i < 10; i++) {
    const page = await api("GET", `/conversations/${id}/messages?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    for (const m of page.items) {
      const known = current && current.messages.get(m.id);
      if (!known || known.status !== m.status) onMessage(m, "message.updated");
    }
    cursor = page.next_cursor;
    if (!cursor) break;
  }
}

function markRead() {
  clearTimeout(readTimer);
  if (!current || document.hidden) return;
  const id = current.conversation.id;
  readTimer = setTimeout(async () => {
    try {
      await api("POST", `/conversations/${id}/read`);
      const item = state.conversations.get(id);
      if (item) { item.unread_count = 0; list.renderAll(); }
      list.touch(id); // a list fetch that raced this marker would show a stale badge
      import("./nav.js").then((nav) => nav.refreshCounts());
    } catch (_) { /* not fatal */ }
  }, 100);
}

document.addEventListener("visibilitychange", () => { if (!document.hidden) markRead(); });

// Statuses only move forward; a late answer (the POST's "queued") must not undo the stream's "sent".
const RANK = { received: 0, queued: 1, sent: 2, delivered: 3, read: 4, failed: 5 };

export function onMessage(message, type) {
  if (!message || !current || message.conversation_id !== current.conversation.id) return;
  const known = current.messages.get(message.id);
  if (known && (RANK[known.status] ?? 0) > (RANK[message.status] ?? 0)) return;
  current.messages.set(message.id, message);
  const ul = $("#messages");
  if (!ul) return;
  const existing = ul.querySelector(`[data-message-id="${message.id}"]`);
  const node = messageNode(message);
  if (existing) existing.replaceWith(node);
  else {
    const atBottom = ul.scrollHeight - ul.scrollTop - ul.clientHeight < 80;
    ul.append(node);
    if (atBottom || message.kind !== "incoming") node.scrollIntoView({ block: "end" });
  }
  if (type === "message.created" && message.kind === "incoming") markRead();
}

export function onConversation(conversation) {
  if (!conversation || !current || conversation.id !== current.conversation.id) return;
  current.conversation = { ...current.conversation, ...conversation };
  renderHeader();
  clearTimeout(contactTimer);
  // The thread may be closed (or another opened) by the time this fires.
  contactTimer = setTimeout(() => { if (current) contact.load(current.conversation); }, 200);
}

export function onListItem(item) {
  if (!current || item.id !== current.conversation.id) return;
  current.conversation = { ...current.conversation, ...item };
  renderHeader();
  renderWindowNotice();
}

export function onContactEvent(event) {
  if (current && current.conversation) contact.load(current.conversation);
}

function renderThread(pane) {
  const c = current.conversation;
  const ul = h("ol", { id: "messages", class: "messages", "aria-live": "polite" }, [...current.messages.values()].map(messageNode));
  clear(pane,
    h("header", { id: "thread-header", class: "thread-header" }),
    ul,
    h("div", { id: "window-notice" }),
    composer(c),
  );
  renderHeader();
  renderWindowNotice();
  requestAnimationFrame(() => { ul.scrollTop = ul.scrollHeight; });
}

// -- the header: who, where, and the actions ---------------------------------------------------------

async function patch(body) {
  try {
    const updated = await api("PATCH", `/conversations/${current.conversation.id}`, body);
    current.conversation = { ...current.conversation, ...updated };
    renderHeader();
    list.touch(updated.id);
  } catch (err) {
    toast(err.message);
    renderHeader();
  }
}

function renderHeader() {
  const header = $("#thread-header");
  if (!header || !current) return;
  const c = current.conversation;
  const name = c.contact_name || c.contact_address || t("list.contact", { id: String(c.contact_id) });
  const inbox = state.inboxes.find((i) => i.id === c.inbox_id);
  const members = [...state.users.values()].filter((u) => !inbox || ["super_admin", "admin"].includes(u.role) || inbox.member_ids.includes(u.id));
  const assign = h("select", { id: "assignee", "aria-label": t("thread.assignee"), onchange: (e) => patch({ assignee_id: e.target.value ? Number(e.target.value) : null }) },
    option("", t("nav.unassigned"), c.assignee_id ?? ""),
    members.map((u) => option(u.id, u.id === state.me.id ? t("thread.me", { name: u.name }) : u.name, c.assignee_id ?? "")));
  const team = h("select", { id: "team", "aria-label": t("list.team"), onchange: (e) => patch({ team_id: e.target.value ? Number(e.target.value) : null }) },
    option("", t("thread.no_team"), c.team_id ?? ""), state.teams.map((team) => option(team.id, team.name, c.team_id ?? "")));
  const priority = h("select", { id: "priority", "aria-label": t("nav.priority"), onchange: (e) => patch({ priority: e.target.value }) },
    PRIORITIES.map((p) => option(p, p === "none" ? priorityName(p) : t("thread.priority_option", { priority: priorityName(p) }), c.priority)));
  const snooze = h("select", { id: "snooze", "aria-label": t("thread.snooze"), onchange: (e) => {
    if (e.target.value === "custom") {
      const picker = h("input", { type: "datetime-local", id: "snooze-until", "aria-label": t("thread.snooze_until"), onchange: () => {
        if (picker.value) patch({ status: "snoozed", snoozed_until: new Date(picker.value).toISOString() });
      } });
      e.target.replaceWith(picker);
      picker.focus();
      return;
    }
    const until = snoozeUntil(e.target.value);
    if (until) patch({ status: "snoozed", snoozed_until: until.toISOString() });
  } }, option("", t("thread.snooze_menu"), ""), option("1h", t("thread.snooze_1h"), ""), option("tomorrow", t("thread.snooze_tomorrow"), ""), option("week", t("thread.snooze_week"), ""), option("custom", t("thread.snooze_custom"), ""));
  const resolved = c.status === "resolved";
  const labelInput = h("input", { id: "add-label", class: "label-input", placeholder: t("thread.label_placeholder"), "aria-label": t("thread.add_label") });
  labelInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && labelInput.value.trim()) {
      patch({ labels: [...(c.labels || []), labelInput.value.trim().toLowerCase()] });
    }
  });
  clear(header,
    h("div", { class: "thread-title" },
      h("button", { class: "icon-button back", "aria-label": t("thread.back"), onclick: () => { location.hash = "#/"; } }, "←"),
      h("span", { class: "channel-icon", data: { kind: c.channel_kind }, title: channelName(c.channel_kind) }, channelIcon(c.channel_kind)),
      h("div", {},
        h("h2", { id: "thread-contact-name" }, name),
        h("p", { class: "muted small" }, [c.channel_name, c.contact_address].filter(Boolean).join(" · "),
          " · ", h("span", { id: "thread-status", class: ["status-pill", `status-${c.status}`] }, statusName(c.status)),
          c.status === "snoozed" && c.snoozed_until ? ` ${t("thread.until", { date: formatDateTime(c.snoozed_until) })}` : "")),
      h("button", { class: "small-button contact-toggle", "aria-label": t("thread.contact_details"), title: t("thread.contact_details"), onclick: () => document.body.classList.toggle(window.innerWidth > 1200 ? "contact-closed" : "contact-open") }, t("thread.contact")),
    ),
    h("div", { class: "thread-actions" },
      assign, team, priority,
      resolved
        ? h("button", { id: "reopen", onclick: () => patch({ status: "open" }), title: t("thread.reopen_title") }, t("thread.reopen"))
        : h("button", { id: "resolve", class: "primary", onclick: () => patch({ status: "resolved" }), title: t("thread.resolve_title") }, t("thread.resolve")),
      c.status !== "pending" && !resolved ? h("button", { id: "pending", onclick: () => patch({ status: "pending" }) }, statusName("pending")) : null,
      c.status === "pending" || c.status === "snoozed" ? h("button", { id: "open-again", onclick: () => patch({ status: "open" }) }, t("thread.open")) : null,
      snooze,
    ),
    h("div", { class: "labels" },
      (c.labels || []).map((label) => h("span", { class: "label-chip", data: { label } }, label,
        h("button", { class: "chip-x", "aria-label": t("thread.remove_label", { label }), onclick: () => patch({ labels: c.labels.filter((x) => x !== label) }) }, "×"))),
      labelInput),
  );
}

function snoozeUntil(choice) {
  const at = new Date();
  if (choice === "1h") return new Date(at.getTime() + 3600e3);
  if (choice === "tomorrow") { at.setDate(at.getDate() + 1); at.setHours(9, 0, 0, 0); return at; }
  if (choice === "week") { at.setDate(at.getDate() + ((8 - at.getDay()) % 7 || 7)); at.setHours(9, 0, 0, 0); return at; }
  return null;
}

// -- messages ---------------------------------------------------------------------------------------

function messageNode(m) {
  if (m.kind === "activity") {
    return h("li", { class: "activity", data: { messageId: m.id, kind: m.kind } },
      h("span", {}, m.text || ""), h("time", { title: formatDateTime(m.created_at) }, clock(m.created_at)));
  }
  const author = m.kind === "incoming" ? null : (m.author_id ? userName(m.author_id) : m.origin === "bot" ? t("thread.bot") : m.origin === "system" ? t("thread.system") : null);
  const body = [];
  if (m.template) {
    body.push(h("div", { class: "template-tag" }, t("thread.template_tag", { name: m.template.name, language: m.template.language })));
    if (m.template.params && m.template.params.length) body.push(h("div", { class: "muted small" }, t("thread.parameters", { params: m.template.params.join(" · ") })));
  }
  if (m.text) body.push(h("div", { class: "text" }, m.text));
  if (m.kind === "incoming" && current && current.conversation.channel_kind === "email") {
    body.push(emailHtmlToggle(m));
  }
  (m.attachments || []).forEach((a, index) => body.push(attachmentNode(m, a, index)));
  const meta = [h("time", { title: formatDateTime(m.created_at) }, clock(m.created_at))];
  if (author) meta.unshift(h("span", { class: "author" }, author));
  if (m.kind === "outgoing") meta.push(deliveryNode(m));
  const classes = ["message", m.kind, m.status === "failed" && "failed"];
  return h("li", { class: classes, data: { messageId: m.id, kind: m.kind, status: m.status } },
    h("div", { class: "bubble" },
      m.kind === "note" ? h("div", { class: "note-tag" }, t("thread.private_note")) : null,
      body,
      h("div", { class: "meta" }, meta)),
    m.status === "failed" ? failureNode(m) : null);
}

// The mail as its sender formatted it: sanitized by the server, served with a sandbox policy, and shown
// in a sandboxed frame (no scripts, forms, popups or access to this page). Loaded only on request.
function emailHtmlToggle(m) {
  const holder = h("div", { class: "email-html-holder" });
  const button = h("button", { class: "link-button small show-html", onclick: () => {
    if (holder.firstChild) {
      holder.replaceChildren();
      button.textContent = t("thread.show_email");
      return;
    }
    holder.append(h("iframe", { class: "email-html", sandbox: "", src: `/api/v1/messages/${m.id}/html`, title: t("thread.email_frame"), referrerPolicy: "no-referrer", loading: "lazy" }));
    button.textContent = t("thread.hide_email");
  } }, t("thread.show_email"));
  return h("div", { class: "email-html-box" }, button, holder);
}

function attachmentNode(m, a, index) {
  const url = a.media_key ? `/api/v1/messages/${m.id}/attachments/${index}` : a.url;
  const label = a.filename || a.content_type || t("thread.attachment_unnamed");
  if (!url) return h("div", { class: "attachment muted" }, t("thread.attachment", { name: label }));
  if (a.media_key && IMAGE_TYPES.includes((a.content_type || "").toLowerCase())) {
    return h("a", { class: "attachment-image", href: url, target: "_blank", rel: "noopener" },
      h("img", { src: url, alt: label, loading: "lazy" }));
  }
  return h("a", { class: "attachment", href: url, download: a.filename || "", rel: "noopener noreferrer" }, t("thread.attachment", { name: label }));
}

function deliveryNode(m) {
  const d = delivery(m.status);
  return h("span", { class: ["delivery", `delivery-${m.status}`], data: { status: m.status }, title: d.label, "aria-label": d.label },
    h("span", { class: "mark" }, d.mark), m.status === "read" || m.status === "queued" || m.status === "failed" ? h("span", { class: "delivery-word" }, d.label) : null);
}

function failureNode(m) {
  return h("div", { class: "failure", role: "note" },
    h("strong", {}, t("thread.not_delivered")), " ", h("span", { class: "reason", data: { reason: m.reason || "" } }, reasonText(m.reason)),
    m.error_detail ? h("span", { class: "muted small detail" }, ` (${m.error_detail})`) : null,
    h("button", { class: "resend small-button", onclick: () => resend(m) }, t("thread.resend")));
}

async function resend(m) {
  const body = m.template ? { template: m.template } : { text: m.text };
  const result = await send(body);
  if (result && result.status === "failed") toast(t("thread.still_not_sent", { reason: reasonText(result.reason) }));
}

// -- composer ---------------------------------------------------------------------------------------

async function send(body) {
  try {
    const message = await api("POST", `/conversations/${current.conversation.id}/messages`, body);
    onMessage(message, "message.created");
    if (message.reason === "quota_exhausted") import("./banner.js").then((b) => b.refresh());
    return message;
  } catch (err) {
    toast(err.message);
    return null;
  }
}

function composer(c) {
  let mode = "reply";
  const text = h("textarea", { id: "composer-text", rows: 3, placeholder: t("composer.reply_placeholder"), "aria-label": t("composer.message") });
  const error = h("div", { id: "composer-error", class: "composer-error", role: "alert", hidden: true });
  const cannedBox = h("ul", { id: "canned-menu", class: "canned-menu", hidden: true, role: "listbox" });
  const sendButton = h("button", { id: "send", class: "primary", onclick: submit }, t("composer.send"));
  const tabs = h("div", { class: "composer-tabs", role: "tablist" },
    h("button", { id: "mode-reply", class: "tab active", role: "tab", onclick: () => setMode("reply") }, t("composer.reply")),
    h("button", { id: "mode-note", class: "tab", role: "tab", onclick: () => setMode("note") }, t("thread.private_note")),
    h("button", { id: "open-templates", class: "tab", onclick: () => templatePicker() }, t("composer.template_tab")));
  // Attachments: picked, dropped or pasted files go up at once (with progress); Send references them.
  const files = []; // { file, id, progress, error, node }
  const fileInput = h("input", { id: "composer-file", type: "file", multiple: true, hidden: true, onchange: () => { addFiles(fileInput.files); fileInput.value = ""; } });
  const fileList = h("ul", { id: "composer-files", class: "composer-files", "aria-label": t("composer.attachments") });
  const attachButton = h("button", { id: "attach", class: "small-button", title: t("composer.attach_hint"), onclick: () => fileInput.click() }, t("composer.attach"));
  const box = h("div", { id: "composer", class: "composer", data: { mode } }, tabs, error, cannedBox, text, fileList, fileInput,
    h("div", { class: "composer-bar" }, attachButton, h("span", { class: "muted small", id: "composer-hint" }, ""), sendButton));

  function renderFile(entry) {
    const preview = IMAGE_TYPES.includes(entry.file.type)
      ? h("img", { class: "file-preview", src: URL.createObjectURL(entry.file), alt: "" })
      : h("span", { class: "file-icon", "aria-hidden": "true" }, "📄");
    const status = entry.error
      ? h("span", { class: "file-error", role: "alert" }, entry.error)
      : entry.id
        ? h("span", { class: "muted small" }, t("composer.file_ready"))
        : h("progress", { max: 1, value: entry.progress, "aria-label": t("composer.uploading", { name: entry.file.name || "" }) });
    const remove = h("button", { class: "link-button file-remove", "aria-label": t("composer.remove_file", { name: entry.file.name || "" }), onclick: () => {
      files.splice(files.indexOf(entry), 1);
      entry.node.remove();
    } }, "×");
    const node = h("li", { class: "composer-file", data: { ready: entry.id ? "true" : "false" } }, preview,
      h("span", { class: "file-name" }, entry.file.name || t("composer.pasted_image")), status, remove);
    if (entry.node) entry.node.replaceWith(node);
    entry.node = node;
    return node;
  }

  function addFiles(list) {
    for (const file of Array.from(list || [])) {
      const entry = { file, id: null, progress: 0, error: null, node: null };
      files.push(entry);
      fileList.append(renderFile(entry));
      upload(file, (fraction) => {
        entry.progress = fraction;
        const bar = entry.node && entry.node.querySelector("progress");
        if (bar) bar.value = fraction;
      }).then((uploaded) => { entry.id = uploaded.id; renderFile(entry); },
        (err) => { entry.error = err.message; renderFile(entry); });
    }
  }
  box.addEventListener("dragover", (e) => { e.preventDefault(); box.classList.add("dropping"); });
  box.addEventListener("dragleave", () => box.classList.remove("dropping"));
  box.addEventListener("drop", (e) => {
    e.preventDefault();
    box.classList.remove("dropping");
    addFiles(e.dataTransfer && e.dataTransfer.files);
  });
  text.addEventListener("paste", (e) => {
    const pasted = e.clipboardData && e.clipboardData.files;
    if (pasted && pasted.length) { e.preventDefault(); addFiles(pasted); }
  });

  function setMode(next) {
    mode = next;
    box.dataset.mode = next;
    tabs.querySelector("#mode-reply").classList.toggle("active", next === "reply");
    tabs.querySelector("#mode-note").classList.toggle("active", next === "note");
    text.placeholder = next === "note" ? t("composer.note_placeholder") : t("composer.reply_placeholder");
    sendButton.textContent = next === "note" ? t("composer.add_note") : t("composer.send");
    text.focus();
  }
  box.setMode = setMode;

  async function submit() {
    const value = text.value;
    if (files.some((f) => !f.id && !f.error)) { showError(t("composer.wait_uploads")); return; }
    if (files.some((f) => f.error)) { showError(t("composer.remove_failed")); return; }
    const attachments = files.map((f) => f.id);
    if (!value.trim() && !attachments.length) return;
    sendButton.disabled = true;
    error.hidden = true;
    const body = { text: value.trim() ? value : null, attachments };
    if (mode === "note") body.private = true;
    try {
      const message = await api("POST", `/conversations/${current.conversation.id}/messages`, body);
      onMessage(message, "message.created");
      if (message.status === "failed") {
        // Refused by the gate: keep the text so nothing is lost, and say why.
        showError(reasonText(message.reason), message.reason);
      } else {
        text.value = "";
        files.splice(0);
        clear(fileList);
        if (mode === "note") setMode("reply");
      }
    } catch (err) {
      showError(err.message, err.code);
    } finally {
      sendButton.disabled = false;
    }
  }

  function showError(words, code) {
    clear(error, h("span", {}, words));
    if (code === "window_closed" || code === "template_required") {
      error.append(" ", h("button", { class: "link-button", onclick: () => templatePicker() }, t("composer.choose_template")));
    }
    error.hidden = false;
    error.dataset.reason = code || "";
  }

  // Canned responses: "/" at the start opens the menu; typing filters; Enter or click inserts.
  let cannedIndex = 0;
  function cannedMatches() {
    const m = text.value.match(/^\/([\w-]*)$/);
    if (!m) return null;
    return state.canned.filter((r) => r.short_code.startsWith(m[1].toLowerCase()));
  }
  function renderCanned() {
    const matches = cannedMatches();
    if (!matches) { cannedBox.hidden = true; return; }
    cannedIndex = Math.min(cannedIndex, Math.max(0, matches.length - 1));
    clear(cannedBox, matches.length
      ? matches.map((r, i) => h("li", { role: "option", class: i === cannedIndex ? "active" : "", "aria-selected": i === cannedIndex ? "true" : "false", onmousedown: (e) => { e.preventDefault(); insertCanned(r); } },
        h("strong", {}, `/${r.short_code}`), " ", h("span", { class: "muted" }, r.text.slice(0, 80))))
      : h("li", { class: "muted" }, state.canned.length ? t("composer.no_canned_match") : t("composer.no_canned")));
    cannedBox.hidden = false;
  }
  function insertCanned(r) {
    text.value = r.text;
    cannedBox.hidden = true;
    text.focus();
  }
  text.addEventListener("input", () => { cannedIndex = 0; renderCanned(); });
  text.addEventListener("keydown", (e) => {
    const matches = cannedMatches();
    if (matches && !cannedBox.hidden && matches.length) {
      if (e.key === "ArrowDown") { cannedIndex = (cannedIndex + 1) % matches.length; renderCanned(); e.preventDefault(); return; }
      if (e.key === "ArrowUp") { cannedIndex = (cannedIndex - 1 + matches.length) % matches.length; renderCanned(); e.preventDefault(); return; }
      if (e.key === "Enter" || e.key === "Tab") { insertCanned(matches[cannedIndex]); e.preventDefault(); return; }
    }
    if (e.key === "Escape") { cannedBox.hidden = true; text.blur(); }
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); }
  });
  return box;
}

export function focusComposer(mode) {
  const box = $("#composer");
  if (box && box.setMode) box.setMode(mode);
}

function renderWindowNotice() {
  const el = $("#window-notice");
  if (!el || !current) return;
  const ends = current.conversation.service_window_ends_at;
  if (ends && new Date(ends) < new Date()) {
    clear(el, h("div", { class: "window-notice", role: "note" },
      h("span", {}, t("thread.window_closed", { date: formatDateTime(ends) })),
      " ", h("button", { class: "link-button", id: "window-templates", onclick: () => templatePicker() }, t("composer.choose_template"))));
  } else {
    clear(el);
  }
}

// -- templates --------------------------------------------------------------------------------------

async function templatePicker() {
  const c = current.conversation;
  const existing = $("#template-picker");
  if (existing) existing.remove();
  const panel = h("div", { id: "template-picker", class: "template-picker" }, h("p", { class: "muted" }, t("templates.loading")));
  $("#composer").before(panel);
  let data = null;
  try {
    data = await optional(`/channels/${c.channel_id}/templates`);
  } catch (err) {
    clear(panel, h("p", {}, err.message));
    return;
  }
  const close = h("button", { class: "link-button", onclick: () => panel.remove() }, t("templates.close"));
  const items = data ? (data.items || data).filter((tpl) => !tpl.status || ["approved", "APPROVED"].includes(tpl.status)) : null;
  if (!items || !items.length) {
    clear(panel, h("p", {}, items ? t("templates.none_approved") : t("templates.unavailable")), close);
    return;
  }
  const select = h("select", { id: "template-name", "aria-label": t("templates.template") }, items.map((tpl, i) => option(i, `${tpl.name} (${tpl.language || "en_US"})`, 0)));
  const fields = h("div", { class: "template-params" });
  const preview = h("p", { class: "template-preview" });
  function params() {
    return [...fields.querySelectorAll("input")].map((i) => i.value);
  }
  function update() {
    const tpl = items[Number(select.value)];
    const body = tpl.body || tpl.text || "";
    preview.textContent = body.replace(/\{\{(\d+)\}\}/g, (_, n) => params()[Number(n) - 1] || `{{${n}}}`);
  }
  function showFields() {
    const tpl = items[Number(select.value)];
    const count = new Set(((tpl.body || tpl.text || "").match(/\{\{\d+\}\}/g) || [])).size || (Number(tpl.params) || 0);
    clear(fields, Array.from({ length: count }, (_, i) => h("label", {}, t("templates.parameter", { n: i + 1 }), h("input", { type: "text", name: `param-${i + 1}`, oninput: update }))));
    update();
  }
  select.addEventListener("change", showFields);
  const sendButton = h("button", { class: "primary", id: "send-template", onclick: async () => {
    const tpl = items[Number(select.value)];
    const result = await send({ template: { name: tpl.name, language: tpl.language || "en_US", params: params() } });
    if (result && result.status !== "failed") panel.remove();
    else if (result) toast(reasonText(result.reason));
  } }, t("templates.send"));
  clear(panel, h("div", { class: "template-row" }, h("strong", {}, t("templates.send_title")), select, close), fields, preview, h("div", {}, sendButton));
  showFields();
}
