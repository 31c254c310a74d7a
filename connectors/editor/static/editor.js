/* gov-assistant content editor. Plain JS, no build step, nothing loaded from elsewhere.
 * Every text from documents, FAQ entries, citizens or the server is inserted with textContent; the one exception
 * is the Markdown preview, whose HTML comes from the server's sanitizing renderer (raw HTML escaped, unsafe link
 * schemes dropped; the page's Content-Security-Policy runs no inline script either).
 * The session is the staff pages' HttpOnly cookie; changes carry the session's CSRF token in X-CSRF-Token. */
(function () {
  "use strict";
  var csrf = null, me = null;
  var PAGE = 50;
  var DOC_STATUS = { draft: "草稿", published: "已发布", archived: "已归档" };
  var VERSION_STATUS = { live: "线上", previous: "可回滚", building: "构建中", failed: "失败", retired: "已清理" };
  // the retrievers' and confidence features' names, for editors (the raw name follows for the technical reader)
  var SCORE_NAMES = { dense: "语义", pinyin: "拼音", char: "字符", bm25: "关键词", margin: "领先幅度", coverage: "覆盖率" };
  var FILE_STATUS = { created: "已导入", updated: "已更新", duplicate: "重复", failed: "失败", skipped: "未处理" };
  var state = {
    tab: "docs", docOffset: 0, docTotal: 0, doc: null, faqOffset: 0, faqTotal: 0, faq: null,
    allDocs: [], faqDocIds: {}, groups: [], uaIds: null
  };

  // ---- helpers -----------------------------------------------------------------------------------------
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); }
  function say(text, bad) { var s = $("status"); s.textContent = text || ""; s.className = bad ? "bad" : ""; }
  function errorText(b) {
    return b && b.message_zh ? b.message_zh + " / " + b.message_en : "操作失败，请稍后重试 / the request failed";
  }
  function api(method, path, body, form) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined && !form) headers["Content-Type"] = "application/json";
    if (csrf && method !== "GET") headers["X-CSRF-Token"] = csrf;
    return fetch(path, {
      method: method, headers: headers, credentials: "same-origin",
      body: form ? body : (body !== undefined ? JSON.stringify(body) : undefined)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (b) {
        if (!r.ok) b.status = r.status;
        if (r.status === 401 && path !== "/api/editor/login") { showLogin(); throw b; }
        if (!r.ok) throw b;
        return b;
      });
    });
  }
  function fail(b) { if (!(b && b.status === 401)) say(errorText(b), true); }
  function when(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString("zh-CN", { hour12: false });
  }
  function day(iso) { return iso ? when(iso).split(" ")[0] : ""; }
  function lines(text) { return text.split("\n").map(function (s) { return s.trim(); }).filter(Boolean); }
  function pct(x) { return (typeof x === "number" && isFinite(x)) ? (x * 100).toFixed(1) + "%" : "—"; }
  function badge(text, cls) { return el("span", { class: "badge " + (cls || "") }, text); }
  function confirmed(text) { return window.confirm(text); }

  // ---- login -------------------------------------------------------------------------------------------
  function showLogin() {
    csrf = null; me = null;
    $("login").hidden = false; $("app").hidden = true; $("whoami").hidden = true;
    $("username").focus();
  }
  $("login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    api("POST", "/api/editor/login", { username: $("username").value, password: $("password").value })
      .then(function (b) {
        $("password").value = ""; $("login-error").textContent = "";
        started(b);
      })
      .catch(function (b) { $("login-error").textContent = errorText(b); });
  });
  $("logout-btn").addEventListener("click", function () {
    api("POST", "/api/editor/logout").then(showLogin, showLogin);
  });
  function started(b) {
    me = b.user; csrf = b.csrf;
    $("me-name").textContent = me.display_name + "（" + (me.role === "admin" ? "管理员" : "编辑") + "）";
    $("login").hidden = true; $("app").hidden = false; $("whoami").hidden = false;
    say("");
    loadFacets();
    openTab(state.tab);
  }

  // ---- tabs --------------------------------------------------------------------------------------------
  var LOADERS = {
    docs: function () { loadDocs(); }, faq: function () { loadFaqs(); loadAllDocs(); }, import: function () {},
    publish: function () { loadVersions(); loadFacets(); }, test: function () { $("hit-q").focus(); },
    unanswered: function () { loadGroups(); }, dashboard: function () { loadDashboard(); }
  };
  function openTab(name) {
    state.tab = name;
    Array.prototype.forEach.call(document.querySelectorAll(".tabs [role=tab]"), function (b) {
      var on = b.getAttribute("data-tab") === name;
      b.setAttribute("aria-selected", on ? "true" : "false");
      b.tabIndex = on ? 0 : -1;
      $("panel-" + b.getAttribute("data-tab")).hidden = !on;
    });
    say("");
    LOADERS[name]();
  }
  Array.prototype.forEach.call(document.querySelectorAll(".tabs [role=tab]"), function (b) {
    b.addEventListener("click", function () { openTab(b.getAttribute("data-tab")); });
  });

  function loadFacets() {
    return api("GET", "/api/kb/facets").then(function (f) {
      fillOptions($("doc-dept"), f.departments, "全部部门");
      fillDatalist($("dept-options"), f.departments);
      fillDatalist($("service-options"), f.service_items);
      fillDatalist($("category-options"), f.categories);
      var p = f.pending;
      $("pending-summary").textContent = (p.documents || p.faq)
        ? "待发布：" + p.documents + " 篇文档、" + p.faq + " 条常见问题有新的修改。"
        : "没有待发布的修改。";
    }).catch(fail);
  }
  function fillOptions(select, values, allLabel) {
    var keep = select.value;
    clear(select);
    select.appendChild(el("option", { value: "" }, allLabel));
    values.forEach(function (v) { select.appendChild(el("option", { value: v }, v)); });
    select.value = keep;
  }
  function fillDatalist(list, values) {
    clear(list);
    values.forEach(function (v) { list.appendChild(el("option", { value: v })); });
  }

  // ---- documents ---------------------------------------------------------------------------------------
  function docQuery() {
    var p = new URLSearchParams({ limit: PAGE, offset: state.docOffset });
    if ($("doc-q").value.trim()) p.set("q", $("doc-q").value.trim());
    if ($("doc-status").value) p.set("status", $("doc-status").value);
    if ($("doc-dept").value) p.set("department", $("doc-dept").value);
    return p.toString();
  }
  function loadDocs() {
    return api("GET", "/api/kb/documents?" + docQuery()).then(function (b) {
      state.docTotal = b.total;
      var list = $("doc-list"); clear(list);
      b.items.forEach(function (d) {
        var li = el("li", { tabindex: "0", "data-id": d.id, class: state.doc && state.doc.id === d.id ? "selected" : "" });
        li.appendChild(el("span", { class: "title" }, d.title));
        var meta = el("span", { class: "meta" });
        meta.appendChild(badge(DOC_STATUS[d.status] || d.status, "st-" + d.status));
        if (d.status !== "archived" && d.published_version !== d.current_version && d.published_version !== null) {
          meta.appendChild(badge("有未发布修改", "st-draft"));
        }
        meta.appendChild(document.createTextNode(" v" + d.current_version + (d.department ? " · " + d.department : "")));
        li.appendChild(meta);
        li.addEventListener("click", function () { openDoc(d.id); });
        li.addEventListener("keydown", function (ev) { if (ev.key === "Enter") openDoc(d.id); });
        list.appendChild(li);
      });
      $("doc-count").textContent = "共 " + b.total + " 篇";
      pager("doc", state.docOffset, b.total);
    }).catch(fail);
  }
  function pager(prefix, offset, total) {
    $(prefix + "-prev").disabled = offset <= 0;
    $(prefix + "-next").disabled = offset + PAGE >= total;
    $(prefix + "-page").textContent = total ? (Math.floor(offset / PAGE) + 1) + " / " + Math.max(1, Math.ceil(total / PAGE)) : "";
  }
  $("doc-filter").addEventListener("submit", function (ev) { ev.preventDefault(); state.docOffset = 0; loadDocs(); });
  $("doc-status").addEventListener("change", function () { state.docOffset = 0; loadDocs(); });
  $("doc-dept").addEventListener("change", function () { state.docOffset = 0; loadDocs(); });
  $("doc-prev").addEventListener("click", function () { state.docOffset = Math.max(0, state.docOffset - PAGE); loadDocs(); });
  $("doc-next").addEventListener("click", function () { state.docOffset += PAGE; loadDocs(); });
  $("doc-new").addEventListener("click", function () { showDoc(null); $("doc-title").focus(); });

  function openDoc(id) {
    return api("GET", "/api/kb/documents/" + id).then(function (d) { showDoc(d); loadDocs(); }).catch(fail);
  }
  function showDoc(d) {
    state.doc = d;
    $("doc-empty").hidden = true; $("doc-form").hidden = false;
    $("doc-heading").textContent = d ? d.title : "新建文档";
    $("doc-meta").textContent = d
      ? "编号 " + d.id + " · " + (DOC_STATUS[d.status] || d.status) + " · 当前版本 v" + d.current_version +
        " · 已发布版本 " + (d.published_version ? "v" + d.published_version : "无") + " · 更新于 " + when(d.updated_at)
      : "保存后成为草稿，发布后市民才能看到。";
    $("doc-title").value = d ? d.title : "";
    $("doc-department").value = d && d.department || "";
    $("doc-service").value = d && d.service_item || "";
    $("doc-url").value = d && d.source_url || "";
    $("doc-effective").value = d && d.effective_date || "";
    $("doc-expiry").value = d && d.expiry_date || "";
    $("doc-tags").value = d ? (d.tags || []).join("，") : "";
    $("doc-body").value = d ? d.body : "";
    $("doc-archive").hidden = !d || d.status === "archived";
    $("doc-history").hidden = !d;
    clear($("doc-diff"));
    renderPreview();
    if (d) loadDocVersions(d);
  }
  function docFields() {
    var tags = $("doc-tags").value.split(/[,，、;；]/).map(function (t) { return t.trim(); }).filter(Boolean);
    var opt = function (id) { var v = $(id).value.trim(); return v ? v : null; };
    return {
      title: $("doc-title").value.trim(), body: $("doc-body").value,
      department: opt("doc-department"), service_item: opt("doc-service"), source_url: opt("doc-url"),
      effective_date: opt("doc-effective"), expiry_date: opt("doc-expiry"), tags: tags
    };
  }
  $("doc-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var d = state.doc, fields = docFields();
    var call = d ? api("PUT", "/api/kb/documents/" + d.id, fields) : api("POST", "/api/kb/documents", fields);
    $("doc-save").disabled = true;
    call.then(function (saved) {
      var same = d && saved.current_version === d.current_version && d.status !== "archived";
      say(same ? "内容没有变化，未生成新版本。" : "已保存为草稿版本 v" + saved.current_version + "，发布后生效。");
      showDoc(saved); loadDocs(); loadFacets();
    }).catch(fail).then(function () { $("doc-save").disabled = false; });
  });
  $("doc-archive").addEventListener("click", function () {
    var d = state.doc;
    if (!d || !confirmed("归档后该文档将在下次发布时下线，确定归档“" + d.title + "”吗？")) return;
    api("POST", "/api/kb/documents/" + d.id + "/archive").then(function (saved) {
      say("已归档，下次发布后下线。"); showDoc(saved); loadDocs(); loadFacets();
    }).catch(fail);
  });

  // live preview: the server renders (and sanitizes); only the newest answer is shown
  var previewTimer = null, previewSeq = 0;
  function renderPreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(function () {
      var seq = ++previewSeq, text = $("doc-body").value;
      if (!text.trim()) { clear($("doc-preview")); return; }
      api("POST", "/api/kb/preview", { markdown: text }).then(function (b) {
        // sanitized by the server's Markdown renderer (raw HTML disabled): the only innerHTML on this page
        if (seq === previewSeq) $("doc-preview").innerHTML = b.html;
      }).catch(function (b) {
        if (seq !== previewSeq || (b && b.status === 401)) return;
        var box = $("doc-preview"); clear(box);
        box.appendChild(el("p", { class: "hint" }, "预览暂不可用：" + errorText(b)));
      });
    }, 600);  // after a pause in typing: at most ~100 previews a minute, under the server's rate limit
  }
  $("doc-body").addEventListener("input", renderPreview);

  function loadDocVersions(d) {
    return api("GET", "/api/kb/documents/" + d.id + "/versions").then(function (b) {
      var body = $("doc-versions"); clear(body);
      var from = $("diff-from"), to = $("diff-to"); clear(from); clear(to);
      b.versions.slice().reverse().forEach(function (v) {
        var tr = el("tr");
        var label = "v" + v.version + (v.version === d.published_version ? "（已发布）" : "") +
          (v.version === d.current_version ? "（当前）" : "");
        tr.appendChild(el("td", {}, label));
        tr.appendChild(el("td", {}, v.created_by));
        tr.appendChild(el("td", {}, when(v.created_at)));
        var td = el("td");
        if (v.version > 1) {
          var btn = el("button", { type: "button", class: "link" }, "与上一版对比");
          btn.addEventListener("click", function () { showDiff(d.id, v.version - 1, v.version); });
          td.appendChild(btn);
        }
        tr.appendChild(td);
        body.appendChild(tr);
        from.appendChild(el("option", { value: v.version }, "v" + v.version));
        to.appendChild(el("option", { value: v.version }, "v" + v.version));
      });
      to.value = String(d.current_version);
      from.value = String(Math.max(1, d.current_version - 1));
    }).catch(fail);
  }
  $("diff-btn").addEventListener("click", function () {
    if (state.doc) showDiff(state.doc.id, $("diff-from").value, $("diff-to").value);
  });
  function showDiff(id, from, to) {
    $("diff-from").value = String(from); $("diff-to").value = String(to);
    return api("GET", "/api/kb/documents/" + id + "/diff?from=" + encodeURIComponent(from) + "&to=" + encodeURIComponent(to))
      .then(function (b) {
        var box = $("doc-diff"); clear(box);
        box.appendChild(el("p", { class: "meta" }, "v" + b.from_version + " → v" + b.to_version));
        if (!b.lines.length) { box.appendChild(el("p", { class: "hint" }, "两个版本内容相同。")); return; }
        var MARK = { add: "+", del: "-", ctx: " ", hunk: "" };
        b.lines.forEach(function (l) {
          var row = el("div", { class: "dl dl-" + l.op });
          if (l.op !== "hunk") {
            row.appendChild(el("span", { class: "ln" }, l.old === null ? "" : l.old));
            row.appendChild(el("span", { class: "ln" }, l.new === null ? "" : l.new));
          }
          row.appendChild(el("span", { class: "tx" }, MARK[l.op] + l.text));
          box.appendChild(row);
        });
      }).catch(fail);
  }

  // ---- FAQ ---------------------------------------------------------------------------------------------
  function loadFaqs() {
    var p = new URLSearchParams({ limit: PAGE, offset: state.faqOffset });
    if ($("faq-q").value.trim()) p.set("q", $("faq-q").value.trim());
    if ($("faq-status").value) p.set("status", $("faq-status").value);
    return api("GET", "/api/kb/faq?" + p.toString()).then(function (b) {
      var list = $("faq-list"); clear(list);
      b.items.forEach(function (f) {
        var li = el("li", { tabindex: "0", "data-id": f.id, class: state.faq && state.faq.id === f.id ? "selected" : "" });
        li.appendChild(el("span", { class: "title" }, f.question || "（无问题，仅答案）"));
        var meta = el("span", { class: "meta" });
        meta.appendChild(badge(DOC_STATUS[f.status] || f.status, "st-" + f.status));
        meta.appendChild(document.createTextNode(" " + f.answer.slice(0, 40) + (f.answer.length > 40 ? "…" : "")));
        li.appendChild(meta);
        li.addEventListener("click", function () { showFaq(f); });
        li.addEventListener("keydown", function (ev) { if (ev.key === "Enter") showFaq(f); });
        list.appendChild(li);
      });
      $("faq-count").textContent = "共 " + b.total + " 条";
      pager("faq", state.faqOffset, b.total);
    }).catch(fail);
  }
  $("faq-filter").addEventListener("submit", function (ev) { ev.preventDefault(); state.faqOffset = 0; loadFaqs(); });
  $("faq-status").addEventListener("change", function () { state.faqOffset = 0; loadFaqs(); });
  $("faq-prev").addEventListener("click", function () { state.faqOffset = Math.max(0, state.faqOffset - PAGE); loadFaqs(); });
  $("faq-next").addEventListener("click", function () { state.faqOffset += PAGE; loadFaqs(); });
  $("faq-new").addEventListener("click", function () { showFaq(null); $("faq-question").focus(); });

  function loadAllDocs() {
    return api("GET", "/api/kb/documents?limit=500").then(function (b) {
      state.allDocs = b.items.map(function (d) { return { id: d.id, title: d.title, status: d.status }; });
      renderDocChoices();
    }).catch(fail);
  }
  function renderDocChoices() {
    var select = $("faq-docs"), filter = $("faq-doc-filter").value.trim();
    clear(select);
    state.allDocs.forEach(function (d) {
      var chosen = !!state.faqDocIds[d.id];
      if (!chosen && filter && d.title.indexOf(filter) < 0) return;
      var o = el("option", { value: d.id }, d.title + (d.status === "archived" ? "（已归档）" : ""));
      o.selected = chosen;
      select.appendChild(o);
    });
  }
  $("faq-doc-filter").addEventListener("input", renderDocChoices);
  $("faq-docs").addEventListener("change", function () {
    Array.prototype.forEach.call($("faq-docs").options, function (o) {
      if (o.selected) state.faqDocIds[o.value] = true; else delete state.faqDocIds[o.value];
    });
  });
  function showFaq(f) {
    state.faq = f;
    $("faq-empty").hidden = true; $("faq-form").hidden = false;
    $("faq-heading").textContent = f ? "常见问题 #" + f.id : "新建常见问题";
    $("faq-meta").textContent = f
      ? (DOC_STATUS[f.status] || f.status) + " · 创建人 " + f.created_by + " · 更新于 " + when(f.updated_at)
      : "保存后成为草稿，发布后市民才能看到。";
    $("faq-question").value = f ? f.question : "";
    $("faq-similar").value = f ? (f.similar_questions || []).join("\n") : "";
    $("faq-answer").value = f ? f.answer : "";
    $("faq-category").value = f && f.category || "";
    state.faqDocIds = {};
    (f ? f.document_ids : []).forEach(function (id) { state.faqDocIds[id] = true; });
    $("faq-doc-filter").value = "";
    renderDocChoices();
    $("faq-archive").hidden = !f || f.status === "archived";
    loadFaqs();
  }
  $("faq-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var f = state.faq;
    var fields = {
      question: $("faq-question").value.trim(), answer: $("faq-answer").value.trim(),
      similar_questions: lines($("faq-similar").value), category: $("faq-category").value.trim() || null,
      document_ids: Object.keys(state.faqDocIds).map(Number)
    };
    var call = f ? api("PUT", "/api/kb/faq/" + f.id, fields) : api("POST", "/api/kb/faq", fields);
    call.then(function (saved) { say("已保存为草稿，发布后生效。"); showFaq(saved); loadFacets(); }).catch(fail);
  });
  $("faq-archive").addEventListener("click", function () {
    var f = state.faq;
    if (!f || !confirmed("确定归档这条常见问题吗？下次发布后下线。")) return;
    api("POST", "/api/kb/faq/" + f.id + "/archive").then(function (saved) { say("已归档。"); showFaq(saved); }).catch(fail);
  });

  // ---- import ------------------------------------------------------------------------------------------
  $("import-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var files = $("import-files").files;
    if (!files.length) { say("请先选择文件。", true); return; }
    var form = new FormData();
    Array.prototype.forEach.call(files, function (f) { form.append("files", f, f.name); });
    $("import-btn").disabled = true;
    $("import-report").hidden = true; clear($("import-report").tBodies[0]);  // no earlier upload's report
    $("import-summary").textContent = "正在导入 " + files.length + " 个文件…";
    api("POST", "/api/kb/import", form, true).then(function (b) {
      var t = b.totals;
      $("import-summary").textContent = "导入完成：新增 " + t.created + "，更新 " + t.updated + "，重复 " + t.duplicate +
        "。内容为草稿，发布后生效。";
      importReport(b.files);
      loadFacets();
    }).catch(function (b) {
      if (b && b.report) {
        $("import-summary").textContent = errorText(b);  // "导入失败，未写入任何内容：文件 (位置)：原因"
        importReport(b.report.files);
      } else {
        $("import-summary").textContent = errorText(b);
      }
    }).then(function () { $("import-btn").disabled = false; });
  });
  // where an importer found the problem ("row 3", "line 7", "front matter"), in the editor's words
  function place(location) {
    if (!location) return "";
    var m = /^(row|line) (\d+)$/.exec(location);
    if (m) return "第 " + m[2] + " 行";
    return location === "front matter" ? "文件头元数据" : location;
  }
  function importReport(files) {
    var table = $("import-report"), body = table.tBodies[0];
    clear(body); table.hidden = false;
    files.forEach(function (f) {
      var tr = el("tr", { class: "st-" + f.status });
      tr.appendChild(el("td", {}, f.name));
      tr.appendChild(el("td", {}, FILE_STATUS[f.status] || f.status));
      tr.appendChild(el("td", {}, f.created));
      tr.appendChild(el("td", {}, f.updated));
      tr.appendChild(el("td", {}, f.duplicate));
      tr.appendChild(el("td", {}, place(f.location)));
      tr.appendChild(el("td", {}, f.error_zh ? f.error_zh + " / " + f.error_en : ""));
      body.appendChild(tr);
    });
  }

  // ---- publish and index versions ----------------------------------------------------------------------
  function loadVersions() {
    return api("GET", "/api/kb/versions").then(function (rows) {
      var body = $("versions"); clear(body);
      if (!rows.length) {
        var tr = el("tr"); tr.appendChild(el("td", { colspan: "6" }, "还没有发布过。")); body.appendChild(tr);
      }
      rows.forEach(function (v) {
        var tr = el("tr", { class: v.status === "live" ? "live" : "", "data-version": v.id });
        tr.appendChild(el("td", {}, "#" + v.id));
        var st = el("td");
        st.appendChild(badge((v.status === "live" ? "● " : "") + (VERSION_STATUS[v.status] || v.status), "vs-" + v.status));
        if (v.error) st.appendChild(el("span", { class: "meta" }, " " + v.error.slice(0, 120)));
        tr.appendChild(st);
        tr.appendChild(el("td", {}, v.passage_count));
        tr.appendChild(el("td", {}, v.created_by));
        tr.appendChild(el("td", {}, when(v.created_at)));
        var act = el("td");
        if (v.status === "previous") {
          var btn = el("button", { type: "button", class: "rollback" }, "回滚到此版本");
          btn.addEventListener("click", function () { rollback(v.id); });
          act.appendChild(btn);
        }
        tr.appendChild(act);
        body.appendChild(tr);
      });
    }).catch(fail);
  }
  $("publish-btn").addEventListener("click", function () {
    if (!confirmed("发布后所有草稿将对市民生效，确定发布吗？")) return;
    $("publish-btn").disabled = true;
    $("publish-state").textContent = "正在构建索引，请稍候…";
    api("POST", "/api/kb/publish").then(function (v) {
      $("publish-state").textContent = "已发布索引版本 #" + v.id + "（" + v.passage_count + " 条），已上线。";
      loadVersions(); loadFacets();
    }).catch(function (b) { $("publish-state").textContent = ""; fail(b); })
      .then(function () { $("publish-btn").disabled = false; });
  });
  function rollback(id) {
    if (!confirmed("确定把线上索引回滚到版本 #" + id + " 吗？")) return;
    api("POST", "/api/kb/versions/" + id + "/rollback").then(function (v) {
      $("publish-state").textContent = "已回滚，线上版本为 #" + v.id + "。";
      loadVersions();
    }).catch(fail);
  }

  // ---- hit testing -------------------------------------------------------------------------------------
  $("hit-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var q = $("hit-q").value.trim();
    if (!q) return;
    api("POST", "/api/kb/search", { query: q, k: Number($("hit-k").value) || 5 }).then(showHits).catch(fail);
  });
  function citationText(c) {
    var parts = [c.title];
    if (c.section) parts.push(c.section);
    if (c.version) parts.push("v" + c.version);
    if (c.effective_date) parts.push(c.effective_date + " 起施行");
    return parts.join(" · ");
  }
  function citationNode(c) {
    var li = el("li");
    li.appendChild(el("span", {}, citationText(c)));
    if (c.source_url) {
      li.appendChild(document.createTextNode(" "));
      if (/^https?:\/\//.test(c.source_url)) {
        li.appendChild(el("a", { href: c.source_url, target: "_blank", rel: "noopener noreferrer" }, c.source_url));
      } else {
        li.appendChild(el("span", { class: "meta" }, c.source_url));
      }
    }
    return li;
  }
  function showHits(b) {
    $("hit-result").hidden = false;
    var v = $("hit-verdict");
    v.textContent = b.answered ? (b.direct_faq ? "会回答（直接命中常见问题）" : "会回答") : "不回答（置信度不足，转人工或提示咨询 12345）";
    v.className = "badge " + (b.answered ? "ok" : "no");
    $("hit-live").textContent = (b.live_version ? "线上索引版本 #" + b.live_version : "尚无线上索引") +
      (typeof b.answer_threshold === "number" ? " · 置信度达到 " + b.answer_threshold.toFixed(2) + " 才会回答" : "");
    $("hit-answer-box").hidden = !b.answered;
    $("hit-answer").textContent = b.answer || "";
    var cites = $("hit-citations"); clear(cites);
    b.citations.forEach(function (c) { cites.appendChild(citationNode(c)); });
    $("hit-hits-title").textContent = b.answered ? "检索结果 / hits" : "相近但未达阈值（near-misses）";
    var body = $("hit-hits"); clear(body);
    (b.answered ? b.hits : b.near_misses).forEach(function (h, i) {
      var tr = el("tr");
      tr.appendChild(el("td", {}, i + 1));
      tr.appendChild(el("td", {}, h.kind === "faq" ? "问答" : "文档段落"));
      var text = el("td", { class: "hit-text" });
      text.appendChild(el("span", {}, h.text));
      if (h.answer) text.appendChild(el("span", { class: "meta" }, "答：" + h.answer));
      tr.appendChild(text);
      tr.appendChild(el("td", { class: "num" }, h.score.toFixed(3)));
      var scores = Object.keys(h.scores).filter(function (k) { return k !== "fused"; }).map(function (k) {
        return (SCORE_NAMES[k] ? SCORE_NAMES[k] + " " : "") + k + " " + Number(h.scores[k]).toFixed(3);
      });
      tr.appendChild(el("td", { class: "meta" }, scores.join("，")));
      var src = el("td"); src.appendChild(el("span", {}, citationText(h.citation)));
      tr.appendChild(src);
      body.appendChild(tr);
    });
  }

  // ---- unanswered questions ----------------------------------------------------------------------------
  function loadGroups() {
    var q = "/api/kb/unanswered/groups" + ($("ua-handled").checked ? "?include_handled=true" : "");
    return api("GET", q).then(function (groups) {
      state.groups = groups;
      var list = $("ua-list"); clear(list);
      var total = groups.reduce(function (n, g) { return n + g.count; }, 0);
      $("ua-count").textContent = groups.length ? groups.length + " 组，共被问 " + total + " 次" : "";
      if (!groups.length) list.appendChild(el("li", { class: "hint" }, "暂无未解答的问题。"));
      groups.forEach(function (g) {
        var li = el("li", { class: "group card" });
        var head = el("p", { class: "q" });
        head.appendChild(el("span", { class: "qtext" }, g.question));
        head.appendChild(badge("×" + g.count, "count"));
        li.appendChild(head);
        li.appendChild(el("p", { class: "meta" }, "首次 " + when(g.first_asked) + " · 最近 " + when(g.last_asked) +
          (g.members.length > 1 ? " · " + g.members.length + " 种问法" : "")));
        if (g.members.length > 1) {
          var ul = el("ul", { class: "variants" });
          g.members.forEach(function (m) { ul.appendChild(el("li", {}, m.query + "（" + m.count + " 次）")); });
          li.appendChild(ul);
        }
        var allHandled = g.members.every(function (m) { return m.handled; });
        var actions = el("p", { class: "actions" });
        if (!allHandled) {
          var toFaq = el("button", { type: "button", class: "primary to-faq" }, "转为常见问题");
          toFaq.addEventListener("click", function () { startFaq(g); });
          var done = el("button", { type: "button", class: "mark-handled" }, "标记已处理");
          done.addEventListener("click", function () {
            api("POST", "/api/kb/unanswered/handled", { ids: g.ids }).then(function () {
              say("已标记为已处理。"); loadGroups();
            }).catch(fail);
          });
          actions.appendChild(toFaq); actions.appendChild(done);
        } else {
          actions.appendChild(badge("已处理", "ok"));
        }
        li.appendChild(actions);
        list.appendChild(li);
      });
    }).catch(fail);
  }
  $("ua-refresh").addEventListener("click", loadGroups);
  $("ua-handled").addEventListener("change", loadGroups);
  function startFaq(g) {
    state.uaIds = g.ids;
    $("ua-faq-question").value = g.question;
    $("ua-faq-similar").value = g.members.filter(function (m) { return m.query !== g.question; })
      .map(function (m) { return m.query; }).join("\n");
    $("ua-faq-answer").value = "";
    $("ua-faq-category").value = "";
    $("ua-faq-form").hidden = false;
    $("ua-faq-answer").focus();
  }
  $("ua-faq-cancel").addEventListener("click", function () { $("ua-faq-form").hidden = true; state.uaIds = null; });
  $("ua-faq-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!state.uaIds) return;
    api("POST", "/api/kb/unanswered/faq", {
      question_ids: state.uaIds, question: $("ua-faq-question").value.trim(), answer: $("ua-faq-answer").value.trim(),
      similar_questions: lines($("ua-faq-similar").value), category: $("ua-faq-category").value.trim() || null
    }).then(function (b) {
      $("ua-faq-form").hidden = true; state.uaIds = null;
      say("已创建常见问题草稿 #" + b.faq.id + "，并将 " + b.handled.length + " 个问题标记为已处理；发布后生效。");
      loadGroups(); loadFacets();
    }).catch(fail);
  });

  // ---- dashboard ---------------------------------------------------------------------------------------
  function noData(box, why) { clear(box); box.appendChild(el("p", { class: "hint empty" }, "暂无数据" + (why ? "（" + why + "）" : ""))); }
  function loadDashboard() {
    var box = $("dash");
    return api("GET", "/api/dashboard?days=" + encodeURIComponent($("dash-days").value)).then(function (d) {
      renderDashboard(box, d);
    }).catch(function (b) {
      if (b && b.status === 404) noData(box, "看板服务未启用");
      else noData(box, errorText(b));
    });
  }
  $("dash-refresh").addEventListener("click", loadDashboard);
  $("dash-days").addEventListener("change", loadDashboard);
  function card(label, value, note) {
    var c = el("div", { class: "kpi" });
    c.appendChild(el("span", { class: "kpi-label" }, label));
    c.appendChild(el("span", { class: "kpi-value" }, value));
    if (note) c.appendChild(el("span", { class: "meta" }, note));
    return c;
  }
  function renderDashboard(box, d) {
    clear(box);
    var days = (d && d.days) || [];
    var asked = days.reduce(function (n, x) { return n + (x.questions || 0); }, 0);
    if (!days.length || !asked) { noData(box); return; }
    var sat = d.satisfaction || {};
    var kpis = el("div", { class: "kpis" });
    kpis.appendChild(card("提问数", asked, days.length + " 天合计"));
    kpis.appendChild(card("回答率", pct(d.answer_rate)));
    kpis.appendChild(card("转人工率", pct(d.handoff_rate)));
    kpis.appendChild(card("满意度", typeof sat.average === "number" ? sat.average.toFixed(2) + " / 5" : "—",
      (sat.count || 0) + " 条评价"));
    box.appendChild(kpis);

    box.appendChild(el("h3", {}, "每日提问 / questions per day"));
    var max = Math.max.apply(null, days.map(function (x) { return x.questions || 0; }).concat([1]));
    var chart = el("div", { class: "bars", role: "img", "aria-label": "每日提问、已回答与转人工数" });
    days.forEach(function (x) {
      var col = el("div", { class: "bar-col", title: x.date + "：提问 " + x.questions + "，回答 " + x.answered + "，转人工 " + x.handoffs });
      var stack = el("div", { class: "bar-stack" });
      [["q", x.questions], ["a", x.answered], ["h", x.handoffs]].forEach(function (p) {
        var bar = el("div", { class: "bar bar-" + p[0] });
        bar.style.height = Math.round(100 * (p[1] || 0) / max) + "%";
        stack.appendChild(bar);
      });
      col.appendChild(el("span", { class: "bar-num" }, x.questions || 0));
      col.appendChild(stack);
      col.appendChild(el("span", { class: "bar-label" }, String(x.date).slice(5)));
      chart.appendChild(col);
    });
    box.appendChild(chart);
    var legend = el("p", { class: "legend" });
    [["q", "提问"], ["a", "已回答"], ["h", "转人工"]].forEach(function (p) {
      legend.appendChild(el("span", { class: "sw bar-" + p[0] })); legend.appendChild(document.createTextNode(p[1] + " "));
    });
    box.appendChild(legend);

    var two = el("div", { class: "grid2" });
    two.appendChild(rankTable("热门意图 / top intents", ["意图", "次数"], (d.top_intents || []).map(function (x) { return [x.intent, x.count]; })));
    two.appendChild(rankTable("高频未解答 / top unanswered", ["问题", "次数"], (d.top_unanswered || []).map(function (x) { return [x.question, x.count]; })));
    box.appendChild(two);

    box.appendChild(el("h3", {}, "满意度分布 / satisfaction"));
    var dist = sat.distribution || {};
    var most = Math.max.apply(null, ["1", "2", "3", "4", "5"].map(function (k) { return dist[k] || 0; }).concat([1]));
    var hist = el("div", { class: "hbars" });
    ["5", "4", "3", "2", "1"].forEach(function (k) {
      var row = el("div", { class: "hbar-row" });
      row.appendChild(el("span", { class: "hbar-label" }, k + " 分"));
      var track = el("span", { class: "hbar-track" });
      var fill = el("span", { class: "hbar-fill" });
      fill.style.width = Math.round(100 * (dist[k] || 0) / most) + "%";
      track.appendChild(fill);
      row.appendChild(track);
      row.appendChild(el("span", { class: "hbar-num" }, dist[k] || 0));
      hist.appendChild(row);
    });
    box.appendChild(hist);
  }
  function rankTable(title, heads, rows) {
    var wrap = el("div");
    wrap.appendChild(el("h3", {}, title));
    if (!rows.length) { wrap.appendChild(el("p", { class: "hint" }, "暂无数据")); return wrap; }
    var t = el("table", { class: "table" });
    var tr = el("tr");
    heads.forEach(function (h) { tr.appendChild(el("th", {}, h)); });
    var thead = el("thead"); thead.appendChild(tr); t.appendChild(thead);
    var body = el("tbody");
    rows.forEach(function (r) {
      var row = el("tr");
      r.forEach(function (c) { row.appendChild(el("td", {}, c)); });
      body.appendChild(row);
    });
    t.appendChild(body);
    wrap.appendChild(t);
    return wrap;
  }

  // ---- start: a session still open (the cookie) goes straight in -----------------------------------------
  api("GET", "/api/editor/me").then(started).catch(function () { showLogin(); });
})();
