//! A room's access list (`allowed`, docs/API.md section 2.15): when it is checked, `join` and
//! `changeroom` must carry one of its tokens. Disabling keeps the tokens for a later `enable`,
//! as in AudioBridge. The comparison itself (constant time) is the API's business.

use std::collections::BTreeSet;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessList {
    /// Tokens are checked (`enable`, or `create` with `allowed`).
    pub enabled: bool,
    /// Sorted, so replies and the saved configuration list them the same way every time.
    pub tokens: BTreeSet<String>,
}

impl AccessList {
    /// Checked, with these tokens (`create` with `allowed`).
    pub fn with_tokens<I: IntoIterator<Item = String>>(tokens: I) -> Self {
        AccessList {
            enabled: true,
            tokens: tokens.into_iter().collect(),
        }
    }
}
