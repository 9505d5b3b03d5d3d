// The conversation's satisfaction surveys in its sidebar: sent or not (and why), the rating, the comment.

import { api } from "./api.js";
import { h, clear } from "./dom.js";
import { t, formatDateTime } from "./i18n.js";

const STATUS_KEYS = {
  scheduled: "csat.status.scheduled",
  sent: "csat.status.sent",
  not_sent: "csat.status.not_sent",
  awaiting_comment: "csat.status.awaiting_comment",
  answered: "csat.status.answered",
};

export function csatSection(conversation) {
  const el = h("section", { class: "contact-section csat-section", id: "conversation-csat", hidden: true });
  fill(el, conversation);
  return el;
}

async function fill(el, conversation) {
  let surveys;
  try {
    surveys = (await api("GET", `/conversations/${conversation.id}/csat`)).items;
  } catch (err) {
    return; // the section stays hidden: nothing to show
  }
  if (!surveys.length) return;
  clear(el, h("h3", {}, t("csat.title")), h("ul", { class: "plain" }, surveys.map(item)));
  el.hidden = false;
}

function item(s) {
  return h("li", { data: { survey: String(s.id) } },
    h("span", { class: "status-pill" }, t(STATUS_KEYS[s.status] || "csat.status.sent")), " ",
    s.rating != null
      ? h("span", { class: "csat-rating", "aria-label": t("csat.rating", { rating: String(s.rating) }) },
        "★".repeat(s.rating) + "☆".repeat(5 - s.rating))
      : null,
    s.status === "not_sent" && s.reason ? h("p", { class: "muted small" }, t("csat.reason", { reason: s.reason })) : null,
    s.comment ? h("blockquote", { class: "csat-comment" }, s.comment) : null,
    h("p", { class: "muted small" }, formatDateTime(s.answered_at || s.sent_at || s.send_at)));
}
