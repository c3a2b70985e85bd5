/* Helpline chat widget: one script tag, no framework, no build step.
 *
 * <script src="https://HOST/widget.js" data-title="Support" data-color="#0f766e"
 *         data-position="right" data-greeting="Hi! How can we help?"
 *         data-user-id="42" data-user-hash="HEX_HMAC_SHA256"></script>
 *
 * Customer and bot text is only ever put into the page with textContent and
 * DOM nodes (a small markdown subset: **bold**, *italics*, http(s) links, line
 * breaks), never with innerHTML.
 *
 * The browser keeps a visitor id and the secret the server issued for it; both
 * are needed to see the conversation again. The stored state belongs to one
 * signed-in user (data-user-id) or to nobody: a page for another user, or
 * HelplineWidget.reset() at sign-out, starts a fresh anonymous state.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.HelplineWidget) return;

  var base = new URL(script.src, location.href);
  var data = script.dataset;
  var options = {
    title: data.title || "Chat with us",
    color: data.color || "#2563eb",
    position: data.position === "left" ? "left" : "right",
    greeting: data.greeting || "",
    userId: data.userId || null,
    userHash: data.userHash || null,
  };
  var socketUrl = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + "/widget/ws";
  var PREFIX = "helpline:" + base.host + ":";

  /* ---------------------------------------------------------------- storage */
  function load(key, fallback) {
    try {
      var value = localStorage.getItem(PREFIX + key);
      return value === null ? fallback : JSON.parse(value);
    } catch (e) {
      return fallback;
    }
  }
  function save(key, value) {
    try {
      localStorage.setItem(PREFIX + key, JSON.stringify(value));
    } catch (e) {
      /* private mode: the session lasts as long as the page */
    }
  }
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return (b + 256).toString(16).slice(1);
    }).join("");
  }

  var STATE_KEYS = ["visitor", "secret", "pending", "started"];
  function forgetState() {
    STATE_KEYS.forEach(function (key) {
      try {
        localStorage.removeItem(PREFIX + key);
      } catch (e) {
        /* nothing stored */
      }
    });
  }
  if (load("user", null) !== options.userId) {
    // Another user (or nobody) used this browser last: nothing of theirs is kept.
    forgetState();
    save("user", options.userId);
  }
  var visitor = load("visitor", null);
  if (!visitor) {
    visitor = newId();
    save("visitor", visitor);
  }
  var secret = load("secret", null);

  /* -------------------------------------------------------------------- DOM */
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function icon(path) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", "hl-icon");
    var shape = document.createElementNS(ns, "path");
    shape.setAttribute("d", path);
    svg.appendChild(shape);
    return svg;
  }

  var host = el("div");
  host.id = "helpline-widget";
  host.style.setProperty("--hl-color", options.color);
  var root = host.attachShadow({ mode: "open" });
  var style = el("link");
  style.rel = "stylesheet";
  style.href = new URL("/widget.css", base).href;
  root.appendChild(style);

  var launcher = el("button", "hl-launcher hl-" + options.position);
  launcher.type = "button";
  launcher.setAttribute("aria-label", "Open chat: " + options.title);
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "hl-panel");
  launcher.setAttribute("aria-haspopup", "dialog");
  launcher.appendChild(icon("M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"));

  var panel = el("section", "hl-panel hl-" + options.position);
  panel.id = "hl-panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", options.title);
  var header = el("header", "hl-header");
  header.appendChild(el("h2", "hl-title", options.title));
  var closeButton = el("button", "hl-close", "\u00D7");
  closeButton.type = "button";
  closeButton.setAttribute("aria-label", "Close chat");
  header.appendChild(closeButton);
  var notices = el("div", "hl-notices");
  notices.setAttribute("role", "status");
  notices.setAttribute("aria-live", "polite");
  var offline = el("p", "hl-notice hl-offline");
  offline.hidden = true;
  var connection = el("p", "hl-notice hl-connection");
  connection.hidden = true;
  var handoff = el("p", "hl-notice hl-handoff");
  handoff.hidden = true;
  notices.append(offline, connection, handoff);
  var log = el("div", "hl-log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-label", "Conversation");
  log.tabIndex = 0;
  var typing = el("div", "hl-typing");
  typing.hidden = true;
  typing.setAttribute("role", "status");
  typing.append(el("span", "hl-dot"), el("span", "hl-dot"), el("span", "hl-dot"));
  typing.appendChild(el("span", "hl-visually-hidden", "The assistant is typing"));
  var form = el("form", "hl-form");
  var label = el("label", "hl-visually-hidden", "Your message");
  label.htmlFor = "hl-input";
  var input = el("textarea", "hl-input");
  input.id = "hl-input";
  input.rows = 1;
  input.placeholder = "Type a message\u2026";
  var sendButton = el("button", "hl-send", "Send");
  sendButton.type = "submit";
  form.append(label, input, sendButton);
  panel.append(header, notices, log, typing, form);
  root.append(launcher, panel);

  /* ------------------------------------------------- safe markdown subset */
  var INLINE_SOURCE =
    "\\*\\*(.+?)\\*\\*|(?<![\\w*])\\*(?!\\s)(.+?)\\*(?!\\w)|(?<!\\w)_(?!\\s)(.+?)_(?!\\w)" +
    "|\\[([^\\]]+)\\]\\(([^)\\s]+)\\)|(https?:\\/\\/[^\\s<>\"]*[^\\s<>\".,;:!?)\\]'])";
  var INLINE;
  try {
    INLINE = new RegExp(INLINE_SOURCE, "g");
  } catch (e) {
    // Browsers without lookbehind: the same patterns, less strict about word edges.
    INLINE = new RegExp(INLINE_SOURCE.replace(/\(\?<![^)]*\)/g, ""), "g");
  }
  function safeUrl(text) {
    try {
      var url = new URL(text);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }
  function link(parent, href, text) {
    var url = safeUrl(href);
    if (!url) {
      parent.appendChild(document.createTextNode(text));
      return;
    }
    var a = el("a", null, text);
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow";
    parent.appendChild(a);
  }
  function inline(parent, text) {
    var last = 0;
    text.replace(INLINE, function (match, bold, em, em2, label, href, bare, offset) {
      parent.appendChild(document.createTextNode(text.slice(last, offset)));
      last = offset + match.length;
      if (bold !== undefined) inline(parent.appendChild(el("strong")), bold);
      else if (em !== undefined || em2 !== undefined) inline(parent.appendChild(el("em")), em || em2);
      else if (label !== undefined) link(parent, href, label);
      else link(parent, bare, bare);
      return match;
    });
    parent.appendChild(document.createTextNode(text.slice(last)));
  }
  function rich(parent, text) {
    String(text).split(/\r?\n/).forEach(function (line, i) {
      if (i) parent.appendChild(el("br"));
      inline(parent, line);
    });
  }

  /* ---------------------------------------------------------------- bubbles */
  function clock(at) {
    var date = at ? new Date(at) : new Date();
    if (isNaN(date.getTime())) date = new Date();
    var node = el("time", "hl-time", date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    node.dateTime = date.toISOString();
    return node;
  }
  function bubble(m) {
    var node = el("div", "hl-msg " + (m.direction === "in" ? "hl-user" : "hl-bot"));
    if (m.id) node.dataset.id = m.id;
    if (m.client_id) node.dataset.clientId = m.client_id;
    if (m.agent) node.appendChild(el("span", "hl-author", m.agent));
    var body = el("div", "hl-text");
    if (m.direction === "in") body.textContent = m.title || m.text;
    else rich(body, m.text);
    node.appendChild(body);
    if (m.buttons && m.buttons.length) {
      var group = el("div", "hl-buttons");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "Quick replies");
      m.buttons.forEach(function (b) {
        var button = el("button", "hl-quick", b.title);
        button.type = "button";
        button.addEventListener("click", function () {
          disableButtons();
          post(b.payload, b.title);
          input.focus(); // the clicked button is disabled now; keep focus in the panel
        });
        group.appendChild(button);
      });
      node.appendChild(group);
    }
    node.appendChild(clock(m.at));
    return node;
  }
  function disableButtons() {
    root.querySelectorAll(".hl-quick").forEach(function (b) {
      b.disabled = true;
    });
  }
  function place(node, id) {
    // Messages stay in server order; the visitor's unsent messages stay last.
    var after = Array.prototype.find.call(log.children, function (child) {
      if (child === node) return false;
      return child.dataset.id ? Number(child.dataset.id) > id : child.dataset.state === "pending";
    });
    log.insertBefore(node, after || null);
    log.scrollTop = log.scrollHeight;
  }
  function confirm(node, id) {
    node.dataset.state = "sent";
    if (node.dataset.id) return;
    node.dataset.id = id;
    place(node, id);
  }
  function system(text, before) {
    log.insertBefore(el("p", "hl-system", text), before || null);
    log.scrollTop = log.scrollHeight;
  }
  function notice(node, text) {
    node.textContent = text || "";
    node.hidden = !text;
  }

  /* ------------------------------------------------------ conversation state */
  var seen = new Set();
  var lastId = 0;
  var pending = load("pending", []);
  var started = load("started", false) || pending.length > 0;
  var draft = null;
  var agent = null;
  var typingTimer = null;

  function setTyping(on) {
    typing.hidden = !on;
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(function () { typing.hidden = true; }, 20000);
  }
  function mine(clientId) {
    return clientId ? root.querySelector('.hl-msg[data-client-id="' + CSS.escape(clientId) + '"]') : null;
  }
  function showMessage(m) {
    if (seen.has(m.id)) return;
    seen.add(m.id);
    lastId = Math.max(lastId, m.id);
    if (!started) save("started", (started = true));
    if (m.direction === "in") {
      forget(m.client_id);
      var local = mine(m.client_id);
      if (local) {
        confirm(local, m.id);
        return;
      }
      disableButtons();
      var node = bubble(m);
      node.dataset.state = "sent";
      place(node, m.id);
      return;
    }
    setTyping(false);
    if (draft) {
      draft.remove();
      draft = null;
    }
    var reply = bubble(m);
    place(reply, m.id);
    if (m.agent && m.agent !== agent) {
      system(m.agent + " joined", reply);
      notice(handoff, "");
    }
    if (m.agent) agent = m.agent;
    if (m.handoff) notice(handoff, "Connecting you to a person\u2026");
  }
  function showToken(text) {
    setTyping(false);
    if (!draft) {
      draft = el("div", "hl-msg hl-bot hl-draft");
      draft.setAttribute("aria-busy", "true");
      draft.appendChild(el("div", "hl-text"));
      log.appendChild(draft);
    }
    draft.firstChild.textContent += text;
    log.scrollTop = log.scrollHeight;
  }

  /* -------------------------------------------------------------- transport */
  var ws = null;
  var ready = false;
  var attempt = 0;
  var restartHintMs = 0; // a server that restarts asks us to wait this long first
  var retryTimer = null;
  var flushTimer = null;
  var flushDelay = 2000; // after a retryable error; doubles up to 30 s

  var typedAt = 0;
  function sendTyping() {
    var now = Date.now();
    if (now - typedAt < 3000) return;
    if (sendFrame({ type: "typing" })) typedAt = now;
  }

  function sendFrame(frame) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }
  function forget(clientId) {
    var left = pending.filter(function (p) { return p.client_id !== clientId; });
    if (left.length !== pending.length) save("pending", (pending = left));
  }
  function flush() {
    if (!ready) return;
    pending.forEach(function (p) {
      sendFrame({ type: "message", client_id: p.client_id, text: p.text, title: p.title || undefined });
    });
  }
  function post(text, title) {
    var message = { client_id: newId(), text: text, title: title || null };
    save("pending", (pending = pending.concat([message])));
    save("started", (started = true));
    var node = bubble({ direction: "in", text: text, title: title, client_id: message.client_id });
    node.dataset.state = "pending";
    log.appendChild(node);
    log.scrollTop = log.scrollHeight;
    if (ready) sendFrame({ type: "message", client_id: message.client_id, text: text, title: title || undefined });
  }
  function flushLater() {
    if (flushTimer) return; // one resend for every retryable error meanwhile
    flushTimer = setTimeout(function () {
      flushTimer = null;
      flush();
    }, flushDelay);
    flushDelay = Math.min(30000, flushDelay * 2);
  }
  function failed(frame) {
    var node = mine(frame.client_id);
    if (frame.retry === true) {
      flushLater();
      return;
    }
    // Any other error is final: this message is never sent again.
    forget(frame.client_id);
    if (node) {
      node.dataset.state = "failed";
      node.appendChild(el("span", "hl-error", "Not sent: " + frame.detail));
    } else {
      system("Error: " + frame.detail);
    }
  }
  function clearLog() {
    Array.prototype.slice.call(log.querySelectorAll(".hl-msg[data-id], .hl-system")).forEach(
      function (node) { node.remove(); }
    );
    seen.clear();
    lastId = 0;
    agent = null;
    notice(handoff, "");
  }
  function adopt(f, socket) {
    // The server issued a visitor secret, and a new visitor id if ours was refused.
    var stored = load("secret", null);
    if (stored && (stored !== socket.presented || load("visitor", null) !== socket.visitor)) {
      // Another tab stored its pair first: use it, so that one secret serves them all.
      visitor = load("visitor", visitor);
      secret = stored;
      socket.close();
      return false;
    }
    if (f.visitor !== visitor) {
      clearLog();
      save("started", (started = false));
    }
    visitor = f.visitor;
    secret = f.secret;
    save("visitor", visitor);
    save("secret", secret);
    return true;
  }
  var handlers = {
    hello: function (f, socket) {
      if (f.secret && !adopt(f, socket)) return;
      attempt = 0;
      notice(connection, "");
      notice(offline, f.online ? "" : f.offline_message);
      if (f.max_chars) input.maxLength = f.max_chars;
    },
    synced: function () {
      ready = true;
      host.dataset.connection = "open";
      flush();
    },
    ack: function (f) {
      flushDelay = 2000;
      forget(f.client_id);
      var node = mine(f.client_id);
      if (node) confirm(node, f.id);
    },
    message: showMessage,
    token: function (f) { showToken(f.text); },
    typing: function () { setTyping(true); },
    status: function (f) {
      if (f.status === "handoff") notice(handoff, f.text || "Connecting you to a person\u2026");
      else if (f.text) system(f.text);
    },
    error: function (f) {
      if (f.client_id) failed(f);
      else if (f.retry) notice(connection, f.detail);
    },
    pong: function () {},
    reconnect: function (f) {
      // The server is restarting (SIGTERM drain): it closes this socket next.
      restartHintMs = Math.max(0, Math.min(60000, Number(f.after_ms) || 0));
    },
  };
  function connect() {
    retryTimer = null;
    var socket = new WebSocket(socketUrl);
    ws = socket;
    host.dataset.connection = "connecting";
    socket.onopen = function () {
      socket.visitor = visitor;
      socket.presented = secret;
      sendFrame({
        type: "hello",
        visitor: visitor,
        secret: secret || undefined,
        last_id: lastId,
        resume: started || !!options.userId,
        user_id: options.userId,
        user_hash: options.userHash,
      });
    };
    socket.onmessage = function (event) {
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      var handler = handlers[frame.type];
      if (handler && ws === socket) handler(frame, socket);
    };
    socket.onclose = function () {
      if (ws !== socket) return;
      ws = null;
      ready = false;
      host.dataset.connection = "closed";
      if (attempt > 0 || started) notice(connection, "Reconnecting\u2026");
      reconnect();
    };
  }
  function reconnect() {
    if (retryTimer) return;
    // Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... up to 30 s, each 50-100 %.
    var delay = Math.min(30000, 500 * Math.pow(2, attempt));
    var wait = delay / 2 + Math.random() * delay / 2;
    if (restartHintMs) {
      // No sooner than the hint, spread over twice it so tabs do not stampede.
      wait = Math.max(wait, restartHintMs * (1 + Math.random()));
      restartHintMs = 0;
    }
    attempt += 1;
    retryTimer = setTimeout(connect, wait);
  }
  window.addEventListener("online", function () {
    if (!ws) {
      clearTimeout(retryTimer);
      connect();
    }
  });

  /* -------------------------------------------------------------- behaviour */
  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    input.focus();
  }
  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }
  launcher.addEventListener("click", function () {
    if (panel.hidden) open();
    else close();
  });
  closeButton.addEventListener("click", close);
  input.addEventListener("input", function () {
    if (input.value.trim()) sendTyping();
  });
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") close();
  });
  function submit(event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim()) return;
    input.value = "";
    post(text, null);
  }
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) submit(event);
  });
  form.addEventListener("submit", submit);

  if (options.greeting) log.appendChild(bubble({ direction: "out", text: options.greeting }));
  pending.forEach(function (p) {
    var node = bubble({ direction: "in", text: p.text, title: p.title, client_id: p.client_id });
    node.dataset.state = "pending";
    log.appendChild(node);
  });
  function reset() {
    // Sign-out: forget the visitor, its secret and its unsent messages; start anonymous.
    forgetState();
    options.userId = options.userHash = null;
    save("user", null);
    visitor = newId();
    save("visitor", visitor);
    secret = null;
    pending = [];
    started = false;
    clearLog();
    root.querySelectorAll(".hl-user:not([data-id])").forEach(function (node) { node.remove(); });
    var socket = ws;
    ws = null;
    ready = false;
    clearTimeout(retryTimer);
    clearTimeout(flushTimer);
    flushTimer = null;
    if (socket) socket.close();
    attempt = 0;
    connect();
  }
  window.HelplineWidget = { open: open, close: close, reset: reset };
  Object.defineProperty(window.HelplineWidget, "visitor", {
    get: function () { return visitor; },
    enumerable: true,
  });
  function mount() {
    document.body.appendChild(host);
    connect();
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
