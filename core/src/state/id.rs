//! Container ids: checked before anything touches the filesystem, because an
//! id becomes a directory name under the runtime root.

/// Why an id was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("invalid container id: it is empty")]
    Empty,
    #[error("invalid container id {0:?}: \".\" and \"..\" are not ids")]
    Dots(String),
    #[error("invalid container id {id:?}: character {ch:?} is not allowed (use letters, digits, '_', '+', '-', '.')")]
    Char { id: String, ch: char },
    #[error("invalid container id: longer than {MAX_LEN} characters")]
    TooLong,
}

/// NAME_MAX, less room for the lock-file prefix and suffix.
const MAX_LEN: usize = 240;

/// Accepts what runc accepts: `^[\w+-\.]+$`, minus "." and "..".
pub fn validate(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id == "." || id == ".." {
        return Err(IdError::Dots(id.to_string()));
    }
    if id.len() > MAX_LEN {
        return Err(IdError::TooLong);
    }
    if let Some(ch) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.')))
    {
        return Err(IdError::Char {
            id: id.to_string(),
            ch,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_runc_style_ids() {
        for id in ["a", "abc-123", "x.y_z+1", "...", "step.0.1000.5.0.0"] {
            assert_eq!(validate(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn refuses_paths_and_dots() {
        assert_eq!(validate(""), Err(IdError::Empty));
        assert_eq!(validate(".."), Err(IdError::Dots("..".into())));
        assert!(matches!(
            validate("../etc"),
            Err(IdError::Char { ch: '/', .. })
        ));
        assert!(matches!(
            validate("a b"),
            Err(IdError::Char { ch: ' ', .. })
        ));
        assert_eq!(validate(&"x".repeat(300)), Err(IdError::TooLong));
    }
}
