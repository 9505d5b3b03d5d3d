// The quota banner (from 70 %, in the colours of its tier) and small notices.

import { optional } from "./api.js";
import { h, clear, $ } from "./dom.js";
import { isBilling } from "./state.js";
import { number, longDate } from "./format.js";

export async function refresh() {
  const el = $("#quota-banner");
  if (!el) return;
  let quota = null;
  try {
    quota = await optional("/quota");
  } catch (_) {
    quota = null;
  }
  if (!quota) { el.hidden = true; return; }
  const percent = Math.floor(quota.percent ?? (quota.limit ? (100 * quota.used) / quota.limit : 0));
  const tier = quota.tier ?? [100, 95, 90, 80, 70].find((t) => percent >= t) ?? null;
  if (!tier || tier < 70) { el.hidden = true; return; }
  const blocked = quota.blocked || tier >= 100;
  const buy = isBilling() ? h("a", { href: "#/admin/billing", class: "banner-link" }, "Buy more conversations") : null;
  const resets = quota.period_end ? ` The quota renews ${longDate(quota.period_end)}.` : "";
  el.className = `quota-banner tier-${tier}`;
  el.dataset.tier = String(tier);
  clear(el, blocked
    ? [h("strong", {}, "Conversation quota used up. "),
      `Sends that would open a new conversation are blocked (${number(quota.used)} of ${number(quota.limit)}); replies in open conversations still go.${resets} `,
      buy || "Ask a billing admin to buy more."]
    : [h("strong", {}, `${percent} % of this month's conversations used `), `(${number(quota.used)} of ${number(quota.limit)}).${resets} `, buy]);
  el.hidden = false;
}

export function toast(message) {
  const box = $("#toasts");
  if (!box) return;
  const item = h("div", { class: "toast", role: "alert" }, message,
    h("button", { class: "chip-x", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"));
  box.append(item);
  setTimeout(() => item.remove(), 8000);
}
