"""The dashboard in a real browser: Playwright driving Debian's Chromium
against the real binary (started by dashboard_browser.rs with the fake
provider). Prints one JSON object of what it saw; the Rust test asserts.

Every page is watched for console errors, uncaught exceptions and CSP
violations (a listener installed before any page script runs); a deliberate
violation at the end proves the listener hears them.
"""

import io
import json
import os
import sys
import tarfile

from playwright.sync_api import sync_playwright

base, token, chromium, shots = sys.argv[1:5]
out = {"console": [], "csp": [], "steps": {}}

WATCH = """
document.addEventListener('securitypolicyviolation', (e) => {
  (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI);
});
"""

ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def watch(page):
    page.on("console", lambda m: m.type == "error" and out["console"].append(f"{page.url}: {m.text}"))
    page.on("pageerror", lambda e: out["console"].append(f"{page.url}: {e}"))


def violations(page):
    found = page.evaluate("window.__csp || []")
    out["csp"].extend(f"{page.url}: {v}" for v in found)
    return found


def shot(page, name):
    page.screenshot(path=f"{shots}/{name}.png", full_page=True)


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=ARGS)
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    context.add_init_script(WATCH)
    page = context.new_page()
    watch(page)
    steps = out["steps"]

    # Signed out: any page leads to the sign-in form, and back after it.
    page.goto(f"{base}/ui/sessions")
    steps["redirected_to"] = page.url.removeprefix(base)
    shot(page, "signin")
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    steps["wrong_token_error"] = page.text_content("#signin-error")
    violations(page)
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/ui/sessions")
    steps["after_signin"] = page.url.removeprefix(base)
    steps["sessions_empty"] = page.text_content("main .empty")
    violations(page)

    # The overview; keyboard: the first Tab reaches the skip link.
    page.goto(f"{base}/ui/")
    steps["overview_h1"] = page.text_content("h1")
    page.keyboard.press("Tab")
    steps["first_tab"] = page.evaluate("document.activeElement.className")
    shot(page, "overview")
    violations(page)

    # Chat: streamed answer from the fake provider.
    page.goto(f"{base}/ui/chat")
    page.fill("#message", "hello from the browser")
    page.click("#send")
    # (wait_for_function evaluates a string in the page, which the CSP forbids.)
    for _ in range(100):
        if page.evaluate(
            "(document.querySelector('.msg.assistant pre')?.textContent.length ?? 0) > 0 "
            "&& !document.querySelector('#send').disabled"
        ):
            break
        page.wait_for_timeout(100)
    steps["chat_answer"] = page.text_content(".msg.assistant pre")
    steps["chat_status"] = page.text_content("#chat-status")
    violations(page)

    # A tool call that needs approval: answered inline, then the answer.
    page.fill("#message", "run the check")
    page.click("#send")
    page.wait_for_selector(".approval button")
    steps["approval_command"] = page.text_content(".approval .command")
    shot(page, "chat-approval")
    page.click(".approval button:has-text('Approve')")
    for _ in range(150):
        if page.evaluate("!document.querySelector('#send').disabled"):
            break
        page.wait_for_timeout(100)
    steps["tool_lines"] = page.locator(".tool-call").all_text_contents()
    steps["second_answer"] = page.locator(".msg.assistant pre").nth(1).text_content()
    shot(page, "chat")
    violations(page)

    # Its trace: the waterfall has the model calls and the tool call.
    page.click(".trace-link >> nth=-1")
    page.wait_for_selector("table.waterfall")
    steps["span_kinds"] = page.locator("tr.span .kind").all_text_contents()
    shot(page, "trace")
    violations(page)

    # Sessions: the chat's session, with both messages.
    page.goto(f"{base}/ui/sessions")
    steps["session_rows"] = page.locator("tbody tr").count()
    page.wait_for_timeout(10)
    page.click("tbody tr a")
    page.wait_for_selector(".messages")
    steps["session_roles"] = page.locator(".msg .role").all_text_contents()
    shot(page, "session")
    violations(page)

    # Usage: the chat's model calls drawn per day (their cost: the default
    # model has a price), and the tenant's token budget against its use.
    page.goto(f"{base}/ui/usage")
    page.wait_for_selector(".usage-chart svg rect")
    steps["usage_bars"] = page.locator(".usage-chart svg rect").count()
    steps["usage_caption"] = page.text_content(".usage-chart figcaption")
    steps["budget_rows"] = page.locator("meter").count()
    shot(page, "usage")
    violations(page)

    # Skills: a .tar.gz installed from the page (the file sent by its script
    # with the session's CSRF token), then a corrupt one refused with why.
    def tar_gz(path, files):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        with open(path, "wb") as f:
            f.write(buf.getvalue())
    archive = os.path.join(shots, "upload-skill.tar.gz")
    tar_gz(archive, {"weather/SKILL.md": "---\nname: weather\ndescription: Read the forecast for a city\nversion: 1.0.0\n---\n# Weather\nAsk the forecast service.\n"})
    page.goto(f"{base}/ui/skills")
    page.set_input_files("#upload-file", archive)
    page.click("form[data-upload] button[type=submit]")
    page.wait_for_selector("text=weather")
    steps["skill_rows"] = page.locator("tbody tr").all_text_contents()
    with open(archive, "wb") as f:
        f.write(b"not an archive at all")
    page.set_input_files("#upload-file", archive)
    page.click("form[data-upload] button[type=submit]")
    page.wait_for_selector("#upload-status.error")
    steps["skill_refused"] = page.text_content("#upload-status")
    # Chromium logs the refusal (400) as a failed resource: expected here,
    # and only this one.
    expected = f"{base}/ui/skills: Failed to load resource: the server responded with a status of 400 (Bad Request)"
    steps["refusal_logged"] = expected in out["console"]
    out["console"] = [c for c in out["console"] if c != expected]
    os.remove(archive)
    shot(page, "skills")
    violations(page)

    # The security audit: the CLI's checks and what --fix would change.
    page.goto(f"{base}/ui/security")
    steps["security_result"] = page.text_content("#audit-result")
    steps["security_checks"] = page.locator("tbody tr").count()
    shot(page, "security")
    violations(page)

    # Approvals and agents.
    page.goto(f"{base}/ui/approvals")
    steps["approvals_empty"] = page.text_content("main .empty")
    violations(page)
    page.goto(f"{base}/ui/agents")
    steps["agents"] = page.locator("tbody td code").all_text_contents()
    shot(page, "agents")
    violations(page)

    # Users: a new user's key is shown once; revoking it asks first.
    page.goto(f"{base}/ui/users")
    page.fill("#name", "bob")
    page.click("text=Create user and key")
    page.wait_for_selector("#new-key")
    new_key = page.text_content("#new-key").strip()
    steps["new_key_prefix"] = new_key[:4]
    shot(page, "key-once")
    page.click("text=Done")
    page.wait_for_selector("table")
    steps["key_rows"] = page.locator("tbody tr").count()
    page.once("dialog", lambda d: d.accept())
    page.click("text=Revoke")
    page.wait_for_selector("td:has-text('revoked')")
    steps["key_state"] = page.locator("tbody td").nth(4).text_content()
    steps["key_shown_again"] = new_key in page.content()
    violations(page)

    # Pairing: another browser asks for bob, the admin approves its code
    # here, it signs in by itself; revoking the device signs it out.
    other = browser.new_context(viewport={"width": 1100, "height": 760})
    other.add_init_script(WATCH)
    paired = other.new_page()
    watch(paired)
    paired.goto(f"{base}/ui/signin")
    paired.fill("#pair-user", "bob")
    paired.click("text=Get a pairing code")
    code = paired.text_content("#pair-code").strip()
    steps["pair_code"] = code
    shot(paired, "pair")
    page.goto(f"{base}/ui/pairing")
    page.fill("#code", code)
    page.click("button[value=approve]")
    page.wait_for_selector(".notice")
    steps["pair_notice"] = page.text_content(".notice")
    paired.wait_for_url(f"{base}/ui/", timeout=15000)
    steps["paired_as"] = paired.text_content(".who span")
    violations(paired)
    page.goto(f"{base}/ui/pairing")
    shot(page, "pairing")
    page.once("dialog", lambda d: d.accept())
    page.click("td form button:has-text('Revoke')")
    page.wait_for_selector(".notice")
    paired.goto(f"{base}/ui/")
    steps["after_device_revoked"] = paired.url.removeprefix(base)
    violations(page)
    other.close()

    # 360 px wide: nothing wider than the screen.
    narrow = context.new_page()
    watch(narrow)
    narrow.set_viewport_size({"width": 360, "height": 740})
    narrow.goto(f"{base}/ui/")
    steps["narrow_scroll_width"] = narrow.evaluate("document.documentElement.scrollWidth")
    shot(narrow, "overview-360")
    violations(narrow)
    narrow.close()

    # Sign out: the session is over.
    page.goto(f"{base}/ui/")
    page.click("text=Sign out")
    page.wait_for_url(f"{base}/ui/signin")
    page.goto(f"{base}/ui/")
    steps["after_signout"] = page.url.removeprefix(base)

    # A deliberate violation is heard (the listener works).
    clean = len(out["csp"])
    steps["console_before"] = list(out["console"])
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=\"https://203.0.113.1/x.png\">')")
    page.wait_for_timeout(300)
    steps["deliberate_violation_heard"] = len(page.evaluate("window.__csp || []")) > 0
    steps["violations_before"] = clean
    browser.close()

print(json.dumps(out))
