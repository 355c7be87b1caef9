/**
 * Translations from Django's JavaScript catalog (/jsi18n/), with identity fallbacks when it is not loaded.
 *
 * Call sites use the names `gettext` and `interpolate`, not short aliases: `makemessages -d djangojs`
 * only extracts strings passed to the standard gettext keywords.
 */

const catalog = globalThis;

/** Returns the translation of `text` in the page's language, or `text` itself. */
export function gettext(text) {
  return typeof catalog.gettext === "function" ? catalog.gettext(text) : text;
}

/** Returns the singular or plural translation for `count`. */
export function ngettext(singular, plural, count) {
  if (typeof catalog.ngettext === "function") return catalog.ngettext(singular, plural, count);
  return count === 1 ? singular : plural;
}

/** Fills `%(name)s` placeholders from `values` (Django's interpolate with named=true). */
export function interpolate(format, values) {
  if (typeof catalog.interpolate === "function") return catalog.interpolate(format, values, true);
  return format.replace(/%\((\w+)\)s/g, (match, name) => (name in values ? String(values[name]) : match));
}

/** Short aliases: t(text) translates; tf(format, values) translates then fills placeholders. */
export const t = gettext;
export const tf = (format, values) => interpolate(gettext(format), values);
