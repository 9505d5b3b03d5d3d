// Admin pages: inboxes, channels, users and roles, teams, saved replies, routing rules, bot flows,
// templates and billing. Pages whose API is not installed on this server say so instead of failing.

import { api, optional, firstAvailable } from "./api.js";
import { h, clear, option } from "./dom.js";
import { state, isAdmin, isBilling } from "./state.js";
import { availabilityName, channelKinds, channelName } from "./format.js";
import { t, textOr, formatDateTime, formatPercent } from "./i18n.js";
import { toast } from "./banner.js";

// Each section's title is the catalog's admin.section.<key>.
const SECTIONS = ["inboxes", "channels", "users", "teams", "canned", "routing", "bots", "templates", "billing"];

const ROLES = ["agent", "admin", "billing_admin", "super_admin"];

export async function render(main, section) {
  const body = h("div", { class: "admin-body", id: "admin-body" }, h("p", { class: "muted" }, t("thread.loading")));
  clear(main, h("div", { class: "admin" },
    h("nav", { class: "admin-nav", "aria-label": t("shell.settings") },
      h("a", { href: "#/", class: "admin-back" }, t("admin.back")),
      h("ul", {}, SECTIONS.map((key) => h("li", {}, h("a", { href: `#/admin/${key}`, class: key === section ? "active" : "" }, t(`admin.section.${key}`)))))),
    body));
  const page = PAGES[section];
  if (!page) { clear(body, h("p", {}, t("admin.no_page"))); return; }
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
      : h("tr", {}, h("td", { colSpan: columns.length, class: "muted" }, t("admin.nothing_yet")))));
}

function cell(value) {
  if (value instanceof Node) return value;
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return h("code", { class: "json" }, JSON.stringify(value));
  return String(value);
}

function form(title, fields, onSubmit, submitLabel = t("admin.create")) {
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
  clear(body, h("h2", {}, what), h("p", { class: "muted" }, t("admin.unavailable", { what })));
}

function requireAdmin(body) {
  if (isAdmin()) return true;
  clear(body, h("p", { class: "muted" }, t("admin.only_admins")));
  return false;
}

const webhookUrl = (c) => ["whatsapp", "telegram"].includes(c.kind) ? `${location.origin}/webhooks/${c.kind}/${c.id}` : null;

