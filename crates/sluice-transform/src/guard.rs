//! Limits on SQL text checked before anything parses or plans it.
//!
//! DataFusion and sqlparser walk expressions recursively: a `1+1+…` of a few thousand terms, or a
//! `x=0 or x=1 or …` of the kind BI tools generate, nests that deep and can overflow a thread's stack,
//! which aborts the whole process. [`check_sql`] bounds the text's length and its nesting depth in one
//! pass over sqlparser's tokens (the tokenizer is iterative), so a too-deep statement gets a clear
//! error before any recursive code sees it. The depth it computes is an upper bound of the expression
//! tree's: every binary operator of a comma-separated item may add a level (left-deep chains), and
//! every parenthesis, bracket or `CASE … END` adds one around its content.
//!
//! ```
//! use sluice_transform::guard::{SqlLimits, check_sql};
//! let limits = SqlLimits::default();
//! assert!(check_sql("select a + b from t where c = 1", &limits).is_ok());
//! let deep = format!("select {}1", "1+".repeat(5_000));
//! assert!(check_sql(&deep, &limits).unwrap_err().to_string().contains("at most 1000"));
//! ```

use sluice_engine::sql::sqlparser::dialect::PostgreSqlDialect;
use sluice_engine::sql::sqlparser::keywords::Keyword;
use sluice_engine::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// Bounds on one SQL statement (or a model's SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlLimits {
    /// Longest SQL text accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest expression nesting accepted (see the module doc for how it is counted).
    pub max_depth: usize,
}

/// Default longest SQL text: 1 MiB.
pub const DEFAULT_MAX_SQL_BYTES: usize = 1 << 20;
/// Default deepest nesting: well inside what the engine's threads' stacks hold (see
/// [`sluice_engine::QUERY_THREAD_STACK`]), and far above what hand-written SQL reaches.
pub const DEFAULT_MAX_EXPR_DEPTH: usize = 1_000;

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            max_bytes: DEFAULT_MAX_SQL_BYTES,
            max_depth: DEFAULT_MAX_EXPR_DEPTH,
        }
    }
}

/// Why SQL was refused before planning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlLimitError {
    /// The text is longer than allowed.
    #[error("the SQL text is {bytes} bytes long; at most {max} bytes are accepted")]
    TooLong {
        /// Its length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The expressions nest deeper than allowed.
    #[error(
        "the SQL nests {depth} levels deep (operators chained or parentheses nested, from line \
         {line}); at most {max} are accepted: split the expression, or use `IN (...)` instead of a \
         long OR chain"
    )]
    TooDeep {
        /// The depth reached when counting stopped (the first level past the limit).
        depth: usize,
        /// The limit.
        max: usize,
        /// Line where the too-deep item starts (1-based).
        line: u64,
    },
    /// The tokenizer refused the text (an unterminated string and the like).
    #[error("{0}")]
    Tokenize(String),
}

/// Whether a token joins two operands (and so may add a level to a left-deep chain).
fn is_operator(token: &Token) -> bool {
    match token {
        Token::Word(w) => matches!(
            w.keyword,
            Keyword::AND
                | Keyword::OR
                | Keyword::NOT
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::IS
                | Keyword::IN
                | Keyword::BETWEEN
                | Keyword::SIMILAR
                | Keyword::XOR
                | Keyword::WHEN
                | Keyword::THEN
                | Keyword::ELSE
                | Keyword::COLLATE
                | Keyword::AT
        ),
        Token::Plus
        | Token::Minus
        | Token::Mul
        | Token::Div
        | Token::Mod
        | Token::StringConcat
        | Token::Eq
        | Token::DoubleEq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq
        | Token::Spaceship
        | Token::Ampersand
        | Token::Pipe
        | Token::Caret
        | Token::ShiftLeft
        | Token::ShiftRight
        | Token::DoubleColon
        | Token::Arrow
        | Token::LongArrow
        | Token::HashArrow
        | Token::HashLongArrow
        | Token::Tilde
        | Token::TildeAsterisk
        | Token::ExclamationMarkTilde
        | Token::ExclamationMarkTildeAsterisk => true,
        _ => false,
    }
}

