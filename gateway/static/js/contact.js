// The contact sidebar: identities, consent per channel with history, attributes, labels, past conversations.

import { api, optional } from "./api.js";
import { h, clear, $ } from "./dom.js";
import { state } from "./state.js";
import { ago, channelIcon, channelName, initials, statusName } from "./format.js";
import { t, textOr, formatDateTime } from "./i18n.js";
import { toast } from "./banner.js";
import { sidebar as ticketsSection } from "./tickets.js";
import { mergeSection } from "./merge.js";
import { repliesSection } from "./broadcasts.js";
import { csatSection } from "./csat.js";

let token = 0;

/** A consent state in words ("Opted in" / "Aceitou"). */
function consentWord(state) {
  return textOr(`contact.consent.${state}`, state);
}

export function render(data) {
  const pane = $("#contact-pane");
  if (!pane) return;
  if (!data) { clear(pane); return; }
  const { contact: c, consent, conversations, conversation } = data;
  const name = c.name || c.phone || c.email || t("list.contact", { id: String(c.id) });
  clear(pane,
    h("div", { class: "contact-card" },
      h("span", { class: "avatar large", "aria-hidden": "true" }, initials(name)),
      h("h2", { id: "contact-name" }, name),
      c.email ? h("p", { class: "muted small" }, c.email) : null,
      c.phone ? h("p", { class: "muted small" }, c.phone) : null),
    section(t("contact.channels"), h("ul", { class: "plain" }, c.identities.map((i) =>
      h("li", {}, h("span", { class: "channel-icon", data: { kind: i.kind } }, channelIcon(i.kind)), " ", h("span", {}, channelName(i.kind)), ": ", h("span", { class: "mono" }, i.address))))),
    ticketsSection(conversation),
    csatSection(conversation),
    repliesSection(conversation, () => load(conversation)),
    consent ? consentSection(c, consent, conversation) : null,
    Object.keys(c.attributes || {}).length
      ? section(t("contact.attributes"), h("dl", { class: "attributes" }, Object.entries(c.attributes).map(([k, v]) =>
        [h("dt", {}, k), h("dd", {}, typeof v === "string" ? v : JSON.stringify(v))])))
      : null,
    (c.labels || []).length ? section(t("contact.labels"), h("div", { class: "labels" }, c.labels.map((l) => h("span", { class: "label-chip" }, l)))) : null,
    section(t("contact.conversations"), h("ul", { class: "plain past" }, (conversations || []).map((p) =>
      h("li", { class: p.id === conversation.id ? "current" : "" },
        h("a", { href: `#/conversations/${p.id}` },
          h("span", { class: "channel-icon", data: { kind: p.channel_kind } }, channelIcon(p.channel_kind)), " ",
          h("span", {}, `#${p.id}`), " ",
          h("span", { class: ["status-pill", `status-${p.status}`] }, statusName(p.status)), " ",
          h("span", { class: "muted small" }, ago(p.last_activity_at))))))),
    mergeSection(c, () => load(conversation)),
  );
}

function section(title, body) {
  return h("section", { class: "contact-section" }, h("h3", {}, title), body);
}

function consentRows(consent) {
  const rows = Array.isArray(consent) ? consent : consent.items || consent.channels || [];
  return rows.map((r) => ({
    channel_id: r.channel_id,
    state: r.state || "unknown",
    history: r.history || [],
  }));
}

function consentSection(contact, consent, conversation) {
  const rows = consentRows(consent);
  if (!rows.some((r) => r.channel_id === conversation.channel_id)) {
    rows.unshift({ channel_id: conversation.channel_id, state: "unknown", history: [] });
  }
  return section(t("contact.consent_title"), h("ul", { class: "plain consent" }, rows.map((r) => {
    const channel = state.channels.get(r.channel_id);
    return h("li", { data: { channel: r.channel_id, state: r.state } },
      h("div", { class: "consent-row" },
        h("span", {}, channel ? channel.name : t("contact.channel_n", { id: String(r.channel_id) })),
        h("span", { class: ["consent-state", `consent-${r.state}`] }, consentWord(r.state))),
      r.history.length ? h("details", {}, h("summary", {}, t("contact.history")),
        h("ol", { class: "plain history" }, r.history.map((e) => h("li", { class: "small" },
          `${consentWord(e.state)} · ${e.source || ""}${e.evidence ? ` (${e.evidence})` : ""} · ${formatDateTime(e.created_at || e.at || e.changed_at)}`)))) : null,
      r.state !== "opted_in" ? h("button", { class: "small-button", onclick: () => optIn(contact, r.channel_id, conversation) }, t("contact.record_opt_in")) : null);
  })));
}

async function optIn(contact, channelId, conversation) {
  if (!confirm(t("contact.confirm_opt_in"))) return;
  try {
    await api("POST", `/contacts/${contact.id}/consent`, { channel_id: channelId, state: "opted_in" });
    load(conversation);
  } catch (err) {
    toast(textOr(`contact.error.${err.code}`, err.message));
  }
}

export async function load(conversation) {
  const my = ++token;
  try {
    const [c, conversations] = await Promise.all([
      api("GET", `/contacts/${conversation.contact_id}`),
      optional(`/contacts/${conversation.contact_id}/conversations`),
    ]);
    let consent = c.consent || null;
    if (!consent) consent = await optional(`/contacts/${conversation.contact_id}/consent`);
    if (my !== token) return;
    render({ contact: c, consent, conversations: conversations ? conversations.items : [], conversation });
  } catch (err) {
    if (my === token) clear($("#contact-pane"), h("p", { class: "muted" }, t("contact.unavailable", { error: err.message })));
  }
}
