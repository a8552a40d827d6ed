(function () {
  "use strict";
  var form = document.getElementById("filters");
  var list = document.getElementById("finding-list");
  if (!form || !list) {
    return;
  }
  var findings = Array.prototype.slice.call(list.querySelectorAll("article.finding"));
  var attention = { fail: true, warn: true, error: true, notEvaluated: true };
  function value(id) {
    var el = document.getElementById(id);
    return el ? el.value : "";
  }
  function apply() {
    var status = value("f-status");
    var severity = value("f-severity");
    var section = value("f-section");
    var component = value("f-component");
    var target = value("f-target");
    var text = value("f-text").trim().toLowerCase();
    var waived = document.getElementById("f-waived").checked;
    var shown = 0;
    findings.forEach(function (el) {
      var d = el.dataset;
      var ok = true;
      if (status === "attention") {
        ok = attention[d.status] === true;
      } else if (status !== "") {
        ok = d.status === status;
      }
      if (ok && severity !== "") {
        ok = Number(d.severity) >= Number(severity);
      }
      if (ok && section !== "") {
        ok = d.sections.split(" ").indexOf(section) >= 0;
      }
      if (ok && component !== "") {
        ok = d.component === component;
      }
      if (ok && target !== "") {
        ok = d.target === target;
      }
      if (ok && !waived) {
        ok = d.waived !== "true";
      }
      if (ok && text !== "") {
        ok = el.textContent.toLowerCase().indexOf(text) >= 0;
      }
      el.hidden = !ok;
      if (ok) {
        shown++;
      }
    });
    document.getElementById("f-count").textContent = shown + " of " + findings.length + " findings shown";
    document.getElementById("no-findings").hidden = shown !== 0;
  }
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
  });
  // A PCI item in the summary opens the findings for that item, all statuses.
  Array.prototype.forEach.call(document.querySelectorAll("a.section-link"), function (a) {
    a.addEventListener("click", function () {
      document.getElementById("f-section").value = a.dataset.section;
      document.getElementById("f-status").value = "";
      apply();
    });
  });
  form.hidden = false;
  apply();
})();