const PAGES = {
  async inboxes(body) {
    const inboxes = (await api("GET", "/inboxes")).items;
    const teams = new Map(state.teams.map((team) => [team.id, team.name]));
    clear(body, h("h2", {}, t("admin.section.inboxes")),
      table([["id", "#"], ["name", t("admin.col.name")], [(i) => teams.get(i.team_id) || "—", t("admin.col.team")], [(i) => i.member_ids.map((id) => (state.users.get(id) || {}).name || id).join(", "), t("admin.col.members")]], inboxes),
      isAdmin() ? form(t("admin.new_inbox"), [
        field(t("admin.col.name"), h("input", { name: "name", required: true })),
        field(t("admin.col.team"), h("select", { name: "team_id" }, option("", t("admin.none"), ""), state.teams.map((team) => option(team.id, team.name, "")))),
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
    clear(body, h("h2", {}, t("admin.section.channels")),
      table([["id", "#"], ["name", t("admin.col.name")], [(c) => channelName(c.kind), t("admin.col.kind")], [(c) => inboxes.get(c.inbox_id), t("admin.col.inbox")],
        [(c) => webhookUrl(c) ? h("code", { class: "copyable" }, webhookUrl(c)) : "—", t("admin.col.webhook_url")],
        [(c) => optIn(c) ? h("code", {}, optIn(c)) : "—", t("admin.col.opt_in_link")]], channels),
      isAdmin() ? form(t("admin.new_channel"), [
        field(t("admin.col.name"), h("input", { name: "name", required: true })),
        field(t("admin.col.kind"), h("select", { name: "kind" }, channelKinds().map((k) => option(k, channelName(k), "webchat")))),
        field(t("admin.col.inbox"), h("select", { name: "inbox_id" }, state.inboxes.map((i) => option(i.id, i.name, "")))),
        field(t("admin.channel_settings"), h("textarea", { name: "config", rows: 3, placeholder: "{}" })),
      ], async (v) => {
        const created = await api("POST", "/channels", { name: v.name, kind: v.kind, inbox_id: Number(v.inbox_id), config: v.config ? JSON.parse(v.config) : {} });
        toast(created.webhook_url ? t("admin.channel_created_webhook", { url: created.webhook_url }) : t("admin.channel_created"));
        await refreshReference();
        PAGES.channels(body);
      }) : null);
  },

  async users(body) {
    const users = (await api("GET", "/users?limit=200")).items;
    const created = h("div", { id: "new-user-token" });
    clear(body, h("h2", {}, t("admin.section.users")),
      table([["id", "#"], ["name", t("admin.col.name")], ["email", t("login.email")], [(u) => textOr(`admin.role.${u.role}`, u.role), t("admin.col.role")], [(u) => availabilityName(u.availability), t("nav.status")]], users),
      isAdmin() ? form(t("admin.new_user"), [
        field(t("login.email"), h("input", { name: "email", type: "email", required: true })),
        field(t("admin.col.name"), h("input", { name: "name" })),
        field(t("admin.col.role"), h("select", { name: "role" }, ROLES.map((r) => option(r, t(`admin.role.${r}`), "agent")))),
        field(t("admin.password"), h("input", { name: "password", type: "password", autocomplete: "new-password" })),
        field(t("admin.col.inbox"), h("select", { name: "inbox_id" }, option("", t("admin.none"), ""), state.inboxes.map((i) => option(i.id, i.name, "")))),
      ], async (v) => {
        const result = await api("POST", "/users", { email: v.email, name: v.name || null, role: v.role, password: v.password || null, inbox_ids: v.inbox_id ? [Number(v.inbox_id)] : [] });
        await refreshReference();
        await PAGES.users(body);
        body.append(h("p", { class: "notice" }, t("admin.user_created", { email: result.user.email }), " ", h("code", {}, result.token)));
      }) : null, created);
  },

  async teams(body) {
    const teams = (await api("GET", "/teams")).items;
    clear(body, h("h2", {}, t("admin.section.teams")),
      table([["id", "#"], ["name", t("admin.col.name")], [(team) => team.member_ids.map((id) => (state.users.get(id) || {}).name || id).join(", "), t("admin.col.members")]], teams),
      isAdmin() ? form(t("admin.new_team"), [
        field(t("admin.col.name"), h("input", { name: "name", required: true })),
        field(t("admin.col.members"), h("select", { name: "members", multiple: true }, [...state.users.values()].map((u) => option(u.id, u.name, "")))),
      ], async (v, el) => {
        const members = [...el.querySelector("select[name=members]").selectedOptions].map((o) => Number(o.value));
        await api("POST", "/teams", { name: v.name, member_ids: members });
        await refreshReference();
        PAGES.teams(body);
      }) : null);
  },

  async canned(body) {
    const data = await optional("/canned-responses");
    if (!data) return unavailable(body, t("admin.section.canned"));
    state.canned = data.items;
    clear(body, h("h2", {}, t("admin.section.canned")), h("p", { class: "muted" }, t("admin.canned_hint")),
      table([[(r) => `/${r.short_code}`, t("admin.col.short_code")], ["text", t("admin.col.text")],
        [(r) => isAdmin() ? h("button", { class: "small-button", onclick: async () => { await api("DELETE", `/canned-responses/${r.id}`); PAGES.canned(body); } }, t("admin.delete")) : "", ""]], data.items),
      isAdmin() ? form(t("admin.new_canned"), [
        field(t("admin.col.short_code"), h("input", { name: "short_code", required: true, pattern: "[A-Za-z0-9_-]+" })),
        field(t("admin.col.text"), h("textarea", { name: "text", rows: 3, required: true })),
      ], async (v) => { await api("POST", "/canned-responses", v); PAGES.canned(body); }) : null);
  },

  async routing(body) {
    await jsonResource(body, t("admin.section.routing"), ["/rules", "/routing/rules"]);
  },

  async bots(body) {
    await jsonResource(body, t("admin.section.bots"), ["/bots", "/bot-flows"]);
  },

  async templates(body) {
    const channels = [...state.channels.values()];
    const lists = await Promise.all(channels.map(async (c) => [c, await optional(`/channels/${c.id}/templates`)]));
    const available = lists.filter(([, data]) => data !== null);
    if (!available.length) return unavailable(body, t("admin.section.templates"));
    clear(body, h("h2", {}, t("admin.section.templates")),
      available.map(([c, data]) => h("section", {}, h("h3", {}, c.name),
        table([["name", t("admin.col.name")], ["language", t("shell.language")], [(tpl) => textOr(`admin.category.${tpl.category}`, tpl.category), t("admin.col.category")], ["status", t("nav.status")], [(tpl) => tpl.body || tpl.text, t("admin.col.body")]], data.items || data))),
      isAdmin() ? form(t("admin.new_template"), [
        field(t("nav.channel"), h("select", { name: "channel_id" }, available.map(([c]) => option(c.id, c.name, "")))),
        field(t("admin.col.name"), h("input", { name: "name", required: true, pattern: "[a-z0-9_]+" })),
        field(t("shell.language"), h("input", { name: "language", value: "en_US" })),
        field(t("admin.col.category"), h("select", { name: "category" }, ["utility", "marketing", "authentication"].map((x) => option(x, t(`admin.category.${x}`), "utility")))),
        field(t("admin.template_body"), h("textarea", { name: "body", rows: 3, required: true })),
      ], async (v) => {
        await api("POST", `/channels/${v.channel_id}/templates`, { name: v.name, language: v.language, category: v.category, body: v.body });
        PAGES.templates(body);
      }) : null);
  },

  async billing(body) {
    const quota = await optional("/quota");
    if (!quota) return unavailable(body, t("admin.billing_and_quota"));
    const usage = await usagePerDay(quota);
    const percent = Math.floor(quota.percent ?? (quota.limit ? (100 * quota.used) / quota.limit : 0));
    clear(body, h("h2", {}, t("admin.section.billing")),
      h("div", { class: "quota-meter" },
        h("div", { class: "meter" }, h("div", { class: ["meter-fill", `tier-${quota.tier || 0}`], style: `width:${Math.min(100, percent)}%` })),
        h("p", {}, t("admin.quota_used", { used: quota.used, limit: quota.limit, percent: formatPercent(percent / 100) })),
        h("p", { class: "muted small" }, t("admin.period", { start: formatDateTime(quota.period_start), end: formatDateTime(quota.period_end) }), quota.blocked ? ` ${t("admin.blocked")}` : "")),
      usage ? usageChart(usage) : null,
      isBilling() ? form(t("admin.buy_packs", { size: 1000 }), [
        field(t("admin.packs"), h("input", { name: "count", type: "number", min: 1, max: 100, value: 1, required: true })),
      ], async (v) => {
        await api("POST", "/billing/packs", { count: Number(v.count) });
        toast(t("admin.packs_added"));
        PAGES.billing(body);
        import("./banner.js").then((b) => b.refresh());
      }, t("admin.buy")) : h("p", { class: "muted" }, t("admin.billing_only")));
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
    h("figcaption", { class: "muted small" }, t("admin.usage_caption", { max })),
    h("div", { class: "usage-chart", role: "img", "aria-label": t("admin.usage") }, days.map((d) =>
      h("div", { class: "bar", title: `${d.day}: ${d.count}`, style: `height:${Math.round((100 * d.count) / max)}%` }))));
}

async function jsonResource(body, title, paths) {
  const found = await firstAvailable(paths);
  if (!found) return unavailable(body, title);
  const items = found.data.items || found.data;
  const columns = items.length ? Object.keys(items[0]).slice(0, 6).map((k) => [k, k]) : [["id", "#"]];
  clear(body, h("h2", {}, title), table(columns, items),
    isAdmin() ? form(t("admin.new_json", { path: found.path }), [
      field(t("admin.definition"), h("textarea", { name: "json", rows: 8, required: true, class: "mono" })),
    ], async (v) => {
      await api("POST", found.path, JSON.parse(v.json));
      jsonResource(body, title, paths);
    }) : null);
}

async function refreshReference() {
  const main = await import("./main.js");
  await main.reloadReference();
}
