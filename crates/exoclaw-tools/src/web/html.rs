//! HTML for the web tools: a page to readable Markdown (`htmd`, with
//! scripts, styles and forms skipped) and DuckDuckGo's HTML result page to
//! title/url/snippet hits.
//!
//! Hostile pages are bounded twice: a linear pre-scan estimates the tag
//! nesting, and past [`MAX_TAG_NESTING`] the page is reduced to text by a
//! linear tag stripper without the HTML parser (whose tree building is
//! quadratic in nesting depth: 100k nested `<div>`s cost minutes); a
//! parsed tree deeper than [`MAX_DEPTH`] is reduced to text by an
//! iterative walk, so it cannot overflow the stack of the recursive
//! Markdown converter.

use htmd::{HtmlToMarkdown, Node};
use markup5ever_rcdom::NodeData;
use std::rc::Rc;

/// Deepest element nesting handed to the (recursive) Markdown converter.
pub const MAX_DEPTH: usize = 128;

/// Open-minus-closed tags (see [`tag_nesting`]) a page may have and still
/// go through the HTML parser.
pub const MAX_TAG_NESTING: usize = 256;

/// Elements without content.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta", "param",
    "source", "track", "wbr",
];

/// Elements the parser closes by itself (a new `<p>` ends the open one):
/// unclosed, they do not nest.
const IMPLIED_END: &[&str] = &[
    "html", "head", "body", "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead",
    "tbody", "tfoot", "colgroup", "caption", "rb", "rt", "rtc", "rp",
];

/// Elements whose content is raw text (may contain `<`).
const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title", "xmp", "noscript"];

/// Elements after which the text fallback starts a new line.
const BLOCK: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "section",
    "article",
    "pre",
    "blockquote",
    "table",
    "ul",
    "ol",
    "hr",
];

/// One tag found by [`Scanner::tag_at`].
struct Tag {
    name: String,
    closing: bool,
    self_closing: bool,
    /// Byte offset just after the tag.
    end: usize,
}

/// A forward-only tag scanner: every search starts where the last one
/// ended, so a whole page costs linear time whatever it contains (a naive
/// "find the next `>`" per `<` is quadratic on `<a<a<a...`).
struct Scanner<'a> {
    html: &'a str,
    /// The next `>` at or after the last query; `None` once there is none.
    next_gt: Option<usize>,
}

impl<'a> Scanner<'a> {
    fn new(html: &'a str) -> Self {
        Self {
            html,
            next_gt: Some(0),
        }
    }

    /// The first `>` at or after `pos`.
    fn gt_from(&mut self, pos: usize) -> Option<usize> {
        let cached = self.next_gt?;
        if cached >= pos && self.html.as_bytes().get(cached) == Some(&b'>') {
            return Some(cached);
        }
        self.next_gt = self.html.get(pos..)?.find('>').map(|j| pos + j);
        self.next_gt
    }

    /// The tag starting at `at` (a `<`), if it is one.
    fn tag_at(&mut self, at: usize) -> Option<Tag> {
        let rest = &self.html[at + 1..];
        let (closing, rest) = match rest.strip_prefix('/') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        if !rest.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
            return None;
        }
        let name_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        let name = rest[..name_len].to_ascii_lowercase();
        let gt = self.gt_from(at)?;
        let self_closing = self.html[..gt].ends_with('/');
        Some(Tag {
            name,
            closing,
            self_closing,
            end: gt + 1,
        })
    }

    /// Where the raw text of `name` ends (after its closing tag), searched
    /// case-insensitively from `from`; the end of the page without one.
    fn raw_text_end(&mut self, from: usize, name: &str) -> usize {
        let bytes = self.html.as_bytes();
        let mut i = from;
        while let Some(off) = self.html[i..].find("</") {
            let at = i + off;
            let candidate = bytes.get(at + 2..at + 2 + name.len());
            if candidate.is_some_and(|c| c.eq_ignore_ascii_case(name.as_bytes())) {
                return self.gt_from(at).map_or(self.html.len(), |gt| gt + 1);
            }
            i = at + 2;
        }
        self.html.len()
    }

    /// After a comment or declaration starting at `at`.
    fn skip_markup(&mut self, at: usize) -> usize {
        if self.html[at..].starts_with("<!--") {
            return self.html[at..]
                .find("-->")
                .map_or(self.html.len(), |j| at + j + 3);
        }
        self.gt_from(at).map_or(self.html.len(), |gt| gt + 1)
    }
}

