// The search page: Pagefind's own UI over the index the build wrote into pagefind/.
// The index is in shards (pagefind/00/, pagefind/01/, ...; listed in pagefind/shards.json):
// the UI opens the first and merges the others with Pagefind's mergeIndex, which searches
// them all and ranks their results together. Everything is a static file of this site; no
// request leaves it.
(function () {
  var element = document.getElementById("search");
  var script = document.querySelector("script[src*='pagefind-ui.js']");
  if (!element || !script || typeof PagefindUI === "undefined") return;
  // Pagefind's scripts (and shards.json) sit beside its UI script: an absolute path, as
  // Pagefind wants its bundle paths.
  var bundle = new URL(".", script.src).pathname;
  // Revalidated on every visit (as Pagefind fetches its own entry file): a cached list could
  // name a shard that a later build removed.
  fetch(bundle + "shards.json", { cache: "no-cache" })
    .then(function (response) {
      if (!response.ok) throw new Error("search index: " + response.status);
      return response.json();
    })
    .then(function (manifest) {
      var shards = manifest.shards.map(function (name) {
        return bundle + name;
      });
      new PagefindUI({
        element: "#search",
        bundlePath: bundle,
        basePath: shards[0],
        mergeIndex: shards.slice(1).map(function (path) {
          return { bundlePath: path };
        }),
        showSubResults: false,
        showImages: false,
        resetStyles: false,
        autofocus: true,
        translations: { placeholder: element.getAttribute("data-label") || "" },
      });
      labelTheInput();
    })
    .catch(function (error) {
      console.error(error);
    });

  // Pagefind's input has only a placeholder: tie it to the page's visible label. The label
  // points at it only once it exists (a label for a missing control is invalid HTML).
  function labelTheInput() {
    if (label()) return;
    new MutationObserver(function (changes, observer) {
      if (label()) observer.disconnect();
    }).observe(element, { childList: true, subtree: true });
  }
  function label() {
    var input = element.querySelector("input");
    if (!input) return false;
    input.id = "search-input";
    var text = document.querySelector("label.search-label");
    if (text) text.htmlFor = input.id;
    return true;
  }
})();
