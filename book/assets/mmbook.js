// Accessibility fixes for markup the book does not write itself (html_js_files in _config.yml;
// tests/site/test_browser.py runs axe-core on every page and fails on "serious" or "critical").
document.addEventListener("DOMContentLoaded", () => {
  // pydata-sphinx-theme 0.17.1 (toctree.py) makes the chevron that expands a chapter's sections
  // in the sidebar a <summary> holding only an icon: an unnamed button (axe "summary-name").
  for (const summary of document.querySelectorAll("summary")) {
    if (summary.textContent.trim() || summary.hasAttribute("aria-label")) continue;
    const link = summary.closest("li")?.querySelector(":scope > a");
    const title = link ? link.textContent.trim() : "this part";
    summary.setAttribute("aria-label", `Show or hide the sections of ${title}`);
  }
  // docutils 0.21 marks bibliography entries role="doc-biblioentry" (deprecated in DPUB-ARIA 1.1)
  // inside role="list", which then has no list items (axe "aria-required-children").
  for (const entry of document.querySelectorAll('[role="list"] > [role="doc-biblioentry"]')) {
    entry.setAttribute("role", "listitem");
  }
});
