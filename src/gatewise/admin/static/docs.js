// Starts Swagger UI on /admin/docs. Served from the gateway like every asset of the page
// (its Content-Security-Policy allows scripts from the gateway's own origin only, none
// inline). When the OpenAPI document needs a credential (admin.docs: authenticated), the
// page asks for a gateway key or token, keeps it in this tab's sessionStorage only, and
// sends it as `Authorization: Bearer` with the document's request and with "Try it out".
(function () {
  "use strict";
  var STORE = "gatewise-admin-credential";
  var root = document.getElementById("swagger-ui");
  var form = document.getElementById("credential");
  var note = document.getElementById("credential-note");
  var started = false;

  function stored() {
    try {
      return window.sessionStorage.getItem(STORE) || "";
    } catch (error) {
      return "";
    }
  }

  function remember(value) {
    try {
      if (value) {
        window.sessionStorage.setItem(STORE, value);
      } else {
        window.sessionStorage.removeItem(STORE);
      }
    } catch (error) {
      /* storage refused (private mode): the key lives as long as the page */
    }
    current = value;
  }

  var current = stored();

  function ask(message) {
    note.textContent = message || "";
    form.hidden = false;
    form.elements.key.focus();
  }

  function start() {
    form.hidden = true;
    if (started) {
      window.location.reload();
      return;
    }
    started = true;
    window.ui = window.SwaggerUIBundle({
      url: root.dataset.openapi,
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
      layout: "BaseLayout",
      requestInterceptor: function (request) {
        if (current && !request.headers.Authorization) {
          request.headers.Authorization = "Bearer " + current;
        }
        return request;
      },
      responseInterceptor: function (response) {
        if (response.status === 401 && response.url.indexOf(root.dataset.openapi) !== -1) {
          remember("");
          ask("That credential was refused; try another.");
        }
        return response;
      },
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var value = form.elements.key.value.trim();
    form.elements.key.value = "";
    if (value) {
      remember(value);
      start();
    }
  });

  if (root.dataset.credential === "required" && !current) {
    ask("");
  } else {
    start();
  }
})();
