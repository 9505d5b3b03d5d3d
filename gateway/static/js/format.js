// Words and symbols: reasons, delivery states, channels, times.

export const REASONS = {
  not_opted_in: "The contact has not opted in to messages on this channel.",
  opted_out: "The contact opted out of messages on this channel.",
  window_closed: "The 24-hour service window is closed; only an approved template can be sent.",
  template_required: "This channel needs an approved template for this message.",
  quota_exhausted: "This month's conversation quota is used up; sends that open a new conversation are blocked.",
  invalid_recipient: "The provider says the recipient address does not exist or cannot receive messages.",
  channel_error: "The channel could not deliver the message.",
  blocked_by_user: "The contact has blocked this account.",
  message_too_long: "The message is longer than this channel allows.",
};

export function reasonText(code, detail) {
  const words = REASONS[code] || (code ? `Not sent (${code}).` : "Not sent.");
  return words;
}

// Short text badges (coloured by CSS per kind): no emoji font needed.
export const CHANNEL_ICONS = {
  whatsapp: "WA",
  telegram: "TG",
  email: "@",
  webchat: "WEB",
  loopback: "LB",
};

export const CHANNEL_NAMES = {
  whatsapp: "WhatsApp",
  telegram: "Telegram",
  email: "Email",
  webchat: "Web chat",
  loopback: "Loopback",
};

export function channelIcon(kind) {
  return CHANNEL_ICONS[kind] || "?";
}

export const DELIVERY = {
  queued: { mark: "○", label: "Queued" },
  sent: { mark: "✔", label: "Sent" },
  delivered: { mark: "✔✔", label: "Delivered" },
  read: { mark: "✔✔", label: "Read" },
  failed: { mark: "!", label: "Failed" },
};

export function parseTime(value) {
  return value ? new Date(value) : null;
}

export function ago(value, now = Date.now()) {
  const at = parseTime(value);
  if (!at) return "";
  const seconds = Math.max(0, Math.round((now - at.getTime()) / 1000));
  if (seconds < 60) return "now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours}h`;
  return `${Math.round(hours / 24)}d`;
}

export function clock(value) {
  const at = parseTime(value);
  if (!at) return "";
  const today = new Date();
  const sameDay = at.toDateString() === today.toDateString();
  const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return sameDay ? time : `${at.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

export function longDate(value) {
  const at = parseTime(value);
  return at ? at.toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "";
}

export function initials(name) {
  const words = String(name || "").match(/[\p{L}\p{N}]+/gu) || [];
  return words.slice(0, 2).map((w) => w[0]).join("").toUpperCase() || "?";
}

export function number(n) {
  return new Intl.NumberFormat().format(n);
}

export const STATUSES = ["open", "pending", "snoozed", "resolved"];
export const PRIORITIES = ["none", "low", "medium", "high", "urgent"];
