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
})();
