/* Room portal admin: reveal and copy conference tokens, embed snippets, role presets.
   Token values are never in the page: they are fetched by an audited POST on demand. */
(function () {
  "use strict";

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) { return input.value; }
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function reveal(url) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" }
    }).then(function (response) {
      if (!response.ok) { throw new Error("The server refused (" + response.status + ")."); }
      return response.json();
    });
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-HTTP development portals have no clipboard API: fall back to a selection.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
    return Promise.resolve();
  }

  function flash(button, text) {
    var before = button.textContent;
    button.textContent = text;
    setTimeout(function () { button.textContent = before; }, 1500);
  }

  function embedSnippet(token) {
    return [
      '<div id="signalwire-conference" style="width: 100%; aspect-ratio: 16 / 9;"></div>',
      '<script src="https://cdn.signalwire.com/@signalwire/js"></script>',
      "<script>",
      "  new SignalWire.Video.RoomSession({",
      '    rootElement: document.getElementById("signalwire-conference"),',
      "    token: " + JSON.stringify(token),
      "  }).join();",
      "</script>"
    ].join("\n");
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) { return; }
    if (button.classList.contains("sw-reveal")) {
      reveal(button.dataset.revealUrl).then(function (data) {
        document.getElementById(button.dataset.target).textContent = data.token;
        button.disabled = true;
      }).catch(function (error) { window.alert(error.message); });
    } else if (button.classList.contains("sw-copy") && button.dataset.revealUrl) {
      reveal(button.dataset.revealUrl).then(function (data) {
        return copyText(data.token);
      }).then(function () { flash(button, "Copied"); })
        .catch(function (error) { window.alert(error.message); });
    } else if (button.classList.contains("sw-copy") && button.dataset.copyFrom) {
      copyText(document.getElementById(button.dataset.copyFrom).value)
        .then(function () { flash(button, "Copied"); });
    } else if (button.classList.contains("sw-embed")) {
      reveal(button.dataset.revealUrl).then(function (data) {
        var snippet = embedSnippet(data.token);
        var preview = button.parentNode.querySelector(".sw-embed-preview");
        if (preview) { preview.textContent = snippet; preview.hidden = false; }
        return copyText(snippet);
      }).then(function () { flash(button, "Copied"); })
        .catch(function (error) { window.alert(error.message); });
    }
  });

  // Mint page: a role preset ticks its scopes; ticking a scope by hand makes it custom.
  document.addEventListener("DOMContentLoaded", function () {
    var presetsNode = document.getElementById("sw-role-presets");
    var form = document.getElementById("sw-mint-form");
    if (!presetsNode || !form) { return; }
    var presets = JSON.parse(presetsNode.textContent);
    var boxes = form.querySelectorAll("input[name=permissions]");
    function apply(role) {
      if (!presets[role]) { return; }
      boxes.forEach(function (box) { box.checked = presets[role].indexOf(box.value) >= 0; });
    }
    form.querySelectorAll("input[name=role]").forEach(function (radio) {
      radio.addEventListener("change", function () { apply(radio.value); });
      if (radio.checked) { apply(radio.value); }
    });
    boxes.forEach(function (box) {
      box.addEventListener("change", function () {
        var custom = form.querySelector("input[name=role][value=custom]");
        if (custom) { custom.checked = true; }
      });
    });
  });
})();
