// Kasparro console: the admin key (this browser tab only) and the admin actions.
// The key lives in sessionStorage, is sent only as X-API-Key to this service's own API, and
// never reaches a page the server renders.
"use strict";

(function () {
  const STORE = "kasparro.adminKey";

  function key() {
    try {
      return window.sessionStorage.getItem(STORE) || "";
    } catch (e) {
      return "";
    }
  }

  function showKeyState() {
    const set = key() !== "";
    document.querySelectorAll("[data-key-state]").forEach(function (el) {
      el.textContent = set ? "set for this tab" : "not set";
    });
  }

  function say(form, text, ok) {
    const status = document.getElementById("action-status");
    let place = form.querySelector(".action-result");
    if (!place) {
      place = document.createElement("p");
      place.className = "action-result";
      form.appendChild(place);
    }
    place.textContent = text;
    place.classList.toggle("ok", ok);
    place.classList.toggle("refused", !ok);
    if (status) status.textContent = text;
  }

  function fields(form) {
    const values = {};
    new FormData(form).forEach(function (value, name) {
      if (typeof value === "string" && value !== "") values[name] = value;
    });
    return values;
  }

  async function send(form) {
    const label = form.dataset.label || "Action";
    const values = fields(form);
    let url = form.dataset.url;
    const init = { method: form.dataset.method || "POST", headers: { Accept: "application/json" } };
    if (form.dataset.body === "json") {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(values);
    } else {
      const query = new URLSearchParams(values).toString();
      if (query) url += (url.includes("?") ? "&" : "?") + query;
    }
    if (key()) init.headers["X-API-Key"] = key();
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      const response = await fetch(url, init);
      let body = null;
      try {
        body = await response.json();
      } catch (e) {
        body = null;
      }
      if (response.ok) {
        const runs = body && Array.isArray(body.runs) ? body.runs : null;
        const started = runs
          ? runs.length
            ? " Started: " + runs.map(function (r) { return r.source + " " + r.run_id.slice(0, 8); }).join(", ") + "."
            : " Nothing to do."
          : "";
        say(form, label + ": accepted (" + response.status + ")." + started, true);
      } else {
        const detail = body && body.detail ? body.detail : response.statusText;
        say(form, label + ": refused (" + response.status + "): " + detail, false);
      }
    } catch (e) {
      say(form, label + ": the service did not answer (" + e + ")", false);
    } finally {
      if (button) button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    showKeyState();
    const keyForm = document.getElementById("admin-key-form");
    if (keyForm) {
      keyForm.addEventListener("submit", function (event) {
        event.preventDefault();
        const input = document.getElementById("admin-key-input");
        if (input && input.value) {
          try {
            window.sessionStorage.setItem(STORE, input.value);
          } catch (e) {
            /* storage refused: the key is simply not kept */
          }
          input.value = "";
        }
        showKeyState();
      });
      const forget = document.getElementById("admin-key-forget");
      if (forget) {
        forget.addEventListener("click", function () {
          window.sessionStorage.removeItem(STORE);
          showKeyState();
        });
      }
    }
    document.querySelectorAll("form.admin-action").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        send(form);
      });
    });
  });
})();
