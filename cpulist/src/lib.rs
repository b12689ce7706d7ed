//! The cgroup list format ("0-3,8,10-11") used by cpuset.cpus, cpuset.mems
//! and `Cpus_allowed_list`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// Errors from parsing a list in cgroup format.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CpuListError {
    #[error("invalid number {token:?} in list {list:?}")]
    Number { token: String, list: String },
    #[error("reversed range {token:?} in list {list:?}")]
    Reversed { token: String, list: String },
    #[error("index {index} in list {list:?} is too large (limit {limit})")]
    TooLarge {
        index: u32,
        limit: u32,
        list: String,
    },
}

/// Highest index accepted: Linux's NR_CPUS tops out at 8192.
const MAX_INDEX: u32 = 8191;

/// A set of CPU or memory-node OS indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CpuList(BTreeSet<u32>);

impl CpuList {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn contains(&self, index: u32) -> bool {
        self.0.contains(&index)
    }

    pub fn insert(&mut self, index: u32) {
        self.0.insert(index);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }

    pub fn intersection(&self, other: &CpuList) -> CpuList {
        CpuList(self.0.intersection(&other.0).copied().collect())
    }

    pub fn is_subset(&self, other: &CpuList) -> bool {
        self.0.is_subset(&other.0)
    }
}

impl FromIterator<u32> for CpuList {
    fn from_iter<T: IntoIterator<Item = u32>>(iter: T) -> Self {
        CpuList(iter.into_iter().collect())
    }
}

impl FromStr for CpuList {
    type Err = CpuListError;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut set = BTreeSet::new();
        for token in list
            .trim()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let number = |s: &str| {
                let n: u32 = s.trim().parse().map_err(|_| CpuListError::Number {
                    token: token.to_string(),
                    list: list.to_string(),
                })?;
                if n > MAX_INDEX {
                    return Err(CpuListError::TooLarge {
                        index: n,
                        limit: MAX_INDEX,
                        list: list.to_string(),
                    });
                }
                Ok(n)
            };
            match token.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (number(lo)?, number(hi)?);
                    if lo > hi {
                        return Err(CpuListError::Reversed {
                            token: token.to_string(),
                            list: list.to_string(),
                        });
                    }
                    set.extend(lo..=hi);
                }
                None => {
                    set.insert(number(token)?);
                }
            }
        }
        Ok(CpuList(set))
    }
}

impl fmt::Display for CpuList {
    /// Formats as ranges, the way the kernel prints cpuset files.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut iter = self.0.iter().copied().peekable();
        let mut first = true;
        while let Some(start) = iter.next() {
            let mut end = start;
            while iter.peek() == Some(&(end + 1)) {
                end += 1;
                iter.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

/// Serialised in the cgroup list format ("0-3,8"), as people and cgroups read it.
impl serde::Serialize for CpuList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CpuList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_ranges() {
        let list: CpuList = "0-3, 8,10-11,9".parse().expect("valid list");
        assert_eq!(
            list.iter().collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 8, 9, 10, 11]
        );
        assert_eq!(list.to_string(), "0-3,8-11");
        assert_eq!("".parse::<CpuList>().expect("empty").to_string(), "");
        assert_eq!("5\n".parse::<CpuList>().expect("newline").to_string(), "5");
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            "1,x".parse::<CpuList>(),
            Err(CpuListError::Number { .. })
        ));
        assert!(matches!(
            "3-1".parse::<CpuList>(),
            Err(CpuListError::Reversed { .. })
        ));
        assert!(matches!(
            "99999".parse::<CpuList>(),
            Err(CpuListError::TooLarge { .. })
        ));
    }

    #[test]
    fn set_operations() {
        let a: CpuList = "0-7".parse().expect("a");
        let b: CpuList = "4-11".parse().expect("b");
        assert_eq!(a.intersection(&b).to_string(), "4-7");
        assert!("5-6".parse::<CpuList>().expect("c").is_subset(&a));
        assert!(!b.is_subset(&a));
    }
}
