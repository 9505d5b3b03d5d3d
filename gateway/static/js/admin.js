// Admin pages: inboxes, channels, users and roles, teams, saved replies, routing rules, bot flows,
// templates and billing. Pages whose API is not installed on this server say so instead of failing.

import { api, optional, firstAvailable } from "./api.js";
import { h, clear, option } from "./dom.js";
import { state, isAdmin, isBilling } from "./state.js";
import { CHANNEL_NAMES, longDate, number } from "./format.js";
import { toast } from "./banner.js";

const SECTIONS = [
  ["inboxes", "Inboxes"],
  ["channels", "Channels"],
  ["users", "Users and roles"],
  ["teams", "Teams"],
  ["canned", "Saved replies"],
  ["routing", "Routing rules"],
  ["bots", "Bot flows"],
  ["templates", "Templates"],
  ["billing", "Billing"],
];

const ROLES = ["agent", "admin", "billing_admin", "super_admin"];

export async function render(main, section) {
  const body = h("div", { class: "admin-body", id: "admin-body" }, h("p", { class: "muted" }, "Loading…"));
  clear(main, h("div", { class: "admin" },
    h("nav", { class: "admin-nav", "aria-label": "Settings" },
      h("a", { href: "#/", class: "admin-back" }, "← Inbox"),
      h("ul", {}, SECTIONS.map(([key, label]) => h("li", {}, h("a", { href: `#/admin/${key}`, class: key === section ? "active" : "" }, label))))),
    body));
  const page = PAGES[section];
  if (!page) { clear(body, h("p", {}, "No such settings page.")); return; }
  try {
    await page(body);
  } catch (err) {
    clear(body, h("p", { class: "form-error" }, err.message));
  }
}

function table(columns, rows) {
  return h("table", { class: "admin-table" },
    h("thead", {}, h("tr", {}, columns.map(([, label]) => h("th", {}, label)))),
    h("tbody", {}, rows.length ? rows.map((row) => h("tr", {}, columns.map(([key]) => h("td", {}, cell(typeof key === "function" ? key(row) : row[key])))))
      : h("tr", {}, h("td", { colSpan: columns.length, class: "muted" }, "Nothing yet."))));
}

function cell(value) {
  if (value instanceof Node) return value;
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return h("code", { class: "json" }, JSON.stringify(value));
  return String(value);
}

