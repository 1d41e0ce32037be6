//! Markdown from the model as Telegram HTML (`parse_mode = HTML`): bold,
//! italic, inline code, fenced code as `<pre><code class="language-x">`,
//! links; everything else escaped. Messages are split at Telegram's 4,096
//! characters on safe boundaries (a blank line, a line, a space; a code
//! block split is closed and reopened), each part rendered on its own so no
//! tag spans two messages.

/// Telegram's limit per message, in characters.
pub const MAX_CHARS: usize = 4096;
/// Source characters per part: room for the markup rendering adds.
const SOURCE_BUDGET: usize = 3000;

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// One line of prose: `code`, **bold**, *italic* / _italic_, [text](url).
fn inline(line: &str, out: &mut String) {
    let mut rest = line;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('`')
            && let Some(end) = r.find('`')
        {
            out.push_str("<code>");
            escape(&r[..end], out);
            out.push_str("</code>");
            rest = &r[end + 1..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("**")
            && let Some(end) = r.find("**")
            && end > 0
        {
            out.push_str("<b>");
            inline(&r[..end], out);
            out.push_str("</b>");
            rest = &r[end + 2..];
            continue;
        }
        if let Some(marker) = rest.chars().next().filter(|c| *c == '*' || *c == '_') {
            let r = &rest[1..];
            if let Some(end) = r.find(marker)
                && end > 0
                && !r.starts_with(' ')
            {
                out.push_str("<i>");
                inline(&r[..end], out);
                out.push_str("</i>");
                rest = &r[end + 1..];
                continue;
            }
        }
        if let Some(r) = rest.strip_prefix('[')
            && let Some(close) = r.find("](")
            && let Some(end) = r[close + 2..].find(')')
        {
            let text = &r[..close];
            let url = &r[close + 2..close + 2 + end];
            if url.starts_with("https://") || url.starts_with("http://") {
                out.push_str("<a href=\"");
                escape(url, out);
                out.push_str("\">");
                escape(text, out);
                out.push_str("</a>");
                rest = &r[close + 3 + end..];
                continue;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        let mut buf = [0u8; 4];
        escape(c.encode_utf8(&mut buf), out);
        rest = &rest[c.len_utf8()..];
    }
}

/// `md` as Telegram HTML (one part; see [`split`]).
pub fn to_html(md: &str) -> String {
    let mut out = String::with_capacity(md.len() + 32);
    let mut code: Option<String> = None;
    for (i, line) in md.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut code, fence) {
            (None, Some(lang)) => {
                if i > 0 {
                    out.push('\n');
                }
                let lang = lang.trim();
                if lang.is_empty()
                    || !lang
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-')
                {
                    out.push_str("<pre><code>");
                } else {
                    out.push_str("<pre><code class=\"language-");
                    out.push_str(lang);
                    out.push_str("\">");
                }
                code = Some(String::new());
            }
            (Some(body), Some(_)) => {
                escape(body.strip_suffix('\n').unwrap_or(body), &mut out);
                out.push_str("</code></pre>");
                code = None;
            }
            (Some(body), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {
                if i > 0 {
                    out.push('\n');
                }
                inline(line, &mut out);
            }
        }
    }
    if let Some(body) = code {
        escape(body.strip_suffix('\n').unwrap_or(&body), &mut out);
        out.push_str("</code></pre>");
    }
    out
}

/// `md` in parts of at most `budget` characters, cut at a blank line, a
/// line end or a space where there is one; a code block cut in two is
/// closed at the end of one part and reopened in the next.
pub fn split(md: &str, budget: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = md.trim_end();
    let mut reopen: Option<String> = None;
    while !rest.is_empty() {
        let mut part = reopen.take().unwrap_or_default();
        let room = budget.saturating_sub(part.chars().count() + 4).max(1);
        let cut = if rest.chars().count() <= room {
            rest.len()
        } else {
            let limit = rest.char_indices().nth(room).map_or(rest.len(), |(i, _)| i);
            let head = &rest[..limit];
            head.rfind("\n\n")
                .or_else(|| head.rfind('\n'))
                .or_else(|| head.rfind(' '))
                .filter(|i| *i > 0)
                .unwrap_or(limit)
        };
        part.push_str(&rest[..cut]);
        rest = rest[cut..].trim_start_matches(['\n', ' ']);
        // An open fence at the cut: close it here, reopen it next.
        let mut open: Option<&str> = None;
        for line in part.lines() {
            if let Some(lang) = line.trim_start().strip_prefix("```") {
                open = if open.is_some() { None } else { Some(lang) };
            }
        }
        if let Some(lang) = open
            && !rest.is_empty()
        {
            reopen = Some(format!("```{lang}\n"));
            part.push_str("\n```");
        }
        parts.push(part);
    }
    parts
}

/// The parts of `md` to send: each rendered as HTML, within the limit.
pub fn render(md: &str) -> Vec<String> {
    split(md, SOURCE_BUDGET)
        .iter()
        .flat_map(|p| {
            let html = to_html(p);
            if html.chars().count() <= MAX_CHARS {
                vec![html]
            } else {
                // Markup-heavy: send it as escaped text in smaller parts.
                split(p, MAX_CHARS / 2)
                    .iter()
                    .map(|s| {
                        let mut o = String::new();
                        escape(s, &mut o);
                        o
                    })
                    .collect()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_telegram_html() {
        let check = |md: &str, html: &str| assert_eq!(to_html(md), html, "{md}");
        check(
            "**bold** and *it* and _it_",
            "<b>bold</b> and <i>it</i> and <i>it</i>",
        );
        check("a < b & `x<y`", "a &lt; b &amp; <code>x&lt;y</code>");
        check(
            "see [docs](https://e.com/?a=1&b=2)",
            "see <a href=\"https://e.com/?a=1&amp;b=2\">docs</a>",
        );
        check("[x](javascript:alert(1))", "[x](javascript:alert(1))");
        check(
            "run:\n```rust\nfn main() {}\n```\ndone",
            "run:\n<pre><code class=\"language-rust\">fn main() {}</code></pre>\ndone",
        );
        check("```\n<open", "<pre><code>&lt;open</code></pre>");
        check("2 * 3 * 4", "2 * 3 * 4");
    }

    #[test]
    fn long_text_splits_on_safe_boundaries_and_code_blocks_reopen() {
        let para = "word ".repeat(500);
        let md = format!("{para}\n\n{para}\n\n{para}");
        let parts = render(&md);
        assert!(parts.len() >= 2, "{}", parts.len());
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_CHARS));
        assert!(parts.iter().all(|p| !p.ends_with("wor")));
        let total: usize = parts.iter().map(|p| p.matches("word").count()).sum();
        assert_eq!(total, 1500);

        let code = format!("```py\n{}```", "x = 1\n".repeat(1200));
        let parts = render(&code);
        assert!(parts.len() >= 2);
        for p in &parts {
            assert!(
                p.starts_with("<pre><code class=\"language-py\">"),
                "{p:.60}"
            );
            assert!(p.ends_with("</code></pre>"));
            assert!(p.chars().count() <= MAX_CHARS);
        }
        let lines: usize = parts.iter().map(|p| p.matches("x = 1").count()).sum();
        assert_eq!(lines, 1200);
        // No boundary at all: cut at the budget.
        let parts = split(&"y".repeat(7000), 3000);
        assert_eq!(
            parts.iter().map(String::len).collect::<Vec<_>>(),
            [2996, 2996, 1008]
        );
    }
}
