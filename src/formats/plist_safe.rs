//! Property lists from untrusted bytes, without a stack overflow.
//!
//! The `plist` crate builds a [`plist::Value`] without recursion, but dropping,
//! cloning, comparing or deserializing that value recurses once per level: a
//! 3 MB file of 200,000 nested arrays aborts the process (SIGABRT, a stack
//! overflow) the moment it is dropped. [`parse`] therefore measures the
//! nesting first, with no recursion and bounded memory, and hands the bytes to
//! `plist` only when no container is deeper than [`MAX_DEPTH`]:
//!
//! - XML: a small scanner over the tags (comments, CDATA sections and
//!   processing instructions skipped, quotes in attributes respected), keeping
//!   the open elements on a stack that may not grow past the bound; a closing
//!   tag that does not match the open one is an error.
//! - Binary (`bplist00`): the trailer and offset table are checked, then the
//!   object graph is walked iteratively from the top object with the depth of
//!   each container remembered, so shared objects are walked once. A cycle, a
//!   reference past the object table, or a tree that would expand to more
//!   than [`MAX_NODES`] values (a small file whose objects share children can
//!   describe a huge tree) is an error.
//!
//! Only XML and binary plists are read: the OpenStep (ASCII) form, which
//! `plist` would otherwise try when the bytes are not XML, is refused (no
//! input fvsync reads is written in it).

use serde::de::DeserializeOwned;

/// The deepest nesting of arrays and dictionaries accepted (a user record
/// nests 3 levels; diskutil's outputs 4).
pub const MAX_DEPTH: usize = 64;

/// The largest input accepted, in bytes (the cap of every read, [`crate::fsio::MAX_READ`]).
pub const MAX_BYTES: usize = crate::fsio::MAX_READ as usize;

/// The most values a binary plist may expand to (its objects counted once per
/// reference to them).
pub const MAX_NODES: u64 = 1 << 20;

/// Why bytes were not accepted as a property list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlistError {
    /// Larger than [`MAX_BYTES`].
    #[error("{0} bytes, over the {MAX_BYTES} byte limit")]
    TooLarge(usize),
    /// Arrays or dictionaries nested deeper than [`MAX_DEPTH`].
    #[error("nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A binary plist whose objects contain themselves.
    #[error("a binary property list whose objects contain themselves")]
    Cycle,
    /// A binary plist that refers to an object past its object table.
    #[error("a binary property list refers to an object past its table")]
    BadReference,
    /// A binary plist that expands to more than [`MAX_NODES`] values.
    #[error("a binary property list that expands to more than {MAX_NODES} values")]
    TooManyValues,
    /// The structure is wrong (a bad trailer, a mismatched tag, ...).
    #[error("not a valid property list: {0}")]
    Malformed(String),
}

fn malformed(what: impl Into<String>) -> PlistError {
    PlistError::Malformed(what.into())
}

/// Checks that `bytes` are an XML or binary plist nested no deeper than
/// [`MAX_DEPTH`] (see the module docs), without parsing its values.
///
/// # Errors
/// Too large, too deep, a cycle, a bad reference, too many values, or a
/// structure that is not a property list's.
pub fn check(bytes: &[u8]) -> Result<(), PlistError> {
    if bytes.len() > MAX_BYTES {
        return Err(PlistError::TooLarge(bytes.len()));
    }
    if bytes.starts_with(b"bplist00") {
        check_binary(bytes)
    } else {
        check_xml(bytes)
    }
}

/// Parses an XML or binary plist after [`check`].
///
/// # Errors
/// As [`check`], or what `plist` says of the bytes.
pub fn parse(bytes: &[u8]) -> Result<plist::Value, PlistError> {
    check(bytes)?;
    let v = if bytes.starts_with(b"bplist00") {
        plist::Value::from_reader(std::io::Cursor::new(bytes))
    } else {
        plist::Value::from_reader_xml(bytes)
    };
    v.map_err(|e| malformed(e.to_string()))
}

