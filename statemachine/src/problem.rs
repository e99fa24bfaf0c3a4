//! [`Problem`]: one thing wrong with a definition, as reported by [`crate::lint`] and carried by
//! [`crate::model::DefinitionError::Invalid`]. It lives apart from both so that the model does not
//! depend on the linter.

use std::fmt;

/// One problem in a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `state "X"`, `state "Y" in branch 2 of "P"`, or empty for the top level.
    pub location: String,
    pub message: String,
}

impl Problem {
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            location: location.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(f, "{}", self.message)
        } else {
            // "State "X": ..." reads as a sentence.
            let mut loc = self.location.clone();
            if let Some(first) = loc.get(0..1) {
                let upper = first.to_uppercase();
                loc.replace_range(0..1, &upper);
            }
            write!(f, "{loc}: {}", self.message)
        }
    }
}
