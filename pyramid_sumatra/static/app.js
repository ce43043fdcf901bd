/* Sumatra Server: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };

  function store(key, value) {
    try {
      if (value === undefined) { return JSON.parse(localStorage.getItem(key) || "null"); }
      localStorage.setItem(key, JSON.stringify(value));
    } catch (e) { return null; }  // private mode, disabled storage: just forget
  }

  /* Record table: choose visible columns, remembered per browser. */
  function columns() {
    var menu = $("#columns-menu"), table = $("#records");
    if (!menu || !table) { return; }
    var key = "sumatra.hiddenColumns";
    // Classes, not an inline <style>: the Content-Security-Policy allows only our stylesheet.
    function apply() {
      var hidden = [];
      $$("input[data-col]", menu).forEach(function (b) {
        var col = b.getAttribute("data-col");
        table.classList.toggle("hide-" + col, !b.checked);
        if (!b.checked) { hidden.push(col); }
      });
      store(key, hidden);
    }
    var saved = store(key) || [];
    $$("input[data-col]", menu).forEach(function (box) {
      box.checked = saved.indexOf(box.getAttribute("data-col")) < 0;
      box.addEventListener("change", apply);
    });
    apply();
  }

  /* Record table: select all, count the selection, enable the bulk buttons. */
  function selection() {
    var form = $("#bulk");
    if (!form) { return; }
    var all = $("#select-all"), boxes = $$("input[name=label]", form), count = $("#selected-count");
    function update() {
      var n = boxes.filter(function (b) { return b.checked; }).length;
      if (count) { count.textContent = n; }
      $$("tbody tr", form).forEach(function (tr) {
        var b = $("input[name=label]", tr);
        tr.classList.toggle("selected", !!(b && b.checked));
      });
      if (all) { all.checked = n > 0 && n === boxes.length; all.indeterminate = n > 0 && n < boxes.length; }
      form.classList.toggle("has-selection", n > 0);
    }
    if (all) {
      all.addEventListener("change", function () {
        boxes.forEach(function (b) { b.checked = all.checked; });
        update();
      });
    }
    boxes.forEach(function (b) { b.addEventListener("change", update); });
    update();
  }

  /* Forms and buttons asking for confirmation first. */
  function confirmations() {
    $$("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  }

  /* Copy buttons: data-copy="#input-id". */
  function copyButtons() {
    $$("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var input = $(button.getAttribute("data-copy"));
        if (!input) { return; }
        input.select();
        var done = function () {
          var text = button.textContent;
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = text; }, 1500);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(input.value).then(done, function () {});
        } else {
          try { document.execCommand("copy"); done(); } catch (e) { /* selected; user copies */ }
        }
      });
    });
  }

  /* Client-side sorting of tables marked "sortable" (numbers sort as numbers). */
  function sortableTables() {
    $$("table.sortable").forEach(function (table) {
      $$("thead th", table).forEach(function (th, index) {
        th.classList.add("clickable");
        th.setAttribute("tabindex", "0");
        th.setAttribute("role", "button");
        function sort() {
          var ascending = th.getAttribute("aria-sort") !== "ascending";
          $$("thead th", table).forEach(function (o) { o.removeAttribute("aria-sort"); });
          th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
          var body = table.tBodies[0], rows = $$("tr", body);
          var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
          rows.sort(function (a, b) {
            var x = a.cells[index].textContent.trim(), y = b.cells[index].textContent.trim();
            var nx = parseFloat(x), ny = parseFloat(y), result;
            if (x === "" || y === "") { result = x === y ? 0 : (x === "" ? 1 : -1); return result; }
            result = (!isNaN(nx) && !isNaN(ny) && isFinite(x) && isFinite(y)) ? nx - ny : collator.compare(x, y);
            return ascending ? result : -result;
          });
          rows.forEach(function (r) { body.appendChild(r); });
        }
        th.addEventListener("click", sort);
        th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
      });
    });
  }

  /* "Only differences" / "only varying" toggles, remembered per browser. */
  function toggles() {
    [["#only-diff", "#comparison", "only-diff"], ["#only-varying", "#parameter-table", "only-varying"]]
      .forEach(function (t) {
        var box = $(t[0]), table = $(t[1]);
        if (!box || !table) { return; }
        var key = "sumatra." + t[2];
        box.checked = !!store(key);
        var apply = function () { table.classList.toggle(t[2], box.checked); store(key, box.checked); };
        box.addEventListener("change", apply);
        apply();
      });
  }

  /* The filter form leaves empty fields out of the URL (shorter links to share). */
  function tidyFilters() {
    var form = $("#filters");
    if (!form) { return; }
    form.addEventListener("submit", function () {
      $$("input, select", form).forEach(function (field) {
        if (!field.value || (field.name === "limit" && field.value === "50")) { field.disabled = true; }
      });
    });
    // Coming back with the Back button shows the form as it was: usable again.
    window.addEventListener("pageshow", function () {
      $$("input, select", form).forEach(function (field) { field.disabled = false; });
    });
  }

  /* Scrolling boxes the templates did not mark (nested values) get keyboard focus too,
     so their hidden part can be scrolled without a mouse. */
  function focusableScrollers() {
    $$("pre, .table-wrap, table.nested").forEach(function (box) {
      var scrolls = box.scrollHeight > box.clientHeight + 1 || box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex") && !$("a, button, input, select, textarea", box)) {
        box.setAttribute("tabindex", "0");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    columns(); selection(); confirmations(); copyButtons(); sortableTables(); toggles();
    tidyFilters(); focusableScrollers();
  });
}());
