//! Parsing the `pgoutput` logical replication messages that carry rows (protocol version 1).
//!
//! The replication client turns `Begin` and `Commit` into events of their own and hands every other
//! message over as raw bytes; this module reads those: `Relation` (a table's columns, sent before its
//! first change and again after its schema changed), `Insert`, `Update`, `Delete` and `Truncate`.
//! `Origin` and `Type` messages carry nothing Sluice needs and are recognised and skipped. Tuple
//! values arrive in binary format (`binary 'true'`), so they decode with the same code as the batch
//! reader. Layouts: <https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html>.

/// One column of a `Relation` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelColumn {
    /// Part of the replica identity (the primary key, by default).
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub typmod: i32,
}

/// A `Relation` message: the shape of a table's tuples from here on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Relation {
    pub id: u32,
    pub schema: String,
    pub name: String,
    /// `d` default (primary key), `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    pub columns: Vec<RelColumn>,
}

/// One value of a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Datum {
    Null,
    /// A TOASTed value the update did not change: PostgreSQL does not send it again.
    UnchangedToast,
    /// Binary-format bytes.
    Binary(Vec<u8>),
    /// Text-format bytes (sent for types without a binary send function).
    Text(Vec<u8>),
}

/// A row change or table event, as decoded from one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    Relation(Relation),
    Insert {
        relation: u32,
        new: Vec<Datum>,
    },
    Update {
        relation: u32,
        /// The old key (`K`) or whole old row (`O`, replica identity full), when sent.
        old: Option<Vec<Datum>>,
        new: Vec<Datum>,
    },
    Delete {
        relation: u32,
        /// The key (`K`) or the whole row (`O`).
        old: Vec<Datum>,
    },
    Truncate {
        relations: Vec<u32>,
    },
    /// `Origin`, `Type`, and anything else that carries no rows.
    Other(u8),
}

/// A cursor over a message's bytes; every read checks the length.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| format!("pgoutput message truncated at byte {}", self.pos))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn cstr(&mut self) -> Result<String, String> {
        let rest = &self.buf[self.pos..];
        let len = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| "pgoutput string without terminator".to_string())?;
        let s = std::str::from_utf8(&rest[..len])
            .map_err(|e| format!("pgoutput string is not UTF-8: {e}"))?
            .to_string();
        self.pos += len + 1;
        Ok(s)
    }

    fn tuple(&mut self) -> Result<Vec<Datum>, String> {
        let n = self.i16()?;
        let n = usize::try_from(n).map_err(|_| format!("negative column count {n}"))?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(match self.u8()? {
                b'n' => Datum::Null,
                b'u' => Datum::UnchangedToast,
                kind @ (b't' | b'b') => {
                    let len = self.i32()?;
                    let len =
                        usize::try_from(len).map_err(|_| format!("negative value length {len}"))?;
                    let bytes = self.take(len)?.to_vec();
                    if kind == b'b' {
                        Datum::Binary(bytes)
                    } else {
                        Datum::Text(bytes)
                    }
                }
                other => return Err(format!("unknown tuple value kind {:?}", other as char)),
            });
        }
        Ok(out)
    }
}

