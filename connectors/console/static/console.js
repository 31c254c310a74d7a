/* gov-assistant staff console. Plain JS; every text from citizens, bots or staff is inserted with textContent.
 * The session is an HttpOnly cookie; changes carry the session's CSRF token in X-CSRF-Token. */
(function () {
  "use strict";
  var csrf = null, me = null, current = null, view = null, ws = null, loggedOut = false;
  var sessions = {}; // conversation_id -> queue row (waiting or with an agent)
  var REASONS = { request: "主动要求", complaint: "投诉", urgent: "紧急", fallback: "机器人无法解答", staff: "坐席接管" };
  var STATES = { bot: "机器人服务中", waiting: "排队中", with_agent: "人工服务中", closed: "已结束", returned: "已转回机器人", cancelled: "已取消" };

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  }
  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); }
  function say(body) { $("status").textContent = body && body.message_zh ? body.message_zh + " / " + body.message_en : ""; }
  function api(method, path, body) {
    var headers = { "Content-Type": "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    return fetch(path, { method: method, headers: headers, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (b) {
          if (r.status === 401 && path !== "/console/api/login") { showLogin(); throw b; }
          if (!r.ok) { say(b); throw b; }
          say(null);
          return b;
        });
      });
  }
  function mmss(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    return Math.floor(seconds / 60) + ":" + ("0" + (seconds % 60)).slice(-2);
  }
  function when(ts) { return new Date(ts * 1000).toLocaleTimeString("zh-CN", { hour12: false }); }

  // ---- login -----------------------------------------------------------------------------------------
  function showLogin() {
    $("login").hidden = false; $("desk").hidden = true; $("whoami").hidden = true;
    if (ws) { loggedOut = true; ws.close(); }
  }
  $("login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    api("POST", "/console/api/login", { username: $("username").value, password: $("password").value })
      .then(function (b) { csrf = b.csrf; $("password").value = ""; $("login-error").textContent = ""; start(); })
      .catch(function (b) { $("login-error").textContent = (b && b.message_zh) ? b.message_zh + " / " + b.message_en : "登录失败"; });
  });
  $("logout-btn").addEventListener("click", function () {
    api("POST", "/console/api/logout").then(function () { csrf = null; showLogin(); });
  });

  function start() {
    api("GET", "/console/api/me").then(function (b) {
      me = b.user; csrf = b.csrf; loggedOut = false;
      $("me-name").textContent = me.display_name + "（" + (me.role === "admin" ? "管理员" : "坐席") + "）";
      $("login").hidden = true; $("desk").hidden = false; $("whoami").hidden = false;
      var canned = $("canned"); clear(canned); canned.appendChild(el("option", { value: "" }, "常用回复…"));
      b.canned_replies.forEach(function (c) { canned.appendChild(el("option", { value: c.text }, c.title)); });
      var teams = $("transfer-team"); clear(teams); teams.appendChild(el("option", { value: "" }, "或转给组…"));
      b.teams.forEach(function (t) { teams.appendChild(el("option", { value: t.id }, t.name)); });
      var outcomes = $("close-outcome"); clear(outcomes);
      var names = { resolved: "已解决", unresolved: "未解决", referred: "已转办", no_response: "市民无回应", spam: "无效会话" };
      b.outcomes.forEach(function (o) { outcomes.appendChild(el("option", { value: o }, names[o] || o)); });
      $("reveal-form-btn").hidden = !b.can_reveal;
      me.canReveal = b.can_reveal;
      loadQueue(); loadLive(); loadTickets(); loadAgents(); connect();
    }).catch(function () { showLogin(); });
  }

  // ---- live updates ----------------------------------------------------------------------------------
  var retry = 0;
  function connect() {
    ws = new WebSocket(window.location.origin.replace(/^http/, "ws") + "/console/ws");
    ws.onopen = function () { retry = 0; watch(); };
    ws.onmessage = function (ev) { var u; try { u = JSON.parse(ev.data); } catch (e) { return; } onUpdate(u); };
    ws.onclose = function () {
      if (loggedOut) return;
      retry = Math.min(retry + 1, 6);
      setTimeout(function () { loadQueue(); connect(); }, 500 * retry);
    };
  }
  function onUpdate(u) {
    if (u.type === "queue") {
      var s = u.session;
      if (u.op === "removed") delete sessions[s.conversation_id];
      else sessions[s.conversation_id] = Object.assign(sessions[s.conversation_id] || {}, s);
      if (u.op === "added" || (u.op === "transferred" && s.state === "waiting")) announce(s);
      if (u.op === "transferred" && s.agent_id === me.username) announce(s, "转给您的会话");
      renderQueue();
      if (s.conversation_id === current) openConversation(current);
    } else if (u.type === "message" || u.type === "note") {
      if (u.conversation_id === current) {
        appendItem(u.item);
        if (u.delivery && !u.delivery.delivered) warnDelivery(u.delivery);
        if (u.item.kind === "user") $("typing-indicator").hidden = true;
      } else if (sessions[u.conversation_id] && u.item.kind === "user") {
        sessions[u.conversation_id].preview = u.item.text;
        sessions[u.conversation_id].unread = true;
        renderQueue();
      }
    } else if (u.type === "typing" && u.conversation_id === current) {
      var t = $("typing-indicator"); t.hidden = false;
      clearTimeout(t.timer); t.timer = setTimeout(function () { t.hidden = true; }, 4000);
    } else if ((u.type === "delivery" || u.type === "rated") && u.conversation_id === current) {
      openConversation(current);
    } else if (u.type === "presence") {
      $("online").textContent = "在线坐席：" + u.online.join("、");
    } else if (u.type === "ticket") {
      loadTickets();
    } else if (u.type === "resync") {
      loadQueue();
    }
  }

  // ---- a new conversation in the queue: desktop notification and a sound --------------------------------
  var audio = null;
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = 880; g.gain.value = 0.15;
      o.connect(g); g.connect(audio.destination);
      o.start(); o.stop(audio.currentTime + 0.25);
    } catch (e) { /* no audio device */ }
  }
  function announce(s, title) {
    beep();
    window.GovConsole.notified.push(s.conversation_id);
    if (window.Notification && Notification.permission === "granted") {
      new Notification(title || "新的排队会话 / new conversation in the queue",
        { body: (REASONS[s.reason] || s.reason) + "：" + (s.preview || ""), tag: s.conversation_id });
    }
  }
  $("notify-btn").addEventListener("click", function () {
    if (window.Notification) Notification.requestPermission();
    beep();
  });

  // ---- lists -----------------------------------------------------------------------------------------
  function loadQueue() {
    return api("GET", "/console/api/queue").then(function (b) {
      sessions = {};
      b.sessions.forEach(function (s) { sessions[s.conversation_id] = s; });
      $("online").textContent = "在线坐席：" + b.online.join("、");
      renderQueue();
    });
  }
  function renderQueue() {
    var q = $("queue-list"), mine = $("mine-list"), now = Date.now() / 1000, waiting = 0;
    clear(q); clear(mine);
    Object.keys(sessions).map(function (k) { return sessions[k]; })
      .sort(function (a, b) { return (b.priority - a.priority) || (a.queued_at - b.queued_at); })
      .forEach(function (s) {
        var li = el("li", { "data-cid": s.conversation_id, class: s.reason + (s.conversation_id === current ? " selected" : "") });
        li.appendChild(el("strong", {}, (s.unread ? "● " : "") + (REASONS[s.reason] || s.reason)));
        li.appendChild(el("span", { class: "meta" }, s.channel + " · " + s.team + " · 等待 " + mmss(now - s.queued_at)));
        if (s.preview) li.appendChild(el("span", { class: "meta" }, s.preview));
        li.addEventListener("click", function () { s.unread = false; openConversation(s.conversation_id); });
        if (s.state === "waiting") { waiting++; q.appendChild(li); }
        else if (s.agent_id === me.username) mine.appendChild(li);
      });
    $("queue-count").textContent = String(waiting);
    document.title = (waiting ? "(" + waiting + ") " : "") + "人工坐席工作台";
  }
  setInterval(function () { if (me) renderQueue(); }, 1000);
  function loadLive() {
    api("GET", "/console/api/live").then(function (b) {
      var list = $("live-list"); clear(list);
      b.conversations.filter(function (c) { return c.state === "bot"; }).slice(0, 30).forEach(function (c) {
        var li = el("li", { "data-cid": c.conversation_id }, c.conversation_id + " · " + when(c.last_ts));
        li.addEventListener("click", function () { openConversation(c.conversation_id); });
        list.appendChild(li);
      });
    });
  }
  $("live-refresh").addEventListener("click", loadLive);
  setInterval(function () { if (me && !$("desk").hidden) loadLive(); }, 15000);
  function loadTickets() {
    api("GET", "/console/api/tickets").then(function (b) {
      var list = $("ticket-list"); clear(list);
      b.tickets.forEach(function (t) {
        var li = el("li", {}, t.ref + "：" + t.text);
        var done = el("button", { type: "button" }, "已处理");
        done.addEventListener("click", function (ev) { ev.stopPropagation(); api("POST", "/console/api/tickets/" + encodeURIComponent(t.ref) + "/handled").then(loadTickets); });
        li.appendChild(done);
        li.addEventListener("click", function () { openConversation(t.conversation_id); });
        list.appendChild(li);
      });
    });
  }
  function loadAgents() {
    api("GET", "/console/api/agents").then(function (b) {
      var sel = $("transfer-agent"); clear(sel); sel.appendChild(el("option", { value: "" }, "转给坐席…"));
      b.agents.filter(function (a) { return a.username !== me.username; }).forEach(function (a) {
        sel.appendChild(el("option", { value: a.username }, a.display_name + (a.online ? "（在线）" : "")));
      });
    });
  }

  // ---- the conversation ------------------------------------------------------------------------------
  // tell the server which conversation this tab shows: its messages, notes and typing are sent here
  function watch() {
    if (current && ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "watch", conversation_id: current }));
  }
  function openConversation(cid) {
    if (cid !== current) { current = cid; watch(); }
    $("delivery-warning").hidden = true;
    return api("GET", "/console/api/conversations/" + encodeURIComponent(cid)).then(function (v) {
      if (current !== cid) return;
      view = v;
      renderView();
      renderQueue();
    });
  }
  function holder() { return view && view.session && view.session.state === "with_agent" && (view.session.agent_id === me.username || me.role === "admin"); }
  function renderView() {
    var s = view.session && ["waiting", "with_agent"].indexOf(view.session.state) >= 0 ? view.session : null;
    $("conv-title").textContent = "会话 " + view.conversation_id + "（" + (view.channel || "") + "）";
    var state = s ? s.state : "bot";
    var text = STATES[state] || state;
    if (s && s.state === "waiting") text += " · 第 " + s.position + " 位 · " + (REASONS[s.reason] || s.reason);
    if (s && s.state === "with_agent") text += " · 坐席 " + s.agent_id;
    $("conv-state").textContent = text;
    $("conv-state").setAttribute("data-state", state);
    var t = $("transcript"); clear(t);
    view.transcript.forEach(appendItem);
    var intents = $("intent-list"); clear(intents);
    view.intents.forEach(function (i) { intents.appendChild(el("li", {}, i.name + "（" + Math.round((i.confidence || 0) * 100) + "%）")); });
    renderForm(view.form);
    $("claim-btn").disabled = !(s && s.state === "waiting");
    $("takeover-btn").disabled = !!s;
    var mine = holder();
    ["send-btn", "transfer-btn", "return-btn", "close-btn", "reply-text"].forEach(function (id) { $(id).disabled = !mine; });
    if (s && s.state === "waiting" && me.role === "admin") $("close-btn").disabled = false;
  }
  function renderForm(form, revealed) {
    var p = $("form-panel"); clear(p);
    if (!form) { p.appendChild(el("p", {}, "（无）")); return; }
    p.appendChild(el("p", {}, form.title + (form.active ? "（进行中）" : "（已暂停）") + (revealed ? " · 完整信息" : "")));
    var table = el("table");
    form.fields.forEach(function (f) {
      var tr = el("tr", { "data-slot": f.slot, class: f.slot === form.requested_slot ? "requested" : "" });
      tr.appendChild(el("td", {}, f.label));
      tr.appendChild(el("td", {}, f.value === null ? (f.slot === form.requested_slot ? "← 正在询问" : "—") : f.value));
      table.appendChild(tr);
    });
    p.appendChild(table);
  }
  function appendItem(x) {
    var li = el("li", { class: "item kind-" + x.kind, "data-index": x.index === undefined ? "" : String(x.index) });
    var who = { user: "市民", bot: "机器人", agent: "坐席 " + (x.agent || ""), note: "备注 " + (x.author || "") }[x.kind];
    if (x.kind === "handoff") {
      li.textContent = "— " + describe(x) + " —";
    } else if (x.kind === "delivery") {
      li.textContent = x.status === "delivered" ? "✓ 已补发：" + (x.ref || "") : "✗ 未送达（" + (x.status === "outside_window" ? "超过微信48小时窗口，市民下次发消息时补发" : "市民不在线") + "）：" + (x.text || "");
      if (x.status !== "delivered") li.classList.add("bad");
    } else {
      li.appendChild(el("span", { class: "who" }, who + "："));
      li.appendChild(el("span", { class: "text" }, x.text || ""));
      if (x.kind === "user" && x.intent && x.intent.name) li.appendChild(el("span", { class: "meta" }, "意图 " + x.intent.name + " " + Math.round((x.intent.confidence || 0) * 100) + "%"));
      if (x.citations && x.citations.length) {
        var ul = el("ul", { class: "cites" });
        x.citations.forEach(function (c) { ul.appendChild(el("li", {}, "来源：" + (c.title || "") + (c.section ? " · " + c.section : ""))); });
        li.appendChild(ul);
      }
      if (x.kind === "user" && me.canReveal && x.index !== undefined && /\*{4}/.test(x.text || "")) {
        var b = el("button", { type: "button", class: "reveal" }, "显示（留痕）");
        b.addEventListener("click", function () {
          api("POST", "/console/api/conversations/" + encodeURIComponent(current) + "/reveal", { index: x.index })
            .then(function (r) { li.querySelector(".text").textContent = r.item.text; b.remove(); });
        });
        li.appendChild(b);
      }
    }
    if (x.ts) li.appendChild(el("span", { class: "meta" }, when(x.ts)));
    $("transcript").appendChild(li);
    $("transcript").scrollTop = $("transcript").scrollHeight;
  }
  function describe(x) {
    var names = { queued: "进入排队", claimed: "坐席接入", taken_over: "坐席接管", transferred: "已转接", returned: "转回机器人",
      closed: "会话结束", cancelled: "市民取消排队", rated: "市民评分", offered_message: "非工作时间，提示留言", awaiting_message: "等待留言", ticket: "已生成留言" };
    var s = names[x.transition] || x.transition;
    if (x.agent_name || x.agent) s += " · " + (x.agent_name || x.agent);
    if (x.to_agent) s += " → " + x.to_agent;
    if (x.to_team) s += " → " + x.to_team;
    if (x.reason) s += " · " + (REASONS[x.reason] || x.reason);
    if (x.outcome) s += " · " + x.outcome;
    if (x.rating) s += " · " + x.rating + " 分";
    if (x.ref) s += " · " + x.ref;
    return s;
  }
  function warnDelivery(d) {
    var w = $("delivery-warning"); w.hidden = false; w.textContent = (d.message_zh || "未送达") + " / " + (d.message_en || "not delivered");
  }
  function act(path, body) {
    return api("POST", "/console/api/conversations/" + encodeURIComponent(current) + path, body);
  }

  // ---- actions ---------------------------------------------------------------------------------------
  $("reply-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = $("reply-text").value.trim();
    if (!text || !current) return;
    act("/messages", { text: text }).then(function (b) {
      $("reply-text").value = "";
      if (!b.delivery.delivered) warnDelivery(b.delivery); else $("delivery-warning").hidden = true;
    });
  });
  $("reply-text").addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); $("reply-form").requestSubmit(); }
  });
  var lastTyping = 0;
  $("reply-text").addEventListener("input", function () {
    if (!current || !ws || ws.readyState !== 1 || Date.now() - lastTyping < 2000) return;
    lastTyping = Date.now();
    ws.send(JSON.stringify({ type: "typing", conversation_id: current, on: true }));
  });
  $("canned").addEventListener("change", function () {
    if (this.value) { $("reply-text").value = this.value; $("reply-text").focus(); this.value = ""; }
  });
  $("claim-btn").addEventListener("click", function () { act("/claim").then(function () { openConversation(current); }); });
  $("takeover-btn").addEventListener("click", function () { act("/takeover").then(function () { openConversation(current); }); });
  $("transfer-btn").addEventListener("click", function () {
    var body = { note: $("transfer-note").value };
    if ($("transfer-agent").value) body.to_agent = $("transfer-agent").value; else body.to_team = $("transfer-team").value;
    act("/transfer", body).then(function () { $("transfer-note").value = ""; openConversation(current); });
  });
  $("return-btn").addEventListener("click", function () { act("/return").then(function () { openConversation(current); }); });
  $("close-btn").addEventListener("click", function () {
    act("/close", { outcome: $("close-outcome").value }).then(function () { openConversation(current); });
  });
  $("note-btn").addEventListener("click", function () {
    var text = $("note-text").value.trim();
    if (text && current) act("/notes", { text: text }).then(function () { $("note-text").value = ""; });
  });
  $("reveal-form-btn").addEventListener("click", function () {
    if (current) act("/reveal", {}).then(function (b) { if (b.item) renderForm(b.item, true); });
  });

  window.GovConsole = { notified: [], open: openConversation };
  start();
})();
