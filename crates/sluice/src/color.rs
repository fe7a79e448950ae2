//! Colour for terminal output: only when stdout is a terminal and `NO_COLOR` is not set
//! (<https://no-color.org>); plain text otherwise, so pipes and tests see no escape codes.

use std::io::IsTerminal;

/// Paints text with ANSI colours, or leaves it as it is.
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    on: bool,
}

impl Paint {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn stdout() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self::new(std::io::stdout().is_terminal() && !no_color)
    }

    /// Colour on or off.
    pub fn new(on: bool) -> Self {
        Self { on }
    }

    fn wrap(self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Red.
    pub fn red(self, text: &str) -> String {
        self.wrap("31", text)
    }

    /// Yellow.
    pub fn yellow(self, text: &str) -> String {
        self.wrap("33", text)
    }

    /// Red when `cond`.
    pub fn red_if(self, cond: bool, text: &str) -> String {
        if cond {
            self.red(text)
        } else {
            text.to_string()
        }
    }

    /// Yellow when `cond`.
    pub fn yellow_if(self, cond: bool, text: &str) -> String {
        if cond {
            self.yellow(text)
        } else {
            text.to_string()
        }
    }

    /// Green when `cond`.
    pub fn green_if(self, cond: bool, text: &str) -> String {
        if cond {
            self.wrap("32", text)
        } else {
            text.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_when_off_coloured_when_on() {
        assert_eq!(Paint::new(false).red("ERROR"), "ERROR");
        assert_eq!(Paint::new(true).red("ERROR"), "\x1b[31mERROR\x1b[0m");
        assert_eq!(Paint::new(true).green_if(false, "PASS=0"), "PASS=0");
        assert_eq!(
            Paint::new(true).green_if(true, "PASS=1"),
            "\x1b[32mPASS=1\x1b[0m"
        );
    }
}
