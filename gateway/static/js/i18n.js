// The page's language: t(key, params) over the JSON catalogs in /static/i18n/, and Intl formats.
//
// Catalogs are flat {"key": "text"} files, one per language (en.json, pt-BR.json), with the same keys
// (tests/gateway/web/test_i18n_catalogs.py fails otherwise). Placeholders are {name}; a key with
// plural forms has one entry per Intl.PluralRules category ("x.messages.one", "x.messages.other")
// and is asked for without the suffix, with a count param: { count: 3 }. A number in the
// params is formatted for the language (1.234 in pt-BR): pass ids as strings.

export const LANGUAGES = ["en", "pt-BR"];
export const DEFAULT_LANGUAGE = "en";
// Each language named in itself (the way people look for their own), so not from a catalog.
export const LANGUAGE_NAMES = { en: "English", "pt-BR": "Português (Brasil)" };

let language = DEFAULT_LANGUAGE;
let messages = {};
let fallback = {};

/** The first supported language among the candidates (exact, else the primary subtag), else English. */
export function pickLanguage(...candidates) {
  for (const tag of candidates.flat()) {
    if (!tag) continue;
    const wanted = String(tag).trim().replace("_", "-").toLowerCase();
    const exact = LANGUAGES.find((l) => l.toLowerCase() === wanted);
    if (exact) return exact;
    const primary = wanted.split("-")[0];
    const near = LANGUAGES.find((l) => l.toLowerCase().split("-")[0] === primary);
    if (near) return near;
  }
  return DEFAULT_LANGUAGE;
}

/** The browser's preferred languages, for pages shown before anyone signs in. */
export function browserLanguage() {
  return pickLanguage(navigator.languages || [], navigator.language);
}

async function fetchCatalog(lang) {
  const response = await fetch(`/static/i18n/${lang}.json`, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`catalog ${lang}: HTTP ${response.status}`);
  return response.json();
}

/** Load a language's catalog (and English under it) and make it the page's language. */
export async function setLanguage(lang) {
  const chosen = pickLanguage(lang);
  const [own, english] = await Promise.all([
    fetchCatalog(chosen),
    chosen === DEFAULT_LANGUAGE ? null : fetchCatalog(DEFAULT_LANGUAGE),
  ]);
  messages = own;
  fallback = english || own;
  language = chosen;
  document.documentElement.lang = chosen;
  return chosen;
}

export function currentLanguage() {
  return language;
}

function lookup(key) {
  if (Object.hasOwn(messages, key)) return messages[key];
  if (Object.hasOwn(fallback, key)) return fallback[key];
  return undefined;
}

/** The text of `key` in the page's language with {placeholders} filled in; the key itself if unknown. */
export function t(key, params = {}) {
  let text;
  if (typeof params.count === "number") {
    const category = new Intl.PluralRules(language).select(params.count);
    text = lookup(`${key}.${category}`) ?? lookup(`${key}.other`);
  }
  text = text ?? lookup(key);
  if (text === undefined) {
    console.warn(`i18n: no text for ${key}`);
    return key;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name) => {
    if (!Object.hasOwn(params, name)) return whole;
    const value = params[name];
    return typeof value === "number" ? formatNumber(value) : String(value);
  });
}

/** Whether the catalog has `key` (for texts picked by a code, e.g. a refusal reason). */
export function hasText(key) {
  return lookup(key) !== undefined;
}

/** The text of `key` if the catalog has it, else `fallback` (a code shown as it is). */
export function textOr(key, fallback, params = {}) {
  return hasText(key) ? t(key, params) : fallback;
}

// -- Intl formats in the page's language --------------------------------------------------------------

export function formatNumber(n, options = {}) {
  return new Intl.NumberFormat(language, options).format(n);
}

export function formatPercent(fraction, options = {}) {
  return new Intl.NumberFormat(language, { style: "percent", maximumFractionDigits: 0, ...options }).format(fraction);
}

/** formatCurrency(12.5, "BRL") → "R$ 12,50" in pt-BR, "R$12.50" in English. */
export function formatCurrency(amount, currency, options = {}) {
  return new Intl.NumberFormat(language, { style: "currency", currency, ...options }).format(amount);
}

function asDate(value) {
  if (value === null || value === undefined || value === "") return null;
  const at = value instanceof Date ? value : new Date(value);
  return Number.isNaN(at.getTime()) ? null : at;
}

/** A date (and time) with Intl.DateTimeFormat options; "" for no value. */
export function formatDate(value, options = { dateStyle: "medium" }) {
  const at = asDate(value);
  return at ? new Intl.DateTimeFormat(language, options).format(at) : "";
}

export function formatTime(value) {
  return formatDate(value, { hour: "2-digit", minute: "2-digit" });
}

export function formatDateTime(value) {
  return formatDate(value, { dateStyle: "medium", timeStyle: "short" });
}

const UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];

/** "3 minutes ago" / "há 3 minutos", "in 2 hours" / "em 2 horas". */
export function formatRelative(value, now = Date.now(), options = { numeric: "auto" }) {
  const at = asDate(value);
  if (!at) return "";
  const seconds = Math.round((at.getTime() - now) / 1000);
  const format = new Intl.RelativeTimeFormat(language, options);
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === "second") return format.format(Math.round(seconds / size), unit);
  }
  return "";
}
