// The behandelaar's session page.
// - Live status: fetch the status block (an HTML fragment, same template as the page) every second while the
//   tab is visible; only a changed block is swapped in, so the role="status" region announces real changes.
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
  if (!root || !target || !window.fetch) { return; }
  var refreshLink = document.querySelector("[data-refresh-link]");
  if (refreshLink) { refreshLink.hidden = true; }
  var complete = document.getElementById("complete");
  var last = target.innerHTML.trim();
  var failures = 0;

  function updateButton() {
    var list = target.querySelector("[data-state]");
    if (complete && list && list.getAttribute("data-state") === "authenticated") {
      complete.textContent = complete.getAttribute("data-label-done");
    }
  }

  function poll() {
    if (document.hidden) { return schedule(); }
    fetch(root.getAttribute("data-status-url"), {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
      .then(function (html) {
        failures = 0;
        html = html.trim();
        if (html !== last) {
          last = html;
          target.innerHTML = html;
          updateButton();
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
  updateButton();
  schedule();
})();
