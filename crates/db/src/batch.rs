//! Several write statements of one transaction sent in one round trip where the backend allows it.
//!
//! Why: on SQLite every statement is a hand-off to the connection's worker thread and back (two thread wake-ups,
//! tens of microseconds on a VM), which made the writes of a small push (link a blob, store a manifest) most of
//! its time. SQLite runs a string of several statements, and sqlx numbers `$N` parameters across the whole
//! string, so the batch renumbers each statement's parameters and binds all values at once. PostgreSQL's extended
//! protocol takes one statement per message, so there the batch runs its statements one by one, in order.

use crate::{Backend, Result};

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// A bound value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Text(&'a str),
    OptionalText(Option<&'a str>),
    Integer(i64),
}

/// Statements without results, each with its own `$1..$n` parameters and values, run in the order pushed.
#[derive(Debug, Default)]
pub(crate) struct Batch<'a> {
    statements: Vec<(String, Vec<Value<'a>>)>,
}

impl<'a> Batch<'a> {
    pub(crate) fn push(&mut self, sql: impl Into<String>, values: Vec<Value<'a>>) {
        self.statements.push((sql.into(), values));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    pub(crate) async fn run(self, tx: &mut Tx<'_>, backend: Backend) -> Result<()> {
        match backend {
            Backend::Sqlite => {
                if self.is_empty() {
                    return Ok(());
                }
                let (sql, values) = self.into_sqlite();
                bind(sqlx::query(&sql), &values).execute(&mut **tx).await?;
            }
            Backend::Postgres => {
                for (statement, values) in &self.statements {
                    bind(sqlx::query(statement), values).execute(&mut **tx).await?;
                }
            }
        }
        Ok(())
    }

    /// The statements as one SQLite string (each ending in `;`) with their parameters renumbered, and all values.
    pub(crate) fn into_sqlite(self) -> (String, Vec<Value<'a>>) {
        let mut sql = String::new();
        let mut all_values = Vec::new();
        for (statement, values) in &self.statements {
            sql.push_str(&renumber(statement, all_values.len()));
            sql.push_str(";\n");
            all_values.extend(values.iter().copied());
        }
        (sql, all_values)
    }
}

pub(crate) fn bind<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    values: &[Value<'q>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for value in values {
        query = match *value {
            Value::Text(text) => query.bind(text),
            Value::OptionalText(text) => query.bind(text),
            Value::Integer(number) => query.bind(number),
        };
    }
    query
}

/// `$n` becomes `$(n + offset)`. Our statements are constants with no `$` inside string literals.
fn renumber(statement: &str, offset: usize) -> String {
    if offset == 0 {
        return statement.to_string();
    }
    let mut out = String::with_capacity(statement.len() + 8);
    let mut chars = statement.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut digits = String::new();
        while let Some(&(_, d)) = chars.peek() {
            if !d.is_ascii_digit() {
                break;
            }
            digits.push(d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(number) => out.push_str(&(number + offset).to_string()),
            Err(_) => out.push_str(&digits),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_renumbered_past_the_earlier_statements() {
        assert_eq!(
            renumber("UPDATE t SET a = $2 WHERE b = $1", 0),
            "UPDATE t SET a = $2 WHERE b = $1"
        );
        assert_eq!(
            renumber("INSERT INTO t VALUES ($1, $2, $10, $10)", 3),
            "INSERT INTO t VALUES ($4, $5, $13, $13)"
        );
        assert_eq!(renumber("SELECT '$' || $1", 1), "SELECT '$' || $2");
    }
}
