// Live status for the behandelaar: fetch the status block every second while the page is visible.
// Without JavaScript the page has a "Vernieuwen" link; the copy button appears only when it can work.
(function () {
  var root = document.querySelector("[data-status-url]");
  var copyButton = document.querySelector("[data-copy]");
  if (copyButton && navigator.clipboard) {
    copyButton.hidden = false;
    copyButton.addEventListener("click", function () {
      var input = document.getElementById(copyButton.getAttribute("data-copy"));
      var status = document.querySelector(".copy-status");
      navigator.clipboard.writeText(input.value).then(function () {
        status.textContent = document.documentElement.lang === "en" ? "Link copied" : "Link gekopieerd";
      }, function () { input.select(); });
    });
  }
  if (!root) { return; }
  var target = document.getElementById("status");
  var last = target.innerHTML;
  var failures = 0;
  function poll() {
    if (document.hidden) { return schedule(); }
    fetch(root.getAttribute("data-status-url"), {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) {
        failures = 0;
        if (html !== last) {
          last = html;
          target.innerHTML = html;
          if (html.indexOf('data-field="bsn"') !== -1 || html.indexOf('data-field="level"') !== -1) {
            var complete = document.getElementById("complete");
            if (complete) { complete.textContent = document.documentElement.lang === "en" ? "Complete" : "Voltooien"; }
          }
        }
        schedule();
      })
      .catch(function () {
        failures += 1;
        if (failures > 5) { document.querySelector(".refresh-row").hidden = false; return; }
        schedule();
      });
  }
  function schedule() { window.setTimeout(poll, 1000); }
  schedule();
})();