/// Parses a plist into `T` after [`check`] (in place of `plist::from_bytes`).
///
/// # Errors
/// As [`parse`], or the value does not have `T`'s shape.
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, PlistError> {
    let v = parse(bytes)?;
    plist::from_value(&v).map_err(|e| malformed(e.to_string()))
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn is_container(name: &[u8]) -> bool {
    name == b"array" || name == b"dict"
}

fn name_end(b: &[u8], from: usize) -> usize {
    b[from..]
        .iter()
        .position(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
        .map_or(b.len(), |p| p + from)
}

/// The XML side of [`check`].
fn check_xml(b: &[u8]) -> Result<(), PlistError> {
    // The open elements (names borrowed from the input): a root `plist`, the
    // containers, and one leaf at most above the containers' bound.
    let mut open: Vec<&[u8]> = Vec::new();
    let mut containers = 0usize;
    let mut i = 0usize;
    while let Some(p) = b[i..].iter().position(|&c| c == b'<') {
        i += p;
        let rest = &b[i..];
        if rest.starts_with(b"<!--") {
            i = find(b, i + 4, b"-->").ok_or_else(|| malformed("an unterminated comment"))? + 3;
        } else if rest.starts_with(b"<![CDATA[") {
            i = find(b, i + 9, b"]]>").ok_or_else(|| malformed("an unterminated CDATA section"))?
                + 3;
        } else if rest.starts_with(b"<?") {
            i = find(b, i + 2, b"?>")
                .ok_or_else(|| malformed("an unterminated processing instruction"))?
                + 2;
        } else if rest.starts_with(b"<!") {
            // The DOCTYPE. Its internal subset (`[...]`) may declare entities
            // and holds markup of its own: no plist fvsync reads has one.
            let end = find(b, i + 2, b">").ok_or_else(|| malformed("an unterminated <!"))?;
            if b[i + 2..end].iter().any(|&c| c == b'[' || c == b'<') {
                return Err(malformed("a DOCTYPE with an internal subset"));
            }
            i = end + 1;
        } else if rest.starts_with(b"</") {
            let end = name_end(b, i + 2);
            let name = &b[i + 2..end];
            let close = find(b, end, b">").ok_or_else(|| malformed("an unterminated tag"))?;
            if b[end..close].iter().any(|c| !c.is_ascii_whitespace()) {
                return Err(malformed("a closing tag with attributes"));
            }
            if open.pop() != Some(name) {
                return Err(malformed(format!(
                    "a closing tag </{}> that matches no open element",
                    String::from_utf8_lossy(&name[..name.len().min(40)])
                )));
            }
            if is_container(name) {
                containers -= 1;
            }
            i = close + 1;
        } else {
            let end = name_end(b, i + 1);
            let name = &b[i + 1..end];
            if name.is_empty() {
                return Err(malformed("a tag without a name"));
            }
            // The end of the tag: the first `>` outside quotes.
            let mut quote = None;
            let mut j = end;
            let close = loop {
                let Some(&c) = b.get(j) else {
                    return Err(malformed("an unterminated tag"));
                };
                match (quote, c) {
                    (None, b'"' | b'\'') => quote = Some(c),
                    (Some(q), _) if c == q => quote = None,
                    (None, b'>') => break j,
                    _ => {}
                }
                j += 1;
            };
            let empty = close > end && b[close - 1] == b'/';
            if !empty {
                open.push(name);
                if is_container(name) {
                    containers += 1;
                }
                if containers > MAX_DEPTH || open.len() > MAX_DEPTH + 2 {
                    return Err(PlistError::TooDeep);
                }
            }
            i = close + 1;
        }
    }
    Ok(())
}

fn be(s: &[u8]) -> u64 {
    s.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

/// A binary plist's layout, from its trailer.
struct Binary<'a> {
    b: &'a [u8],
    offset_size: usize,
    ref_size: usize,
    objects: usize,
    /// The top object (checked to be in the table).
    top: usize,
    table: usize,
    /// Where the offset table ends (objects and references lie before the trailer).
    trailer: usize,
}

/// A container object: where its references are and how many.
struct Container {
    refs: usize,
    count: usize,
}

impl<'a> Binary<'a> {
    fn new(b: &'a [u8]) -> Result<Self, PlistError> {
        let bad = || malformed("a bad binary property list trailer");
        let trailer = b
            .len()
            .checked_sub(32)
            .filter(|&t| t >= 8)
            .ok_or_else(bad)?;
        let t = &b[trailer..];
        let offset_size = usize::from(t[6]);
        let ref_size = usize::from(t[7]);
        let objects = be(&t[8..16]);
        let top = be(&t[16..24]);
        let table = be(&t[24..32]);
        if !(1..=8).contains(&offset_size) || !(1..=8).contains(&ref_size) {
            return Err(bad());
        }
        if objects == 0 || top >= objects {
            return Err(bad());
        }
        if objects > MAX_NODES {
            return Err(PlistError::TooManyValues);
        }
        let objects = usize::try_from(objects).map_err(|_| bad())?;
        let top = usize::try_from(top).map_err(|_| bad())?;
        let table = usize::try_from(table).map_err(|_| bad())?;
        let table_end = objects
            .checked_mul(offset_size)
            .and_then(|n| n.checked_add(table))
            .ok_or_else(bad)?;
        if table < 8 || table_end > trailer {
            return Err(bad());
        }
        Ok(Binary {
            b,
            offset_size,
            ref_size,
            objects,
            top,
            table,
            trailer,
        })
    }

    fn offset(&self, obj: usize) -> Result<usize, PlistError> {
        let at = self.table + obj * self.offset_size;
        let off = be(&self.b[at..at + self.offset_size]);
        usize::try_from(off)
            .ok()
            .filter(|&o| o >= 8 && o < self.table)
            .ok_or_else(|| malformed("an object offset outside the objects"))
    }

    fn reference(&self, c: &Container, k: usize) -> Result<usize, PlistError> {
        let at = c.refs + k * self.ref_size;
        let r = be(&self.b[at..at + self.ref_size]);
        usize::try_from(r)
            .ok()
            .filter(|&r| r < self.objects)
            .ok_or(PlistError::BadReference)
    }

    /// The object's references when it is an array, a set or a dictionary.
    fn container(&self, obj: usize) -> Result<Option<Container>, PlistError> {
        let off = self.offset(obj)?;
        let marker = self.b[off];
        let per = match marker >> 4 {
            0xA | 0xC => 1,
            0xD => 2,
            _ => return Ok(None),
        };
        let (count, head) = if marker & 0xF != 0xF {
            (usize::from(marker & 0xF), 1)
        } else {
            // The count follows as an integer object: 0x1n, then 2^n bytes.
            let &int = self
                .b
                .get(off + 1)
                .ok_or_else(|| malformed("a truncated object"))?;
            if int >> 4 != 0x1 || int & 0xF > 3 {
                return Err(malformed("a bad object count"));
            }
            let n = 1usize << (int & 0xF);
            let bytes = self
                .b
                .get(off + 2..off + 2 + n)
                .ok_or_else(|| malformed("a truncated object"))?;
            let count = usize::try_from(be(bytes)).map_err(|_| malformed("a bad object count"))?;
            (count, 2 + n)
        };
        let count = count
            .checked_mul(per)
            .ok_or_else(|| malformed("a bad object count"))?;
        let refs = off + head;
        let end = count
            .checked_mul(self.ref_size)
            .and_then(|n| n.checked_add(refs))
            .ok_or_else(|| malformed("a bad object count"))?;
        if end > self.trailer {
            return Err(malformed("references past the end of the file"));
        }
        Ok(Some(Container { refs, count }))
    }
}

#[derive(Clone, Copy)]
enum Seen {
    New,
    /// On the path being walked (met again: a cycle).
    Open,
    /// Walked: its depth (containers, itself included) and how many values it expands to.
    Done(usize, u64),
}

struct Frame {
    obj: usize,
    c: Container,
    next: usize,
    depth: usize,
    nodes: u64,
}

/// The binary side of [`check`].
fn check_binary(b: &[u8]) -> Result<(), PlistError> {
    let bin = Binary::new(b)?;
    let mut seen = vec![Seen::New; bin.objects];
    let top = bin.top;
    let Some(c) = bin.container(top)? else {
        return Ok(());
    };
    seen[top] = Seen::Open;
    let mut stack = vec![Frame {
        obj: top,
        c,
        next: 0,
        depth: 0,
        nodes: 0,
    }];
    // What the last finished child adds to its parent.
    let add = |f: &mut Frame, depth: usize, nodes: u64| -> Result<(), PlistError> {
        f.depth = f.depth.max(depth);
        f.nodes = f.nodes.saturating_add(nodes);
        if f.nodes > MAX_NODES {
            return Err(PlistError::TooManyValues);
        }
        Ok(())
    };
    while let Some(f) = stack.last_mut() {
        if f.next < f.c.count {
            let r = bin.reference(&f.c, f.next)?;
            f.next += 1;
            let level = stack.len();
            match seen[r] {
                Seen::Open => return Err(PlistError::Cycle),
                Seen::Done(d, n) => {
                    if level + d > MAX_DEPTH {
                        return Err(PlistError::TooDeep);
                    }
                    let f = stack.last_mut().ok_or(PlistError::Cycle)?;
                    add(f, d, n)?;
                }
                Seen::New => match bin.container(r)? {
                    None => {
                        seen[r] = Seen::Done(0, 1);
                        let f = stack.last_mut().ok_or(PlistError::Cycle)?;
                        add(f, 0, 1)?;
                    }
                    Some(c) => {
                        if level + 1 > MAX_DEPTH {
                            return Err(PlistError::TooDeep);
                        }
                        seen[r] = Seen::Open;
                        stack.push(Frame {
                            obj: r,
                            c,
                            next: 0,
                            depth: 0,
                            nodes: 0,
                        });
                    }
                },
            }
        } else {
            let done = stack.pop().ok_or(PlistError::Cycle)?;
            let depth = done.depth + 1;
            let nodes = done.nodes.saturating_add(1);
            seen[done.obj] = Seen::Done(depth, nodes);
            if let Some(parent) = stack.last_mut() {
                add(parent, depth, nodes)?;
            } else if nodes > MAX_NODES {
                return Err(PlistError::TooManyValues);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plist::Value;

    fn nested_xml(n: usize) -> Vec<u8> {
        let mut s = Vec::with_capacity(n * 15 + 200);
        s.extend_from_slice(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">",
        );
        for _ in 0..n {
            s.extend_from_slice(b"<array>");
        }
        for _ in 0..n {
            s.extend_from_slice(b"</array>");
        }
        s.extend_from_slice(b"</plist>\n");
        s
    }

    /// A binary plist of `n` arrays, each holding the next (object i refers to i+1).
    fn nested_binary(n: usize) -> Vec<u8> {
        let mut b = b"bplist00".to_vec();
        let mut offsets = Vec::with_capacity(n + 1);
        for i in 0..n {
            offsets.push(b.len() as u32);
            b.push(0xA1);
            b.extend_from_slice(&((i + 1) as u32).to_be_bytes());
        }
        offsets.push(b.len() as u32);
        b.push(0x08); // false: the innermost value
        let table = b.len() as u64;
        for o in &offsets {
            b.extend_from_slice(&o.to_be_bytes());
        }
        b.extend_from_slice(&[0; 6]);
        b.push(4); // offset size
        b.push(4); // reference size
        b.extend_from_slice(&((n + 1) as u64).to_be_bytes());
        b.extend_from_slice(&0u64.to_be_bytes());
        b.extend_from_slice(&table.to_be_bytes());
        b
    }

    fn binary(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        v.to_writer_binary(&mut out).unwrap();
        out
    }

    fn xml(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        v.to_writer_xml(&mut out).unwrap();
        out
    }

    fn sample() -> Value {
        let mut d = plist::Dictionary::new();
        d.insert("name".into(), Value::Array(vec!["alice".into()]));
        d.insert("n".into(), Value::Integer(3.into()));
        d.insert("data".into(), Value::Data(vec![1, 2, 3]));
        d.insert(
            "nested".into(),
            Value::Array(vec![Value::Dictionary(plist::Dictionary::new())]),
        );
        Value::Dictionary(d)
    }

    #[test]
    fn two_hundred_thousand_nested_arrays_are_a_clean_error() {
        // In the test thread, on its default stack: plist alone would abort.
        let t = std::time::Instant::now();
        let x = nested_xml(200_000);
        assert!(x.len() > 2_000_000);
        assert_eq!(parse(&x).unwrap_err(), PlistError::TooDeep);
        let b = nested_binary(200_000);
        assert_eq!(parse(&b).unwrap_err(), PlistError::TooDeep);
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn the_depth_bound_is_exact() {
        for (n, ok) in [(MAX_DEPTH, true), (MAX_DEPTH + 1, false)] {
            assert_eq!(parse(&nested_xml(n)).is_ok(), ok, "xml {n}");
            assert_eq!(parse(&nested_binary(n)).is_ok(), ok, "binary {n}");
        }
        // The binary builder's own nesting, read back by plist: the same value.
        let v = parse(&nested_binary(3)).unwrap();
        assert_eq!(
            v,
            Value::Array(vec![Value::Array(vec![Value::Array(vec![
                Value::Boolean(false)
            ])])])
        );
    }

    #[test]
    fn ordinary_plists_read_as_plist_reads_them() {
        let v = sample();
        assert_eq!(parse(&xml(&v)).unwrap(), v);
        assert_eq!(parse(&binary(&v)).unwrap(), v);
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct S {
            n: u64,
        }
        assert_eq!(from_bytes::<S>(&binary(&v)).unwrap(), S { n: 3 });
        // Comments, CDATA and quoted `>` do not confuse the scanner.
        let x = b"<?xml version=\"1.0\"?><!-- <array><array> --><plist version=\"1.0\" x='>'>\
                  <dict><key>k</key><string><![CDATA[<array>]]></string></dict></plist>";
        // (plist itself reads a CDATA section as an empty string.)
        let v = parse(x).unwrap();
        assert!(v.as_dictionary().unwrap()["k"].as_string().is_some());
        // Nor do 200 arrays opened inside comments and CDATA.
        let mut many = b"<plist><array>".to_vec();
        for _ in 0..200 {
            many.extend_from_slice(b"<!--<array>--><string><![CDATA[<array>]]></string>");
        }
        many.extend_from_slice(b"</array></plist>");
        assert!(parse(&many).is_ok());
    }

    #[test]
    fn bad_structures_are_errors_not_panics() {
        // A closing tag that matches nothing, a DOCTYPE with entities, the
        // OpenStep form, an unterminated tag.
        for x in [
            &b"<plist><array></dict></plist>"[..],
            b"<!DOCTYPE plist [<!ENTITY a \"b\">]><plist><string>&a;</string></plist>",
            b"( ( ( ) ) )",
            b"<plist><array",
            b"",
        ] {
            assert!(parse(x).is_err(), "{}", String::from_utf8_lossy(x));
        }
        // Binary: a cycle (an array holding itself), a reference past the
        // table, a truncated file, a trailer pointing anywhere.
        let mut cyc = nested_binary(1);
        let at = 8 + 1;
        cyc[at..at + 4].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(parse(&cyc).unwrap_err(), PlistError::Cycle);
        let mut past = nested_binary(1);
        past[at..at + 4].copy_from_slice(&9u32.to_be_bytes());
        assert_eq!(parse(&past).unwrap_err(), PlistError::BadReference);
        let whole = nested_binary(4);
        for cut in 0..whole.len() {
            let _ = parse(&whole[..cut]);
        }
        let mut bad = nested_binary(2);
        let n = bad.len();
        bad[n - 8..].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(parse(&bad).is_err());
    }

    #[test]
    fn shared_objects_cannot_expand_without_bound() {
        // 40 arrays, each holding the next twice: 2^40 values from 400 bytes.
        let n = 40usize;
        let mut b = b"bplist00".to_vec();
        let mut offsets = Vec::new();
        for i in 0..n {
            offsets.push(b.len() as u32);
            b.push(0xA2);
            b.extend_from_slice(&((i + 1) as u32).to_be_bytes());
            b.extend_from_slice(&((i + 1) as u32).to_be_bytes());
        }
        offsets.push(b.len() as u32);
        b.push(0x09);
        let table = b.len() as u64;
        for o in &offsets {
            b.extend_from_slice(&o.to_be_bytes());
        }
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 4, 4]);
        b.extend_from_slice(&((n + 1) as u64).to_be_bytes());
        b.extend_from_slice(&0u64.to_be_bytes());
        b.extend_from_slice(&table.to_be_bytes());
        assert_eq!(parse(&b).unwrap_err(), PlistError::TooManyValues);
    }
}
