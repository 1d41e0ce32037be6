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

// The chat: POST /v1/chat/completions, streamed, with the session cookie
// and the CSRF token; Stop aborts the request, which stops the run.
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
  let running = null;

  const line = (role, text) => {
    const item = document.createElement("div");
    item.className = `msg ${role}`;
    const who = document.createElement("span");
    who.className = "role";
    who.textContent = role;
    const body = document.createElement("pre");
    body.textContent = text;
    item.append(who, body);
    log.append(item);
    log.scrollTop = log.scrollHeight;
    return body;
  };

  const busy = (on) => {
    send.disabled = on;
    stop.disabled = !on;
  };

  stop.addEventListener("click", () => running?.abort());
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) chat.requestSubmit();
  });

  chat.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || running) return;
    line("user", text);
    input.value = "";
    const answer = line("assistant", "");
    running = new AbortController();
    busy(true);
    status.textContent = "Thinking…";
    try {
      const response = await fetch(chat.dataset.endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({
          model: agent.value,
          stream: true,
          messages: [{ role: "user", content: text }],
        }),
        signal: running.signal,
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          for (const row of event.split("\n")) {
            if (!row.startsWith("data: ")) continue;
            const data = row.slice(6);
            if (data === "[DONE]") continue;
            const chunk = JSON.parse(data);
            if (chunk.error) throw new Error(chunk.error.message ?? "the run failed");
            const delta = chunk.choices?.[0]?.delta?.content;
            if (delta) {
              answer.textContent += delta;
              log.scrollTop = log.scrollHeight;
            }
          }
        }
      }
      status.textContent = "";
    } catch (error) {
      status.textContent = error.name === "AbortError" ? "Stopped." : `Error: ${error.message}`;
    } finally {
      running = null;
      busy(false);
      input.focus();
    }
  });
}
