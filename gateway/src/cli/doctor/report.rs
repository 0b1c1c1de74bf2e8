//! What `doctor` found: each check passed, each problem and each note with its fix in one sentence.
//! Imports nothing of the gateway.

/// One finding: what is wrong and what to do about it.
#[derive(Debug)]
pub struct Problem {
    pub what: String,
    pub fix: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<Problem>,
    pub notes: Vec<Problem>,
    pub passed: Vec<String>,
}

impl Report {
    pub fn ok(&mut self, what: impl Into<String>) {
        self.passed.push(what.into());
    }

    pub fn note(&mut self, what: impl Into<String>, fix: impl Into<String>) {
        self.notes.push(Problem {
            what: what.into(),
            fix: fix.into(),
        });
    }

    pub fn problem(&mut self, what: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(Problem {
            what: what.into(),
            fix: fix.into(),
        });
    }
}
