/* gov-assistant administration: staff accounts and the audit log. Plain JS; every value from the server is
 * inserted with textContent. The session is an HttpOnly cookie; changes carry the CSRF token in X-CSRF-Token. */
(function () {
  "use strict";
  var csrf = null, me = null, offset = 0, PAGE = 50, filters = {};
  var ROLE_NAMES = { agent: "坐席", editor: "内容编辑", admin: "管理员" };
  var PAGE_NAMES = { "/console": "坐席工作台", "/editor": "内容编辑", "/admin": "系统管理" };

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  }
  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); }
  function say(body, ok) {
    $("status").className = ok ? "ok" : "";
    $("status").textContent = body ? (typeof body === "string" ? body : (body.message_zh || "请求失败") + " / " + (body.message_en || "")) : "";
  }
  function api(method, path, body) {
    var headers = { "Content-Type": "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    return fetch(path, { method: method, headers: headers, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (b) {
          if (r.status === 401 && path !== "/api/auth/login") { showLogin(); throw b; }
          if (!r.ok) { throw b; }
          return b;
        });
      });
  }
  function when(ts) {
    if (!ts) return "";
    var d = new Date(ts * 1000);
    return d.toLocaleDateString("zh-CN") + " " + d.toLocaleTimeString("zh-CN", { hour12: false });
  }

  // ---- login -----------------------------------------------------------------------------------------
  function showLogin() {
    csrf = null; me = null;
    $("login").hidden = false; $("main").hidden = true; $("whoami").hidden = true; $("forbidden").hidden = true;
    $("username").focus();
  }
  function started(b) {
    me = b.user; csrf = b.csrf;
    $("login").hidden = true; $("whoami").hidden = false;
    $("me-name").textContent = me.display_name + "（" + (ROLE_NAMES[me.role] || me.role) + "）";
    var pages = $("pages"); clear(pages);
    (b.pages || []).forEach(function (p) {
      if (p !== "/admin") pages.appendChild(el("a", { href: p }, PAGE_NAMES[p] || p));
    });
    if (me.role !== "admin") { $("forbidden").hidden = false; $("main").hidden = true; return; }
    $("forbidden").hidden = true; $("main").hidden = false;
    loadUsers();
  }
  $("login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    api("POST", "/api/auth/login", { username: $("username").value, password: $("password").value })
      .then(function (b) { $("password").value = ""; $("login-error").textContent = ""; started(b); })
      .catch(function (b) {
        $("login-error").textContent = b && b.message_zh ? b.message_zh + " / " + b.message_en : "登录失败";
      });
  });
  $("logout-btn").addEventListener("click", function () {
    api("POST", "/api/auth/logout").then(showLogin, showLogin);
  });

  // ---- accounts --------------------------------------------------------------------------------------
  function loadUsers() {
    return api("GET", "/api/admin/users").then(function (b) {
      var body = $("users-body"); clear(body);
      b.users.forEach(function (u) { body.appendChild(userRow(u, b.roles)); });
    }, say);
  }
  function act(promise, done) {
    promise.then(function () { say(done, true); loadUsers(); }, say);
  }
  function userRow(u, roles) {
    var tr = el("tr", { "data-username": u.username });
    if (!u.active) tr.className = "disabled";
    tr.appendChild(el("td", {}, u.username));
    tr.appendChild(el("td", {}, u.display_name));
    tr.appendChild(el("td", { "class": "role" }, (ROLE_NAMES[u.role] || u.role) + " " + u.role));
    tr.appendChild(el("td", {}, u.team || "—"));
    tr.appendChild(el("td", { "class": "state" }, u.active ? "启用" : "已停用"));
    tr.appendChild(el("td", {}, when(u.created_at)));
    var ops = el("td", { "class": "ops" });
    var path = "/api/admin/users/" + encodeURIComponent(u.username);
    var toggle = el("button", { type: "button", "class": "toggle" }, u.active ? "停用" : "启用");
    toggle.addEventListener("click", function () {
      if (u.active && !window.confirm("停用账号 " + u.username + "？其登录会话将立即失效。")) return;
      act(api("POST", path + (u.active ? "/disable" : "/enable")), (u.active ? "已停用 " : "已启用 ") + u.username);
    });
    var reset = el("button", { type: "button", "class": "reset" }, "重置密码");
    reset.addEventListener("click", function () {
      var pw = window.prompt("为 " + u.username + " 设置新密码（至少 8 位）：");
      if (!pw) return;
      act(api("POST", path + "/password", { password: pw }), "已重置 " + u.username + " 的密码，其会话已失效");
    });
    var select = el("select", { "class": "role-select", "aria-label": "角色 " + u.username });
    roles.forEach(function (r) {
      var o = el("option", { value: r }, ROLE_NAMES[r] || r);
      if (r === u.role) o.selected = true;
      select.appendChild(o);
    });
    var change = el("button", { type: "button", "class": "change-role" }, "修改角色");
    change.addEventListener("click", function () {
      if (select.value === u.role) return;
      act(api("POST", path + "/role", { role: select.value }), u.username + " 的角色已改为 " + (ROLE_NAMES[select.value] || select.value));
    });
    [toggle, reset, select, change].forEach(function (n) { ops.appendChild(n); });
    tr.appendChild(ops);
    return tr;
  }
  $("create-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var body = {
      username: $("new-username").value.trim(), password: $("new-password").value, role: $("new-role").value,
      display_name: $("new-name").value.trim() || null, team: $("new-team").value.trim() || null
    };
    api("POST", "/api/admin/users", body).then(function (b) {
      say("已创建账号 " + b.user.username + "（" + (ROLE_NAMES[b.user.role] || b.user.role) + "）", true);
      $("create-form").reset();
      loadUsers();
    }, say);
  });

  // ---- audit log -------------------------------------------------------------------------------------
  function dayStart(value, plusDays) {
    var d = new Date(value + "T00:00:00");  // the admin's local midnight
    d.setDate(d.getDate() + plusDays);
    return d.toISOString();
  }
  function loadAudit() {
    var q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    Object.keys(filters).forEach(function (k) { if (filters[k]) q.set(k, filters[k]); });
    return api("GET", "/api/admin/audit?" + q.toString()).then(function (b) {
      var body = $("audit-body"); clear(body);
      b.entries.forEach(function (e) {
        var tr = el("tr");
        tr.appendChild(el("td", {}, when(e.at)));
        tr.appendChild(el("td", {}, e.actor));
        tr.appendChild(el("td", { "class": "action" }, e.action));
        tr.appendChild(el("td", {}, e.target));
        tr.appendChild(el("td", {}, e.source));
        tr.appendChild(el("td", { "class": "detail" }, JSON.stringify(e.detail || {})));
        body.appendChild(tr);
      });
      var first = b.total ? b.offset + 1 : 0;
      $("page-info").textContent = "第 " + first + "–" + (b.offset + b.entries.length) + " 条，共 " + b.total + " 条";
      $("prev-page").disabled = b.offset === 0;
      $("next-page").disabled = b.offset + b.entries.length >= b.total;
    }, say);
  }
  $("audit-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    filters = {
      actor: $("f-actor").value.trim(), action: $("f-action").value.trim(),
      since: $("f-since").value ? dayStart($("f-since").value, 0) : "",
      until: $("f-until").value ? dayStart($("f-until").value, 1) : ""
    };
    offset = 0;
    loadAudit();
  });
  $("prev-page").addEventListener("click", function () { offset = Math.max(0, offset - PAGE); loadAudit(); });
  $("next-page").addEventListener("click", function () { offset += PAGE; loadAudit(); });

  function tab(which) {
    $("tab-users").setAttribute("aria-selected", String(which === "users"));
    $("tab-audit").setAttribute("aria-selected", String(which === "audit"));
    $("users-panel").hidden = which !== "users";
    $("audit-panel").hidden = which !== "audit";
    say(null);
    if (which === "audit") loadAudit(); else loadUsers();
  }
  $("tab-users").addEventListener("click", function () { tab("users"); });
  $("tab-audit").addEventListener("click", function () { tab("audit"); });

  api("GET", "/api/auth/me").then(started, function () { showLogin(); });
})();
