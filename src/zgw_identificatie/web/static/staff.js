// The behandelaar's session page.
// - Live status: fetch the status block and the buttons (an HTML fragment, same templates as the page) every
//   second while the tab is visible; only a changed block is swapped in, so the role="status" region announces
//   real changes. The link, QR code and code sections hide once the link no longer works.
//   After repeated failures it stops and shows the "Pagina vernieuwen" link (which is also there without JS).
// - Copy button: appears only when the Clipboard API can work; the result is announced in a status region.
// All texts come from data attributes in the page, so they follow the page's language.
(function () {
  var copyButton = document.querySelector("[data-copy]");
  var copyStatus = document.querySelector("[data-copy-status]");
  if (copyButton && navigator.clipboard && window.isSecureContext) {
    copyButton.hidden = false;
    copyButton.addEventListener("click", function () {
      var input = document.getElementById(copyButton.getAttribute("data-copy"));
      navigator.clipboard.writeText(input.value).then(function () {
        copyStatus.textContent = copyButton.getAttribute("data-copied");
      }, function () {
        input.focus();
        input.select();
        copyStatus.textContent = copyButton.getAttribute("data-copy-failed");
      });
    });
  }

  var root = document.querySelector("[data-status-url]");
  var target = document.getElementById("status");
  var actions = document.getElementById("actions");
  if (!root || !target || !window.fetch || !window.DOMParser) { return; }
  var refreshLink = document.querySelector("[data-refresh-link]");
  if (refreshLink) { refreshLink.hidden = true; }
  var last = target.innerHTML.trim();
  var failures = 0;

  // The link and QR code are only shown while the link can still be used (the fragment says so).
  function showLink() {
    var state = target.querySelector("[data-link-usable]");
    var usable = state && state.getAttribute("data-link-usable") === "true";
    document.querySelectorAll("[data-link-section]").forEach(function (el) { el.hidden = !usable; });
    var codeUsable = state && state.getAttribute("data-code-usable") === "true";
    document.querySelectorAll("[data-code-section]").forEach(function (el) { el.hidden = !codeUsable; });
  }

  function poll() {
    if (document.hidden) { return schedule(); }
    fetch(root.getAttribute("data-status-url"), {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
      .then(function (html) {
        failures = 0;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var status = doc.querySelector("[data-live-status]");
        var buttons = doc.querySelector("[data-live-actions]");
        if (!status) { throw new Error("no status block"); }
        var fresh = status.innerHTML.trim();
        if (fresh !== last) {
          last = fresh;
          target.innerHTML = fresh;
          if (actions && buttons) { actions.innerHTML = buttons.innerHTML; }
          showLink();
        }
        schedule();
      })
      .catch(function () {
        failures += 1;
        if (failures > 5) { if (refreshLink) { refreshLink.hidden = false; } return; }
        schedule();
      });
  }
  function schedule() { window.setTimeout(poll, 1000); }
  schedule();
})();
