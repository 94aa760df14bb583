// Citizen result page: while the zaak is being made, fetch this page every two seconds and swap in the
// [data-live] block only (no full reload, so focus and reading position stay; role="status" announces it).
// Without JavaScript the block has a "Pagina vernieuwen" link instead. Stops after two minutes.
(function () {
  var live = document.querySelector("[data-live][data-pending]");
  if (!live || !window.fetch || !window.DOMParser) { return; }
  var link = live.querySelector("[data-refresh-link]");
  if (link) { link.hidden = true; }
  var tries = 0;
  function poll() {
    tries += 1;
    fetch(window.location.pathname, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live]");
        if (!fresh) { throw new Error("no live block"); }
        if (!fresh.hasAttribute("data-pending")) {
          live.innerHTML = fresh.innerHTML;
          live.removeAttribute("data-pending");
          return;
        }
        schedule();
      })
      .catch(function () { if (link) { link.hidden = false; } });
  }
  function schedule() { if (tries < 60) { window.setTimeout(poll, 2000); } else if (link) { link.hidden = false; } }
  schedule();
})();
