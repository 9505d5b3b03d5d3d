// The Reports page (#/reports): filters, the period's totals, a time series and per-agent bars (SVG from
// charts.js), and every report table with its CSV download. The API decides what a user sees: an agent
// gets only their own numbers, so the page offers the agent filter to admins only.

import { api } from "./api.js";
import { h, clear, $, option } from "./dom.js";
import { state, isAdmin } from "./state.js";
import { channelName, reasonText } from "./format.js";
import { t, formatDate, formatDateTime, formatNumber, formatPercent } from "./i18n.js";
import { barChart, columnChart } from "./charts.js";

const REPORTS = ["summary", "timeseries", "agents", "bots", "teams", "inboxes", "broadcasts"];
// The CSAT report (gateway/api/csat.py) takes the period, the inbox and the agent.
const CSAT_FILTERS = ["from", "to", "inbox_id", "agent_id"];
const CSAT_TOTALS = ["sent", "not_sent", "answered", "response_rate", "average", "median", "satisfied_percent"];
const TOTALS = ["opened", "resolved", "reopened", "incoming", "outgoing", "agent_replies", "first_response_median",
  "first_response_p90", "next_response_median", "resolution_median", "bot_runs", "bot_resolved", "handoff_rate",
  "billable_conversations"];
const SERIES = ["opened", "resolved", "incoming", "outgoing", "agent_replies", "first_response_median",
  "resolution_median", "bot_runs", "handoffs", "billable_conversations"];
const AGENT_BARS = ["replies", "conversations", "first_response_median", "resolved"];
const GROUP = ["name", "opened", "resolved", "incoming", "agent_replies", "first_response_median", "first_response_p90",
  "resolution_median", "resolution_p90"];
const TABLES = [
  ["agents", ["name", "replies", "conversations", "first_responses", "first_response_median", "first_response_p90",
    "next_response_median", "resolved", "resolution_median"]],
  ["bots", ["name", "runs", "resolved", "handoffs", "handoff_rate", "resolution_rate"]],
  ["teams", GROUP],
  ["inboxes", GROUP],
  ["timeseries", ["bucket", ...SERIES]],
  ["broadcasts", ["title", "channel_kind", "created_at", "recipients", "sent", "delivered", "read", "replied", "failed",
    "failed_by_reason"]],
];

// Kept while the page is open and when coming back to it: a lead compares periods.
const filters = { from: "", to: "", group_by: "day", inbox_id: "", channel: "", team_id: "", agent_id: "", label: "", business_hours: false };
let seriesMetric = "opened";
let agentMetric = "replies";
let loaded = null; // the last answers, {summary, timeseries, agents, ...}

/** "10 min", "1.5 hr", "45 sec" in the page's language; "—" for no value. */
export function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const [value, unit] = seconds < 60 ? [seconds, "second"]
    : seconds < 3600 ? [seconds / 60, "minute"]
      : seconds < 86400 ? [seconds / 3600, "hour"] : [seconds / 86400, "day"];
  return formatNumber(value, { style: "unit", unit, unitDisplay: "short", maximumFractionDigits: 1 });
}

function isDuration(field) {
  return /_(median|p90|mean)$/.test(field);
}

function formatValue(field, value) {
  if (value === null || value === undefined) return "—";
  if (isDuration(field)) return formatSeconds(value);
  if (field.endsWith("_rate")) return formatPercent(value);
  if (field === "bucket") return bucketLabel(value);
  if (field === "channel_kind") return channelName(value);
  if (field === "created_at") return formatDateTime(value);
  if (field === "failed_by_reason") return failures(value);
  if (typeof value === "number") return formatNumber(value);
  return String(value);
}

/** "not_opted_in=1; opted_out=2" in words: "1 × &lt;reason&gt;, 2 × &lt;reason&gt;". */
function failures(text) {
  if (!text) return "—";
  return text.split("; ").map((part) => {
    const [code, n] = part.split("=");
    return t("reports.failure", { reason: reasonText(code), count: formatNumber(Number(n)) });
  }).join(", ");
}

function localDay(iso) {
  const [y, m, d] = iso.split("-").map(Number);
  return new Date(y, m - 1, d); // the account's day as it is written, whatever the browser's zone
}

