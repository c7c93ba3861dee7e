// Course-list filters. Without JavaScript they are plain links to pre-built lists. With it,
// the chosen list is fetched (prefetched on hover) and swapped into <main> in place: no page
// load, the address and the back button follow, focus moves to the new heading.
(function () {
  var main = document.getElementById("main");
  if (!main || !window.fetch || !window.DOMParser || !window.history.pushState) return;
  var pages = new Map();

  // Links are relative to the page. Once the address changes without a page load, those
  // outside <main> (header, footer, <head>) would resolve against the new address: pin them.
  Array.prototype.forEach.call(document.querySelectorAll("a[href], link[href]"), function (el) {
    if (!main.contains(el)) el.setAttribute("href", el.href);
  });

  function load(href) {
    if (!pages.has(href)) {
      pages.set(
        href,
        fetch(href, { credentials: "same-origin" }).then(function (response) {
          if (!response.ok) throw new Error(String(response.status));
          return response.text();
        })
      );
    }
    return pages.get(href);
  }

  var latest = 0;

  function show(href, push) {
    var ticket = ++latest; // only the last click may swap: a slow earlier answer is dropped
    return load(href)
      .then(function (html) {
        if (ticket !== latest) return;
        var page = new DOMParser().parseFromString(html, "text/html");
        var next = page.getElementById("main");
        if (!next) throw new Error("no main");
        // The address first: relative links in the new list resolve against it.
        if (push) window.history.pushState({ filters: true }, "", href);
        // A copy first: adopting a node takes it out of the live childNodes list.
        var nodes = Array.prototype.slice.call(next.childNodes).map(function (node) {
          return document.adoptNode(node);
        });
        main.replaceChildren.apply(main, nodes);
        document.title = page.title;
        // The header marks the section of the page shown, as a page load would.
        var fresh = page.querySelectorAll("header nav a");
        Array.prototype.forEach.call(document.querySelectorAll("header nav a"), function (a, i) {
          var current = fresh[i] && fresh[i].getAttribute("aria-current");
          if (current) a.setAttribute("aria-current", current);
          else a.removeAttribute("aria-current");
        });
        var heading = main.querySelector("h1");
        if (heading) {
          heading.setAttribute("tabindex", "-1");
          heading.focus();
        }
      })
      .catch(function () {
        pages.delete(href);
        window.location.assign(href); // a plain page load, as without JavaScript
      });
  }

  function filterLink(event) {
    var link = event.target.closest && event.target.closest("a[data-filter], .pagination a");
    if (!link || !main.querySelector("[data-filters]")) return null;
    return link.origin === window.location.origin ? link : null;
  }

  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    var link = filterLink(event);
    if (!link) return;
    event.preventDefault();
    show(link.href, true);
  });
  document.addEventListener("pointerover", function (event) {
    var link = filterLink(event);
    if (link) load(link.href).catch(function () { pages.delete(link.href); });
  });
  // Back and forward between lists this script showed; other history entries (the skip
  // link's #main) are left to the browser.
  window.history.replaceState({ filters: true }, "");
  window.addEventListener("popstate", function (event) {
    if (event.state && event.state.filters) show(window.location.href, false);
  });
})();
