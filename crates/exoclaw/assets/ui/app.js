// exoclaw dashboard: progressive enhancement only. Pages work as plain HTML
// forms; this adds the streamed chat, confirmations and self-refreshing
// regions. No inline script anywhere (the CSP forbids it), no eval.

const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

// Forms that ask before they act: <form data-confirm="question">.
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

// Forms that send one file as an API request's body: <form data-upload="/v1/...">.
// The session cookie authenticates it, the CSRF token goes in its header.
for (const form of document.querySelectorAll("form[data-upload]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.querySelector('input[type="file"]').files[0];
    const status = form.querySelector('[role="status"]');
    if (!file) return;
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    status.className = "";
    status.textContent = `Sending ${file.name}…`;
    try {
      const response = await fetch(form.dataset.upload, {
        method: "POST",
        body: file,
        credentials: "same-origin",
        headers: { "Content-Type": "application/octet-stream", "X-CSRF-Token": csrf },
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok) {
        location.reload();
        return;
      }
      status.className = "error";
      status.textContent = answer.error?.message ?? `Refused (${response.status}).`;
    } catch (error) {
      status.className = "error";
      status.textContent = `Not sent: ${error.message}`;
    }
    button.disabled = false;
  });
}

// Regions that refresh themselves: <div data-refresh="seconds">, replaced by
// the same region of the page fetched again, while the tab is visible.
for (const region of document.querySelectorAll("[data-refresh]")) {
  const seconds = Math.max(2, Number(region.dataset.refresh) || 5);
  const index = [...document.querySelectorAll("[data-refresh]")].indexOf(region);
  setInterval(async () => {
    if (document.hidden || region.contains(document.activeElement)) return;
    try {
      const response = await fetch(location.href, { headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.querySelectorAll("[data-refresh]")[index];
      if (fresh) region.replaceChildren(...fresh.childNodes);
    } catch {
      // A failed refresh leaves the region as it was; the next one retries.
    }
  }, seconds * 1000);
}

// The chat, over the gateway's WebSocket (docs/protocol.md), which this
// page's session cookie authenticates: the answer streams in, tool calls
// show as they start and end, approvals the run waits for are answered
// here, and Stop stops the session's run.
const chat = document.getElementById("chat");
if (chat) {
  const log = document.getElementById("log");
  const input = document.getElementById("message");
  const agent = document.getElementById("agent");
  const send = document.getElementById("send");
  const stop = document.getElementById("stop");
  const status = document.getElementById("chat-status");
  const wanted = new URLSearchParams(location.search).get("agent");
  if (wanted && agent) agent.value = wanted;

  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const scroll = () => { log.scrollTop = log.scrollHeight; };
  const line = (role, text) => {
    const item = el("div", `msg ${role}`);
    const body = el("pre", "", text);
    item.append(el("span", "role", role), body);
    log.append(item);
    scroll();
    return { item, body };
  };

  // One connection; requests are answered by id.
  let socket = null;
  let ready = null;
  let nextId = 1;
  const waiting = new Map();
  let run = null; // { session, answer, tools: Map, shown: Set }

  const connect = () => {
    if (ready) return ready;
    ready = new Promise((resolve, reject) => {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      socket = new WebSocket(`${scheme}://${location.host}/ws`);
      socket.addEventListener("open", () => {
        call("connect", { protocol: 1, client: { name: "exoclaw-dashboard", version: "1" } })
          .then(resolve, reject);
      });
      socket.addEventListener("message", (message) => receive(JSON.parse(message.data)));
      socket.addEventListener("close", (event) => {
        for (const { reject: fail } of waiting.values()) fail(new Error("connection closed"));
        waiting.clear();
        ready = null;
        if (event.code === 4401) location.assign("/ui/signin?next=/ui/chat");
        if (run) finish(`Connection closed (${event.code}).`);
      });
    });
    return ready;
  };

  const call = (method, params) => new Promise((resolve, reject) => {
    const id = String(nextId++);
    waiting.set(id, { resolve, reject });
    socket.send(JSON.stringify({ type: "req", id, method, params }));
  });

  const receive = (frame) => {
    if (frame.type === "res") {
      const request = waiting.get(frame.id);
      if (!request) return;
      waiting.delete(frame.id);
      if (frame.ok) request.resolve(frame.result);
      else request.reject(new Error(frame.error?.message ?? "refused"));
      return;
    }
    if (frame.type !== "event" || !run) return;
    const p = frame.params ?? {};
    if (run.session && p.session_id && p.session_id !== run.session) return;
    switch (frame.event) {
      case "chat.delta":
        run.answer.body.textContent += p.text;
        scroll();
        break;
      case "tool.started": {
        const tool = el("div", "tool-call", `⚙ ${p.name}: running…`);
        run.answer.item.before(tool);
        run.tools.set(p.call_id, tool);
        scroll();
        break;
      }
      case "tool.finished": {
        const tool = run.tools.get(p.call_id);
        if (tool) tool.textContent = `⚙ ${p.name}: ${p.ok ? "done" : `failed (${p.error_code})`}`;
        break;
      }
      case "chat.done":
        if (!run.answer.body.textContent) run.answer.body.textContent = p.text ?? "";
        if (p.trace_id) {
          const link = el("a", "trace-link", "Trace");
          link.href = `/ui/traces/${encodeURIComponent(p.trace_id)}`;
          run.answer.item.append(link);
        }
        finish("");
        break;
      case "chat.error":
        finish(p.code === "cancelled" ? "Stopped." : `Error: ${p.message}`);
        break;
    }
  };

  // Approvals this run waits for, answered inline (polled while it runs;
  // a credential without approvals.decide simply sees none).
  let polling = null;
  const pollApprovals = async () => {
    if (!run?.session) return;
    let list;
    try {
      list = await call("approvals.list", {});
    } catch {
      clearInterval(polling);
      return;
    }
    for (const approval of list.approvals ?? []) {
      if (approval.session_id !== run.session || run.shown.has(approval.id)) continue;
      run.shown.add(approval.id);
      const card = el("div", "card approval");
      card.append(el("p", "", "The agent asks to run:"), el("pre", "command", approval.command));
      const row = el("div", "row");
      for (const [label, method, cls] of [["Approve", "approvals.approve", ""], ["Deny", "approvals.deny", "danger"]]) {
        const button = el("button", cls, label);
        button.type = "button";
        button.addEventListener("click", async () => {
          row.querySelectorAll("button").forEach((b) => { b.disabled = true; });
          try {
            await call(method, { id: approval.id });
            card.append(el("p", "hint", label === "Approve" ? "Approved." : "Denied."));
          } catch (error) {
            card.append(el("p", "error", error.message));
          }
        });
        row.append(button);
      }
      card.append(row);
      run.answer.item.before(card);
      scroll();
    }
  };

  const finish = (message) => {
    status.textContent = message;
    clearInterval(polling);
    run = null;
    send.disabled = false;
    stop.disabled = true;
    input.focus();
  };

  stop.addEventListener("click", () => {
    if (run?.session) call("chat.stop", { session_id: run.session }).catch(() => {});
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) chat.requestSubmit();
  });

  chat.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || run) return;
    line("user", text);
    input.value = "";
    run = { session: null, answer: line("assistant", ""), tools: new Map(), shown: new Set() };
    send.disabled = true;
    stop.disabled = false;
    status.textContent = "Thinking…";
    try {
      await connect();
      const started = await call("chat.send", { agent: agent.value, message: text, peer: "dashboard" });
      if (run) run.session = started.session_id;
      polling = setInterval(pollApprovals, 1000);
    } catch (error) {
      finish(`Error: ${error.message}`);
    }
  });
}

// Pairing: the waiting page polls until an admin decides, then goes on.
const pairing = document.querySelector("[data-pair-wait]");
if (pairing) {
  const status = document.getElementById("pair-status");
  const timer = setInterval(async () => {
    try {
      const response = await fetch(pairing.dataset.pairWait, { headers: { Accept: "application/json" } });
      const body = await response.json();
      if (body.status === "pending") return;
      clearInterval(timer);
      if (body.status === "approved") location.assign("/ui/");
      else location.assign(`/ui/signin?error=pairing_${encodeURIComponent(body.status)}`);
    } catch {
      status.textContent = "Cannot reach the gateway; retrying…";
    }
  }, 1500);
}
