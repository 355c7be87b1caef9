/**
 * Behaviour shared by every page: the header's language switcher applies a choice at once.
 */

const languageSelect = document.getElementById("language-select");
if (languageSelect) {
  // The form's own button stays for keyboard and no-JS users; with JS, choosing is enough.
  languageSelect.addEventListener("change", () => languageSelect.form.requestSubmit());
}