function bucketLabel(iso) {
  const options = filters.group_by === "month" ? { month: "short", year: "numeric" } : { day: "numeric", month: "short" };
  return formatDate(localDay(iso), options);
}

function query(format) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filters)) {
    if (key === "business_hours") { if (value) params.set(key, "true"); }
    else if (value !== "") params.set(key, value);
  }
  if (format) params.set("format", format);
  return params.toString();
}

function csvLink(name) {
  return h("a", { class: "small-button csv-link", href: `/api/v1/reports/${name}?${query("csv")}`, download: "", data: { report: name } }, t("reports.csv"));
}

// -- the page ----------------------------------------------------------------------------------------

/** #/reports */
export async function render(main) {
  clear(main, h("section", { id: "reports-page", class: "reports-page" },
    h("header", { class: "reports-header" }, h("h2", {}, t("reports.title")),
      isAdmin() ? null : h("p", { class: "muted small", id: "reports-own" }, t("reports.own_numbers"))),
    filterForm(),
    h("div", { id: "reports-body", "aria-live": "polite" }, h("p", { class: "muted" }, t("reports.loading")))));
  await load();
}

function filterForm() {
  const any = t("reports.filter.any");
  const select = (key, values) => h("select", { name: key, id: `reports-${key.replace("_", "-")}` },
    option("", any, filters[key]), values.map(([value, name]) => option(value, name, filters[key])));
  const kinds = [...new Set([...state.channels.values()].map((c) => c.kind))].sort();
  const field = (labelKey, input) => h("label", {}, t(labelKey), input);
  const form = h("form", { class: "reports-filters", id: "reports-filters", onsubmit: (e) => {
    e.preventDefault();
    const data = new FormData(form);
    for (const key of Object.keys(filters)) {
      filters[key] = key === "business_hours" ? data.has(key) : String(data.get(key) ?? "").trim();
    }
    load();
  } },
  field("reports.filter.from", h("input", { type: "date", name: "from", id: "reports-from", value: filters.from })),
  field("reports.filter.to", h("input", { type: "date", name: "to", id: "reports-to", value: filters.to })),
  field("reports.filter.group_by", h("select", { name: "group_by", id: "reports-group-by" },
    ["day", "week", "month"].map((g) => option(g, t(`reports.group.${g}`), filters.group_by)))),
  field("reports.filter.inbox", select("inbox_id", state.inboxes.map((i) => [i.id, i.name]))),
  field("reports.filter.channel", select("channel", kinds.map((k) => [k, channelName(k)]))),
  field("reports.filter.team", select("team_id", state.teams.map((x) => [x.id, x.name]))),
  isAdmin() ? field("reports.filter.agent", select("agent_id", [...state.users.values()].map((u) => [u.id, u.name]))) : null,
  field("reports.filter.label", h("input", { type: "text", name: "label", id: "reports-label", value: filters.label })),
  h("label", { class: "reports-check" }, h("input", { type: "checkbox", name: "business_hours", id: "reports-business-hours", checked: filters.business_hours }), t("reports.filter.business_hours")),
  h("button", { type: "submit", class: "primary" }, t("reports.apply")));
  return form;
}

async function load() {
  const body = $("#reports-body");
  if (!body) return;
  const q = query();
  try {
    const csatQuery = new URLSearchParams(CSAT_FILTERS.filter((k) => filters[k] !== "").map((k) => [k, filters[k]]));
    const [csat, ...answers] = await Promise.all([api("GET", `/reports/csat?${csatQuery}`),
      ...REPORTS.map((name) => api("GET", `/reports/${name}?${q}`))]);
    loaded = Object.fromEntries(REPORTS.map((name, i) => [name, answers[i]]));
    loaded.csat = csat;
  } catch (err) {
    // A refused filter (422) names its field in the server's message, e.g. "invalid query: from: …".
    clear(body, h("p", { class: "form-error", role: "alert", id: "reports-error" }, t("reports.failed", { message: err.message })));
    return;
  }
  // The period the server used (the account's local days): the defaults are its last 30 days.
  filters.from = loaded.summary.from;
  filters.to = loaded.summary.to;
  $("#reports-from").value = filters.from;
  $("#reports-to").value = filters.to;
  clear(body,
    totals(loaded.summary.rows[0]),
    seriesSection(),
    agentsSection(),
    csatSection(loaded.csat),
    TABLES.map(([name, columns]) => tableSection(name, columns, loaded[name].rows)));
}

