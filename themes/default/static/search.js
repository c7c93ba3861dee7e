// The search page: Pagefind's own UI over the index the build wrote into pagefind/.
// The index and this UI are static files; no request leaves the site.
(function () {
  var element = document.getElementById("search");
  if (!element || typeof PagefindUI === "undefined") return;
  new PagefindUI({
    element: "#search",
    showSubResults: false,
    showImages: false,
    resetStyles: false,
    autofocus: true,
    translations: { placeholder: element.getAttribute("data-label") || "" },
  });
  // Pagefind's input has only a placeholder: tie it to the page's visible label. The label
  // points at it only once it exists (a label for a missing control is invalid HTML).
  function label() {
    var input = element.querySelector("input");
    if (!input) return false;
    input.id = "search-input";
    var text = document.querySelector("label.search-label");
    if (text) text.htmlFor = input.id;
    return true;
  }
  if (!label()) {
    new MutationObserver(function (changes, observer) {
      if (label()) observer.disconnect();
    }).observe(element, { childList: true, subtree: true });
  }
})();
