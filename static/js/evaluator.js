// Evaluator forms (CSP-safe: no inline script; loaded with defer, so the document is parsed).
// Without JS every field shows and the server ignores those of the other kind.
(function () {
  "use strict";

  // The endpoint form shows only the fields of the chosen kind (OpenAI-compatible API or local folder),
  // and of the chosen key source (a typed key, or the name of a placed secret).
  function initEndpointForm() {
    var form = document.getElementById("endpoint-form");
    if (!form) return;
    var byKind = {
      openai: (form.dataset.openaiFields || "").split(" "),
      local: (form.dataset.localFields || "").split(" ")
    };
    var typedKey = ["api_key", "remove_key"];
    var namedSecret = ["secret_name"];
    function wrapperOf(name) {
      var input = form.querySelector("[name='" + name + "']");
      if (!input) return null;
      var node = input;
      while (node.parentElement && node.parentElement !== form) node = node.parentElement;
      return node.parentElement === form ? node : null;
    }
    function show(names, visible) {
      names.forEach(function (name) {
        var wrapper = name && wrapperOf(name);
        if (wrapper) wrapper.hidden = !visible;
      });
    }
    function checked(name) {
      var picked = form.querySelector("[name='" + name + "']:checked") || form.querySelector("select[name='" + name + "']");
      return picked ? picked.value : "";
    }
    function update() {
      var kind = checked("kind") || "openai";
      Object.keys(byKind).forEach(function (other) { if (other !== kind) show(byKind[other], false); });
      show(byKind[kind] || [], true);
      document.querySelectorAll("[data-for-kind]").forEach(function (node) { node.hidden = node.dataset.forKind !== kind; });
      if (kind === "openai") {
        var source = checked("secret_kind");
        show(typedKey, source === "" || source === "stored");
        show(namedSecret, source === "file" || source === "env");
      }
    }
    form.addEventListener("change", function (event) {
      if (event.target.name === "kind" || event.target.name === "secret_kind") update();
    });
    update();
  }

  // The run form: a note when the chosen dataset version has Korean text and no multilingual embedding
  // model is picked (the default one was trained on English only).
  function initKoreanNote() {
    var data = document.getElementById("korean-versions");
    var note = document.getElementById("korean-embedder-note");
    var version = document.getElementById("id_dataset_version");
    var embedding = document.getElementById("id_embedding");
    if (!data || !note || !version) return;
    var korean = JSON.parse(data.textContent);
    var multilingual = embedding ? JSON.parse(embedding.dataset.withFolder || "[]") : [];
    function update() {
      var picked = embedding ? parseInt(embedding.value, 10) : NaN;
      note.hidden = korean.indexOf(parseInt(version.value, 10)) < 0 || multilingual.indexOf(picked) >= 0;
    }
    version.addEventListener("change", update);
    if (embedding) embedding.addEventListener("change", update);
    update();
  }

  initEndpointForm();
  initKoreanNote();
})();