fn is_markup(rest: &str) -> bool {
    rest.starts_with("<!") || rest.starts_with("<?")
}

/// A linear estimate of the deepest tag nesting: opening tags minus
/// closing tags, not counting void, self-closing, implicitly closed and
/// raw-text elements, comments and declarations.
pub fn tag_nesting(html: &str) -> usize {
    let mut scanner = Scanner::new(html);
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while let Some(off) = html[i..].find('<') {
        let at = i + off;
        if is_markup(&html[at..]) {
            i = scanner.skip_markup(at);
            continue;
        }
        let Some(tag) = scanner.tag_at(at) else {
            i = at + 1;
            continue;
        };
        i = tag.end;
        let name = tag.name.as_str();
        if VOID.contains(&name) || IMPLIED_END.contains(&name) || tag.self_closing {
            continue;
        }
        if RAW_TEXT.contains(&name) {
            if !tag.closing {
                i = scanner.raw_text_end(i, name);
            }
            continue;
        }
        if tag.closing {
            depth = depth.saturating_sub(1);
        } else {
            depth += 1;
            deepest = deepest.max(depth);
        }
    }
    deepest
}

fn decode_entities(s: &str) -> String {
    s.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Text of a page without the HTML parser: tags dropped, scripts, styles
/// and comments skipped, blocks on their own lines, whitespace collapsed.
pub fn strip_html(html: &str) -> String {
    let mut scanner = Scanner::new(html);
    let mut raw = String::with_capacity(html.len() / 2);
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let at = i + off;
        raw.push_str(&html[i..at]);
        if is_markup(&html[at..]) {
            i = scanner.skip_markup(at);
            continue;
        }
        let Some(tag) = scanner.tag_at(at) else {
            raw.push('<');
            i = at + 1;
            continue;
        };
        i = tag.end;
        let name = tag.name.as_str();
        if !tag.closing && !tag.self_closing && RAW_TEXT.contains(&name) {
            i = scanner.raw_text_end(i, name);
        }
        raw.push(if BLOCK.contains(&name) { '\n' } else { ' ' });
    }
    raw.push_str(&html[i..]);
    decode_entities(&raw)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Elements whose content is never readable text.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "canvas",
    "form", "button", "input", "select", "textarea", "head",
];

/// A converted page.
pub struct Page {
    pub title: Option<String>,
    pub markdown: String,
}

fn tag(node: &Node) -> Option<&str> {
    match &node.data {
        NodeData::Element { name, .. } => Some(&name.local),
        _ => None,
    }
}

fn attr(node: &Node, wanted: &str) -> Option<String> {
    match &node.data {
        NodeData::Element { attrs, .. } => attrs
            .borrow()
            .iter()
            .find(|a| &*a.name.local == wanted)
            .map(|a| a.value.to_string()),
        _ => None,
    }
}

fn has_class(node: &Node, class: &str) -> bool {
    attr(node, "class").is_some_and(|c| c.split_ascii_whitespace().any(|c| c == class))
}

/// Deepest nesting, counted without recursion.
fn depth(root: &Rc<Node>) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(Rc::clone(root), 0usize)];
    while let Some((node, d)) = stack.pop() {
        deepest = deepest.max(d);
        for child in node.children.borrow().iter() {
            stack.push((Rc::clone(child), d + 1));
        }
    }
    deepest
}

