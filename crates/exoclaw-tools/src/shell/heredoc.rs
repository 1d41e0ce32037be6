//! Here-documents: their bodies are read after the newline that ends the
//! line of their `<<` redirection, so the parser records them as pending
//! and fills the bodies into the tree once read (by id).

use super::parse::Parser;

impl Parser<'_> {
    /// Read the bodies of the pending here-documents, line by line.
    pub(super) fn read_heredocs(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for (id, delimiter, quoted, strip) in pending {
            let mut body = String::new();
            let mut ended = false;
            // The last body line ends in `\<newline>` (unquoted body).
            let mut continues = false;
            while self.pos < self.src.len() {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != '\n') {
                    self.pos += 1;
                }
                let mut line: String = self.src[start..self.pos].iter().collect();
                if self.peek() == Some('\n') {
                    self.pos += 1;
                }
                if strip {
                    line = line.trim_start_matches('\t').to_owned();
                }
                if line == delimiter {
                    ended = true;
                    break;
                }
                continues =
                    !quoted && line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1;
                body.push_str(&line);
                body.push('\n');
            }
            if continues {
                // `\<newline>` joins lines in an unquoted body; joining the
                // last one with the delimiter line (or the end) is where
                // shells differ, so it is refused. Inner lines are fine.
                let e = self.error("a here-document's last line ends in a line continuation");
                self.heredoc_error.get_or_insert(e);
                continue;
            }
            if !ended && self.depth > 0 {
                // Inside backquotes the text ends where the substitution
                // does; a body cut off there has no end of its own.
                let e = self.error("a here-document inside a substitution has no end");
                self.heredoc_error.get_or_insert(e);
                continue;
            }
            match self.heredoc_word(&body, quoted) {
                Ok(word) => {
                    self.bodies.insert(id, word);
                }
                Err(e) => {
                    self.heredoc_error.get_or_insert(e);
                }
            }
        }
    }
}