/// Parses one pgoutput message (the payload of an `XLogData`).
pub(crate) fn parse(buf: &[u8]) -> Result<Message, String> {
    let mut r = Reader { buf, pos: 0 };
    let tag = r.u8()?;
    Ok(match tag {
        b'R' => {
            let id = r.u32()?;
            let schema = r.cstr()?;
            let name = r.cstr()?;
            let replica_identity = r.u8()?;
            let n = r.i16()?;
            let mut columns = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
            for _ in 0..n.max(0) {
                let flags = r.u8()?;
                let name = r.cstr()?;
                let type_oid = r.u32()?;
                let typmod = r.i32()?;
                columns.push(RelColumn {
                    key: flags & 1 == 1,
                    name,
                    type_oid,
                    typmod,
                });
            }
            Message::Relation(Relation {
                id,
                schema,
                name,
                replica_identity,
                columns,
            })
        }
        b'I' => {
            let relation = r.u32()?;
            match r.u8()? {
                b'N' => Message::Insert {
                    relation,
                    new: r.tuple()?,
                },
                other => return Err(format!("insert: expected `N`, got {:?}", other as char)),
            }
        }
        b'U' => {
            let relation = r.u32()?;
            let mut old = None;
            let mut marker = r.u8()?;
            if marker == b'K' || marker == b'O' {
                old = Some(r.tuple()?);
                marker = r.u8()?;
            }
            if marker != b'N' {
                return Err(format!("update: expected `N`, got {:?}", marker as char));
            }
            Message::Update {
                relation,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let relation = r.u32()?;
            match r.u8()? {
                b'K' | b'O' => Message::Delete {
                    relation,
                    old: r.tuple()?,
                },
                other => {
                    return Err(format!(
                        "delete: expected `K` or `O`, got {:?}",
                        other as char
                    ));
                }
            }
        }
        b'T' => {
            let n = r.u32()?;
            let _options = r.u8()?;
            let relations = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
            Message::Truncate { relations }
        }
        other => Message::Other(other),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes a tuple as pgoutput does (binary values).
    pub(crate) fn tuple(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = (values.len() as i16).to_be_bytes().to_vec();
        for v in values {
            match v {
                None => out.push(b'n'),
                Some(bytes) => {
                    out.push(b'b');
                    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                    out.extend_from_slice(bytes);
                }
            }
        }
        out
    }

    pub(crate) fn relation(id: u32, name: &str, columns: &[(&str, u32, bool)]) -> Vec<u8> {
        let mut out = vec![b'R'];
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(b"public\0");
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.push(b'd');
        out.extend_from_slice(&(columns.len() as i16).to_be_bytes());
        for (name, oid, key) in columns {
            out.push(u8::from(*key));
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            out.extend_from_slice(&oid.to_be_bytes());
            out.extend_from_slice(&(-1i32).to_be_bytes());
        }
        out
    }

    #[test]
    fn relation_and_changes() {
        let rel = relation(16384, "customers", &[("id", 20, true), ("name", 25, false)]);
        let Message::Relation(r) = parse(&rel).unwrap() else {
            panic!("not a relation");
        };
        assert_eq!(
            (r.id, r.schema.as_str(), r.name.as_str()),
            (16384, "public", "customers")
        );
        assert_eq!(r.columns.len(), 2);
        assert!(r.columns[0].key && !r.columns[1].key);
        assert_eq!(r.columns[1].type_oid, 25);

        let id = 7i64.to_be_bytes();
        let mut insert = vec![b'I'];
        insert.extend_from_slice(&16384u32.to_be_bytes());
        insert.push(b'N');
        insert.extend(tuple(&[Some(&id), None]));
        assert_eq!(
            parse(&insert).unwrap(),
            Message::Insert {
                relation: 16384,
                new: vec![Datum::Binary(id.to_vec()), Datum::Null]
            }
        );

        let mut update = vec![b'U'];
        update.extend_from_slice(&16384u32.to_be_bytes());
        update.push(b'K');
        update.extend(tuple(&[Some(&id), None]));
        update.push(b'N');
        let mut new = tuple(&[Some(&id)]);
        new[1] = 2; // two columns: the second is an unchanged TOAST value
        new.push(b'u');
        update.extend(new);
        let Message::Update { old, new, .. } = parse(&update).unwrap() else {
            panic!("not an update");
        };
        assert_eq!(old.unwrap().len(), 2);
        assert_eq!(new[1], Datum::UnchangedToast);

        let mut delete = vec![b'D'];
        delete.extend_from_slice(&16384u32.to_be_bytes());
        delete.push(b'K');
        delete.extend(tuple(&[Some(&id), None]));
        assert!(matches!(parse(&delete).unwrap(), Message::Delete { .. }));

        let mut truncate = vec![b'T'];
        truncate.extend_from_slice(&2u32.to_be_bytes());
        truncate.push(0);
        truncate.extend_from_slice(&1u32.to_be_bytes());
        truncate.extend_from_slice(&2u32.to_be_bytes());
        assert_eq!(
            parse(&truncate).unwrap(),
            Message::Truncate {
                relations: vec![1, 2]
            }
        );
        assert_eq!(parse(b"O\0").unwrap(), Message::Other(b'O'));
    }

    #[test]
    fn truncated_input_is_an_error() {
        let rel = relation(1, "t", &[("id", 20, true)]);
        for cut in 1..rel.len() {
            assert!(parse(&rel[..cut]).is_err(), "cut at {cut}");
        }
        assert!(parse(&[]).is_err());
        let mut insert = vec![b'I', 0, 0, 0, 1, b'N'];
        insert.extend_from_slice(&1i16.to_be_bytes());
        insert.push(b'b');
        insert.extend_from_slice(&100i32.to_be_bytes());
        assert!(parse(&insert).unwrap_err().contains("truncated"));
    }
}
