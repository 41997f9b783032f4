// Docket review page: keyboard navigation, evidence highlighting, line-item rows, dialogs.
// No inline handlers anywhere (the Content-Security-Policy forbids them); everything is delegated here.
(function () {
  "use strict";

  let allFields = false; // Alt+A: Tab through every field, not only those that need attention
  let newRows = 0;

  function review() { return document.querySelector("[data-review]"); }
  function form() { return document.getElementById("review-form"); }

  function isTextEntry(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
      (el.tagName === "INPUT" && !["button", "submit", "checkbox", "radio", "hidden"].includes(el.type)));
  }

  function stops() {
    const f = form();
    if (!f) return [];
    const selector = allFields ? "[data-field-control]" : "[data-field-control][data-attention]";
    const list = Array.from(f.querySelectorAll(selector)).filter((el) => !el.disabled);
    const approve = document.getElementById("approve");
    if (approve) list.push(approve);
    return list;
  }

  function move(from, step) {
    const list = stops();
    if (!list.length) return false;
    let i = list.indexOf(from);
    i = i === -1 ? (step > 0 ? 0 : list.length - 1) : (i + step + list.length) % list.length;
    list[i].focus();
    if (list[i].select) list[i].select();
    return true;
  }

  // --- evidence ---------------------------------------------------------------------
  function highlight(key) {
    document.querySelectorAll("mark.active").forEach((m) => m.classList.remove("active"));
    if (!key) return;
    const marks = Array.from(document.querySelectorAll("mark[data-f]")).filter(
      (m) => m.dataset.f.split(" ").includes(key));
    marks.forEach((m) => m.classList.add("active"));
    if (marks.length) marks[0].scrollIntoView({ block: "center", behavior: "auto" });
  }

  // --- line items -------------------------------------------------------------------
  function renumber(tbody) {
    Array.from(tbody.rows).forEach((row, i) => {
      const cell = row.querySelector(".rownum");
      if (cell && cell.firstChild && cell.firstChild.nodeType === Node.TEXT_NODE) cell.firstChild.textContent = String(i + 1);
      row.querySelectorAll("input[data-col]").forEach((input) => {
        const label = input.getAttribute("aria-label") || "";
        input.setAttribute("aria-label", label.replace(/ row (\d+|new) /, " row " + (i + 1) + " "));
      });
    });
  }

  function addRow(array, after) {
    const template = document.querySelector('template[data-row-template="' + array + '"]');
    const tbody = document.querySelector('tbody[data-rows="' + array + '"]');
    if (!template || !tbody) return;
    newRows += 1;
    const key = "n" + newRows;
    const html = template.innerHTML.split("__key__").join(key);
    const holder = document.createElement("tbody");
    holder.innerHTML = html;
    const row = holder.querySelector("tr");
    if (after && after.parentNode === tbody) after.after(row); else tbody.appendChild(row);
    renumber(tbody);
    const first = row.querySelector("[data-field-control]");
    if (first) first.focus();
  }

  function moveRow(row, step) {
    const tbody = row.parentNode;
    const target = step < 0 ? row.previousElementSibling : row.nextElementSibling;
    if (!target) return;
    if (step < 0) target.before(row); else target.after(row);
    renumber(tbody);
  }

  function removeRow(row) {
    const tbody = row.parentNode;
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    renumber(tbody);
    const focus = next && next.querySelector("[data-field-control]");
    if (focus) focus.focus();
  }

  // --- actions ----------------------------------------------------------------------
  function openDialog(id) {
    const dialog = document.getElementById(id);
    if (dialog && !dialog.open) dialog.showModal();
    return dialog;
  }

  function approve() {
    const f = form();
    const button = document.getElementById("approve");
    if (f && button) f.requestSubmit(button);
  }

  function reject() {
    const dialog = openDialog("reject-dialog");
    if (dialog) dialog.querySelector("textarea").focus();
  }

  function skip() {
    const f = document.getElementById("skip-form");
    if (f) f.requestSubmit();
  }

  function pick(field, index) {
    const wrapper = field && field.closest(".field");
    const button = wrapper && wrapper.querySelector('[data-action="pick"][data-pick="' + index + '"]');
    if (!button) return false;
    const input = document.getElementById(button.dataset.for);
    input.value = button.dataset.value;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    input.focus();
    return true;
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    const row = button.closest("tr");
    switch (button.dataset.action) {
      case "help": openDialog("help-dialog"); break;
      case "reject": reject(); break;
      case "skip": skip(); break;
      case "close-dialog": button.closest("dialog").close(); break;
      case "row-add": addRow(button.dataset.array, null); break;
      case "row-up": moveRow(row, -1); break;
      case "row-down": moveRow(row, 1); break;
      case "row-remove": removeRow(row); break;
      case "pick": {
        const input = document.getElementById(button.dataset.for);
        input.value = button.dataset.value;
        input.focus();
        break;
      }
    }
  });

  document.addEventListener("keydown", (event) => {
    if (!review()) return;
    const el = document.activeElement;
    const inDialog = el && el.closest("dialog");
    const editable = review().hasAttribute("data-editable");
    if (inDialog) {
      if (event.key === "Enter" && el.tagName === "TEXTAREA" && !event.shiftKey) {
        event.preventDefault();
        el.form.requestSubmit();
      }
      return; // Esc closes the dialog natively
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (editable) { event.preventDefault(); approve(); }
      return;
    }
    if (event.altKey && !event.ctrlKey) {
      const key = event.key.toLowerCase();
      const row = el && el.closest && el.closest("tbody[data-rows] tr");
      let handled = true;
      if (key === "r" && editable) reject();
      else if (key === "s" && editable) skip();
      else if (key === "a") { allFields = !allFields; }
      else if ((key === "1" || key === "2") && el) handled = pick(el, key);
      else if (key === "n" && row) addRow(row.parentNode.dataset.rows, row);
      else if ((key === "delete" || key === "backspace") && row) removeRow(row);
      else if (key === "arrowup" && row) { moveRow(row, -1); el.focus(); }
      else if (key === "arrowdown" && row) { moveRow(row, 1); el.focus(); }
      else handled = false;
      if (handled) event.preventDefault();
      return;
    }
    const inForm = el && form() && (form().contains(el) || el === document.body || el.matches("[data-doc-text]"));
    if (event.key === "Tab" && inForm && editable) {
      if (move(el, event.shiftKey ? -1 : 1)) event.preventDefault();
      return;
    }
    if (event.key === "Enter" && el && el.hasAttribute("data-field-control") && el.tagName !== "TEXTAREA") {
      event.preventDefault();
      move(el, 1);
      return;
    }
    if (event.key === "Escape" && isTextEntry(el)) {
      el.blur(); // leave the field, so single-key shortcuts apply
      return;
    }
    if (event.key === "?" && !isTextEntry(el)) {
      event.preventDefault();
      openDialog("help-dialog");
    }
  });

  document.addEventListener("focusin", (event) => {
    const key = event.target.dataset && event.target.dataset.key;
    if (key) highlight(key);
  });

  // Selecting a highlighted passage selects its field.
  document.addEventListener("click", (event) => {
    const mark = event.target.closest("mark[data-f]");
    if (!mark) return;
    const input = document.querySelector('[data-field-control][data-key="' + mark.dataset.f.split(" ")[0] + '"]');
    if (input && !input.disabled) input.focus();
  });

  function init(root) {
    let ws = null;
    if (root.matches && root.matches("[data-review]")) ws = root;
    else if (root.querySelector) ws = root.querySelector("[data-review]");
    if (!ws || ws.dataset.ready) return;
    ws.dataset.ready = "1";
    allFields = false;
    const list = stops();
    if (list.length && ws.hasAttribute("data-editable")) {
      list[0].focus();
      if (list[0].select) list[0].select();
    }
  }

  document.addEventListener("htmx:load", (event) => init(event.target));
  document.addEventListener("DOMContentLoaded", () => init(document));
})();
