// The search page: Pagefind's own UI over the index the build wrote into pagefind/.
// The index is in shards (pagefind/00/, pagefind/01/, ...; listed in pagefind/shards.json).
// Pagefind opens the first and merges the others (mergeIndex): a search runs in every shard
// and their results are ranked together. Everything is a static file of this site; no
// request leaves it.
(function () {
  var element = document.getElementById("search");
  var script = document.querySelector("script[src*='pagefind-ui.js']");
  if (!element || !script || typeof PagefindUI === "undefined") return;
  // Pagefind's scripts (and shards.json) sit beside its UI script: an absolute path, as
  // Pagefind wants its bundle paths.
  var bundle = new URL(".", script.src).pathname;
  Promise.all([
    // Revalidated on every visit (as Pagefind fetches its own entry file): a cached list
    // could name a shard that a later build removed.
    fetch(bundle + "shards.json", { cache: "no-cache" }).then(function (response) {
      if (!response.ok) throw new Error("search index: " + response.status);
      return response.json();
    }),
    import(bundle + "pagefind.js"),
  ])
    .then(function (loaded) {
      var shards = loaded[0].shards.map(function (name) {
        return bundle + name;
      });
      var pagefind = loaded[1];
      return pagefind
        .options({ basePath: shards[0] })
        .then(pagefind.init) // the first shard opened now: the UI's options cannot replace ours
        .then(function () {
          // The UI's own mergeIndex option merges one shard after the other, two round
          // trips each. Merged here, all at once, before the UI exists: a search the UI
          // starts later reaches Pagefind after them and waits for every shard.
          shards.slice(1).forEach(function (path) {
            pagefind.mergeIndex(path, {}).catch(function (error) {
              console.error(error);
            });
          });
          startTheUI();
        });
    })
    .catch(function (error) {
      console.error(error);
    });

  function startTheUI() {
    new PagefindUI({
      element: "#search",
      bundlePath: bundle, // the module merged above (a module is loaded once per address)
      showSubResults: false,
      showImages: false,
      resetStyles: false,
      autofocus: true,
      translations: { placeholder: element.getAttribute("data-label") || "" },
    });
    // Pagefind's input has only a placeholder: tie it to the page's visible label. The
    // label points at it only once it exists (a label for a missing control is invalid).
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
