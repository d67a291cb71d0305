//! What PM2 calls vizion: the version of the code an app runs, read from the git repository
//! its directory is in (remote URL, branch, commit and its message). Pure parsing here; the
//! daemon reads the files (`actors::versioning`).

use serde::{Deserialize, Serialize};

/// The repository and commit an app's directory holds, as PM2's `versioning`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioning {
    /// Always `git`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The `origin` remote's URL (else the first remote's).
    pub url: Option<String>,
    /// `None` on a detached HEAD.
    pub branch: Option<String>,
    /// The commit id HEAD names.
    pub revision: Option<String>,
    /// The commit's message (when the commit is a loose object).
    pub comment: Option<String>,
    /// The directory that holds `.git`.
    pub repo_path: String,
}

/// What `HEAD` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// `ref: refs/heads/NAME`.
    Branch(String),
    Detached(String),
}

pub fn parse_head(text: &str) -> Option<Head> {
    let text = text.trim();
    match text.strip_prefix("ref:") {
        Some(reference) => {
            let reference = reference.trim();
            let name = reference.strip_prefix("refs/heads/").unwrap_or(reference);
            Some(Head::Branch(name.to_string()))
        }
        None if is_commit_id(text) => Some(Head::Detached(text.to_string())),
        None => None,
    }
}

pub fn is_commit_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The URL of the `origin` remote in a git `config`, else of the first remote.
pub fn remote_url(config: &str) -> Option<String> {
    let mut section = String::new();
    let mut first = None;
    for line in config.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() != "url" || !section.starts_with("remote ") {
            continue;
        }
        let value = value.trim().trim_matches('"').to_string();
        if section == "remote \"origin\"" {
            return Some(value);
        }
        first.get_or_insert(value);
    }
    first
}

/// The commit a ref names in `packed-refs`.
pub fn packed_ref(packed: &str, reference: &str) -> Option<String> {
    packed.lines().find_map(|line| {
        let (id, name) = line.split_once(' ')?;
        (name.trim() == reference && is_commit_id(id)).then(|| id.to_string())
    })
}

/// The message of a commit object (inflated: `commit LEN\0headers\n\nmessage`), first line.
pub fn commit_message(object: &[u8]) -> Option<String> {
    let nul = object.iter().position(|&b| b == 0)?;
    if !object.starts_with(b"commit ") {
        return None;
    }
    let body = String::from_utf8_lossy(&object[nul + 1..]);
    let (_, message) = body.split_once("\n\n")?;
    Some(message.lines().next().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_names_a_branch_or_a_commit() {
        assert_eq!(
            parse_head("ref: refs/heads/main\n"),
            Some(Head::Branch("main".into()))
        );
        let id = "a".repeat(40);
        assert_eq!(parse_head(&id), Some(Head::Detached(id.clone())));
        assert_eq!(parse_head("garbage"), None);
    }

    #[test]
    fn the_origin_url_wins_over_other_remotes() {
        let config = "[core]\n\tbare = false\n[remote \"upstream\"]\n\turl = https://a/up.git\n\
                      [remote \"origin\"]\n\turl = https://github.com/me/app.git\n\tfetch = x\n";
        assert_eq!(
            remote_url(config).as_deref(),
            Some("https://github.com/me/app.git")
        );
        assert_eq!(
            remote_url("[remote \"fork\"]\nurl = git@h:f.git").as_deref(),
            Some("git@h:f.git")
        );
        assert_eq!(remote_url("[core]\nurl = no"), None);
    }

    #[test]
    fn packed_refs_and_commit_messages_are_read() {
        let id = "b".repeat(40);
        let packed = format!(
            "# pack-refs with: peeled\n{id} refs/heads/main\n^{}\n",
            "c".repeat(40)
        );
        assert_eq!(packed_ref(&packed, "refs/heads/main"), Some(id));
        assert_eq!(packed_ref(&packed, "refs/heads/other"), None);
        let object = b"commit 60\0tree 1\nauthor a\n\nFix the thing\n\nLonger text\n";
        assert_eq!(commit_message(object).as_deref(), Some("Fix the thing"));
        assert_eq!(commit_message(b"blob 3\0abc"), None);
    }
}
