//! The pages that are tables of what an API route lists (teams, tasks,
//! delegations, memory, skills, channels, MCP servers, cron): built from
//! the route's JSON, column by column, with links and row actions (forms
//! that post with the CSRF token), rendered by one template.

use super::{Shell, when};
use askama::Template;
use serde_json::Value;

/// A link or text in a cell.
pub struct Cell {
    pub text: String,
    pub href: Option<String>,
}

/// A button that posts a form (confirmed first when `confirm` is set).
pub struct Action {
    pub label: &'static str,
    pub url: String,
    pub danger: bool,
    pub confirm: String,
}

impl Action {
    pub fn post(label: &'static str, url: String) -> Self {
        Self {
            label,
            url,
            danger: false,
            confirm: String::new(),
        }
    }

    pub fn danger(label: &'static str, url: String, confirm: &str) -> Self {
        Self {
            label,
            url,
            danger: true,
            confirm: confirm.to_owned(),
        }
    }
}

pub struct Row {
    pub cells: Vec<Cell>,
    pub actions: Vec<Action>,
    item: Value,
}

/// One table with its heading and what it says when empty.
pub struct Section {
    pub title: String,
    pub empty: String,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Row>,
    pub has_actions: bool,
}

/// A path segment, escaped.
pub fn seg(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A field's text: times (`*_at`, Unix milliseconds) as UTC, lists joined,
/// absent values empty, objects as compact JSON.
pub fn text_of(item: &Value, field: &str) -> String {
    match item.pointer(&format!("/{}", field.replace('.', "/"))) {
        None | Some(Value::Null) => String::new(),
        Some(Value::Number(n)) if field.ends_with("_at") => {
            n.as_i64().map(when).unwrap_or_default()
        }
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_owned(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// A table of `items`, one column per `(label, field)`.
pub fn section(
    title: &str,
    empty: &str,
    items: &[Value],
    columns: &[(&'static str, &str)],
) -> Section {
    let rows = items
        .iter()
        .map(|item| Row {
            cells: columns
                .iter()
                .map(|(_, field)| Cell {
                    text: text_of(item, field),
                    href: None,
                })
                .collect(),
            actions: Vec::new(),
            item: item.clone(),
        })
        .collect();
    Section {
        title: title.to_owned(),
        empty: empty.to_owned(),
        columns: columns.iter().map(|(label, _)| *label).collect(),
        rows,
        has_actions: false,
    }
}

impl Section {
    /// Make column `col` a link, where `href` gives one.
    pub fn link(mut self, col: usize, href: impl Fn(&Value) -> Option<String>) -> Self {
        for row in &mut self.rows {
            if let Some(cell) = row.cells.get_mut(col) {
                cell.href = href(&row.item);
            }
        }
        self
    }

    /// The buttons of each row.
    pub fn actions(mut self, of: impl Fn(&Value) -> Vec<Action>) -> Self {
        for row in &mut self.rows {
            row.actions = of(&row.item);
        }
        self.has_actions = self.rows.iter().any(|r| !r.actions.is_empty());
        self
    }
}

/// A page of tables.
#[derive(Template)]
#[template(path = "ui/tables.html")]
pub struct TablesPage {
    pub shell: Shell,
    pub title: String,
    pub intro: String,
    pub sections: Vec<Section>,
    /// Refresh the tables every few seconds (state that moves by itself).
    pub live: bool,
    /// A file sent as the body of an API request (the page's script does
    /// it, with the session's CSRF token), shown above the tables.
    pub upload: Option<Upload>,
}

/// A form that sends one file to an API route as its body.
pub struct Upload {
    /// The button's text.
    pub label: &'static str,
    /// The API route the file is POSTed to.
    pub endpoint: &'static str,
    /// The file picker's `accept`.
    pub accept: &'static str,
    pub hint: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_read_for_people() {
        let item = json!({"name": "a", "created_at": 0, "tools": ["x", "y"], "on": true,
                          "n": 3, "gone": null, "usage": {"in": 1}});
        assert_eq!(text_of(&item, "name"), "a");
        assert_eq!(text_of(&item, "created_at"), "1970-01-01 00:00:00");
        assert_eq!(text_of(&item, "tools"), "x, y");
        assert_eq!(text_of(&item, "on"), "yes");
        assert_eq!(text_of(&item, "n"), "3");
        assert_eq!(text_of(&item, "gone"), "");
        assert_eq!(text_of(&item, "missing"), "");
        assert_eq!(text_of(&item, "usage.in"), "1");
        assert_eq!(seg("a b/c"), "a+b%2Fc");
    }
}
