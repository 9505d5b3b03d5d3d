// Words and symbols: reasons, delivery states, channels, statuses, times (all in the page's language).

import { t, textOr, formatDate, formatTime } from "./i18n.js";

/** Why a message was not sent, in words (every Reason code has a `reason.<code>` key). */
export function reasonText(code) {
  return code ? textOr(`reason.${code}`, t("reason.unknown", { code })) : t("reason.none");
}

// Short text badges (coloured by CSS per kind): no emoji font needed.
export const CHANNEL_ICONS = {
  whatsapp: "WA",
  telegram: "TG",
  email: "@",
  webchat: "WEB",
  loopback: "LB",
};

/** The channel kinds a channel can be created with, in the order the pages offer them. */
export function channelKinds() {
  return Object.keys(CHANNEL_ICONS);
}

/** A channel kind's name ("Web chat" / "Chat do site"); the code itself for an unknown kind. */
export function channelName(kind) {
  return kind ? word("channel", kind) : "";
}

/** The catalog's word for a code of a family ("common.status.open"), else the code itself. */
function word(family, code) {
  return textOr(`common.${family}.${code}`, code);
}

export function channelIcon(kind) {
  return CHANNEL_ICONS[kind] || "?";
}

const DELIVERY_MARKS = { queued: "○", sent: "✔", delivered: "✔✔", read: "✔✔", failed: "!" };

/** An outgoing message's delivery state: its mark and its word. */
export function delivery(status) {
  return { mark: DELIVERY_MARKS[status] || "", label: word("delivery", status) };
}

/** A conversation status's name ("Open" / "Aberta"). */
export function statusName(status) {
  return word("status", status);
}

/** A priority's name ("High" / "Alta"); "none" is "No priority". */
export function priorityName(priority) {
  return word("priority", priority);
}

/** An agent's availability ("online" / "disponível"). */
export function availabilityName(availability) {
  return word("availability", availability);
}

export function parseTime(value) {
  return value ? new Date(value) : null;
}

/** A short age for lists: "now", "5m", "3h", "2d" (units from the catalog). */
export function ago(value, now = Date.now()) {
  const at = parseTime(value);
  if (!at) return "";
  const seconds = Math.max(0, Math.round((now - at.getTime()) / 1000));
  if (seconds < 60) return t("common.ago.now");
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return t("common.ago.minutes", { n: minutes });
  const hours = Math.round(minutes / 60);
  if (hours < 48) return t("common.ago.hours", { n: hours });
  return t("common.ago.days", { n: Math.round(hours / 24) });
}

/** A message's time: the time of day today, else the short date and the time. */
export function clock(value) {
  const at = parseTime(value);
  if (!at) return "";
  const sameDay = at.toDateString() === new Date().toDateString();
  return sameDay ? formatTime(at) : formatDate(at, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

export function initials(name) {
  const words = String(name || "").match(/[\p{L}\p{N}]+/gu) || [];
  return words.slice(0, 2).map((w) => w[0]).join("").toUpperCase() || "?";
}

export const STATUSES = ["open", "pending", "snoozed", "resolved"];
export const PRIORITIES = ["none", "low", "medium", "high", "urgent"];
