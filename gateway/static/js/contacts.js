// The Contacts page (#/contacts): search and filters (tag, channel, attribute), the list with more
// pages, the CSV export of what the filters select, and (admins) a CSV import with a column mapping
// whose bad rows are listed by line.

import { api } from "./api.js";
import { h, clear, $, option } from "./dom.js";
import { isAdmin } from "./state.js";
import { channelIcon, channelKinds, channelName } from "./format.js";
import { t, formatNumber } from "./i18n.js";
import { toast } from "./banner.js";

// Kept while the page is open and when coming back to it.
const filters = { q: "", tag: "", channel: "", attribute: "" };
const TARGETS = ["name", "email", "phone", "tags"];

function query(extra = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries({ ...filters, ...extra })) if (value) params.set(key, value);
  return params.toString();
}

function contactRow(c) {
  return h("tr", { class: "contact-row", data: { contact: c.id } },
    h("td", {}, c.name || "—"),
    h("td", {}, c.email || ""),
    h("td", { class: "mono" }, c.phone || ""),
    h("td", {}, c.identities.map((i) => h("span", { class: "channel-icon", title: `${channelName(i.kind)}: ${i.address}`, data: { kind: i.kind } }, channelIcon(i.kind)))),
    h("td", {}, c.tags.map((x) => h("span", { class: "label-chip" }, x.tag))));
}

async function loadList(body, more) {
  let cursor = null;
  async function page() {
    try {
      const found = await api("GET", `/contacts?${query(cursor ? { cursor, limit: "50" } : { limit: "50" })}`);
      body.append(...found.items.map(contactRow));
      cursor = found.next_cursor;
      more.hidden = !cursor;
      if (!body.children.length) body.append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, t("contacts.none"))));
    } catch (err) {
      toast(err.message);
    }
  }
  more.onclick = page;
  await page();
}

function filterBar(reload) {
  const input = (key, placeholder) => {
    const el = h("input", { id: `contacts-${key}`, type: key === "q" ? "search" : "text", placeholder, value: filters[key], "aria-label": placeholder });
    el.addEventListener("change", () => { filters[key] = el.value.trim(); reload(); });
    return el;
  };
  const channel = h("select", { id: "contacts-channel", "aria-label": t("contacts.channel"), onchange: (e) => { filters.channel = e.target.value; reload(); } },
    option("", t("contacts.any_channel"), filters.channel),
    channelKinds().map((kind) => option(kind, channelName(kind), filters.channel)));
  return h("div", { class: "contacts-filters" },
    input("q", t("contacts.search")), input("tag", t("contacts.tag")), channel, input("attribute", t("contacts.attribute")),
    h("a", { id: "contacts-export", class: "small-button", href: `/api/v1/contacts?${query({ format: "csv" })}`, download: "" }, t("contacts.export")));
}

function importPanel(reload) {
  const result = h("div", { id: "import-result", role: "status" });
  const mapping = h("div", { id: "import-mapping", class: "import-mapping" });
  const region = h("input", { id: "import-region", type: "text", maxlength: 2, placeholder: "BR", "aria-label": t("contacts.import.region"), class: "region" });
  const file = h("input", { id: "import-file", type: "file", accept: ".csv,text/csv", "aria-label": t("contacts.import.file") });
  let text = null;
  let selects = [];

  file.addEventListener("change", async () => {
    clear(result);
    const picked = file.files && file.files[0];
    if (!picked) return;
    text = await picked.text();
    const headers = parseHeader(text);
    selects = headers.map((header) => {
      const lower = header.trim().toLowerCase();
      const key = attributeKey(header);
      const guess = TARGETS.includes(lower) ? lower : lower === "e-mail" ? "email" : `attributes.${key}`;
      const select = h("select", { class: "import-target", data: { column: header }, "aria-label": t("contacts.import.column", { column: header }) },
        TARGETS.map((x) => option(x, t(`contacts.import.target.${x}`), guess)),
        option(`attributes.${key}`, t("contacts.import.target.attribute", { key }), guess),
        option("ignore", t("contacts.import.target.ignore"), guess));
      return [header, select];
    });
    clear(mapping, h("p", { class: "small" }, t("contacts.import.map")),
      h("table", { class: "import-columns" }, selects.map(([header, select]) => h("tr", {}, h("th", {}, header), h("td", {}, select)))));
    go.disabled = false;
  });

  const go = h("button", { id: "import-go", class: "small-button primary", disabled: true, onclick: async () => {
    go.disabled = true;
    try {
      const columns = Object.fromEntries(selects.map(([header, select]) => [header, select.value]));
      const body = { csv: text, columns };
      if (region.value.trim()) body.default_region = region.value.trim().toUpperCase();
      const r = await api("POST", "/contacts/import", body);
      clear(result,
        h("p", { id: "import-summary" }, t("contacts.import.summary", { created: formatNumber(r.created), updated: formatNumber(r.updated), errors: formatNumber(r.errors.length) })),
        r.errors.length ? h("table", { id: "import-errors", class: "import-errors" },
          h("tr", {}, h("th", {}, t("contacts.import.line")), h("th", {}, t("contacts.import.field")), h("th", {}, t("contacts.import.problem"))),
          r.errors.map((e) => h("tr", { data: { line: e.line } }, h("td", {}, String(e.line)), h("td", {}, e.field || ""), h("td", {}, e.message)))) : null);
      reload();
    } catch (err) {
      clear(result, h("p", { class: "file-error", role: "alert" }, err.message));
    } finally {
      go.disabled = false;
    }
  } }, t("contacts.import.go"));

  return h("details", { id: "contacts-import", class: "contacts-import" },
    h("summary", {}, t("contacts.import.title")),
    h("p", { class: "muted small" }, t("contacts.import.help")),
    h("div", { class: "import-row" }, file, h("label", { class: "small" }, t("contacts.import.region"), " ", region)),
    mapping, go, result);
}

/** The attribute a column becomes by default: its header lower-cased, spaces as "_" (as the server does). */
function attributeKey(header) {
  return header.trim().toLowerCase().replace(/\s+/g, "_");
}

/** The header line of a CSV text (quoted cells allowed). */
export function parseHeader(text) {
  const line = text.replace(/^\ufeff/, "").split(/\r?\n/)[0] || "";
  const cells = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') { cell += '"'; i++; } else if (ch === '"') quoted = false; else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") { cells.push(cell); cell = ""; } else cell += ch;
  }
  cells.push(cell);
  return cells.filter((c) => c.trim());
}

export function render(main) {
  const body = h("tbody", { id: "contacts-body" });
  const more = h("button", { id: "contacts-more", class: "small-button", hidden: true }, t("contacts.more"));
  const table = h("table", { id: "contacts-table", class: "contacts-table" },
    h("thead", {}, h("tr", {},
      h("th", {}, t("contacts.col.name")), h("th", {}, t("contacts.col.email")), h("th", {}, t("contacts.col.phone")),
      h("th", {}, t("contacts.col.channels")), h("th", {}, t("contacts.col.tags")))),
    body);
  const bar = h("div", { id: "contacts-bar" });
  function reload() {
    clear(body);
    clear(bar, filterBar(reload));
    loadList(body, more);
  }
  clear(main, h("section", { class: "contacts-page", id: "contacts-page" },
    h("h1", {}, t("contacts.title")), bar, isAdmin() ? importPanel(reload) : null, table, more));
  reload();
  const search = $("#contacts-q");
  if (search) search.focus();
}
