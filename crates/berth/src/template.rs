//! A small subset of Go templates for `--format`: `{{.Field}}`, `{{json .}}`,
//! `{{json .Field}}`, `\t` and `\n`, and a `table` prefix that adds a header row.

use serde_json::{Map, Value};

/// A parsed `--format` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// The command's default table.
    Table,
    /// One JSON object per line.
    Json,
    /// A template; `table` prefixed ones get a header row and column alignment.
    Template {
        /// The template text, escapes applied.
        text: String,
        /// Whether it started with `table`.
        table: bool,
    },
}

impl Format {
    /// Parse a `--format` value (`None` is the default table).
    pub fn parse(value: Option<&str>) -> Format {
        match value.map(str::trim) {
            None | Some("") | Some("table") => Format::Table,
            Some("json") => Format::Json,
            Some(text) => {
                let (table, text) = match text.strip_prefix("table") {
                    Some(rest) => (true, rest.trim_start()),
                    None => (false, text),
                };
                Format::Template {
                    text: text.replace("\\t", "\t").replace("\\n", "\n"),
                    table,
                }
            }
        }
    }
}

/// Render `template` for one object.
pub fn render(template: &str, object: &Map<String, Value>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("template: unclosed action in {template:?}"))?;
        out.push_str(&action(after[..end].trim(), object)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The header row of a `table` template: each `{{.Field}}` becomes its upper-snake name.
pub fn header(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let field = after[..end].trim().trim_start_matches("json").trim();
        out.push_str(&upper_snake(field.trim_start_matches('.')));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn action(action: &str, object: &Map<String, Value>) -> Result<String, String> {
    let (json, path) = match action.strip_prefix("json") {
        Some(rest) => (true, rest.trim()),
        None => (false, action),
    };
    let value = lookup(path, object)?;
    Ok(match (json, value) {
        (true, v) => v.to_string(),
        (false, Value::String(s)) => s,
        (false, Value::Null) => "<no value>".into(),
        (false, Value::Array(items)) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| i.as_str().map(str::to_owned).unwrap_or(i.to_string()))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        (false, v) => v.to_string(),
    })
}

fn lookup(path: &str, object: &Map<String, Value>) -> Result<Value, String> {
    if path == "." {
        return Ok(Value::Object(object.clone()));
    }
    let mut current = Value::Object(object.clone());
    for field in path
        .strip_prefix('.')
        .ok_or_else(|| format!("template: unsupported action {path:?}"))?
        .split('.')
    {
        current = current
            .get(field)
            .cloned()
            .ok_or_else(|| format!("template: can't evaluate field {field}"))?;
    }
    Ok(current)
}

fn upper_snake(field: &str) -> String {
    let mut out = String::new();
    for (i, c) in field.chars().enumerate() {
        let prev_lower = field
            .chars()
            .nth(i.wrapping_sub(1))
            .is_some_and(char::is_lowercase);
        if i > 0 && c.is_uppercase() && prev_lower {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    out
}

/// `rows` as `format` asks: one JSON object per line, one rendered template per line (a
/// `table` template with its header row and docker's column layout), or, for the default
/// table, the given `columns` (header, field) laid out by [`crate::format::table`].
pub fn render_rows(
    format: &Format,
    rows: &[Map<String, Value>],
    columns: &[(&str, &str)],
) -> Result<String, String> {
    let cells = |line: &str| line.split('\t').map(str::to_owned).collect::<Vec<_>>();
    match format {
        Format::Json => Ok(rows
            .iter()
            .map(|r| format!("{}\n", Value::Object(r.clone())))
            .collect()),
        Format::Template { text, table: false } => rows
            .iter()
            .map(|r| render(text, r).map(|l| format!("{l}\n")))
            .collect(),
        Format::Template { text, table: true } => {
            let mut lines = vec![cells(&header(text))];
            for r in rows {
                lines.push(cells(&render(text, r)?));
            }
            Ok(crate::format::table(&lines))
        }
        Format::Table => {
            let mut lines = vec![columns.iter().map(|c| c.0.to_owned()).collect::<Vec<_>>()];
            for r in rows {
                lines.push(
                    columns
                        .iter()
                        .map(|c| {
                            r.get(c.1)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned()
                        })
                        .collect(),
                );
            }
            Ok(crate::format::table(&lines))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_and_json() {
        let object: Map<String, Value> =
            serde_json::from_str(r#"{"Repository":"busybox","Tag":"latest","N":[1]}"#).unwrap();
        assert_eq!(
            render("{{.Repository}}:{{.Tag}}", &object).unwrap(),
            "busybox:latest"
        );
        assert_eq!(render("{{json .N}}", &object).unwrap(), "[1]");
        assert!(render("{{.Nope}}", &object).is_err());
        assert_eq!(
            header("{{.Repository}}\t{{.CreatedSince}}"),
            "REPOSITORY\tCREATED SINCE"
        );
        assert_eq!(
            Format::parse(Some("table {{.ID}}\\t{{.Tag}}")),
            Format::Template {
                text: "{{.ID}}\t{{.Tag}}".into(),
                table: true
            }
        );
    }
}