/// Text content in document order, skipping [`SKIPPED`] elements, without
/// recursion; whitespace runs collapse to one space, blocks end lines.
fn text_of(root: &Rc<Node>) -> String {
    let mut out = String::new();
    // Adjacent text nodes join without a space unless the source had one
    // (`empowering <b>everyone</b>.` reads "empowering everyone.").
    let mut space = false;
    let mut stack = vec![Rc::clone(root)];
    while let Some(node) = stack.pop() {
        match &node.data {
            NodeData::Text { contents } => {
                let text = contents.borrow();
                space |= text.starts_with(char::is_whitespace);
                for word in text.split_whitespace() {
                    if space && !out.is_empty() && !out.ends_with(['\n', ' ']) {
                        out.push(' ');
                    }
                    out.push_str(word);
                    space = true;
                }
                space = text.ends_with(char::is_whitespace);
            }
            NodeData::Element { name, .. } if SKIPPED.contains(&&*name.local) => continue,
            NodeData::Element { name, .. }
                if BLOCK.contains(&&*name.local) && !out.is_empty() && !out.ends_with('\n') =>
            {
                out.push('\n');
            }
            _ => {}
        }
        for child in node.children.borrow().iter().rev() {
            stack.push(Rc::clone(child));
        }
    }
    out.trim().to_owned()
}

/// The first element named `name`, without recursion.
fn find(root: &Rc<Node>, name: &str) -> Option<Rc<Node>> {
    let mut stack = vec![Rc::clone(root)];
    while let Some(node) = stack.pop() {
        if tag(&node) == Some(name) {
            return Some(node);
        }
        for child in node.children.borrow().iter().rev() {
            stack.push(Rc::clone(child));
        }
    }
    None
}

/// Convert an HTML page to readable Markdown.
pub fn to_markdown(html: &str) -> Page {
    if tag_nesting(html) > MAX_TAG_NESTING {
        return Page {
            title: None,
            markdown: strip_html(html),
        };
    }
    let converter = HtmlToMarkdown::builder()
        .skip_tags(SKIPPED.to_vec())
        .build();
    let Ok(tree) = converter.html_to_tree(html) else {
        return Page {
            title: None,
            markdown: String::new(),
        };
    };
    let title = find(&tree, "title")
        .map(|t| text_of(&t))
        .filter(|t| !t.is_empty());
    let markdown = if depth(&tree) > MAX_DEPTH {
        text_of(&tree)
    } else {
        converter.tree_to_markdown(&tree)
    };
    Page { title, markdown }
}

/// One search result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub title: String,
    pub url: String,
    pub snippet: String,
}

/// DuckDuckGo's result links go through `//duckduckgo.com/l/?uddg=<url>`;
/// return the target.
fn ddg_target(href: &str) -> Option<String> {
    let absolute = if href.starts_with("//") {
        format!("https:{href}")
    } else {
        href.to_owned()
    };
    let url = exoclaw_egress::Url::parse(&absolute).ok()?;
    if let Some((_, target)) = url.query_pairs().find(|(k, _)| k == "uddg") {
        return Some(target.into_owned());
    }
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

/// Hits from DuckDuckGo's HTML endpoint, ads skipped, at most `count`.
pub fn ddg_hits(html: &str, count: usize) -> Vec<Hit> {
    if tag_nesting(html) > MAX_TAG_NESTING {
        return Vec::new();
    }
    let Ok(tree) = HtmlToMarkdown::new().html_to_tree(html) else {
        return Vec::new();
    };
    let mut hits: Vec<Hit> = Vec::new();
    // (node, inside an ad block). `tree` must outlive the walk: dropping an
    // rcdom node empties the children of every node below it, even those
    // still referenced.
    let mut stack = vec![(Rc::clone(&tree), false)];
    while let Some((node, in_ad)) = stack.pop() {
        let in_ad = in_ad || has_class(&node, "result--ad");
        if !in_ad && has_class(&node, "result__a") {
            if let Some(url) = attr(&node, "href").and_then(|h| ddg_target(&h)) {
                hits.push(Hit {
                    title: text_of(&node),
                    url,
                    snippet: String::new(),
                });
            }
            continue;
        }
        if !in_ad && has_class(&node, "result__snippet") {
            if let Some(last) = hits.last_mut()
                && last.snippet.is_empty()
            {
                last.snippet = text_of(&node);
            }
            continue;
        }
        for child in node.children.borrow().iter().rev() {
            stack.push((Rc::clone(child), in_ad));
        }
    }
    hits.truncate(count);
    hits
}

/// Brave's descriptions carry `<strong>` and entities; keep the text.
pub fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
}
