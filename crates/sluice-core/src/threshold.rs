//! dbt's test thresholds (`error_if: ">10"`, `warn_if: "!=0"`): a comparison against the number of
//! failing rows.

/// A parsed threshold condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    op: Op,
    value: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Threshold {
    /// The default of both `error_if` and `warn_if`: any failing row.
    pub const ANY: Threshold = Threshold {
        op: Op::Ne,
        value: 0,
    };

    /// Parses `>10`, `>=1`, `<5`, `<=5`, `=0`, `==0`, `!=0` (spaces allowed).
    pub fn parse(text: &str) -> Result<Threshold, String> {
        let t = text.trim();
        let (op, rest) = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("!=", Op::Ne),
            ("<>", Op::Ne),
            ("==", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
        ]
        .into_iter()
        .find_map(|(p, op)| t.strip_prefix(p).map(|r| (op, r)))
        .ok_or_else(|| {
            format!("`{text}` is not a condition; expected e.g. \">10\", \"!=0\", \">=1\"")
        })?;
        let value = rest
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("`{text}`: expected a whole number after the comparison"))?;
        Ok(Threshold { op, value })
    }

    /// Whether `failing` rows meet the condition.
    pub fn matches(self, failing: u64) -> bool {
        let v = self.value;
        match self.op {
            Op::Gt => failing > v,
            Op::Ge => failing >= v,
            Op::Lt => failing < v,
            Op::Le => failing <= v,
            Op::Eq => failing == v,
            Op::Ne => failing != v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let t = Threshold::parse(">10").unwrap();
        assert!(!t.matches(10) && t.matches(11));
        let t = Threshold::parse(" >= 2 ").unwrap();
        assert!(!t.matches(1) && t.matches(2));
        assert!(Threshold::parse("!=0").unwrap().matches(1));
        assert!(!Threshold::ANY.matches(0));
        assert!(Threshold::parse("=0").unwrap().matches(0));
        assert!(Threshold::parse("ten").is_err());
        assert!(Threshold::parse(">x").is_err());
    }
}
