//! The documents importers read, as one tree whose nodes know their line: YAML through
//! saphyr's marked nodes, JSON through serde_json (and the YAML reader, for the lines of a
//! `.json` file, since JSON is YAML). Translators walk this tree, so a key they cannot
//! translate is reported with its line whatever the format.

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};

use crate::ImportError;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// 1-based; none for a document with no lines of its own (a `.js` file's export).
    pub line: Option<usize>,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    /// The key's line.
    pub line: Option<usize>,
    pub value: Node,
}

impl Node {
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Node]> {
        match &self.value {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    /// A scalar as text (numbers and booleans as written in JSON); none for a list, a map or
    /// null.
    pub fn scalar(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::List(_) | Value::Map(_) => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Value::Bool(b) => Some(*b),
            Value::Str(s) if s == "true" => Some(true),
            Value::Str(s) if s == "false" => Some(false),
            _ => None,
        }
    }

    /// A non-negative number (a float with no fraction too).
    pub fn as_u64(&self) -> Option<u64> {
        match &self.value {
            Value::Int(i) => u64::try_from(*i).ok(),
            Value::Float(f) if *f >= 0.0 && f.fract() == 0.0 => Some(*f as u64),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A non-negative number of seconds (fractions allowed).
    pub fn as_seconds(&self) -> Option<f64> {
        match &self.value {
            Value::Int(i) if *i >= 0 => Some(*i as f64),
            Value::Float(f) if *f >= 0.0 && f.is_finite() => Some(*f),
            Value::Str(s) => s.trim().parse().ok().filter(|f: &f64| *f >= 0.0 && f.is_finite()),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// The one document of a YAML file; an error names its line.
pub fn from_yaml(file: &str, text: &str) -> Result<Node, ImportError> {
    let docs = MarkedYamlOwned::load_from_str(text)
        .map_err(|e| ImportError::at(file, Some(e.marker().line()), format!("invalid YAML: {}", e.info())))?;
    let mut docs = docs.into_iter();
    let Some(doc) = docs.next() else {
        return Err(ImportError::at(file, None, "the file is empty"));
    };
    if let Some(second) = docs.next() {
        return Err(ImportError::at(
            file,
            Some(second.span.start.line()),
            "a second YAML document: one is expected",
        ));
    }
    yaml_node(file, doc)
}

fn yaml_node(file: &str, y: MarkedYamlOwned) -> Result<Node, ImportError> {
    let line = Some(y.span.start.line());
    let value = match y.data {
        YamlDataOwned::Value(s) => scalar(s),
        YamlDataOwned::Representation(s, _, _) => Value::Str(s),
        YamlDataOwned::Tagged(_, inner) => return yaml_node(file, *inner),
        YamlDataOwned::Sequence(items) => {
            Value::List(items.into_iter().map(|i| yaml_node(file, i)).collect::<Result<_, _>>()?)
        }
        YamlDataOwned::Mapping(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (k, v) in map {
                let key_line = Some(k.span.start.line());
                let key = yaml_node(file, k)?
                    .scalar()
                    .ok_or_else(|| ImportError::at(file, key_line, "a mapping key that is not a string"))?;
                entries.push(Entry { key, line: key_line, value: yaml_node(file, v)? });
            }
            Value::Map(entries)
        }
        YamlDataOwned::Alias(_) => {
            return Err(ImportError::at(
                file,
                line,
                "YAML aliases (*name) are not supported: write the values out",
            ))
        }
        YamlDataOwned::BadValue => return Err(ImportError::at(file, line, "a value YAML cannot read")),
    };
    Ok(Node { line, value })
}

fn scalar(s: ScalarOwned) -> Value {
    match s {
        ScalarOwned::Null => Value::Null,
        ScalarOwned::Boolean(b) => Value::Bool(b),
        ScalarOwned::Integer(i) => Value::Int(i),
        ScalarOwned::FloatingPoint(f) => Value::Float(f.into_inner()),
        ScalarOwned::String(s) => Value::Str(s),
    }
}

/// A JSON document; an error names its line. The nodes carry lines when the YAML reader
/// reads the text the same way (it does for ordinary JSON).
pub fn from_json(file: &str, text: &str) -> Result<Node, ImportError> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ImportError::at(file, Some(e.line()), format!("invalid JSON: {e}")))?;
    let plain = from_json_value(v);
    match from_yaml(file, text) {
        Ok(marked) if same_shape(&marked, &plain) => Ok(marked),
        _ => Ok(plain),
    }
}

/// A JSON value with no lines (what `node` printed for a `.js` file).
pub fn from_json_value(v: serde_json::Value) -> Node {
    let value = match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::Str(s),
        serde_json::Value::Array(a) => Value::List(a.into_iter().map(from_json_value).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.into_iter().map(|(key, v)| Entry { key, line: None, value: from_json_value(v) }).collect(),
        ),
    };
    Node { line: None, value }
}

/// Both readings agree on every key and value (lines aside, and the order of keys: serde_json
/// sorts them).
fn same_shape(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter().all(|p| y.iter().any(|q| p.key == q.key && same_shape(&p.value, &q.value)))
        }
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_shape(p, q))
        }
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        (x, y) => x == y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_nodes_know_their_lines() {
        let n = from_yaml("f.yaml", "a:\n  b: 1\n  c: [x, y]\n").unwrap();
        let a = &n.as_map().unwrap()[0];
        assert_eq!((a.key.as_str(), a.line), ("a", Some(1)));
        let c = &a.value.as_map().unwrap()[1];
        assert_eq!((c.key.as_str(), c.line), ("c", Some(3)));
        assert_eq!(a.value.get("b").unwrap().as_u64(), Some(1));
    }

    #[test]
    fn json_gets_lines_too_and_errors_name_theirs() {
        let n = from_json("e.json", "{\n  \"apps\": [\n    {\"name\": \"web\"}\n  ]\n}\n").unwrap();
        let apps = &n.as_map().unwrap()[0];
        assert_eq!(apps.line, Some(2));
        let e = from_json("e.json", "{\n  \"apps\": [\n    {\"name\" \"web\"}\n  ]\n}\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.to_string().starts_with("e.json:3: invalid JSON"), "{e}");
    }

    #[test]
    fn bad_yaml_is_one_error_with_its_line() {
        let e = from_yaml("p.yaml", "processes:\n  web:\n    command: [unclosed\n").unwrap_err();
        assert!(e.line.is_some(), "{e}");
        assert!(e.to_string().starts_with("p.yaml:"), "{e}");
    }
}