/// One open group (the statement, a parenthesis, a bracket or a CASE).
#[derive(Default)]
struct Group {
    /// Deepest item seen so far in this group.
    deepest: usize,
    /// Operators of the current item.
    ops: usize,
    /// Deepest nested group of the current item.
    child: usize,
    /// Line where the current item started.
    line: u64,
}

impl Group {
    fn item_depth(&self) -> usize {
        self.ops.saturating_add(self.child)
    }
}

/// Checks `sql` against `limits` (see the module doc). Linear in the text's length; no recursion.
pub fn check_sql(sql: &str, limits: &SqlLimits) -> Result<(), SqlLimitError> {
    if sql.len() > limits.max_bytes {
        return Err(SqlLimitError::TooLong {
            bytes: sql.len(),
            max: limits.max_bytes,
        });
    }
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SqlLimitError::Tokenize(e.to_string()))?;
    let mut stack: Vec<Group> = vec![Group {
        line: 1,
        ..Group::default()
    }];
    for t in &tokens {
        let line = t.span.start.line;
        match &t.token {
            Token::LParen | Token::LBracket => stack.push(Group {
                line,
                ..Group::default()
            }),
            Token::Word(w) if w.keyword == Keyword::CASE => stack.push(Group {
                line,
                ..Group::default()
            }),
            Token::RParen | Token::RBracket => close(&mut stack),
            Token::Word(w) if w.keyword == Keyword::END => close(&mut stack),
            Token::Comma | Token::SemiColon => {
                if let Some(g) = stack.last_mut() {
                    g.deepest = g.deepest.max(g.item_depth());
                    g.ops = 0;
                    g.child = 0;
                    g.line = line;
                }
            }
            token if is_operator(token) => {
                if let Some(g) = stack.last_mut() {
                    g.ops += 1;
                }
            }
            _ => {}
        }
        // The innermost item's depth plus one level per open group; outer groups learn a closed
        // group's depth when it closes, so checking the innermost one keeps the pass linear.
        if let Some(g) = stack.last() {
            check_depth(g, stack.len(), limits)?;
        }
    }
    // Unclosed groups (the parser reports them) still count towards the depth.
    while stack.len() > 1 {
        close(&mut stack);
        if let Some(g) = stack.last() {
            check_depth(g, stack.len(), limits)?;
        }
    }
    Ok(())
}

fn check_depth(g: &Group, levels: usize, limits: &SqlLimits) -> Result<(), SqlLimitError> {
    let depth = g.deepest.max(g.item_depth()).saturating_add(levels);
    if depth > limits.max_depth {
        return Err(SqlLimitError::TooDeep {
            depth,
            max: limits.max_depth,
            line: g.line,
        });
    }
    Ok(())
}

