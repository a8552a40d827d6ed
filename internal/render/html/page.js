(function () {
  "use strict";
  var form = document.getElementById("filters");
  var list = document.getElementById("finding-list");
  if (!form || !list) {
    return;
  }
  // A finding with data-group stands for several occurrences of one check;
  // the others for one each.
  var findings = Array.prototype.slice.call(list.querySelectorAll("article.finding"));
  var attention = { fail: true, warn: true, error: true, notEvaluated: true };
  // FIRST is how many occurrences of a check are listed until all are asked for.
  var FIRST = 5;
  var total = 0;
  findings.forEach(function (el) {
    total += size(el);
  });
  // occurrences holds, once the data block is decoded, each group's
  // occurrences with their text in lower case for the text filter.
  var occurrences = null;
  // groups remembers, per group, whether all its occurrences are asked for
  // and what its list shows.
  var groups = {};
  function size(el) {
    return el.dataset.n ? Number(el.dataset.n) : 1;
  }
  function format(n) {
    return n.toLocaleString("en-US");
  }
  function value(id) {
    var el = document.getElementById(id);
    return el ? el.value : "";
  }
  function group(el) {
    var g = groups[el.dataset.group];
    if (!g) {
      g = groups[el.dataset.group] = { all: false, shows: "", head: head(el) };
    }
    return g;
  }
  // head is what a group's occurrences share, for the text filter: its
  // heading but the count, and its target, remediation and controls.
  function head(el) {
    var text = "";
    Array.prototype.forEach.call(el.querySelector(".head h4").childNodes, function (n) {
      if (!(n.classList && n.classList.contains("count"))) {
        text += n.textContent;
      }
    });
    return (text + " " + el.querySelector(".head dl").textContent).toLowerCase();
  }
  // decode reads the data block: base64 of gzip of JSON, decompressed by
  // the browser itself. It gives null where the browser cannot.
  function decode() {
    var block = document.getElementById("occurrences");
    if (!block || typeof DecompressionStream === "undefined") {
      return Promise.resolve(null);
    }
    var bin = atob(JSON.parse(block.textContent).gzip);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      bytes[i] = bin.charCodeAt(i);
    }
    return new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).json();
  }
  function waiverText(w) {
    return "waiver: accepted by " + w[0] + " until " + w[1] + ": " + w[2] + " (" + w[3] + ")";
  }
  // item lists one occurrence as the page does without its script.
  function item(o) {
    var li = document.createElement("li");
    var p = document.createElement("p");
    p.className = "message";
    p.textContent = o.message;
    li.appendChild(p);
    if (o.location) {
      var loc = document.createElement("div");
      loc.className = "mono sub";
      loc.textContent = o.location;
      li.appendChild(loc);
    }
    if (o.waiver) {
      var w = document.createElement("div");
      w.className = "sub";
      w.textContent = waiverText(o.waiver);
      li.appendChild(w);
    }
    return li;
  }
  // show lists a group's matching occurrences (all when matches is null):
  // the first few, or every one when asked.
  function show(el, matches, text) {
    var g = group(el);
    var occ = occurrences[Number(el.dataset.group)];
    var n = matches ? matches.length : occ.length;
    var limit = g.all ? n : Math.min(n, FIRST);
    var shows = (matches ? text : "") + "\u0000" + limit;
    if (shows === g.shows) {
      return;
    }
    g.shows = shows;
    var items = document.createDocumentFragment();
    for (var i = 0; i < limit; i++) {
      items.appendChild(item(occ[matches ? matches[i] : i]));
    }
    el.querySelector("ol.occurrences").replaceChildren(items);
    el.querySelector(".count").textContent = matches ? format(n) + " of " + format(occ.length) + " occurrences match" : format(n) + " occurrences";
    var more = el.querySelector("p.more");
    if (!more) {
      more = document.createElement("p");
      more.className = "more";
      el.appendChild(more);
    }
    more.hidden = n <= FIRST;
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = g.all ? "Show the first " + FIRST : "Show all " + format(n) + " (" + format(n - limit) + " more)";
    more.replaceChildren(button);
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
      // matches are the occurrences of a group the text is found in, when
      // it is not in what they share.
      var matches = null;
      if (ok && text !== "") {
        if (d.group === undefined || !occurrences) {
          ok = el.textContent.toLowerCase().indexOf(text) >= 0;
        } else if (group(el).head.indexOf(text) < 0) {
          matches = [];
          occurrences[Number(d.group)].forEach(function (o, i) {
            if (o.text.indexOf(text) >= 0) {
              matches.push(i);
            }
          });
          ok = matches.length > 0;
        }
      }
      el.hidden = !ok;
      if (!ok) {
        return;
      }
      shown += matches ? matches.length : size(el);
      if (d.group !== undefined && occurrences) {
        show(el, matches, text);
      }
    });
    document.getElementById("f-count").textContent = format(shown) + " of " + format(total) + " findings shown";
    document.getElementById("no-findings").hidden = shown !== 0;
  }
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
  });
  // A group's button lists all its occurrences, or the first few again.
  list.addEventListener("click", function (ev) {
    var button = ev.target.closest("p.more button");
    if (button) {
      var g = group(button.closest("article"));
      g.all = !g.all;
      apply();
    }
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
  decode().then(function (d) {
    if (!d) {
      list.dataset.occurrences = "unavailable";
      return;
    }
    occurrences = d.groups.map(function (occ) {
      return occ.map(function (o) {
        var w = o.length > 2 ? d.waivers[o[2]] : null;
        return { message: o[0], location: o[1], waiver: w, text: (o[0] + " " + o[1] + (w ? " " + waiverText(w) : "")).toLowerCase() };
      });
    });
    list.dataset.occurrences = "ready";
    apply();
  }).catch(function (err) {
    list.dataset.occurrences = "failed";
    console.error("kubepki: the occurrences of this report could not be read: " + err);
  });
})();
