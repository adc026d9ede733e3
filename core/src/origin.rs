//! Where an arm's problems come from.

use crate::strategy::Strategy;

/// Where an arm's problems come from: a prompting strategy's generations, or a problem set
/// imported from a file (`[generate.import.<name>]`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    Strategy(Strategy),
    Import(String),
}

impl Origin {
    /// The strategy's name or the import's: folder names and report rows.
    pub fn as_str(&self) -> &str {
        match self {
            Origin::Strategy(s) => s.as_str(),
            Origin::Import(name) => name,
        }
    }

    pub fn is_direct(&self) -> bool {
        *self == Origin::Strategy(Strategy::Direct)
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
