/* Room portal admin: the bulk edit form ticks "change this" when a value is edited, and an
   action run's page follows its progress by polling a small JSON endpoint. */
(function () {
  "use strict";

  function markTicked(row) {
    var tick = row.querySelector(".sw-bulk-tick");
    row.classList.toggle("sw-bulk-ticked", Boolean(tick && tick.checked));
  }

  function wireBulkForm(form) {
    form.querySelectorAll("tr.sw-bulk-field").forEach(function (row) {
      var tick = row.querySelector(".sw-bulk-tick");
      markTicked(row);
      tick.addEventListener("change", function () { markTicked(row); });
      row.querySelectorAll("input, select, textarea").forEach(function (input) {
        if (input === tick) { return; }
        var edited = function () { tick.checked = true; markTicked(row); };
        input.addEventListener("input", edited);
        input.addEventListener("change", edited);
      });
    });
  }

  function followProgress(box) {
    var url = box.getAttribute("data-progress-url");
    var bar = box.querySelector("progress");
    var text = box.querySelector(".sw-progress-text");
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("status " + response.status); }
          return response.json();
        })
        .then(function (run) {
          bar.max = Math.max(run.total, 1);
          bar.value = run.done;
          text.textContent = run.done + " of " + run.total + " · " + run.summary;
          if (run.finished) {
            window.location.reload();
          } else {
            window.setTimeout(poll, 1000);
          }
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, 500);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("sw-bulk-edit-form");
    if (form) { wireBulkForm(form); }
    var box = document.querySelector("[data-progress-url]");
    if (box) { followProgress(box); }
  });
})();