/// Ends the innermost group and adds its depth to the item that contains it.
fn close(stack: &mut Vec<Group>) {
    // An unbalanced closer is the parser's to report; never pop the statement itself.
    if stack.len() < 2 {
        return;
    }
    if let Some(g) = stack.pop() {
        let depth = g.deepest.max(g.item_depth()) + 1;
        if let Some(parent) = stack.last_mut() {
            parent.child = parent.child.max(depth);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_error(sql: &str, max: usize) -> Option<usize> {
        let limits = SqlLimits {
            max_bytes: usize::MAX,
            max_depth: max,
        };
        match check_sql(sql, &limits) {
            Err(SqlLimitError::TooDeep { depth, .. }) => Some(depth),
            Err(e) => panic!("unexpected error {e}"),
            Ok(()) => None,
        }
    }

    #[test]
    fn ordinary_queries_pass() {
        let limits = SqlLimits::default();
        for sql in [
            "select 1",
            "select a, b + c, sum(d) from gold.x where e = 1 and f in (1, 2, 3) group by 1, 2",
            "with t as (select * from silver.y) select case when a > 1 then 'x' else 'y' end from t",
            "select coalesce(a, b), cast(c as int)::text from t order by 1 desc limit 10",
        ] {
            assert_eq!(check_sql(sql, &limits), Ok(()), "{sql}");
        }
    }

    #[test]
    fn long_operator_chains_are_refused_with_the_depth() {
        let sql = format!("select {}1", "1+".repeat(2_000));
        assert!(depth_error(&sql, 1_000).is_some());
        let ors: Vec<String> = (0..3_000).map(|i| format!("x = {i}")).collect();
        let sql = format!("select * from t where {}", ors.join(" or "));
        let e = check_sql(&sql, &SqlLimits::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 1000"), "{e}");
        assert!(e.contains("IN (...)"), "{e}");
    }

    #[test]
    fn wide_lists_are_not_deep() {
        // 50,000 values in one IN list, or 5,000 columns: wide, not deep.
        let values: Vec<String> = (0..50_000).map(|i| i.to_string()).collect();
        let sql = format!("select * from t where x in ({})", values.join(", "));
        assert_eq!(depth_error(&sql, 100), None);
        let cols: Vec<String> = (0..5_000).map(|i| format!("a{i} + 1")).collect();
        assert_eq!(
            depth_error(&format!("select {}", cols.join(", ")), 100),
            None
        );
    }

    #[test]
    fn nested_parentheses_count_once_each() {
        let sql = format!("select {}1{}", "(".repeat(300), ")".repeat(300));
        assert!(depth_error(&sql, 250).is_some());
        assert_eq!(depth_error(&sql, 400), None);
        let cases = format!(
            "select {}1{}",
            "case when a then ".repeat(200),
            " end".repeat(200)
        );
        assert!(depth_error(&cases, 300).is_some());
    }

    #[test]
    fn length_is_checked_first() {
        let limits = SqlLimits {
            max_bytes: 10,
            max_depth: 10,
        };
        let e = check_sql("select 1 from somewhere", &limits).unwrap_err();
        assert_eq!(e, SqlLimitError::TooLong { bytes: 23, max: 10 });
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Random SQL-ish text of growing size never panics, and an expression built to a known
        /// depth is judged against the limit the way its depth says.
        #[test]
        fn any_text_is_judged_without_panic(
            text in "[a-z0-9 ()+*,'=<>|:;\\[\\]-]{0,4000}",
            depth in 1usize..3000,
            op in proptest::sample::select(vec!["+", " or ", " and ", "*", "||", "::int+"]),
        ) {
            let limits = SqlLimits::default();
            let _ = check_sql(&text, &limits);
            let chain = format!("select {}1", format!("1{op}").repeat(depth));
            let verdict = check_sql(&chain, &limits);
            // A chain of n operators is about n levels deep (casts count twice).
            if depth * 2 + 2 <= limits.max_depth {
                proptest::prop_assert!(verdict.is_ok(), "{depth} {op}: {verdict:?}");
            }
            if depth > limits.max_depth {
                proptest::prop_assert!(verdict.is_err(), "{depth} {op}");
            }
        }
    }

    #[test]
    fn the_check_is_linear_in_the_text() {
        // A megabyte of maximal nesting and of operators is judged in one pass (a quadratic pass
        // would take minutes here); both are refused.
        let parens = format!("select {}1{}", "(".repeat(500_000), ")".repeat(500_000));
        let limits = SqlLimits {
            max_bytes: usize::MAX,
            max_depth: 1000,
        };
        assert!(check_sql(&parens, &limits).is_err());
        let ops = format!("select {}1", "1+".repeat(500_000));
        assert!(check_sql(&ops, &limits).is_err());
    }

    #[test]
    fn unbalanced_closers_do_not_panic() {
        assert_eq!(
            check_sql("select 1)))) end end", &SqlLimits::default()),
            Ok(())
        );
        assert!(check_sql("select 'unterminated", &SqlLimits::default()).is_err());
    }
}
