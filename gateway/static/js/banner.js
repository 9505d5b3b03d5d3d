// The quota banner (from 70 %, in the colours of its tier) and small notices.

import { optional } from "./api.js";
import { h, clear, $ } from "./dom.js";
import { isBilling } from "./state.js";
import { t, formatDateTime, formatPercent } from "./i18n.js";

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
  const tier = quota.tier ?? [100, 95, 90, 80, 70].find((floor) => percent >= floor) ?? null;
  if (!tier || tier < 70) { el.hidden = true; return; }
  const blocked = quota.blocked || tier >= 100;
  const buy = isBilling() ? h("a", { href: "#/admin/billing", class: "banner-link" }, t("banner.buy")) : null;
  const resets = quota.period_end ? ` ${t("banner.renews", { date: formatDateTime(quota.period_end) })}` : "";
  const counts = { used: quota.used, limit: quota.limit };
  el.className = `quota-banner tier-${tier}`;
  el.dataset.tier = String(tier);
  clear(el, blocked
    ? [h("strong", {}, t("banner.used_up")), " ", t("banner.blocked", counts), `${resets} `, buy || t("banner.ask_billing")]
    : [h("strong", {}, t("banner.percent_used", { percent: formatPercent(percent / 100) })), " ", t("banner.of", counts), `${resets} `, buy]);
  el.hidden = false;
}

export function toast(message) {
  const box = $("#toasts");
  if (!box) return;
  const item = h("div", { class: "toast", role: "alert" }, message,
    h("button", { class: "chip-x", "aria-label": t("banner.dismiss"), onclick: () => item.remove() }, "×"));
  box.append(item);
  setTimeout(() => item.remove(), 8000);
}
