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
  // Pagefind's input has only a placeholder: tie it to the page's visible label.
  function label() {
    var input = element.querySelector("input");
    if (!input) return false;
    input.id = "search-input";
    return true;
  }
  if (!label()) {
    new MutationObserver(function (changes, observer) {
      if (label()) observer.disconnect();
    }).observe(element, { childList: true, subtree: true });
  }
})();
