//! `--name value` options, checked: an unknown or malformed option is an error, not ignored.

use std::collections::BTreeMap;
use std::str::FromStr;

pub struct Args {
    pub scenario: String,
    values: BTreeMap<String, String>,
}

impl Args {
    pub fn parse(raw: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut raw = raw.into_iter().peekable();
        let scenario = raw.next().ok_or("no scenario given")?;
        let mut values = BTreeMap::new();
        while let Some(arg) = raw.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument `{arg}`"))?;
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => match raw.next_if(|next| !next.starts_with("--")) {
                    Some(v) => (name.to_owned(), v),
                    None => (name.to_owned(), "true".to_owned()),
                },
            };
            values.insert(name, value);
        }
        Ok(Self { scenario, values })
    }

    /// A typed option, or `default` when absent.
    pub fn get<T: FromStr>(&mut self, name: &str, default: T) -> Result<T, String> {
        match self.values.remove(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: cannot read `{v}`")),
        }
    }

    pub fn opt<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, String> {
        self.values
            .remove(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("--{name}: cannot read `{v}`"))
            })
            .transpose()
    }

    /// Fails on any option no scenario asked for (a typo must not silently run the default).
    pub fn finish(self) -> Result<(), String> {
        match self.values.keys().next() {
            Some(name) => Err(format!("unknown option --{name}")),
            None => Ok(()),
        }
    }
}
