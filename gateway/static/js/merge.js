// The contact sidebar's "Merge" section: suggested duplicates, a search for any other contact, a
// preview of what the merge does (conflicts, what moves), then the merge itself.

import { api, optional } from "./api.js";
import { t } from "./i18n.js";
import { h, clear } from "./dom.js";
import { toast } from "./banner.js";

function label(c) {
  return c.name || c.email || c.phone || t("merge.contact_id", { id: String(c.id) });
}

// One static t() call per kind of row (the catalog test finds every key used).
const MOVES = {
  identities: (n) => t("merge.moves.identities", { count: n }),
  conversations: (n) => t("merge.moves.conversations", { count: n }),
  tickets: (n) => t("merge.moves.tickets", { count: n }),
  consent_changes: (n) => t("merge.moves.consent_changes", { count: n }),
  tags: (n) => t("merge.moves.tags", { count: n }),
};

function value(v) {
  if (v === null || v === undefined) return "—";
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** The section for contact ``contact``; ``onMerged()`` reloads the sidebar afterwards. */
export function mergeSection(contact, onMerged) {
  const suggestions = h("ul", { id: "merge-suggestions", class: "plain" });
  const panel = h("div", { id: "merge-preview", class: "merge-preview", hidden: true });
  const search = h("input", { id: "merge-search", type: "search", placeholder: t("merge.search_placeholder"), "aria-label": t("merge.search_placeholder") });
  const results = h("ul", { id: "merge-results", class: "plain" });
  let searchToken = 0;

  function candidate(other, extra) {
    return h("li", { class: "merge-candidate", data: { contact: other.id } },
      h("span", {}, label(other)), " ",
      extra ? h("span", { class: "muted small" }, extra) : null, " ",
      h("button", { class: "small-button merge-open", onclick: () => preview(other) }, t("merge.action")));
  }

  async function preview(other) {
    panel.hidden = false;
    clear(panel, h("p", { class: "muted small" }, t("merge.loading")));
    try {
      const p = await api("GET", `/contacts/${contact.id}/merge?from=${other.id}`);
      const moves = Object.entries(p.moves).filter(([what, n]) => n > 0 && MOVES[what]);
      clear(panel,
        h("p", { class: "small" }, t("merge.summary", { other: label(p.other), into: label(p.into) })),
        moves.length
          ? h("ul", { class: "plain small merge-moves" }, moves.map(([what, n]) => h("li", {}, MOVES[what](n))))
          : null,
        p.conflicts.length
          ? h("div", {}, h("p", { class: "small" }, t("merge.conflicts")),
            h("ul", { class: "plain small merge-conflicts" }, p.conflicts.map((c) =>
              h("li", { data: { field: c.field } }, t("merge.conflict", { field: c.field, kept: value(c.kept), dropped: value(c.dropped) })))))
          : h("p", { class: "muted small" }, t("merge.no_conflicts")),
        h("p", { class: "muted small" }, t("merge.kept_note")),
        h("div", { class: "merge-buttons" },
          h("button", { id: "merge-confirm", class: "small-button primary", onclick: () => confirmMerge(other) }, t("merge.confirm")),
          h("button", { class: "link-button", onclick: () => { panel.hidden = true; clear(panel); } }, t("merge.cancel"))));
    } catch (err) {
      clear(panel, h("p", { class: "file-error", role: "alert" }, err.message));
    }
  }

  async function confirmMerge(other) {
    const button = panel.querySelector("#merge-confirm");
    if (button) button.disabled = true;
    try {
      await api("POST", `/contacts/${contact.id}/merge`, { from: other.id });
      toast(t("merge.done", { other: label(other) }));
      onMerged();
    } catch (err) {
      if (button) button.disabled = false;
      toast(err.message);
    }
  }

  search.addEventListener("input", async () => {
    const my = ++searchToken;
    const q = search.value.trim();
    if (q.length < 2) { clear(results); return; }
    const page = await optional(`/contacts?q=${encodeURIComponent(q)}&limit=10`);
    if (my !== searchToken || !page) return;
    clear(results, page.items.filter((c) => c.id !== contact.id).map((c) => candidate(c, c.email || c.phone || "")));
  });

  optional(`/contacts/${contact.id}/duplicates`).then((page) => {
    const items = page ? page.items : [];
    clear(suggestions, items.length
      ? items.map((c) => candidate(c, t("merge.same_address")))
      : [h("li", { class: "muted small" }, t("merge.no_suggestions"))]);
  });

  return h("section", { class: "contact-section", id: "merge-section" },
    h("h3", {}, t("merge.title")), suggestions, search, results, panel);
}