function section(id, titleKey, tools, ...content) {
  return h("section", { class: "reports-section", id: `reports-${id}`, "aria-label": t(titleKey) },
    h("header", { class: "reports-section-header" }, h("h3", {}, t(titleKey)), h("div", { class: "reports-tools" }, tools)),
    content);
}

function totals(row) {
  return section("totals", "reports.section.totals", csvLink("summary"),
    h("dl", { class: "reports-totals" }, TOTALS.map((field) => h("div", { class: "reports-total", data: { metric: field } },
      h("dt", {}, t(`reports.col.${field}`)), h("dd", {}, formatValue(field, row[field]))))));
}

function metricSelect(id, fields, current, choose) {
  return h("select", { id, "aria-label": t("reports.metric"), onchange: (e) => choose(e.target.value) },
    fields.map((f) => option(f, t(`reports.col.${f}`), current)));
}

function seriesSection() {
  const rows = loaded.timeseries.rows;
  const chart = columnChart(rows.map((r) => ({ label: bucketLabel(r.bucket), value: r[seriesMetric], text: formatValue(seriesMetric, r[seriesMetric]) })), {
    id: "reports-series-chart",
    label: t("reports.chart.series", { metric: t(`reports.col.${seriesMetric}`) }),
    format: (v) => (isDuration(seriesMetric) ? formatSeconds(v) : formatNumber(v)),
  });
  return section("series", "reports.section.timeseries",
    metricSelect("reports-series-metric", SERIES, seriesMetric, (m) => { seriesMetric = m; $("#reports-series").replaceWith(seriesSection()); }),
    chart);
}

function agentsSection() {
  const rows = loaded.agents.rows;
  const chart = rows.length
    ? barChart(rows.map((r) => ({ label: r.name, value: r[agentMetric], text: formatValue(agentMetric, r[agentMetric]) })), {
      id: "reports-agents-chart",
      label: t("reports.chart.agents", { metric: t(`reports.col.${agentMetric}`) }),
    })
    : h("p", { class: "muted" }, t("reports.empty"));
  return section("agent-bars", "reports.section.agent_bars",
    metricSelect("reports-agents-metric", AGENT_BARS, agentMetric, (m) => { agentMetric = m; $("#reports-agent-bars").replaceWith(agentsSection()); }),
    chart);
}

function csatValue(field, value) {
  if (value === null || value === undefined) return "—";
  if (field === "response_rate") return formatPercent(value);
  if (field === "satisfied_percent") return formatPercent(value / 100);
  if (field === "average" || field === "median") return formatNumber(value, { maximumFractionDigits: 2 });
  return formatNumber(value);
}

function csatSection(report) {
  const ratings = ["1", "2", "3", "4", "5"];
  const answered = ratings.some((r) => report.distribution[r]);
  return section("csat", "reports.section.csat", null,
    h("dl", { class: "reports-totals" }, CSAT_TOTALS.map((field) => h("div", { class: "reports-total", data: { metric: field } },
      h("dt", {}, t(`reports.csat.${field}`)), h("dd", {}, csatValue(field, report[field]))))),
    answered
      ? barChart(ratings.map((r) => ({ label: t("reports.csat.rating", { rating: r }), value: report.distribution[r] ?? 0,
        text: formatNumber(report.distribution[r] ?? 0) })), { id: "reports-csat-chart", label: t("reports.csat.distribution") })
      : h("p", { class: "muted" }, t("reports.empty")));
}

function tableSection(name, columns, rows) {
  const nameOf = (row) => (name === "teams" && row.id === null ? t("reports.no_team") : row.name);
  return section(`table-${name}`, `reports.section.${name}`, csvLink(name),
    rows.length === 0 ? h("p", { class: "muted" }, t("reports.empty")) : h("div", { class: "reports-table-wrap" },
      h("table", { class: "admin-table reports-table", data: { report: name } },
        h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, t(`reports.col.${c}`))))),
        h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { data: { col: c } },
          c === "name" ? nameOf(row) : formatValue(c, row[c])))))))));
}
