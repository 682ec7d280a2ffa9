// The site's few behaviours, wired by data attributes instead of inline handlers (the
// Content-Security-Policy allows no inline script). Listeners sit on the document, so elements that
// htmx swaps in later (the model browser, the row editor) work without re-binding.
(function () {
  "use strict";

  // <select data-autosubmit>: picking an option submits its form (language switch, run picker).
  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-autosubmit]");
    if (select && select.form) select.form.submit();
  });

  // Copy a reproduce command; navigator.clipboard needs https or localhost, so fall back to a selection.
  function copyText(button) {
    var text = button.dataset.copy;
    var done = function () { button.textContent = button.dataset.done; };
    if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text).then(done); return; }
    var area = document.createElement("textarea");
    area.value = text; document.body.appendChild(area); area.select();
    document.execCommand("copy"); area.remove(); done();
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    var copy = target.closest("button[data-copy]");
    if (copy) { copyText(copy); return; }
    // <button data-fill="FIELD-ID" data-path="..."> puts the path into that field, as if typed there
    // ("Use this folder" in the model browser; the change event runs the folder check).
    var fill = target.closest("button[data-fill]");
    if (fill) {
      var field = document.getElementById(fill.dataset.fill);
      if (field) { field.value = fill.dataset.path; field.dispatchEvent(new Event("change", {bubbles: true})); }
      return;
    }
    // <button data-remove-closest="SELECTOR"> removes that ancestor (the row editor's Cancel).
    var remove = target.closest("button[data-remove-closest]");
    if (remove) {
      var gone = remove.closest(remove.dataset.removeClosest);
      if (gone) gone.remove();
    }
  });

  // New evaluation: presets tick their metrics; "responses already in the dataset" only for versions
  // whose every row has one.
  function initRunForm() {
    var presetsData = document.getElementById("presets");
    var lackingData = document.getElementById("without-responses");
    var preset = document.getElementById("id_preset");
    var version = document.getElementById("id_dataset_version");
    if (!presetsData || !lackingData || !preset || !version) return;
    var presets = JSON.parse(presetsData.textContent);
    var withoutResponses = JSON.parse(lackingData.textContent);
    // Custom leaves the ticks as they are, to pick freely.
    preset.addEventListener("change", function () {
      var picked = presets[this.value];
      if (!picked || !picked.length) return;
      document.querySelectorAll("input[name=metrics]").forEach(function (box) { box.checked = picked.indexOf(box.value) >= 0; });
    });
    function offerPrecomputed() {
      var lacking = withoutResponses.indexOf(parseInt(version.value, 10)) >= 0;
      var radio = document.querySelector("input[name=target_kind][value=precomputed]");
      if (!radio) return;
      radio.disabled = lacking;
      document.getElementById("no-responses-note").hidden = !lacking;
      if (lacking && radio.checked) document.querySelector("input[name=target_kind][value=endpoint]").checked = true;
    }
    version.addEventListener("change", offerPrecomputed);
    offerPrecomputed();
  }

  // Deferred: the document is parsed when this runs.
  initRunForm();
})();
