/* gov-assistant web chat widget.
 * Embed: <script>window.GovAssistantConfig = {serverUrl: "", title: "…", primaryColor: "#1a56a8"};</script>
 *        <script src="https://host/webchat/widget.js" defer></script>
 * All message text is inserted with textContent: nothing a citizen or a bot sends is ever parsed as HTML.
 */
(function () {
  "use strict";
  var cfg = Object.assign(
    { serverUrl: "", title: "政务服务助手", primaryColor: "#1a56a8", container: null, storageKey: "gov-assistant" },
    window.GovAssistantConfig || {}
  );
  var base = cfg.serverUrl.replace(/\/$/, "");
  var store = window.localStorage;
  var sessionKey = cfg.storageKey + ":session";
  var pendingKey = cfg.storageKey + ":pending";
  var modeKey = cfg.storageKey + ":elderly";
  var speakKey = cfg.storageKey + ":speak";

  function uid() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID().replace(/-/g, "");
    return (Date.now().toString(36) + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2)).slice(0, 32);
  }
  var sessionId = store.getItem(sessionKey);
  if (!sessionId || !/^[A-Za-z0-9_\-]{8,64}$/.test(sessionId)) {
    sessionId = "web" + uid();
    store.setItem(sessionKey, sessionId);
  }
  function loadPending() {
    try { return JSON.parse(store.getItem(pendingKey) || "[]"); } catch (e) { return []; }
  }
  var pending = loadPending(); // [{message_id, text}] sent but not yet answered
  function savePending() { store.setItem(pendingKey, JSON.stringify(pending)); }

  // ---- DOM -------------------------------------------------------------------------------------------
  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (text !== undefined) n.textContent = text;
    return n;
  }
  var root = el("section", { class: "ga-widget", role: "region", "aria-label": cfg.title });
  root.style.setProperty("--ga-primary", cfg.primaryColor);
  var header = el("header", { class: "ga-header" });
  header.appendChild(el("h2", { class: "ga-title" }, cfg.title));
  var tools = el("div", { class: "ga-tools", role: "toolbar", "aria-label": "显示设置 / display settings" });
  var elderBtn = el("button", { type: "button", class: "ga-tool ga-elderly-toggle", "aria-pressed": "false" }, "大字模式");
  var speakBtn = el("button", { type: "button", class: "ga-tool ga-speak-toggle", "aria-pressed": "false" }, "朗读");
  tools.appendChild(elderBtn);
  tools.appendChild(speakBtn);
  header.appendChild(tools);
  var status = el("p", { class: "ga-status", role: "status", "aria-live": "polite" }, "");
  var log = el("ol", { class: "ga-log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": "对话记录 / conversation", tabindex: "0" });
  var typing = el("p", { class: "ga-typing", "aria-live": "polite", hidden: "" }, "助手正在输入…");
  var form = el("form", { class: "ga-form", "aria-label": "发送消息 / send a message" });
  var label = el("label", { for: "ga-input", class: "ga-visually-hidden" }, "输入您的问题");
  var input = el("textarea", { id: "ga-input", class: "ga-input", rows: "2", maxlength: "2000", placeholder: "请输入您的问题，按回车发送", "aria-label": "输入您的问题" });
  var send = el("button", { type: "submit", class: "ga-send" }, "发送");
  form.appendChild(label);
  form.appendChild(input);
  form.appendChild(send);
  [header, status, log, typing, form].forEach(function (n) { root.appendChild(n); });
  (cfg.container ? document.querySelector(cfg.container) : document.body).appendChild(root);

  function setElderly(on) {
    root.classList.toggle("ga-elderly", on);
    elderBtn.setAttribute("aria-pressed", on ? "true" : "false");
    elderBtn.textContent = on ? "标准模式" : "大字模式";
    store.setItem(modeKey, on ? "1" : "0");
  }
  function setSpeak(on) {
    speakBtn.setAttribute("aria-pressed", on ? "true" : "false");
    speakBtn.textContent = on ? "停止朗读" : "朗读";
    store.setItem(speakKey, on ? "1" : "0");
    if (!on && window.speechSynthesis) window.speechSynthesis.cancel();
  }
  elderBtn.addEventListener("click", function () { setElderly(!root.classList.contains("ga-elderly")); });
  speakBtn.addEventListener("click", function () { setSpeak(speakBtn.getAttribute("aria-pressed") !== "true"); });
  setElderly(store.getItem(modeKey) === "1");
  setSpeak(store.getItem(speakKey) === "1");

  function speak(text) {
    if (speakBtn.getAttribute("aria-pressed") !== "true" || !window.speechSynthesis || !text) return;
    var u = new SpeechSynthesisUtterance(text);
    u.lang = "zh-CN";
    window.speechSynthesis.speak(u);
  }

  var seenBot = {}; // reply_to ids already rendered: a re-sent message never shows its answer twice
  function addUser(text, messageId, isPending) {
    var li = el("li", { class: "ga-msg ga-user" + (isPending ? " ga-pending" : ""), "data-message-id": messageId || "" });
    li.appendChild(el("span", { class: "ga-who" }, "我："));
    li.appendChild(el("span", { class: "ga-text" }, text));
    if (isPending) li.appendChild(el("span", { class: "ga-state" }, "（发送中）"));
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
    return li;
  }
  function markSent(messageId) {
    var li = log.querySelector('[data-message-id="' + messageId + '"]');
    if (!li) return;
    li.classList.remove("ga-pending");
    var s = li.querySelector(".ga-state");
    if (s) s.remove();
  }
  // ---- human handoff: queue position, staff messages and typing, the rating prompt --------------------
  var queueLine = el("p", { class: "ga-queue", role: "status", "aria-live": "polite", hidden: "" }, "");
  root.insertBefore(queueLine, log);
  var handoffActive = false, typingTimer = null;
  function handoffOf(m) { return m && m.custom && m.custom.handoff ? m.custom.handoff : null; }
  // true when the message is only a signal (typing, queue position) and has nothing to show as a bubble
  function onHandoff(m) {
    var h = handoffOf(m);
    if (!h) return false;
    if (h.typing !== undefined) {
      typing.textContent = "工作人员正在输入…";
      typing.hidden = !h.typing;
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { typing.hidden = true; typing.textContent = "助手正在输入…"; }, 4000);
    }
    if (h.state === "waiting") {
      handoffActive = true;
      queueLine.textContent = "排队中：您是第 " + h.position + " 位，预计等待约 " + h.eta_minutes + " 分钟 / queue position " + h.position;
      queueLine.hidden = false;
    }
    if (h.from === "agent") { handoffActive = true; queueLine.hidden = true; typing.hidden = true; }
    if (h.rate) { handoffActive = false; queueLine.hidden = true; }
    return !m.text;
  }
  function addBot(m, announce) {
    if (onHandoff(m)) return;
    var h = handoffOf(m);
    if (h && h.state === "bot") { handoffActive = false; queueLine.hidden = true; }
    var fromAgent = h && h.from === "agent";
    var li = el("li", { class: "ga-msg ga-bot" + (fromAgent ? " ga-agent" : "") + (h && h.rate ? " ga-rating" : "") });
    li.appendChild(el("span", { class: "ga-who" }, fromAgent ? "工作人员 " + (h.agent || "") + "：" : "助手："));
    li.appendChild(el("span", { class: "ga-text" }, m.text || ""));
    if (m.citations && m.citations.length) {
      var cites = el("ul", { class: "ga-citations", "aria-label": "信息来源 / sources" });
      m.citations.forEach(function (c) {
        var item = el("li");
        var label = "来源：" + (c.title || "") + (c.section ? " · " + c.section : "") + (c.effective_date ? "（" + c.effective_date + " 起施行）" : "");
        if (c.source_url && /^https?:\/\//.test(c.source_url)) {
          var a = el("a", { href: c.source_url, target: "_blank", rel: "noopener noreferrer" }, label);
          item.appendChild(a);
        } else {
          item.textContent = label;
        }
        cites.appendChild(item);
      });
      li.appendChild(cites);
    }
    if (m.buttons && m.buttons.length) {
      var group = el("div", { class: "ga-buttons", role: "group", "aria-label": "快捷回复 / quick replies" });
      m.buttons.forEach(function (b) {
        var btn = el("button", { type: "button", class: "ga-quick" }, b.title);
        btn.addEventListener("click", function () { submit(b.payload || b.title, b.title); });
        group.appendChild(btn);
      });
      li.appendChild(group);
    }
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
    if (announce) speak(m.text);
    ratingAfter(h, announce, li);
  }
  function renderResult(result) {
    if (result.reply_to && seenBot[result.reply_to]) return;
    if (result.reply_to) seenBot[result.reply_to] = true;
    markSent(result.reply_to);
    pending = pending.filter(function (p) { return p.message_id !== result.reply_to; });
    savePending();
    (result.messages || []).forEach(function (m) { addBot(m, true); });
    typing.hidden = pending.length === 0;
  }

  // ---- transport: WebSocket, REST when sockets are unavailable -----------------------------------------
  var ws = null, wsOpen = false, retry = 0;
  function wsUrl() {
    var u = base || window.location.origin;
    return u.replace(/^http/, "ws") + "/webchat/ws?session_id=" + encodeURIComponent(sessionId);
  }
  function connect() {
    if (!("WebSocket" in window)) return;
    try { ws = new WebSocket(wsUrl()); } catch (e) { ws = null; return; }
    ws.onopen = function () {
      wsOpen = true; retry = 0; status.textContent = "";
      pending.forEach(function (p) { ws.send(JSON.stringify({ type: "message", message_id: p.message_id, text: p.text })); });
    };
    ws.onmessage = function (ev) {
      var data; try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (data.type === "typing") typing.hidden = false;
      else if (data.type === "bot") renderResult(data);
      else if (data.type === "push") (data.messages || []).forEach(function (m) { addBot(m, true); });
      else if (data.type === "error") {
        typing.hidden = true;
        if (data.reply_to && data.retry_after) {
          // busy, moved to another replica, an outage or too fast: the message stays and goes again (same id,
          // so the server takes it once)
          // the server's words ask the sender to retry; here the widget does that itself, so it says so
          status.textContent = "系统繁忙，消息将在几秒后自动重发 / Busy: your message will be sent again in a few seconds";
          resendLater(data.reply_to, data.retry_after);
          return;
        }
        if (data.reply_to) { pending = pending.filter(function (p) { return p.message_id !== data.reply_to; }); savePending(); markSent(data.reply_to); }
        status.textContent = (data.message_zh || "出错了") + " / " + (data.message_en || "error");
      }
    };
    ws.onclose = function () {
      wsOpen = false;
      // REST carries messages meanwhile: only worry the citizen when something is waiting to be sent
      if (pending.length) status.textContent = "网络连接中断，正在重新连接… / reconnecting…";
      retry = Math.min(retry + 1, 6);
      setTimeout(function () { connect(); flushRest(); }, 500 * retry);
    };
  }
  function resendLater(messageId, seconds) {
    setTimeout(function () {
      var p = pending.filter(function (x) { return x.message_id === messageId; })[0];
      if (!p) return;
      if (wsOpen) ws.send(JSON.stringify({ type: "message", message_id: p.message_id, text: p.text }));
      else flushRest();
    }, Math.min(Math.max(1, seconds), 60) * 1000);
  }
  function postRest(p) {
    return fetch(base + "/webchat/messages", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Session-Id": sessionId },
      body: JSON.stringify({ session_id: sessionId, message_id: p.message_id, text: p.text })
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) {
          if (r.status < 500 && r.status !== 429) { pending = pending.filter(function (x) { return x.message_id !== p.message_id; }); savePending(); markSent(p.message_id); }
          typing.hidden = true;
          status.textContent = (body.message_zh || "发送失败") + " / " + (body.message_en || "failed");
          return;
        }
        renderResult(body);
      });
    });
  }
  var flushing = false;
  function flushRest() {
    // Only when the socket is down: the server answers a message id once, so a resend is harmless.
    if (wsOpen || flushing || !pending.length) return;
    flushing = true;
    var p = pending[0];
    postRest(p).then(function () { flushing = false; status.textContent = ""; if (pending.length && pending[0] !== p) flushRest(); },
      function () { flushing = false; status.textContent = "网络不可用，消息将在恢复后自动发送 / offline, will resend"; });
  }
  setInterval(flushRest, 3000);

  function submit(text, shown) {
    text = (text || "").trim();
    if (!text) return;
    var p = { message_id: uid(), text: text };
    pending.push(p);
    savePending();
    addUser(shown || text, p.message_id, true);
    typing.hidden = false;
    if (wsOpen) ws.send(JSON.stringify({ type: "message", message_id: p.message_id, text: p.text }));
    else flushRest();
  }
  form.addEventListener("submit", function (ev) { ev.preventDefault(); submit(input.value); input.value = ""; input.focus(); });
  var lastTyping = 0;
  input.addEventListener("input", function () {
    // staff see that the citizen is typing; only while a person holds the conversation, at most every 2 s
    if (!handoffActive || !wsOpen || Date.now() - lastTyping < 2000) return;
    lastTyping = Date.now();
    ws.send(JSON.stringify({ type: "typing" }));
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); form.requestSubmit(); }
  });

  // ---- history after a reload ------------------------------------------------------------------------
  fetch(base + "/webchat/history?session_id=" + encodeURIComponent(sessionId), { headers: { "X-Session-Id": sessionId } })
    .then(function (r) { return r.ok ? r.json() : { messages: [] }; })
    .then(function (h) {
      var answered = {};
      (h.messages || []).forEach(function (m) {
        if (m.role === "user") { addUser(m.text, m.message_id, false); answered[m.message_id] = true; seenBot[m.message_id] = true; }
        else addBot(m, false);
      });
      pending = pending.filter(function (p) { return !answered[p.message_id]; });
      savePending();
      pending.forEach(function (p) { addUser(p.text, p.message_id, true); });
    })
    .catch(function () {})
    .then(connect);
  // ---- satisfaction rating: 1–5 stars and a comment, after a staff member's service or from the link ------
  var rateLink = el("button", { type: "button", class: "ga-rate-link" }, "评价本次服务");
  var ratePanel = el("div", { class: "ga-rate", role: "group", "aria-label": "服务评价 / rate this service", hidden: "" });
  ratePanel.appendChild(el("p", { class: "ga-rate-title" }, "评价本次服务：请打星（5 星最满意），也可以留下意见 / Rate our service"));
  var stars = el("div", { class: "ga-stars", role: "radiogroup", "aria-label": "评分 / score" });
  var rateScore = 0, agentServed = false;
  function paintStars() {
    Array.prototype.forEach.call(stars.children, function (b, i) {
      b.classList.toggle("ga-on", i < rateScore);
      b.setAttribute("aria-checked", i + 1 === rateScore ? "true" : "false");
    });
    rateSend.disabled = rateScore === 0;
  }
  [1, 2, 3, 4, 5].forEach(function (n) {
    var b = el("button", { type: "button", class: "ga-star", role: "radio", "aria-checked": "false", "aria-label": n + " 星 / " + n, "data-score": String(n) }, "★");
    b.addEventListener("click", function () { rateScore = n; paintStars(); });
    stars.appendChild(b);
  });
  ratePanel.appendChild(stars);
  ratePanel.appendChild(el("label", { for: "ga-rate-comment", class: "ga-visually-hidden" }, "评价意见（选填）"));
  var rateComment = el("textarea", { id: "ga-rate-comment", class: "ga-rate-comment", rows: "2", maxlength: "500", placeholder: "您的意见或建议（选填，最多500字）" });
  ratePanel.appendChild(rateComment);
  var rateActions = el("div", { class: "ga-rate-actions" });
  var rateSend = el("button", { type: "button", class: "ga-rate-submit", disabled: "" }, "提交评价");
  var rateLater = el("button", { type: "button", class: "ga-rate-cancel" }, "以后再说");
  rateActions.appendChild(rateSend);
  rateActions.appendChild(rateLater);
  ratePanel.appendChild(rateActions);
  var rateStatus = el("p", { class: "ga-rate-status", role: "status", "aria-live": "polite" }, "");
  ratePanel.appendChild(rateStatus);
  root.insertBefore(ratePanel, form);
  root.appendChild(rateLink);
  function openRating() {
    rateScore = 0; rateComment.value = ""; rateStatus.textContent = ""; paintStars();
    ratePanel.hidden = false;
    stars.firstChild.focus();
  }
  // a staff member's service has ended (closed with the rating prompt, or handed back to the assistant): ask
  // (the prompt's own star buttons rate in the chat instead: choosing one closes the panel)
  function ratingAfter(h, live, li) {
    if (!h) return;
    if (h.from === "agent") agentServed = true;
    if ((h.rate || (h.state === "bot" && agentServed)) && live) openRating();
    if (h.rate || h.state === "bot") agentServed = false;
    if (h.rate) Array.prototype.forEach.call(li.querySelectorAll(".ga-quick"), function (b) {
      b.addEventListener("click", function () { ratePanel.hidden = true; });
    });
  }
  rateLink.addEventListener("click", openRating);
  rateLater.addEventListener("click", function () { ratePanel.hidden = true; });
  rateSend.addEventListener("click", function () {
    if (!rateScore) return;
    rateSend.disabled = true;
    var comment = rateComment.value.trim();
    fetch(base + "/webchat/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Session-Id": sessionId },
      body: JSON.stringify({ sender_id: sessionId, score: rateScore, comment: comment || null })
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) {
          rateStatus.textContent = (body.message_zh || "提交失败") + " / " + (body.message_en || "failed");
          rateSend.disabled = false;
          return;
        }
        rateStatus.textContent = "感谢您的评价！/ Thank you!";
        setTimeout(function () { ratePanel.hidden = true; }, 2000);
      });
    }).catch(function () {
      rateStatus.textContent = "网络不可用，请稍后再试 / offline, try again later";
      rateSend.disabled = false;
    });
  });

  window.GovAssistant = { sessionId: sessionId, send: submit, setElderly: setElderly, rate: openRating };
})();
