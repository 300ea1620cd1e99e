//! The sender's implementation language, carried in every header.

/// `LanguageCode` of RocketMQ: a name in JSON headers, a byte in binary ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LanguageCode {
    #[default]
    Java,
    Cpp,
    Dotnet,
    Python,
    Delphi,
    Erlang,
    Ruby,
    Other,
    Http,
    Go,
    Php,
    Oms,
    Rust,
    NodeJs,
}

const TABLE: [(LanguageCode, u8, &str); 14] = [
    (LanguageCode::Java, 0, "JAVA"),
    (LanguageCode::Cpp, 1, "CPP"),
    (LanguageCode::Dotnet, 2, "DOTNET"),
    (LanguageCode::Python, 3, "PYTHON"),
    (LanguageCode::Delphi, 4, "DELPHI"),
    (LanguageCode::Erlang, 5, "ERLANG"),
    (LanguageCode::Ruby, 6, "RUBY"),
    (LanguageCode::Other, 7, "OTHER"),
    (LanguageCode::Http, 8, "HTTP"),
    (LanguageCode::Go, 9, "GO"),
    (LanguageCode::Php, 10, "PHP"),
    (LanguageCode::Oms, 11, "OMS"),
    (LanguageCode::Rust, 12, "RUST"),
    (LanguageCode::NodeJs, 13, "NODE_JS"),
];

impl LanguageCode {
    /// The byte used in ROCKETMQ binary headers.
    pub fn code(self) -> u8 {
        TABLE.iter().find(|(l, _, _)| *l == self).map_or(7, |e| e.1)
    }

    /// The enum name used in JSON headers.
    pub fn name(self) -> &'static str {
        TABLE
            .iter()
            .find(|(l, _, _)| *l == self)
            .map_or("OTHER", |e| e.2)
    }

    /// From the binary byte; unknown bytes read as `Other` rather than failing the frame.
    pub fn from_code(b: u8) -> Self {
        TABLE
            .iter()
            .find(|e| e.1 == b)
            .map_or(LanguageCode::Other, |e| e.0)
    }

    /// From the JSON name; unknown names read as `Other`.
    pub fn from_name(s: &str) -> Self {
        TABLE
            .iter()
            .find(|e| e.2 == s)
            .map_or(LanguageCode::Other, |e| e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_match_rocketmq() {
        assert_eq!(LanguageCode::Java.code(), 0);
        assert_eq!(LanguageCode::Go.code(), 9);
        assert_eq!(LanguageCode::Rust.code(), 12);
        assert_eq!(LanguageCode::NodeJs.name(), "NODE_JS");
        assert_eq!(LanguageCode::from_name("GO"), LanguageCode::Go);
        assert_eq!(LanguageCode::from_code(200), LanguageCode::Other);
    }
}
