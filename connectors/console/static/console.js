/* Helpline agent console: plain JS, no framework, no build step.
 *
 * Customer-controlled text (names, messages, subjects, Slack names) is only
 * ever put into the page with textContent / DOM nodes, never innerHTML.
 * Every state-changing request carries the X-CSRF-Token of the session.
 */
(function () {
  "use strict";

  var API = "/console/api";

  /* ------------------------------------------------------------- helpers */
  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "";
    var s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + "s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + "m " + (s % 60 < 10 ? "0" : "") + (s % 60) + "s";
    var h = Math.floor(m / 60);
    if (h < 24) return h + "h " + (m % 60) + "m";
    return Math.floor(h / 24) + "d " + (h % 24) + "h";
  }

  function clock(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    var today = new Date().toDateString() === d.toDateString();
    var time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return today ? time : d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + time;
  }

  function percent(value) {
    if (value === null || value === undefined || isNaN(value)) return "–";
    return (value * 100).toFixed(1) + "%";
  }

  var REASONS = {
    user_asked: "asked for a person",
    user_request: "asked for a person",
    low_confidence: "low confidence",
    cloud_unsure: "cloud unsure",
    cloud_unavailable: "cloud unavailable",
    budget: "budget",
  };

  function reasonLabel(reason) {
    if (!reason) return "";
    return REASONS[reason] || String(reason).replace(/_/g, " ");
  }

  function customerName(summary) {
    var c = (summary && summary.customer) || {};
    var known = c.name || c.email || c.slack_user;
    if (known) return known;
    var id = String(c.id || (summary && summary.external_id) || "");
    if (summary && summary.channel === "widget" && /^[0-9a-f-]{16,}$/i.test(id)) {
      return "Visitor " + id.slice(0, 6); // an anonymous widget visitor: a short, stable label
    }
    return id || "Customer";
  }

  /* ------------------------------------------------------------------ API */
  var csrf = null;

  function ApiError(status, body) {
    this.status = status;
    this.body = body || {};
    this.message = (body && (body.reason || body.error)) || "Request failed (" + status + ")";
  }

  function api(method, path, body) {
    var headers = { Accept: "application/json" };
    if (method !== "GET") {
      if (csrf) headers["X-CSRF-Token"] = csrf;
      if (body !== undefined) headers["Content-Type"] = "application/json";
    }
    return fetch(API + path, {
      method: method,
      credentials: "same-origin",
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (response) {
      if (response.status === 401 && !document.body.classList.contains("login-page")) {
        location.assign("/console/login");
      }
      if (response.status === 204) return null;
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new ApiError(response.status, data);
        return data;
      });
    });
  }

  var toastTimer = null;
  function toast(text, kind) {
    var node = $("toast");
    node.textContent = text;
    node.dataset.kind = kind || "error";
    node.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { node.hidden = true; }, 5000);
  }

  function fail(error) {
    toast(error && error.message ? error.message : "Something went wrong.");
  }

  /* ---------------------------------------------------------------- login */
  function initLogin() {
    var form = $("login-form");
    var error = $("login-error");
    var submit = $("login-submit");
    function show(text) {
      error.textContent = text;
      error.hidden = !text;
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      show("");
      submit.disabled = true;
      fetch(API + "/login", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email: form.email.value.trim(), password: form.password.value }),
      })
        .then(function (response) {
          if (response.ok) {
            location.assign("/console");
            return null;
          }
          return response.json().catch(function () { return {}; }).then(function (data) {
            var wait = response.headers.get("Retry-After");
            if (response.status === 429) {
              show("Too many attempts. Try again " + (wait ? "in " + wait + " s." : "later."));
            } else {
              show(data.reason || "Wrong email or password.");
            }
          });
        })
        .catch(function () { show("The server cannot be reached."); })
        .finally(function () { submit.disabled = false; });
    });
  }

  /* ---------------------------------------------------------------- state */
  var state = {
    me: null,
    view: "needs_human",
    query: "",
    list: [], // summaries of the current view, in server order
    loadedAt: 0, // performance.now() when the list arrived (wait times count on from it)
    selected: 0, // index of the keyboard cursor in the list
    current: null, // Summary of the open conversation
    currentLoadedAt: 0,
    messages: [],
    notes: [],
    agents: [],
    canned: [],
    mode: "reply",
    section: "inbox",
  };

  /* ----------------------------------------------------------------- list */
  function waitNow(summary, since) {
    if (summary.wait_s === null || summary.wait_s === undefined) return null;
    if (summary.status !== "open") return summary.wait_s;
    return summary.wait_s + (performance.now() - since) / 1000; // until the first human reply
  }

  function renderItem(summary, index) {
    var item = el("li", "item");
    item.setAttribute("role", "option");
    item.dataset.id = summary.id;
    item.dataset.channel = summary.channel;
    item.setAttribute("aria-selected", String(index === state.selected));
    if (state.current && state.current.id === summary.id) item.classList.add("open");

    var top = el("div", "item-top");
    top.appendChild(el("span", "channel channel-" + summary.channel, summary.channel));
    top.appendChild(el("span", "item-name", customerName(summary)));
    var wait = el("span", "wait");
    wait.dataset.wait = "";
    top.appendChild(wait);
    item.appendChild(top);

    var mid = el("div", "item-mid");
    if (summary.handoff_reason && summary.status === "open") {
      var reason = el("span", "reason", reasonLabel(summary.handoff_reason));
      reason.dataset.reason = summary.handoff_reason;
      mid.appendChild(reason);
    }
    if (summary.assignee) mid.appendChild(el("span", "assignee", "→ " + summary.assignee.name));
    if (summary.followup_email) mid.appendChild(followupTag(summary));
    if (summary.status === "resolved") mid.appendChild(el("span", "resolved-tag", "resolved"));
    item.appendChild(mid);
    if (summary.subject) item.appendChild(el("div", "item-subject", summary.subject));

    var last = summary.last_message;
    if (last) {
      var line = el("div", "item-last");
      if (last.direction === "out") line.appendChild(el("span", "muted", "↩ "));
      line.appendChild(document.createTextNode(last.text || ""));
      item.appendChild(line);
    }
    item.addEventListener("click", function () {
      state.selected = index;
      openConversation(summary.id);
    });
    return item;
  }

  function renderList() {
    var list = $("list");
    clear(list);
    state.list.forEach(function (summary, index) { list.appendChild(renderItem(summary, index)); });
    $("list-empty").hidden = state.list.length > 0;
    tickWaits();
  }

  function tickWaits() {
    var items = $("list").children;
    for (var i = 0; i < items.length; i++) {
      var summary = state.list[i];
      var node = items[i].querySelector("[data-wait]");
      if (!summary || !node) continue;
      var seconds = waitNow(summary, state.loadedAt);
      node.textContent = seconds === null ? clock(summary.last_message && summary.last_message.at) : duration(seconds);
      node.classList.toggle("late", seconds !== null && seconds > 300);
    }
    if (state.current) {
      var waiting = $("fact-wait");
      if (waiting) waiting.textContent = duration(waitNow(state.current, state.currentLoadedAt)) || "–";
    }
  }

  var listSeq = 0;
  function loadList() {
    var seq = ++listSeq;
    var query = "?view=" + encodeURIComponent(state.view);
    if (state.query) query += "&q=" + encodeURIComponent(state.query);
    return api("GET", "/conversations" + query).then(function (data) {
      if (seq !== listSeq) return;
      var keep = state.list[state.selected] && state.list[state.selected].id;
      state.list = data.conversations || [];
      state.loadedAt = performance.now();
      var found = state.list.findIndex(function (s) { return s.id === keep; });
      state.selected = found >= 0 ? found : Math.min(state.selected, Math.max(0, state.list.length - 1));
      renderList();
      if (state.view === "needs_human" && !state.query) setCount("needs_human", state.list.length);
      if (state.view === "mine" && !state.query) setCount("mine", state.list.length);
    }).catch(fail);
  }

  function loadCounts() {
    ["needs_human", "mine"].forEach(function (view) {
      if (view === state.view && !state.query) return;
      api("GET", "/conversations?view=" + view).then(function (data) {
        setCount(view, (data.conversations || []).length);
      }).catch(function () {});
    });
  }

  function setCount(view, n) {
    var node = document.querySelector("[data-count='" + view + "']");
    if (node) node.textContent = n ? String(n) : "";
  }

  var refreshTimer = null;
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      loadList();
      loadCounts();
    }, 150);
  }

  function setView(view) {
    state.view = view;
    state.selected = 0;
    document.querySelectorAll(".view").forEach(function (tab) {
      tab.setAttribute("aria-selected", String(tab.dataset.view === view));
    });
    loadList();
  }

  function moveSelection(step) {
    if (!state.list.length) return;
    state.selected = Math.max(0, Math.min(state.list.length - 1, state.selected + step));
    var items = $("list").children;
    for (var i = 0; i < items.length; i++) {
      items[i].setAttribute("aria-selected", String(i === state.selected));
    }
    items[state.selected].scrollIntoView({ block: "nearest" });
  }

  /* ---------------------------------------------------------- conversation */
  function openConversation(id) {
    return api("GET", "/conversations/" + id).then(function (data) {
      var changed = !state.current || state.current.id !== id;
      state.current = data.conversation;
      state.currentLoadedAt = performance.now();
      state.messages = data.messages || [];
      state.notes = data.notes || [];
      $("placeholder").hidden = true;
      $("thread").hidden = false;
      $("details").hidden = false;
      if (changed) {
        $("composer-text").value = "";
        $("customer-typing").hidden = true;
        setMode("reply");
      }
      renderHeader();
      renderTranscript();
      renderDetails();
      var items = $("list").children;
      for (var i = 0; i < items.length; i++) {
        items[i].classList.toggle("open", String(id) === items[i].dataset.id);
      }
    }).catch(fail);
  }

  // Nobody could take it when it was handed off: the customer waits for an
  // email, and an agent's reply goes out by email (to this address).
  function followupTag(summary) {
    var tag = el("span", "followup-tag", "waiting for email follow-up");
    tag.dataset.followup = summary.followup_email;
    tag.title = "Replies go by email to " + summary.followup_email;
    return tag;
  }

  function renderHeader() {
    var c = state.current;
    $("thread-name").textContent = customerName(c);
    var meta = $("thread-meta");
    clear(meta);
    meta.appendChild(el("span", "channel channel-" + c.channel, c.channel));
    var mode = el("span", "mode-tag mode-" + c.mode, c.mode === "human" ? "with a person" : "with the bot");
    meta.appendChild(mode);
    if (c.status === "open" && c.handoff_reason) {
      var reason = el("span", "reason", reasonLabel(c.handoff_reason));
      reason.dataset.reason = c.handoff_reason;
      meta.appendChild(reason);
    }
    if (c.subject) meta.appendChild(el("span", "subject", c.subject));
    if (c.assignee) meta.appendChild(el("span", "assignee", "Assigned to " + c.assignee.name));
    if (c.followup_email) meta.appendChild(followupTag(c));
    if (c.status === "resolved") meta.appendChild(el("span", "resolved-tag", "resolved"));

    var open = c.status === "open";
    var mine = c.assignee && state.me && c.assignee.id === state.me.id;
    $("act-claim").hidden = !open || !!c.assignee;
    $("act-assign").disabled = !open;
    $("assign-select").disabled = !open;
    $("act-resolve").disabled = !open;
    $("act-handback").disabled = c.mode !== "human";
    $("act-claim").classList.toggle("primary", open && !c.assignee);
    $("send").textContent = state.mode === "note" ? "Add note" : open && !c.assignee ? "Claim & send" : "Send";
    $("composer").dataset.mine = String(!!mine);
    renderAssign();
  }

  function renderAssign() {
    var select = $("assign-select");
    var chosen = state.current && state.current.assignee ? state.current.assignee.id : null;
    clear(select);
    var none = el("option", null, "Assign to…");
    none.value = "";
    select.appendChild(none);
    state.agents.forEach(function (agent) {
      var label = agent.name + (agent.presence === "online" ? " ● online" : " ○ away");
      var option = el("option", null, label);
      option.value = String(agent.id);
      if (agent.id === chosen) option.selected = true;
      select.appendChild(option);
    });
  }

  function routeBadge(message) {
    if (message.author === "agent") return { cls: "human-agent", text: "human-agent" };
    if (message.author === "customer") return null;
    var route = message.route || "flow";
    if (route === "human") return { cls: "handoff", text: "handoff" }; // the bot handing over
    return { cls: route, text: route };
  }

  function fmtConfidence(value) {
    return typeof value === "number" ? value.toFixed(2) : String(value);
  }

  function citationNode(citation) {
    if (citation && typeof citation === "object") {
      var label = citation.title || citation.source || citation.id || citation.url || JSON.stringify(citation);
      var url = citation.url || citation.href;
      if (url && /^https?:\/\//i.test(url)) {
        var link = el("a", "citation", label);
        link.href = url;
        link.target = "_blank";
        link.rel = "noopener noreferrer nofollow";
        return link;
      }
      return el("span", "citation", label);
    }
    return el("span", "citation", citation);
  }

  function renderMessage(message) {
    var who = message.author || (message.direction === "in" ? "customer" : "bot");
    var item = el("li", "msg msg-" + who);
    item.dataset.id = message.id;
    item.dataset.author = who;
    var head = el("div", "msg-head");
    var name = who === "customer" ? customerName(state.current) : who === "agent" ? message.agent_name || "Agent" : "Bot";
    head.appendChild(el("span", "msg-author", name));
    var badge = routeBadge(message);
    if (badge) {
      var b = el("span", "badge badge-" + badge.cls, badge.text);
      b.dataset.route = badge.cls;
      head.appendChild(b);
    }
    head.appendChild(el("time", "msg-time", clock(message.at)));
    item.appendChild(head);
    item.appendChild(el("div", "msg-text", message.text || ""));
    if (message.buttons && message.buttons.length) {
      var buttons = el("div", "msg-buttons");
      message.buttons.forEach(function (button) { buttons.appendChild(el("span", "chip", button.title)); });
      item.appendChild(buttons);
    }
    var conf = [];
    if (message.local_confidence !== null && message.local_confidence !== undefined) conf.push("local " + fmtConfidence(message.local_confidence));
    if (message.cloud_confidence !== null && message.cloud_confidence !== undefined) conf.push("cloud " + fmtConfidence(message.cloud_confidence));
    var generated = message.route === "extractive" || message.route === "local" || message.route === "cloud";
    if (!conf.length && generated && message.confidence !== null && message.confidence !== undefined) {
      conf.push("confidence " + fmtConfidence(message.confidence));
    }
    if (conf.length) item.appendChild(el("div", "msg-confidence", conf.join(" · ")));
    if (message.citations && message.citations.length) {
      var cites = el("div", "msg-citations");
      cites.appendChild(el("span", "muted", "Sources: "));
      message.citations.forEach(function (citation) { cites.appendChild(citationNode(citation)); });
      item.appendChild(cites);
    }
    return item;
  }

  function renderNote(note) {
    var item = el("li", "msg msg-note");
    item.dataset.noteId = note.id;
    var head = el("div", "msg-head");
    head.appendChild(el("span", "msg-author", (note.agent && note.agent.name) || "Agent"));
    head.appendChild(el("span", "badge badge-note", "internal note"));
    head.appendChild(el("time", "msg-time", clock(note.at)));
    item.appendChild(head);
    item.appendChild(el("div", "msg-text", note.text || ""));
    return item;
  }

  function renderTranscript() {
    var log = $("transcript");
    clear(log);
    var entries = state.messages.map(function (m) { return { at: m.at, kind: "m", value: m }; })
      .concat(state.notes.map(function (n) { return { at: n.at, kind: "n", value: n }; }));
    entries.sort(function (a, b) { return String(a.at).localeCompare(String(b.at)); });
    entries.forEach(function (entry) {
      log.appendChild(entry.kind === "m" ? renderMessage(entry.value) : renderNote(entry.value));
    });
    log.scrollTop = log.scrollHeight;
  }

  function appendMessage(message) {
    if (state.messages.some(function (m) { return m.id === message.id; })) return;
    state.messages.push(message);
    if (message.author === "customer" || message.direction === "in") $("customer-typing").hidden = true;
    var log = $("transcript");
    var atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    log.appendChild(renderMessage(message));
    if (atBottom || message.author === "agent") log.scrollTop = log.scrollHeight;
  }

  function appendNote(note) {
    if (state.notes.some(function (n) { return n.id === note.id; })) return;
    state.notes.push(note);
    var log = $("transcript");
    log.appendChild(renderNote(note));
    log.scrollTop = log.scrollHeight;
  }

  function fact(list, label, value, id) {
    list.appendChild(el("dt", null, label));
    var dd = el("dd", null, value === null || value === undefined || value === "" ? "–" : value);
    if (id) dd.id = id;
    list.appendChild(dd);
    return dd;
  }

  function renderDetails() {
    var c = state.current;
    var customer = c.customer || {};
    var who = $("customer");
    clear(who);
    fact(who, "Name", customer.name);
    fact(who, "Channel", c.channel);
    var verified = fact(who, "Identity", customer.verified ? "✓ verified" : "not verified");
    verified.className = customer.verified ? "verified" : "unverified";
    if (customer.email || c.channel === "email") fact(who, "Email", customer.email);
    if (customer.slack_user || c.channel === "slack") fact(who, "Slack user", customer.slack_user);
    fact(who, "Customer id", customer.id || c.external_id);
    var facts = $("facts");
    clear(facts);
    fact(facts, "Status", c.status || "–");
    fact(facts, "Handoff reason", reasonLabel(c.handoff_reason));
    fact(facts, "Handed over", clock(c.handoff_at));
    fact(facts, "Waiting", duration(waitNow(c, state.currentLoadedAt)), "fact-wait");
    fact(facts, "Assignee", c.assignee ? c.assignee.name : "nobody");
    if (c.followup_email) fact(facts, "Reply by email to", c.followup_email);
    fact(facts, "Conversation", "#" + c.id);
  }

  function updateCurrent(summary) {
    if (!state.current || state.current.id !== summary.id) return;
    var renamed = customerName(state.current) !== customerName(summary);
    state.current = summary;
    if (renamed) renderTranscript(); // customer turns carry the customer's name
    state.currentLoadedAt = performance.now();
    renderHeader();
    renderDetails();
  }

  /* ------------------------------------------------------------- actions */
  function act(path, body) {
    if (!state.current) return Promise.resolve(null);
    return api("POST", "/conversations/" + state.current.id + path, body).then(function (data) {
      var summary = data && (data.conversation || (data.channel && data.id ? data : null));
      if (summary) updateCurrent(summary);
      refreshSoon();
      return data;
    });
  }

  function claim() {
    return act("/claim").catch(function (error) {
      if (error.status === 409) {
        toast(error.message);
        openConversation(state.current.id);
      } else fail(error);
    });
  }

  function assign() {
    var id = parseInt($("assign-select").value, 10);
    if (!id) return toast("Choose an agent first.", "info");
    act("/assign", { agent_id: id }).catch(fail);
  }

  function resolve() {
    act("/resolve", { csat: $("resolve-csat").checked }).then(function () {
      $("resolve-csat").checked = false;
      toast("Resolved.", "info");
    }).catch(fail);
  }

  function handback() {
    act("/handback").then(function () { toast("Handed back to the bot.", "info"); }).catch(fail);
  }

  function setMode(mode) {
    state.mode = mode;
    $("composer").dataset.mode = mode;
    $("mode-reply").setAttribute("aria-selected", String(mode === "reply"));
    $("mode-note").setAttribute("aria-selected", String(mode === "note"));
    $("composer-text").placeholder = mode === "note"
      ? "Internal note — only your team sees this…"
      : "Reply to the customer… (/ for canned responses, Ctrl+Enter to send)";
    if (state.current) renderHeader();
  }

  function send() {
    var box = $("composer-text");
    var text = box.value.trim();
    if (!text || !state.current) return;
    var button = $("send");
    button.disabled = true;
    var request = state.mode === "note"
      ? act("/notes", { text: text }).then(function (data) { if (data && data.note) appendNote(data.note); })
      : act("/reply", { text: text }).then(function (data) {
        if (data && data.message) appendMessage(data.message);
        openConversation(state.current.id); // the reply may have claimed it
      });
    request.then(function () { box.value = ""; hideCanned(); lastTyping = 0; })
      .catch(function (error) {
        if (error.status === 409) toast(error.message);
        else fail(error);
      })
      .finally(function () { button.disabled = false; box.focus(); });
  }

  var lastTyping = 0;
  function typing() {
    if (!state.current || state.mode !== "reply") return;
    var now = Date.now();
    if (now - lastTyping < 2500) return; // throttled
    lastTyping = now;
    api("POST", "/conversations/" + state.current.id + "/typing").catch(function () {});
  }

  var customerTypingTimer = null;
  function showCustomerTyping() {
    $("customer-typing").hidden = false;
    clearTimeout(customerTypingTimer);
    customerTypingTimer = setTimeout(function () { $("customer-typing").hidden = true; }, 6000);
  }

  /* --------------------------------------------------------------- canned */
  var cannedChoice = 0;
  function cannedMatches() {
    var text = $("composer-text").value;
    var m = /^\/(\S*)$/.exec(text);
    var term = m ? m[1].toLowerCase() : "";
    return state.canned.filter(function (c) {
      return !term || String(c.shortcut).toLowerCase().indexOf(term) === 0 ||
        String(c.title || "").toLowerCase().indexOf(term) >= 0;
    });
  }

  function showCanned(all) {
    var list = $("canned");
    var matches = all ? state.canned : cannedMatches();
    clear(list);
    if (!matches.length) {
      list.appendChild(el("li", "canned-empty muted", state.canned.length ? "No canned response matches." : "No canned responses yet."));
    }
    cannedChoice = Math.min(cannedChoice, Math.max(0, matches.length - 1));
    matches.forEach(function (c, index) {
      var item = el("li", "canned-item");
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", String(index === cannedChoice));
      item.dataset.shortcut = c.shortcut;
      item.appendChild(el("span", "canned-shortcut", "/" + c.shortcut));
      item.appendChild(el("span", "canned-title", c.title || ""));
      item.appendChild(el("span", "canned-text muted", c.text || ""));
      item.addEventListener("mousedown", function (event) {
        event.preventDefault();
        useCanned(c);
      });
      list.appendChild(item);
    });
    list.hidden = false;
    list.dataset.all = String(!!all);
  }

  function loadCanned() {
    return api("GET", "/canned").then(function (data) {
      state.canned = data.canned || [];
      if (!$("canned").hidden) showCanned($("canned").dataset.all === "true"); // typed before it came
    }).catch(function () {});
  }

  function hideCanned() {
    $("canned").hidden = true;
    cannedChoice = 0;
  }

  function useCanned(c) {
    hideCanned();
    var box = $("composer-text");
    api("GET", "/canned/" + c.id + "/render?conversation=" + state.current.id).then(function (data) {
      box.value = data.text;
    }).catch(function () {
      box.value = c.text;
    }).finally(function () {
      box.focus();
      box.setSelectionRange(box.value.length, box.value.length);
    });
  }

  function cannedKey(event) {
    var list = $("canned");
    if (list.hidden) return false;
    var matches = list.dataset.all === "true" ? state.canned : cannedMatches();
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      cannedChoice = (cannedChoice + (event.key === "ArrowDown" ? 1 : -1) + matches.length) % Math.max(1, matches.length);
      showCanned(list.dataset.all === "true");
      return true;
    }
    if ((event.key === "Enter" || event.key === "Tab") && !event.ctrlKey && !event.metaKey && matches.length) {
      useCanned(matches[cannedChoice]);
      return true;
    }
    if (event.key === "Escape") {
      hideCanned();
      return true;
    }
    return false;
  }

  /* ---------------------------------------------------------------- admin */
  function card(title, value, sub) {
    var node = el("div", "card");
    node.appendChild(el("div", "card-title", title));
    node.appendChild(el("div", "card-value", value));
    if (sub) node.appendChild(el("div", "card-sub muted", sub));
    return node;
  }

  function bars(title, values, format, labels) {
    var node = el("div", "card card-wide");
    node.appendChild(el("div", "card-title", title));
    var keys = Object.keys(values || {});
    var total = keys.reduce(function (sum, k) { return sum + (Number(values[k]) || 0); }, 0);
    var max = keys.reduce(function (m, k) { return Math.max(m, Number(values[k]) || 0); }, 0);
    if (!keys.length) node.appendChild(el("div", "muted", "No data yet."));
    keys.forEach(function (key) {
      var row = el("div", "bar-row");
      row.appendChild(el("span", "bar-label", labels ? labels(key) : key));
      var track = el("span", "bar-track");
      var fill = el("span", "bar-fill");
      fill.style.width = (max ? (100 * (Number(values[key]) || 0)) / max : 0) + "%";
      track.appendChild(fill);
      row.appendChild(track);
      row.appendChild(el("span", "bar-value", format ? format(values[key], total) : String(values[key])));
      node.appendChild(row);
    });
    return node;
  }

  function timing(title, values) {
    values = values || {};
    var median = values.p50 === null || values.p50 === undefined ? "–" : duration(values.p50);
    var rest = Object.keys(values).filter(function (k) { return k !== "p50" && values[k] !== null; })
      .map(function (k) { return k === "count" ? values[k] + " measured" : k + " " + duration(values[k]); })
      .join(" · ");
    var node = card(title, median, "median" + (rest ? " · " + rest : ""));
    node.querySelector(".card-value").classList.add("card-value-small");
    return node;
  }

  function renderStats(stats) {
    var root = $("stats");
    clear(root);
    var csat = stats.csat || {};
    root.appendChild(card("Containment", percent(stats.containment_rate), "conversations never handed off"));
    root.appendChild(card("Escalation rate", percent(stats.escalation_rate), "cloud share of model answers"));
    root.appendChild(card("CSAT", csat.average === null || csat.average === undefined ? "–" : Number(csat.average).toFixed(2) + " / 5", (csat.count || 0) + " answers"));
    root.appendChild(timing("First human reply", stats.time_to_first_human_reply_s));
    root.appendChild(timing("Resolution time", stats.resolution_time_s));
    root.appendChild(bars("Routes per turn", stats.routes, function (v, total) {
      return v + (total ? " (" + Math.round((100 * v) / total) + "%)" : "");
    }));
    root.appendChild(bars("Handoffs by reason", stats.handoffs_by_reason, null, reasonLabel));
    var cost = {};
    (stats.cloud_cost_per_day || []).forEach(function (d) { cost[d.day] = d.usd; });
    root.appendChild(bars("Cloud cost per day (USD)", cost, function (v) { return "$" + Number(v).toFixed(2); }));
  }

  function loadStats() {
    api("GET", "/stats").then(renderStats).catch(fail);
    loadTeam();
  }

  /* ------------------------------------------------------- agents (admin) */
  function renderTeam(agents) {
    var body = $("agents").querySelector("tbody");
    clear(body);
    agents.forEach(function (a) {
      var row = el("tr");
      row.dataset.agent = String(a.id);
      row.append(el("td", null, a.name), el("td", null, a.email), el("td", null, a.role),
        el("td", null, a.disabled ? "disabled" : a.presence));
      var cell = el("td");
      if (a.id !== state.me.id) {
        var toggle = el("button", "agent-toggle", a.disabled ? "Enable" : "Disable");
        toggle.type = "button";
        toggle.addEventListener("click", function () {
          api("PATCH", "/agents/" + a.id, { disabled: !a.disabled }).then(loadTeam).catch(fail);
        });
        cell.appendChild(toggle);
      }
      row.appendChild(cell);
      body.appendChild(row);
    });
  }

  function loadTeam() {
    api("GET", "/agents").then(function (data) { renderTeam(data.agents || []); }).catch(fail);
  }

  function addAgent(event) {
    event.preventDefault();
    var body = {
      name: $("agent-name").value.trim(),
      email: $("agent-email").value.trim(),
      role: $("agent-role").value,
      password: $("agent-password").value,
    };
    $("agent-error").textContent = "";
    api("POST", "/agents", body).then(function () {
      $("agent-form").reset();
      loadTeam();
    }).catch(function (error) { $("agent-error").textContent = error.message; });
  }

  function showSection(section) {
    state.section = section;
    $("inbox").hidden = section !== "inbox";
    $("admin").hidden = section !== "admin";
    $("nav-inbox").setAttribute("aria-pressed", String(section === "inbox"));
    $("nav-admin").setAttribute("aria-pressed", String(section === "admin"));
    if (section === "admin") loadStats();
  }

  /* ------------------------------------------------------------ presence */
  function renderMe() {
    $("me-name").textContent = state.me.name;
    var button = $("presence");
    button.dataset.presence = state.me.presence;
    button.textContent = state.me.presence === "online" ? "● Online" : "○ Away";
    button.setAttribute("aria-pressed", String(state.me.presence === "online"));
    $("nav-admin").hidden = state.me.role !== "admin";
  }

  function togglePresence() {
    var next = state.me.presence === "online" ? "away" : "online";
    api("PUT", "/me/presence", { presence: next }).then(function (agent) {
      state.me.presence = agent.presence;
      renderMe();
    }).catch(fail);
  }

  function loadAgents() {
    return api("GET", "/agents").then(function (data) {
      state.agents = data.agents || [];
      if (state.current) renderAssign();
    }).catch(function () {});
  }

  /* ------------------------------------------------------- notifications */
  function notificationsWanted() {
    $("notify-enable").hidden = !("Notification" in window) || Notification.permission !== "default";
  }

  function notifyHandoff(summary) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    var last = summary.last_message ? summary.last_message.text : "";
    try {
      var note = new Notification("New handoff: " + customerName(summary), {
        body: "[" + summary.channel + "] " + reasonLabel(summary.handoff_reason) + (last ? " — " + last : ""),
        tag: "handoff-" + summary.id,
      });
      note.onclick = function () {
        window.focus();
        openConversation(summary.id);
      };
    } catch (e) {
      /* some browsers only allow notifications from a service worker */
    }
  }

  /* ------------------------------------------------------------ websocket */
  var socket = null;
  var backoff = 500;
  var restartHintMs = 0; // from a "reconnect" frame: the server is restarting

  function setConnection(status) {
    document.body.dataset.connection = status;
    var node = $("connection");
    node.hidden = status === "open";
    node.textContent = status === "open" ? "" : "Reconnecting…";
  }

  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + API + "/ws";
    socket = new WebSocket(url);
    socket.onopen = function () {
      backoff = 500;
      setConnection("open");
      refreshSoon();
      if (state.current) openConversation(state.current.id); // catch up on what was missed
    };
    socket.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      onFrame(frame);
    };
    socket.onclose = function (event) {
      if (event.code === 4001) { // the session ended: logged out or disabled
        location.assign("/console/login");
        return;
      }
      setConnection("reconnecting");
      // Exponential backoff with jitter (50-100 % of 0.5 s, 1 s ... 15 s); after
      // a restart hint no sooner than it, spread over twice it so agents do not
      // all come back at once.
      var wait = backoff / 2 + Math.random() * backoff / 2;
      if (restartHintMs) {
        wait = Math.max(wait, restartHintMs * (1 + Math.random()));
        restartHintMs = 0;
      }
      setTimeout(connect, wait);
      backoff = Math.min(backoff * 2, 15000);
    };
  }

  function isCurrent(id) {
    return state.current && String(state.current.id) === String(id);
  }

  function onFrame(frame) {
    if (frame.type === "reconnect") {
      restartHintMs = Math.max(0, Math.min(60000, Number(frame.after_ms) || 0));
    } else if (frame.type === "conversation" && frame.conversation) {
      updateCurrent(frame.conversation);
      refreshSoon();
    } else if (frame.type === "handoff" && frame.conversation) {
      notifyHandoff(frame.conversation);
      refreshSoon();
    } else if (frame.type === "message" && isCurrent(frame.conversation_id)) {
      appendMessage(frame.message);
    } else if (frame.type === "note" && isCurrent(frame.conversation_id)) {
      appendNote(frame.note);
    } else if (frame.type === "typing" && isCurrent(frame.conversation_id) && frame.who === "customer") {
      showCustomerTyping();
    } else if (frame.type === "presence" && frame.agent) {
      state.agents = state.agents.filter(function (a) { return a.id !== frame.agent.id; });
      state.agents.push(frame.agent);
      state.agents.sort(function (a, b) { return String(a.name).localeCompare(String(b.name)); });
      if (state.me && frame.agent.id === state.me.id) {
        state.me.presence = frame.agent.presence;
        renderMe();
      }
      if (state.current) renderAssign();
    }
  }

  /* ------------------------------------------------------------ keyboard */
  function typingTarget(node) {
    return node && (node.tagName === "INPUT" || node.tagName === "TEXTAREA" || node.tagName === "SELECT");
  }

  function onKey(event) {
    var target = event.target;
    if (target.id === "composer-text") {
      if (cannedKey(event)) return event.preventDefault();
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        return send();
      }
      if (event.key === "Escape") {
        target.blur();
        $("list").focus();
      }
      return;
    }
    if (event.key === "Escape") {
      $("help").hidden = true;
      if (typingTarget(target)) target.blur();
      if (state.section === "admin") showSection("inbox");
      return;
    }
    if (typingTarget(target) || event.ctrlKey || event.metaKey || event.altKey) return;
    var handled = true;
    switch (event.key) {
      case "j": case "ArrowDown": moveSelection(1); break;
      case "k": case "ArrowUp": moveSelection(-1); break;
      case "Enter":
        if (state.list[state.selected]) openConversation(state.list[state.selected].id);
        break;
      case "r": case "n":
        if (!state.current) break;
        setMode(event.key === "r" ? "reply" : "note");
        $("composer-text").focus();
        break;
      case "c": if (state.current && !state.current.assignee) claim(); break;
      case "/": $("search").focus(); break;
      case "?": $("help").hidden = !$("help").hidden; break;
      case "1": setView("needs_human"); break;
      case "2": setView("mine"); break;
      case "3": setView("open"); break;
      case "4": setView("resolved"); break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  }

  /* ---------------------------------------------------------------- wiring */
  function wire() {
    document.querySelectorAll(".view").forEach(function (tab) {
      tab.addEventListener("click", function () { setView(tab.dataset.view); });
    });
    var searchTimer = null;
    $("search").addEventListener("input", function () {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(function () {
        state.query = $("search").value.trim();
        state.selected = 0;
        loadList();
      }, 200);
    });
    $("search").addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === "ArrowDown") {
        event.preventDefault();
        $("list").focus();
      }
    });
    $("act-claim").addEventListener("click", claim);
    $("act-assign").addEventListener("click", assign);
    $("act-resolve").addEventListener("click", resolve);
    $("act-handback").addEventListener("click", handback);
    $("mode-reply").addEventListener("click", function () { setMode("reply"); $("composer-text").focus(); });
    $("mode-note").addEventListener("click", function () { setMode("note"); $("composer-text").focus(); });
    $("composer-text").addEventListener("focus", loadCanned);
    $("canned-open").addEventListener("click", function () {
      if ($("canned").hidden) showCanned(true);
      else hideCanned();
    });
    $("composer").addEventListener("submit", function (event) {
      event.preventDefault();
      send();
    });
    $("composer-text").addEventListener("input", function () {
      var value = $("composer-text").value;
      if (/^\/\S*$/.test(value)) {
        cannedChoice = 0;
        showCanned(false);
      } else if ($("canned").dataset.all !== "true") hideCanned();
      if (value) typing();
    });
    $("composer-text").addEventListener("blur", function () { setTimeout(hideCanned, 150); });
    $("presence").addEventListener("click", togglePresence);
    $("logout").addEventListener("click", function () {
      api("POST", "/logout").finally(function () { location.assign("/console/login"); });
    });
    $("nav-inbox").addEventListener("click", function () { showSection("inbox"); });
    $("nav-admin").addEventListener("click", function () { showSection("admin"); });
    $("stats-refresh").addEventListener("click", loadStats);
    $("agent-form").addEventListener("submit", addAgent);
    $("help-toggle").addEventListener("click", function () { $("help").hidden = !$("help").hidden; });
    $("notify-enable").addEventListener("click", function () {
      Notification.requestPermission().then(notificationsWanted);
    });
    document.addEventListener("keydown", onKey);
    setInterval(tickWaits, 1000);
  }

  function initConsole() {
    wire();
    setConnection("connecting");
    api("GET", "/me").then(function (me) {
      csrf = me.csrf;
      state.me = me;
      renderMe();
      notificationsWanted();
      if ("Notification" in window && Notification.permission === "default") {
        Notification.requestPermission().then(notificationsWanted).catch(function () {});
      }
      return Promise.all([
        loadAgents(),
        loadCanned(),
      ]);
    }).then(function () {
      connect();
      loadList();
      loadCounts();
      $("list").focus();
    }).catch(fail);
  }

  if (document.body.classList.contains("login-page")) initLogin();
  else initConsole();
  window.HelplineConsole = { state: state };
})();
