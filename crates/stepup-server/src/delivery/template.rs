//! Message templates: text with `{name}` placeholders (`{{` and `}}` for literal braces), checked when the
//! configuration is loaded so a typo fails at start, not at the first send.

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A `{name}` the template kind does not know.
    #[error("template {template}: unknown placeholder {{{name}}} (known: {known})")]
    UnknownPlaceholder {
        /// The template's configuration key.
        template: String,
        /// The placeholder.
        name: String,
        /// The placeholders it may use.
        known: String,
    },
    /// An unmatched `{` or `}`.
    #[error("template {template}: unmatched brace (write {{{{ or }}}} for a literal one)")]
    UnmatchedBrace {
        /// The template's configuration key.
        template: String,
    },
    /// A placeholder the template must contain is missing.
    #[error("template {template} must contain {{{name}}}")]
    Missing {
        /// The template's configuration key.
        template: String,
        /// The placeholder.
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template<'a> {
    pieces: Vec<Piece<'a>>,
}

/// How values are written into a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As they are (plain text, subjects, SMS).
    None,
    /// HTML-escaped (`<`, `>`, `&`, `"`, `'`).
    Html,
}

impl<'a> Template<'a> {
    /// Parses `text`, allowing only the placeholders in `known`.
    ///
    /// # Errors
    /// [`TemplateError::UnknownPlaceholder`] or [`TemplateError::UnmatchedBrace`], naming `name`.
    pub fn parse(name: &str, text: &'a str, known: &[&str]) -> Result<Self, TemplateError> {
        let unmatched = || TemplateError::UnmatchedBrace { template: name.to_owned() };
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find(['{', '}']) {
            let (before, from) = rest.split_at(at);
            if !before.is_empty() {
                pieces.push(Piece::Text(before));
            }
            if let Some(after) = from.strip_prefix("{{") {
                pieces.push(Piece::Text("{"));
                rest = after;
            } else if let Some(after) = from.strip_prefix("}}") {
                pieces.push(Piece::Text("}"));
                rest = after;
            } else if let Some(open) = from.strip_prefix('{') {
                let end = open.find('}').ok_or_else(unmatched)?;
                let field = &open[..end];
                if !known.contains(&field) {
                    return Err(TemplateError::UnknownPlaceholder {
                        template: name.to_owned(),
                        name: field.to_owned(),
                        known: known.join(", "),
                    });
                }
                pieces.push(Piece::Field(field));
                rest = &open[end + 1..];
            } else {
                return Err(unmatched());
            }
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest));
        }
        Ok(Self { pieces })
    }

    /// Checks the template uses `field`.
    ///
    /// # Errors
    /// [`TemplateError::Missing`].
    pub fn require(self, name: &str, field: &str) -> Result<Self, TemplateError> {
        if self.pieces.contains(&Piece::Field(field)) {
            Ok(self)
        } else {
            Err(TemplateError::Missing { template: name.to_owned(), name: field.to_owned() })
        }
    }

    /// Writes the template with `values` (a missing value is written as nothing).
    #[must_use]
    pub fn render(&self, values: &[(&str, &str)], escape: Escape) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Field(field) => {
                    let value = values.iter().find(|(name, _)| name == field).map_or("", |(_, value)| value);
                    match escape {
                        Escape::None => out.push_str(value),
                        Escape::Html => html_escape(value, &mut out),
                    }
                }
            }
        }
        out
    }
}

fn html_escape(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Parses and renders in one go a template that was checked when the configuration was loaded.
#[must_use]
pub fn render(text: &str, known: &[&str], values: &[(&str, &str)], escape: Escape) -> String {
    match Template::parse("", text, known) {
        Ok(template) => template.render(values, escape),
        // Checked at start (`ServerConfig::validate`), so this is unreachable in a running server; writing the
        // text as it is beats refusing to send.
        Err(_) => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_escapes_and_errors() {
        let known = ["code", "app_name"];
        let template = Template::parse("t", "{{x}} {code} for {app_name}", &known).unwrap();
        assert_eq!(
            template.render(&[("code", "123456"), ("app_name", "A&B")], Escape::None),
            "{x} 123456 for A&B"
        );
        assert_eq!(template.render(&[("app_name", "<A>")], Escape::Html), "{x}  for &lt;A&gt;");
        assert_eq!(
            Template::parse("t", "{cod}", &known),
            Err(TemplateError::UnknownPlaceholder {
                template: "t".into(),
                name: "cod".into(),
                known: "code, app_name".into()
            })
        );
        assert_eq!(
            Template::parse("t", "{code", &known),
            Err(TemplateError::UnmatchedBrace { template: "t".into() })
        );
        assert_eq!(
            Template::parse("t", "a } b", &known),
            Err(TemplateError::UnmatchedBrace { template: "t".into() })
        );
        assert_eq!(
            Template::parse("t", "no code", &known).unwrap().require("t", "code"),
            Err(TemplateError::Missing { template: "t".into(), name: "code".into() })
        );
    }
}