function form(title, fields, onSubmit, submitLabel = "Create") {
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const el = h("form", { class: "admin-form", onsubmit: async (e) => {
    e.preventDefault();
    error.hidden = true;
    const values = Object.fromEntries(new FormData(el).entries());
    try {
      await onSubmit(values, el);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  } }, h("h3", {}, title), fields, error, h("button", { type: "submit", class: "primary" }, submitLabel));
  return el;
}

function field(label, input) {
  return h("label", {}, label, input);
}

function unavailable(body, what) {
  clear(body, h("h2", {}, what), h("p", { class: "muted" }, `${what} are not available on this server yet.`));
}

function requireAdmin(body) {
  if (isAdmin()) return true;
  clear(body, h("p", { class: "muted" }, "Only admins can change this."));
  return false;
}

const webhookUrl = (c) => ["whatsapp", "telegram"].includes(c.kind) ? `${location.origin}/webhooks/${c.kind}/${c.id}` : null;

const PAGES = {
  async inboxes(body) {
    const inboxes = (await api("GET", "/inboxes")).items;
    const teams = new Map(state.teams.map((t) => [t.id, t.name]));
    clear(body, h("h2", {}, "Inboxes"),
      table([["id", "#"], ["name", "Name"], [(i) => teams.get(i.team_id) || "—", "Team"], [(i) => i.member_ids.map((id) => (state.users.get(id) || {}).name || id).join(", "), "Members"]], inboxes),
      isAdmin() ? form("New inbox", [
        field("Name", h("input", { name: "name", required: true })),
        field("Team", h("select", { name: "team_id" }, option("", "None", ""), state.teams.map((t) => option(t.id, t.name, "")))),
      ], async (v) => {
        await api("POST", "/inboxes", { name: v.name, team_id: v.team_id ? Number(v.team_id) : null, member_ids: [state.me.id] });
        await refreshReference();
        PAGES.inboxes(body);
      }) : null);
  },

  async channels(body) {
    const channels = (await api("GET", "/channels")).items;
    const inboxes = new Map(state.inboxes.map((i) => [i.id, i.name]));
    // The server's opt-in link when it has the endpoint; for WhatsApp the click-to-chat link otherwise.
    const links = new Map(await Promise.all(channels.map(async (c) => {
      const link = await optional(`/channels/${c.id}/opt-in-link`).catch(() => null);
      return [c.id, link ? link.url : undefined];
    })));
    const optIn = (c) => links.get(c.id) !== undefined ? links.get(c.id)
      : c.kind === "whatsapp" && c.config && c.config.display_phone_number
        ? `https://wa.me/${String(c.config.display_phone_number).replace(/[^0-9]/g, "")}?text=START` : null;
    clear(body, h("h2", {}, "Channels"),
      table([["id", "#"], ["name", "Name"], [(c) => CHANNEL_NAMES[c.kind] || c.kind, "Kind"], [(c) => inboxes.get(c.inbox_id), "Inbox"],
        [(c) => webhookUrl(c) ? h("code", { class: "copyable" }, webhookUrl(c)) : "—", "Webhook URL"],
        [(c) => optIn(c) ? h("code", {}, optIn(c)) : "—", "Opt-in link"]], channels),
      isAdmin() ? form("New channel", [
        field("Name", h("input", { name: "name", required: true })),
        field("Kind", h("select", { name: "kind" }, Object.keys(CHANNEL_NAMES).map((k) => option(k, CHANNEL_NAMES[k], "webchat")))),
        field("Inbox", h("select", { name: "inbox_id" }, state.inboxes.map((i) => option(i.id, i.name, "")))),
        field("Settings (JSON)", h("textarea", { name: "config", rows: 3, placeholder: "{}" })),
      ], async (v) => {
        const created = await api("POST", "/channels", { name: v.name, kind: v.kind, inbox_id: Number(v.inbox_id), config: v.config ? JSON.parse(v.config) : {} });
        toast(created.webhook_url ? `Created. Webhook URL: ${created.webhook_url}` : "Channel created.");
        await refreshReference();
        PAGES.channels(body);
      }) : null);
  },

  async users(body) {
    const users = (await api("GET", "/users?limit=200")).items;
    const created = h("div", { id: "new-user-token" });
    clear(body, h("h2", {}, "Users and roles"),
      table([["id", "#"], ["name", "Name"], ["email", "Email"], ["role", "Role"], ["availability", "Status"]], users),
      isAdmin() ? form("New user", [
        field("Email", h("input", { name: "email", type: "email", required: true })),
        field("Name", h("input", { name: "name" })),
        field("Role", h("select", { name: "role" }, ROLES.map((r) => option(r, r.replace("_", " "), "agent")))),
        field("Password (8+ characters)", h("input", { name: "password", type: "password", autocomplete: "new-password" })),
        field("Inbox", h("select", { name: "inbox_id" }, option("", "None", ""), state.inboxes.map((i) => option(i.id, i.name, "")))),
      ], async (v) => {
        const result = await api("POST", "/users", { email: v.email, name: v.name || null, role: v.role, password: v.password || null, inbox_ids: v.inbox_id ? [Number(v.inbox_id)] : [] });
        await refreshReference();
        await PAGES.users(body);
        body.append(h("p", { class: "notice" }, `Created ${result.user.email}. API token (shown once): `, h("code", {}, result.token)));
      }) : null, created);
  },

  async teams(body) {
    const teams = (await api("GET", "/teams")).items;
    clear(body, h("h2", {}, "Teams"),
      table([["id", "#"], ["name", "Name"], [(t) => t.member_ids.map((id) => (state.users.get(id) || {}).name || id).join(", "), "Members"]], teams),
      isAdmin() ? form("New team", [
        field("Name", h("input", { name: "name", required: true })),
        field("Members", h("select", { name: "members", multiple: true }, [...state.users.values()].map((u) => option(u.id, u.name, "")))),
      ], async (v, el) => {
        const members = [...el.querySelector("select[name=members]").selectedOptions].map((o) => Number(o.value));
        await api("POST", "/teams", { name: v.name, member_ids: members });
        await refreshReference();
        PAGES.teams(body);
      }) : null);
  },

  async canned(body) {
    const data = await optional("/canned-responses");
    if (!data) return unavailable(body, "Saved replies");
    state.canned = data.items;
    clear(body, h("h2", {}, "Saved replies"), h("p", { class: "muted" }, "Agents insert these by typing / and the short code in the composer."),
      table([[(r) => `/${r.short_code}`, "Short code"], ["text", "Text"],
        [(r) => isAdmin() ? h("button", { class: "small-button", onclick: async () => { await api("DELETE", `/canned-responses/${r.id}`); PAGES.canned(body); } }, "Delete") : "", ""]], data.items),
      isAdmin() ? form("New saved reply", [
        field("Short code", h("input", { name: "short_code", required: true, pattern: "[A-Za-z0-9_-]+" })),
        field("Text", h("textarea", { name: "text", rows: 3, required: true })),
      ], async (v) => { await api("POST", "/canned-responses", v); PAGES.canned(body); }) : null);
  },

  async routing(body) {
    await jsonResource(body, "Routing rules", ["/rules", "/routing/rules"]);
  },

  async bots(body) {
    await jsonResource(body, "Bot flows", ["/bots", "/bot-flows"]);
  },

  async templates(body) {
    const channels = [...state.channels.values()];
    const lists = await Promise.all(channels.map(async (c) => [c, await optional(`/channels/${c.id}/templates`)]));
    const available = lists.filter(([, data]) => data !== null);
    if (!available.length) return unavailable(body, "Templates");
    clear(body, h("h2", {}, "Templates"),
      available.map(([c, data]) => h("section", {}, h("h3", {}, c.name),
        table([["name", "Name"], ["language", "Language"], ["category", "Category"], ["status", "Status"], [(t) => t.body || t.text, "Body"]], data.items || data))),
      isAdmin() ? form("New template", [
        field("Channel", h("select", { name: "channel_id" }, available.map(([c]) => option(c.id, c.name, "")))),
        field("Name", h("input", { name: "name", required: true, pattern: "[a-z0-9_]+" })),
        field("Language", h("input", { name: "language", value: "en_US" })),
        field("Category", h("select", { name: "category" }, ["utility", "marketing", "authentication"].map((x) => option(x, x, "utility")))),
        field("Body ({{1}}, {{2}} for parameters)", h("textarea", { name: "body", rows: 3, required: true })),
      ], async (v) => {
        await api("POST", `/channels/${v.channel_id}/templates`, { name: v.name, language: v.language, category: v.category, body: v.body });
        PAGES.templates(body);
      }) : null);
  },

  async billing(body) {
    const quota = await optional("/quota");
    if (!quota) return unavailable(body, "Billing and quota");
    const usage = await usagePerDay(quota);
    const percent = Math.floor(quota.percent ?? (quota.limit ? (100 * quota.used) / quota.limit : 0));
    clear(body, h("h2", {}, "Billing"),
      h("div", { class: "quota-meter" },
        h("div", { class: "meter" }, h("div", { class: ["meter-fill", `tier-${quota.tier || 0}`], style: `width:${Math.min(100, percent)}%` })),
        h("p", {}, `${number(quota.used)} of ${number(quota.limit)} conversations used this period (${percent} %).`),
        h("p", { class: "muted small" }, `Period ${longDate(quota.period_start)} – ${longDate(quota.period_end)}.${quota.blocked ? " New conversations are blocked." : ""}`)),
      usage ? usageChart(usage) : null,
      isBilling() ? form("Buy conversation packs (1,000 each)", [
        field("Packs", h("input", { name: "count", type: "number", min: 1, max: 100, value: 1, required: true })),
      ], async (v) => {
        await api("POST", "/billing/packs", { count: Number(v.count) });
        toast("Packs added; they take effect at once.");
        PAGES.billing(body);
        import("./banner.js").then((b) => b.refresh());
      }, "Buy") : h("p", { class: "muted" }, "Billing admins and super admins can buy more conversations."));
  },
};

/** Billable conversations opened per day of the period, from the list of billable conversations. */
async function usagePerDay(quota) {
  const counts = new Map();
  let cursor = null;
  for (let page = 0; page < 20; page++) {
    const data = await optional(`/billing/conversations?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`).catch(() => null);
    if (!data) return counts.size ? toDays(counts, quota) : null;
    for (const row of data.items) {
      if (row.released_at) continue;
      const day = String(row.opened_at).slice(0, 10);
      counts.set(day, (counts.get(day) || 0) + 1);
    }
    cursor = data.next_cursor;
    if (!cursor) break;
  }
  return toDays(counts, quota);
}

function toDays(counts, quota) {
  const days = [];
  const start = new Date(quota.period_start);
  const end = new Date(quota.period_end);
  for (let d = new Date(start); d < end; d.setUTCDate(d.getUTCDate() + 1)) {
    const key = d.toISOString().slice(0, 10);
    days.push({ day: key, count: counts.get(key) || 0 });
  }
  return days;
}

function usageChart(days) {
  const max = Math.max(1, ...days.map((d) => d.count));
  return h("figure", { class: "usage" },
    h("figcaption", { class: "muted small" }, `Conversations opened per day (highest: ${max})`),
    h("div", { class: "usage-chart", role: "img", "aria-label": "Conversations opened per day" }, days.map((d) =>
      h("div", { class: "bar", title: `${d.day}: ${d.count}`, style: `height:${Math.round((100 * d.count) / max)}%` }))));
}

async function jsonResource(body, title, paths) {
  const found = await firstAvailable(paths);
  if (!found) return unavailable(body, title);
  const items = found.data.items || found.data;
  const columns = items.length ? Object.keys(items[0]).slice(0, 6).map((k) => [k, k]) : [["id", "#"]];
  clear(body, h("h2", {}, title), table(columns, items),
    isAdmin() ? form(`New (JSON, as ${found.path} accepts it)`, [
      field("Definition", h("textarea", { name: "json", rows: 8, required: true, class: "mono" })),
    ], async (v) => {
      await api("POST", found.path, JSON.parse(v.json));
      jsonResource(body, title, paths);
    }) : null);
}

async function refreshReference() {
  const main = await import("./main.js");
  await main.reloadReference();
}
